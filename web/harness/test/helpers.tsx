import type { ReactElement } from "react";
import { render } from "@testing-library/react";
import { SWRConfig } from "swr";
import { vi } from "vitest";
import type {
  ConfigView,
  DeadLetterClassList,
  DeadLetterPage,
  StatusView,
} from "@page/types";

export interface Call {
  method: string;
  path: string;
  body: unknown;
}

type Reply = { status?: number; body: unknown } | (() => { status?: number; body: unknown });

/**
 * Stub `fetch` with answers per "METHOD /path" (the path without the query string).
 * Unlisted requests fail the test loudly. Returns the recorded calls.
 */
export function mockApi(routes: Record<string, Reply>): Call[] {
  const calls: Call[] = [];
  vi.stubGlobal(
    "fetch",
    vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
      const url = new URL(String(input), "http://harness.test");
      const method = (init?.method ?? "GET").toUpperCase();
      const body = init?.body ? JSON.parse(String(init.body)) : undefined;
      calls.push({ method, path: url.pathname + url.search, body });
      const route = routes[`${method} ${url.pathname}`];
      if (!route) {
        throw new Error(`unexpected request ${method} ${url.pathname}`);
      }
      const reply = typeof route === "function" ? route() : route;
      return new Response(JSON.stringify(reply.body), {
        status: reply.status ?? 200,
        headers: { "Content-Type": "application/json" },
      });
    })
  );
  return calls;
}

/** Render with a fresh SWR cache (tests never share data). */
export function renderFresh(ui: ReactElement) {
  return render(
    <SWRConfig value={{ provider: () => new Map(), dedupingInterval: 0 }}>{ui}</SWRConfig>
  );
}

export const API = "/api/admin/r2r";

export function configView(overrides: Partial<ConfigView> = {}): ConfigView {
  return {
    tenant_id: "public",
    source: "none",
    credential_type: "r2r_api",
    base_url: "http://127.0.0.1:7272",
    has_api_key: false,
    api_key_hint: null,
    login_email: null,
    has_password: false,
    encrypted: false,
    export_enabled: false,
    export_mode: "mirror",
    export_state: "off",
    export_source: "environment",
    searches_r2r: false,
    stored_export: null,
    switches: { export: "tenant", mode: "mirror", backend: "", locked: false },
    onyx_rebuild: null,
    onyx_rebuild_available: true,
    updated_at: null,
    environment: { base_url: "http://127.0.0.1:7272", has_api_key: false, login_email: null },
    encryption: { configured: true, key_source: "ONYX_R2R_ENCRYPTION_KEY", allow_unencrypted: false },
    url_policy: "private",
    ...overrides,
  };
}

export const STORED = configView({
  source: "stored",
  base_url: "http://r2r:7272",
  has_api_key: true,
  api_key_hint: "key_Ab…9xQ",
  encrypted: true,
  export_enabled: true,
  updated_at: "2026-11-20T10:00:00Z",
});

export function statusView(overrides: Partial<StatusView> = {}): StatusView {
  const now = Date.now();
  const minute = (i: number) =>
    new Date(Math.floor(now / 60000) * 60000 - (14 - i) * 60000).toISOString();
  return {
    tenant_id: "public",
    r2r_base_url: "http://r2r:7272",
    counts: { pending: 7, retrying: 2, synced: 1234, deleted: 3, dead: 1 },
    total: 1245,
    backlog: 7,
    oldest_pending_seconds: 125,
    throughput: Array.from({ length: 15 }, (_, i) => ({
      minute: minute(i),
      applied: i === 13 ? 40 : i === 14 ? 12 : 0,
    })),
    backlog_history: [
      { at: new Date(now - 60000).toISOString(), pending: 50, dead: 1 },
      { at: new Date(now - 30000).toISOString(), pending: 20, dead: 1 },
      { at: new Date(now - 5000).toISOString(), pending: 7, dead: 1 },
    ],
    breaker: { state: "closed", consecutive_failures: 0, trips: 0, open_for_seconds: 0 },
    counters: { applied: 1300, r2r_writes: 1500 },
    last_reconcile: null,
    generated_at: new Date(now).toISOString(),
    ...overrides,
  };
}

export function deadLetters(overrides: Partial<DeadLetterPage> = {}): DeadLetterPage {
  return {
    total: 1,
    offset: 0,
    limit: 10,
    items: [
      {
        document_id: "https://wiki.example.com/page/42",
        operation: "upsert",
        error_class: "r2r_config",
        reason: "R2R at http://r2r:7272 rejected the API key (check the configured key): Invalid token or API key",
        attempts: 25,
        last_attempt_at: new Date(Date.now() - 90_000).toISOString(),
      },
    ],
    ...overrides,
  };
}

/** An answer of GET /dead-letter-classes (the labels are the API's, not the page's). */
export function deadLetterClasses(
  overrides: Partial<DeadLetterClassList> = {}
): DeadLetterClassList {
  return {
    classes: [
      {
        name: "invalid_document",
        label: "Invalid document",
        description: "The host sent a document the bridge cannot mirror.",
        retried_by_reconcile: false,
      },
      {
        name: "r2r_config",
        label: "R2R credential or settings",
        description: "R2R rejected the credential, or its settings do not fit the bridge; fix the connection, then replay.",
        retried_by_reconcile: true,
      },
    ],
    ...overrides,
  };
}
