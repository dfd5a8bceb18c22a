import { describe, expect, it } from "vitest";
import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import R2RAdminPage from "@page/R2RAdminPage";
import {
  API,
  STORED,
  configView,
  deadLetterClasses,
  deadLetters,
  mockApi,
  renderFresh,
  statusView,
} from "./helpers";

const REFRESH = 60_000; // no background refresh during a test

function pageRoutes(overrides: Record<string, unknown> = {}) {
  return {
    "GET /api/admin/r2r/config": { body: STORED },
    "GET /api/admin/r2r/status": { body: statusView() },
    "GET /api/admin/r2r/dead-letters": { body: deadLetters() },
    "GET /api/admin/r2r/dead-letter-classes": { body: deadLetterClasses() },
    ...overrides,
  } as Parameters<typeof mockApi>[0];
}

describe("R2RAdminPage", () => {
  it("shows a loading state first", () => {
    mockApi(pageRoutes());
    renderFresh(<R2RAdminPage refreshMs={REFRESH} />);
    expect(screen.getByRole("status")).toHaveTextContent("Loading the R2R settings…");
  });

  it("tells non-admins they need admin access", async () => {
    mockApi(
      pageRoutes({
        "GET /api/admin/r2r/config": {
          status: 403,
          body: { detail: "Admin access required: you are not signed in as an admin.", error: "forbidden" },
        },
      })
    );
    renderFresh(<R2RAdminPage refreshMs={REFRESH} />);
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("Admin access required");
    expect(alert).toHaveTextContent("Only Onyx admins can manage the R2R mirror");
    expect(screen.queryByLabelText("API key")).not.toBeInTheDocument();
  });

  it("explains a server error and offers to retry", async () => {
    let fail = true;
    mockApi(
      pageRoutes({
        "GET /api/admin/r2r/config": () =>
          fail
            ? {
                status: 503,
                body: {
                  detail: "The bridge's database or broker is unreachable right now; try again in a moment.",
                  error: "backend_unavailable",
                },
              }
            : { body: STORED },
      })
    );
    renderFresh(<R2RAdminPage refreshMs={REFRESH} />);
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("Could not load the R2R settings");
    expect(alert).toHaveTextContent("unreachable right now");
    fail = false;
    await userEvent.setup().click(screen.getByRole("button", { name: "Try again" }));
    expect(await screen.findByText("Connected to http://r2r:7272")).toBeInTheDocument();
  });

  it("guides a first-time admin when nothing is connected", async () => {
    mockApi(
      pageRoutes({
        "GET /api/admin/r2r/config": { body: configView() },
        "GET /api/admin/r2r/status": {
          body: statusView({
            counts: { pending: 0, retrying: 0, synced: 0, deleted: 0, dead: 0 },
            total: 0,
            backlog: 0,
            oldest_pending_seconds: null,
          }),
        },
        "GET /api/admin/r2r/dead-letters": { body: deadLetters({ total: 0, items: [] }) },
      })
    );
    renderFresh(<R2RAdminPage refreshMs={REFRESH} />);
    expect(await screen.findByText("Not connected yet")).toBeInTheDocument();
    expect(await screen.findByText("Nothing mirrored yet")).toBeInTheDocument();
    expect(await screen.findByTestId("dead-letters-empty")).toHaveTextContent("No dead letters.");
    expect(screen.queryByText("Remove stored connection")).not.toBeInTheDocument();
  });

  it("replays one dead letter and refreshes the status", async () => {
    const calls = mockApi(
      pageRoutes({
        "POST /api/admin/r2r/dead-letters/replay": {
          body: { requeued: 1, document_ids: ["https://wiki.example.com/page/42"], message: "Re-queued 1 document." },
        },
      })
    );
    renderFresh(<R2RAdminPage refreshMs={REFRESH} />);
    const table = await screen.findByRole("table", { name: "Dead letters" });
    const row = within(table).getByText("https://wiki.example.com/page/42").closest("tr")!;
    expect(await within(row).findByText("R2R credential or settings")).toBeInTheDocument();
    expect(row).toHaveTextContent("Invalid token or API key");
    expect(row).toHaveTextContent("25");
    expect(row).toHaveTextContent("1 min ago");
    const statusReads = calls.filter((c) => c.path === `${API}/status`).length;
    await userEvent.setup().click(
      within(row).getByRole("button", { name: "Replay https://wiki.example.com/page/42" })
    );
    expect(await screen.findByText("Re-queued 1 document.")).toBeInTheDocument();
    expect(calls.find((c) => c.method === "POST")).toEqual({
      method: "POST",
      path: `${API}/dead-letters/replay`,
      body: { document_ids: ["https://wiki.example.com/page/42"] },
    });
    await waitFor(() =>
      expect(calls.filter((c) => c.path === `${API}/status`).length).toBeGreaterThan(statusReads)
    );
  });

  it("labels dead letters with the class names the API gives", async () => {
    const calls = mockApi(
      pageRoutes({
        "GET /api/admin/r2r/dead-letter-classes": {
          body: deadLetterClasses({
            classes: [
              {
                name: "r2r_config",
                label: "Credential refused (API label)",
                description: "Fix the connection, then replay.",
                retried_by_reconcile: true,
              },
            ],
          }),
        },
      })
    );
    renderFresh(<R2RAdminPage refreshMs={REFRESH} />);
    const table = await screen.findByRole("table", { name: "Dead letters" });
    const tag = await within(table).findByText("Credential refused (API label)");
    expect(tag).toHaveAttribute("title", "Fix the connection, then replay.");
    expect(within(table).queryByText("R2R credential or settings")).not.toBeInTheDocument();
    expect(calls.filter((c) => c.path === `${API}/dead-letter-classes`)).toHaveLength(1);
  });

  it("shows the raw class name when the class list cannot be loaded", async () => {
    const calls = mockApi(
      pageRoutes({
        "GET /api/admin/r2r/dead-letter-classes": {
          status: 500,
          body: { detail: "Internal error; the server log has the details.", error: "internal_error" },
        },
      })
    );
    renderFresh(<R2RAdminPage refreshMs={REFRESH} />);
    const table = await screen.findByRole("table", { name: "Dead letters" });
    await waitFor(() =>
      expect(calls.some((c) => c.path === `${API}/dead-letter-classes`)).toBe(true)
    );
    const row = within(table).getByText("https://wiki.example.com/page/42").closest("tr")!;
    expect(row).toHaveTextContent("r2r_config");
    expect(row).toHaveTextContent("Invalid token or API key");
    expect(within(row).getByRole("button", { name: /Replay/ })).toBeEnabled();
  });

  it("asks before a resync and sends nothing when cancelled", async () => {
    const calls = mockApi(
      pageRoutes({
        "POST /api/admin/r2r/resync": {
          status: 202,
          body: { job: "resync", task: "onyx_r2r.backfill", task_id: "t-1", message: "Resync started: Onyx's documents will be compared with the ledger and missing ones queued." },
        },
        "POST /api/admin/r2r/reconcile": {
          status: 409,
          body: { detail: "A reconcile was requested less than 30 seconds ago; it is queued or running.", error: "already_requested" },
        },
      })
    );
    const user = userEvent.setup();
    renderFresh(<R2RAdminPage refreshMs={REFRESH} />);
    await user.click(await screen.findByRole("button", { name: "Resync from Onyx" }));
    const confirm = screen.getByRole("group", { name: "Confirm: Resync from Onyx" });
    expect(confirm).toHaveTextContent("Start a full resync?");
    await user.click(within(confirm).getByRole("button", { name: "Cancel" }));
    expect(calls.some((c) => c.method === "POST")).toBe(false);

    await user.click(screen.getByRole("button", { name: "Resync from Onyx" }));
    await user.click(screen.getByRole("button", { name: "Start resync" }));
    expect(await screen.findByText(/Resync started/)).toBeInTheDocument();

    await user.click(screen.getByRole("button", { name: "Reconcile with R2R" }));
    await user.click(screen.getByRole("button", { name: "Start reconcile" }));
    expect(await screen.findByText(/requested less than 30 seconds ago/)).toBeInTheDocument();
    expect(calls.filter((c) => c.method === "POST").map((c) => c.path)).toEqual([
      `${API}/resync`,
      `${API}/reconcile`,
    ]);
  });

  it("switches the export and its mode", async () => {
    const calls = mockApi(
      pageRoutes({
        "GET /api/admin/r2r/config": { body: { ...STORED, export_enabled: false } },
        "PUT /api/admin/r2r/export": { body: { ...STORED, export_enabled: true, export_mode: "replace" } },
      })
    );
    const user = userEvent.setup();
    renderFresh(<R2RAdminPage refreshMs={REFRESH} />);
    const toggle = await screen.findByRole("switch");
    expect(toggle).toHaveAttribute("aria-checked", "false");
    await user.click(toggle);
    await waitFor(() => expect(screen.getByRole("switch")).toHaveAttribute("aria-checked", "true"));
    expect(calls.find((c) => c.method === "PUT")?.body).toEqual({ enabled: true, mode: "mirror" });
    expect(screen.getByRole("radio", { name: /Replace/ })).toBeChecked();
  });

  it("shows the environment's mode and says so when nothing is stored (issue 17)", async () => {
    // ONYX_EXPORT_R2R=true, R2R_EXPORT_MODE=replace on the server, no stored choice
    mockApi(
      pageRoutes({
        "GET /api/admin/r2r/config": {
          body: configView({
            source: "environment",
            export_enabled: true,
            export_mode: "replace",
            export_state: "replace",
            export_source: "environment",
            searches_r2r: true,
            switches: { export: "true", mode: "replace", backend: "", locked: false },
          }),
        },
      })
    );
    renderFresh(<R2RAdminPage refreshMs={REFRESH} />);
    expect(await screen.findByText(/Replace: R2R is Onyx's only index/)).toBeInTheDocument();
    expect(
      screen.getByText(/From the environment \(ONYX_EXPORT_R2R=true, R2R_EXPORT_MODE=replace\)/)
    ).toBeInTheDocument();
    expect(screen.getByRole("switch")).toHaveAttribute("aria-checked", "true");
    expect(screen.getByRole("radio", { name: /Replace/ })).toBeChecked();
    expect(screen.queryByText("Use the environment's setting")).not.toBeInTheDocument();
  });

  it("leaves replace mode only together with a rebuild of Onyx's index", async () => {
    const replacing = {
      ...STORED,
      export_mode: "replace" as const,
      export_state: "replace" as const,
      export_source: "stored" as const,
    };
    let puts = 0;
    const calls = mockApi(
      pageRoutes({
        "GET /api/admin/r2r/config": { body: replacing },
        "PUT /api/admin/r2r/export": () =>
          ++puts === 1
            ? {
                status: 409,
                body: { detail: "Onyx's own index was not written", error: "onyx_index_stale" },
              }
            : { body: { ...STORED, export_state: "mirror", export_source: "stored" } },
      })
    );
    const user = userEvent.setup();
    renderFresh(<R2RAdminPage refreshMs={REFRESH} />);
    expect(await screen.findByText(/Chosen for this workspace/)).toBeInTheDocument();
    await user.click(screen.getByRole("radio", { name: /Mirror/ }));
    expect(await screen.findByText(/Onyx's own index was not written/)).toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: /Switch and rebuild Onyx's index/ }));
    await waitFor(() => expect(puts).toBe(2));
    const bodies = calls.filter((c) => c.method === "PUT").map((c) => c.body);
    expect(bodies).toEqual([
      { enabled: true, mode: "mirror" },
      { enabled: true, mode: "mirror", onyx_index: "rebuild" },
    ]);
  });

  it("warns when secrets would be stored unencrypted", async () => {
    mockApi(
      pageRoutes({
        "GET /api/admin/r2r/config": {
          body: {
            ...STORED,
            encrypted: false,
            encryption: { configured: false, key_source: null, allow_unencrypted: true },
          },
        },
      })
    );
    renderFresh(<R2RAdminPage refreshMs={REFRESH} />);
    expect(await screen.findByText("No encryption key configured")).toBeInTheDocument();
    expect(screen.getByText(/Stored WITHOUT encryption/)).toBeInTheDocument();
  });
});
