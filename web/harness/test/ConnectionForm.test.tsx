import { describe, expect, it, vi } from "vitest";
import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { ConnectionForm, toBody, initialValues } from "@page/ConnectionForm";
import { API, STORED, configView, mockApi, renderFresh } from "./helpers";

const KEY = "key_NewKey123.SuperSecretValue456";

function setup(config = configView(), onSaved = vi.fn()) {
  const user = userEvent.setup();
  renderFresh(<ConnectionForm config={config} onSaved={onSaved} />);
  return { user, onSaved };
}

describe("ConnectionForm", () => {
  it("never shows a stored key: the field is write-only and masked, with a hint", () => {
    setup(STORED);
    const key = screen.getByLabelText("API key") as HTMLInputElement;
    expect(key.type).toBe("password");
    expect(key.value).toBe("");
    expect(key).toHaveAttribute("autocomplete", "new-password");
    expect(screen.getByText("Stored key key_Ab…9xQ (leave blank to keep it)")).toBeInTheDocument();
    expect(screen.getByLabelText("R2R server URL")).toHaveValue("http://r2r:7272");
  });

  it("validates inline and sends nothing while the form is invalid", async () => {
    const calls = mockApi({});
    const { user } = setup(configView({ base_url: null, environment: { base_url: "", has_api_key: false, login_email: null } }));
    await user.click(screen.getByRole("button", { name: "Save" }));
    expect(await screen.findByText("Enter the R2R server's URL, e.g. http://r2r:7272")).toBeInTheDocument();
    expect(screen.getByText("Enter the R2R API key")).toBeInTheDocument();

    await user.type(screen.getByLabelText("R2R server URL"), "ftp://r2r:7272");
    await user.click(screen.getByRole("button", { name: "Test connection" }));
    expect(
      await screen.findByText(/Enter a URL that starts with http:\/\/ or https:\/\//)
    ).toBeInTheDocument();
    expect(screen.getByLabelText("R2R server URL")).toHaveAttribute("aria-invalid", "true");
    expect(calls).toHaveLength(0);
  });

  it("tests the connection and shows R2R's answer", async () => {
    const calls = mockApi({
      "POST /api/admin/r2r/test": {
        body: {
          ok: true,
          base_url: "http://r2r:7272",
          auth: "api_key",
          elapsed_ms: 812,
          message: "Connected to R2R at http://r2r:7272 with the API key; its settings fit the bridge.",
        },
      },
    });
    const { user } = setup();
    const url = screen.getByLabelText("R2R server URL");
    await user.clear(url);
    await user.type(url, "http://r2r:7272/");
    await user.type(screen.getByLabelText("API key"), KEY);
    await user.click(screen.getByRole("button", { name: "Test connection" }));
    const status = await screen.findByRole("status");
    expect(status).toHaveTextContent("Connection works");
    expect(status).toHaveTextContent("Connected to R2R at http://r2r:7272 with the API key");
    expect(status).toHaveTextContent("812 ms");
    expect(calls).toEqual([
      {
        method: "POST",
        path: `${API}/test`,
        body: { base_url: "http://r2r:7272/", api_key: KEY, login_email: null, password: null },
      },
    ]);
  });

  it("shows a failed test with R2R's reason, in plain words", async () => {
    mockApi({
      "POST /api/admin/r2r/test": {
        status: 400,
        body: {
          detail: "R2R at http://r2r:7272 rejected the API key (check the configured key): Invalid token or API key",
          error: "connection_test_failed",
          reason: "Invalid token or API key",
          r2r_status: 401,
        },
      },
    });
    const { user } = setup(configView({ base_url: "http://r2r:7272", environment: { base_url: "http://r2r:7272", has_api_key: false, login_email: null } }));
    await user.type(screen.getByLabelText("API key"), "key_wrong.wrong");
    await user.click(screen.getByRole("button", { name: "Test connection" }));
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("Connection test failed");
    expect(alert).toHaveTextContent("rejected the API key");
    expect(alert).toHaveTextContent("Invalid token or API key");
    expect(alert).not.toHaveTextContent("key_wrong.wrong");
  });

  it("puts a refused URL's reason under the URL field", async () => {
    mockApi({
      "PUT /api/admin/r2r/config": {
        status: 422,
        body: {
          detail: "169.254.169.254 is a cloud metadata address; it is not allowed. Set ONYX_R2R_URL_POLICY=any to allow it deliberately.",
          error: "url_not_allowed",
        },
      },
    });
    const { user } = setup();
    const url = screen.getByLabelText("R2R server URL");
    await user.clear(url);
    await user.type(url, "http://169.254.169.254");
    await user.type(screen.getByLabelText("API key"), KEY);
    await user.click(screen.getByRole("button", { name: "Save" }));
    expect(
      await screen.findByText(/169.254.169.254 is a cloud metadata address; it is not allowed/, {
        selector: ".r2r-field-error",
      })
    ).toBeInTheDocument();
    expect(screen.getByText("Not saved")).toBeInTheDocument();
  });

  it("saves, reports success, clears the secret and hands the saved config back", async () => {
    const saved = { ...STORED, base_url: "http://r2r:7272" };
    const calls = mockApi({ "PUT /api/admin/r2r/config": { body: saved } });
    const { user, onSaved } = setup();
    const url = screen.getByLabelText("R2R server URL");
    await user.clear(url);
    await user.type(url, "http://r2r:7272");
    await user.type(screen.getByLabelText("API key"), KEY);
    await user.click(screen.getByRole("button", { name: "Save" }));
    expect(await screen.findByText("Connection saved")).toBeInTheDocument();
    expect(onSaved).toHaveBeenCalledWith(saved);
    expect(calls[0]).toMatchObject({ method: "PUT", path: `${API}/config` });
    expect(screen.getByLabelText("API key")).toHaveValue("");
  });

  it("keeps a stored key for the same server, but asks again when the URL changes", async () => {
    const calls = mockApi({ "PUT /api/admin/r2r/config": { body: STORED } });
    const { user } = setup(STORED);
    await user.click(screen.getByRole("button", { name: "Save" }));
    await waitFor(() => expect(calls).toHaveLength(1));
    expect(calls[0]!.body).toEqual({
      base_url: "http://r2r:7272",
      api_key: null,
      login_email: null,
      password: null,
    });

    const url = screen.getByLabelText("R2R server URL");
    await user.clear(url);
    await user.type(url, "http://other:7272");
    await user.click(screen.getByRole("button", { name: "Save" }));
    expect(await screen.findByText("The URL changed: enter the API key again")).toBeInTheDocument();
    expect(calls).toHaveLength(1);
  });

  it("supports a service-account login beside the key", async () => {
    const { user } = setup();
    await user.click(screen.getByLabelText(/Also sign in with a service account/));
    const email = screen.getByLabelText("Login email");
    await user.type(email, "not-an-email");
    await user.click(screen.getByRole("button", { name: "Save" }));
    expect(await screen.findByText("Enter a valid email address")).toBeInTheDocument();
    expect(screen.getByText("Enter the service account's password")).toBeInTheDocument();
    expect(screen.getByLabelText("Password")).toHaveAttribute("type", "password");
  });

  it("builds request bodies that keep, replace or remove secrets", () => {
    const values = { ...initialValues(STORED), login_email: "svc@example.com" };
    expect(toBody({ ...values, use_login: true, password: "pw" }, STORED)).toEqual({
      base_url: "http://r2r:7272",
      api_key: null,
      login_email: "svc@example.com",
      password: "pw",
    });
    expect(
      toBody({ ...values, use_login: true, forget_api_key: true, password: "" }, STORED).api_key
    ).toBe("");
    const withLogin = { ...STORED, login_email: "svc@example.com", has_password: true };
    expect(toBody({ ...initialValues(withLogin), use_login: false }, withLogin).login_email).toBe("");
  });
});
