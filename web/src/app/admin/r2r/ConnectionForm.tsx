"use client";

import { useState, type ReactNode } from "react";
import { Formik, Form, type FormikHelpers, type FormikProps } from "formik";
import * as Yup from "yup";
import { Button, Notice, SecretInput, TextInput } from "./onyx";
import { R2RApiError, r2rAdmin } from "./api";
import type { ConfigView, ConnectionBody } from "./types";

export interface ConnectionValues {
  base_url: string;
  api_key: string;
  use_login: boolean;
  login_email: string;
  password: string;
  forget_api_key: boolean;
}

type Feedback =
  | { kind: "success"; title: string; description?: string }
  | { kind: "error"; title: string; description?: string };

const URL_PATTERN = /^https?:\/\/[^\s/?#@]+(\/[^\s?#]*)?$/i;

function storedUrl(config: ConfigView): string {
  return config.source === "stored"
    ? (config.base_url ?? "")
    : (config.environment.base_url ?? "");
}

function sameServer(config: ConfigView, url: string | undefined): boolean {
  const stored = config.source === "stored" ? (config.base_url ?? "") : "";
  const given = (url ?? "").trim().replace(/\/+$/, "");
  return stored !== "" && stored.replace(/\/+$/, "") === given;
}

export function initialValues(config: ConfigView): ConnectionValues {
  return {
    base_url: storedUrl(config),
    api_key: "",
    use_login: !!config.login_email,
    login_email: config.login_email ?? "",
    password: "",
    forget_api_key: false,
  };
}

/** The Yup schema; what is required depends on what is stored for the same URL. */
export function connectionSchema(config: ConfigView) {
  return Yup.object({
    base_url: Yup.string()
      .trim()
      .required("Enter the R2R server's URL, e.g. http://r2r:7272")
      .matches(
        URL_PATTERN,
        "Enter a URL that starts with http:// or https:// (no user name, password or query)"
      ),
    api_key: Yup.string()
      .trim()
      .matches(/^\S*$/, "The API key must not contain spaces")
      .test("needed", "Enter the R2R API key", function (value) {
        // Formik turns empty strings into undefined before validating
        const { use_login, base_url } = this.parent as Partial<ConnectionValues>;
        if (value || use_login) return true;
        if (config.has_api_key && sameServer(config, base_url)) return true;
        return this.createError({
          message:
            config.has_api_key && !sameServer(config, base_url)
              ? "The URL changed: enter the API key again"
              : "Enter the R2R API key",
        });
      }),
    use_login: Yup.boolean(),
    login_email: Yup.string()
      .trim()
      .when("use_login", {
        is: true,
        then: (s) =>
          s
            .required("Enter the service account's email")
            .email("Enter a valid email address"),
      }),
    password: Yup.string().test(
      "needed",
      "Enter the service account's password",
      function (value) {
        const { use_login, login_email, base_url } = this.parent as Partial<ConnectionValues>;
        if (!use_login || value) return true;
        return (
          config.has_password &&
          config.login_email === (login_email ?? "").trim() &&
          sameServer(config, base_url)
        );
      }
    ),
    forget_api_key: Yup.boolean(),
  });
}

/** What the API receives: empty secret fields keep the stored secrets (same URL only). */
export function toBody(values: ConnectionValues, config: ConfigView): ConnectionBody {
  const apiKey = values.api_key.trim();
  return {
    base_url: values.base_url.trim(),
    api_key: apiKey
      ? apiKey
      : values.use_login && values.forget_api_key
        ? ""
        : null,
    login_email: values.use_login
      ? values.login_email.trim()
      : config.login_email
        ? ""
        : null,
    password: values.use_login && values.password ? values.password : null,
  };
}

function applyError(
  error: unknown,
  helpers: Pick<FormikHelpers<ConnectionValues>, "setFieldError">,
  setFeedback: (f: Feedback) => void,
  title: string
) {
  if (error instanceof R2RApiError) {
    if (error.code === "invalid_url" || error.code === "url_not_allowed") {
      helpers.setFieldError("base_url", error.message);
    } else if (error.code === "invalid_credential" && /API key/i.test(error.message)) {
      helpers.setFieldError("api_key", error.message);
    }
    const description =
      error.reason && !error.message.includes(error.reason)
        ? `${error.message} R2R said: ${error.reason}`
        : error.message;
    setFeedback({ kind: "error", title, description });
    return;
  }
  setFeedback({
    kind: "error",
    title,
    description: error instanceof Error ? error.message : "Unexpected error.",
  });
}

export interface ConnectionFormProps {
  config: ConfigView;
  onSaved: (config: ConfigView) => void | Promise<void>;
}

export function ConnectionForm({ config, onSaved }: ConnectionFormProps) {
  const [feedback, setFeedback] = useState<Feedback | null>(null);
  const [testing, setTesting] = useState(false);
  const schema = connectionSchema(config);

  async function testConnection(form: FormikProps<ConnectionValues>) {
    setFeedback(null);
    const errors = await form.validateForm();
    form.setTouched(
      { base_url: true, api_key: true, login_email: true, password: true },
      false
    );
    if (Object.keys(errors).length > 0) return;
    setTesting(true);
    try {
      const result = await r2rAdmin.testConnection(toBody(form.values, config));
      setFeedback({
        kind: "success",
        title: "Connection works",
        description: `${result.message} (${result.elapsed_ms} ms)`,
      });
    } catch (error) {
      applyError(error, form, setFeedback, "Connection test failed");
    } finally {
      setTesting(false);
    }
  }

  async function save(
    values: ConnectionValues,
    helpers: FormikHelpers<ConnectionValues>
  ) {
    setFeedback(null);
    try {
      const saved = await r2rAdmin.saveConnection(toBody(values, config));
      helpers.resetForm({ values: initialValues(saved) });
      setFeedback({
        kind: "success",
        title: "Connection saved",
        description:
          "The connection was tested and stored encrypted. Workers use it within a few seconds.",
      });
      await onSaved(saved);
    } catch (error) {
      applyError(error, helpers, setFeedback, "Not saved");
    }
  }

  const hint =
    config.source === "stored" && config.has_api_key
      ? `Stored key ${config.api_key_hint ?? ""} (leave blank to keep it)`
      : "Paste an R2R API key";

  return (
    <Formik<ConnectionValues>
      initialValues={initialValues(config)}
      validationSchema={schema}
      onSubmit={save}
      enableReinitialize
    >
      {(form) => {
        const fieldError = (name: keyof ConnectionValues) =>
          form.touched[name] && typeof form.errors[name] === "string"
            ? (form.errors[name] as string)
            : undefined;
        const busy = form.isSubmitting || testing;
        return (
          <Form className="r2r-form" noValidate aria-label="R2R connection">
            <Field
              id="r2r-base-url"
              label="R2R server URL"
              help="The base URL of your R2R server, without /v3."
              error={fieldError("base_url")}
            >
              <TextInput
                id="r2r-base-url"
                name="base_url"
                type="url"
                value={form.values.base_url}
                onChange={form.handleChange}
                onBlur={form.handleBlur}
                placeholder="http://r2r:7272"
                invalid={!!fieldError("base_url")}
                autoComplete="off"
                aria-describedby="r2r-base-url-help"
              />
            </Field>
            <Field
              id="r2r-api-key"
              label="API key"
              help={hint}
              error={fieldError("api_key")}
            >
              <SecretInput
                id="r2r-api-key"
                name="api_key"
                value={form.values.api_key}
                onChange={form.handleChange}
                onBlur={form.handleBlur}
                placeholder={
                  config.has_api_key ? "••••••••  (stored)" : "key_…"
                }
                invalid={!!fieldError("api_key")}
                autoComplete="new-password"
                aria-describedby="r2r-api-key-help"
              />
            </Field>

            <label className="r2r-check">
              <input
                type="checkbox"
                name="use_login"
                checked={form.values.use_login}
                onChange={form.handleChange}
              />
              <span>
                Also sign in with a service account (recommended for large
                syncs: R2R checks an API key slowly on every request)
              </span>
            </label>
            {form.values.use_login && (
              <div className="r2r-login">
                <Field
                  id="r2r-login-email"
                  label="Login email"
                  error={fieldError("login_email")}
                >
                  <TextInput
                    id="r2r-login-email"
                    name="login_email"
                    type="email"
                    value={form.values.login_email}
                    onChange={form.handleChange}
                    onBlur={form.handleBlur}
                    placeholder="service@example.com"
                    invalid={!!fieldError("login_email")}
                    autoComplete="off"
                  />
                </Field>
                <Field
                  id="r2r-password"
                  label="Password"
                  help={
                    config.has_password
                      ? "A password is stored (leave blank to keep it)"
                      : undefined
                  }
                  error={fieldError("password")}
                >
                  <SecretInput
                    id="r2r-password"
                    name="password"
                    value={form.values.password}
                    onChange={form.handleChange}
                    onBlur={form.handleBlur}
                    invalid={!!fieldError("password")}
                    autoComplete="new-password"
                  />
                </Field>
                {config.has_api_key && (
                  <label className="r2r-check">
                    <input
                      type="checkbox"
                      name="forget_api_key"
                      checked={form.values.forget_api_key}
                      onChange={form.handleChange}
                    />
                    <span>Forget the stored API key (use only the login)</span>
                  </label>
                )}
              </div>
            )}

            {feedback && (
              <div
                role={feedback.kind === "error" ? "alert" : "status"}
                className="r2r-feedback"
              >
                <Notice
                  variant={feedback.kind === "error" ? "error" : "success"}
                  title={feedback.title}
                  description={feedback.description}
                />
              </div>
            )}

            <div className="r2r-actions">
              <Button
                kind="secondary"
                disabled={busy}
                onClick={() => void testConnection(form)}
              >
                {testing ? "Testing…" : "Test connection"}
              </Button>
              <Button type="submit" disabled={busy}>
                {form.isSubmitting ? "Saving…" : "Save"}
              </Button>
            </div>
          </Form>
        );
      }}
    </Formik>
  );
}

interface FieldProps {
  id: string;
  label: string;
  help?: string;
  error?: string;
  children: ReactNode;
}

function Field({ id, label, help, error, children }: FieldProps) {
  return (
    <div className="r2r-field">
      <label htmlFor={id} className="r2r-label">
        {label}
      </label>
      {children}
      {error ? (
        <p className="r2r-field-error" id={`${id}-error`} role="alert">
          {error}
        </p>
      ) : help ? (
        <p className="r2r-help" id={`${id}-help`}>
          {help}
        </p>
      ) : null}
    </div>
  );
}
