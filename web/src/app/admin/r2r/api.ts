"use client";

/**
 * Reads (SWR hooks) and writes of the R2R admin API. The browser calls `/api/admin/r2r/…`;
 * Onyx's web proxy (and the harness's dev server) strip `/api` and forward to the backend,
 * where the session (or the harness's admin token) authorises the call.
 */

import useSWR, { type SWRConfiguration } from "swr";
import type {
  ConfigView,
  ConnectionBody,
  DeadLetterClassList,
  DeadLetterPage,
  ExportMode,
  JobView,
  ReplayView,
  StatusView,
  TestView,
} from "./types";

export const R2R_API_BASE = "/api/admin/r2r";

export const R2R_KEYS = {
  config: `${R2R_API_BASE}/config`,
  status: `${R2R_API_BASE}/status`,
  deadLetters: (offset: number, limit: number) =>
    `${R2R_API_BASE}/dead-letters?offset=${offset}&limit=${limit}`,
  deadLetterClasses: `${R2R_API_BASE}/dead-letter-classes`,
};

/** An error answer of the admin API, with its plain-words message. */
export class R2RApiError extends Error {
  status: number;
  code: string;
  reason: string | null;

  constructor(
    message: string,
    status: number,
    code: string,
    reason: string | null = null
  ) {
    super(message);
    this.name = "R2RApiError";
    this.status = status;
    this.code = code;
    this.reason = reason;
  }

  get isForbidden(): boolean {
    return this.status === 401 || this.status === 403;
  }
}

async function errorFrom(res: Response): Promise<R2RApiError> {
  let body: unknown = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  const record = (body ?? {}) as Record<string, unknown>;
  const detail =
    typeof record.detail === "string"
      ? record.detail
      : res.status === 403 || res.status === 401
        ? "You need to be an Onyx admin to manage the R2R mirror."
        : `The server answered HTTP ${res.status}.`;
  const code =
    typeof record.error === "string" ? record.error : `http_${res.status}`;
  const reason = typeof record.reason === "string" ? record.reason : null;
  return new R2RApiError(detail, res.status, code, reason);
}

/** fetch + JSON, throwing {@link R2RApiError} on any failure (network included). */
export async function r2rRequest<T>(
  url: string,
  init: RequestInit = {}
): Promise<T> {
  let res: Response;
  try {
    res = await fetch(url, {
      ...init,
      credentials: "same-origin",
      headers: {
        Accept: "application/json",
        ...(init.body ? { "Content-Type": "application/json" } : {}),
        ...(init.headers ?? {}),
      },
    });
  } catch {
    throw new R2RApiError(
      "Could not reach the Onyx server. Check your network connection and try again.",
      0,
      "network_error"
    );
  }
  if (!res.ok) {
    throw await errorFrom(res);
  }
  return (await res.json()) as T;
}

const fetcher = <T>(url: string) => r2rRequest<T>(url);

const noRetryOnAuth: SWRConfiguration["onErrorRetry"] = (
  error,
  _key,
  config,
  revalidate,
  { retryCount }
) => {
  if (error instanceof R2RApiError && error.isForbidden) return;
  if (retryCount >= (config.errorRetryCount ?? 5)) return;
  setTimeout(
    () => revalidate({ retryCount }),
    Math.min(2000 * 2 ** retryCount, 30000)
  );
};

export function useR2RConfig() {
  const { data, error, isLoading, mutate } = useSWR<ConfigView, R2RApiError>(
    R2R_KEYS.config,
    fetcher,
    { onErrorRetry: noRetryOnAuth, revalidateOnFocus: false }
  );
  return { config: data, error, isLoading, mutateConfig: mutate };
}

export function useR2RStatus(refreshMs: number) {
  const { data, error, isLoading, mutate } = useSWR<StatusView, R2RApiError>(
    R2R_KEYS.status,
    fetcher,
    {
      refreshInterval: refreshMs,
      onErrorRetry: noRetryOnAuth,
      keepPreviousData: true,
    }
  );
  return { status: data, error, isLoading, mutateStatus: mutate };
}

export function useDeadLetters(
  offset: number,
  limit: number,
  refreshMs: number
) {
  const { data, error, isLoading, mutate } = useSWR<
    DeadLetterPage,
    R2RApiError
  >(R2R_KEYS.deadLetters(offset, limit), fetcher, {
    refreshInterval: refreshMs,
    onErrorRetry: noRetryOnAuth,
    keepPreviousData: true,
  });
  return { page: data, error, isLoading, mutateDeadLetters: mutate };
}

/** The dead-letter classes with their labels (fixed while the server runs: read once). */
export function useDeadLetterClasses() {
  const { data, error } = useSWR<DeadLetterClassList, R2RApiError>(
    R2R_KEYS.deadLetterClasses,
    fetcher,
    {
      onErrorRetry: noRetryOnAuth,
      revalidateOnFocus: false,
      revalidateIfStale: false,
      revalidateOnReconnect: false,
    }
  );
  return { classes: data?.classes, error };
}

function send<T>(method: string, path: string, body?: unknown): Promise<T> {
  return r2rRequest<T>(`${R2R_API_BASE}${path}`, {
    method,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

export const r2rAdmin = {
  testConnection: (body: ConnectionBody) =>
    send<TestView>("POST", "/test", body),
  saveConnection: (body: ConnectionBody) =>
    send<ConfigView>("PUT", "/config", body),
  deleteConnection: () =>
    send<{ deleted: boolean; message: string }>("DELETE", "/config"),
  setExport: (enabled: boolean | null, mode: ExportMode, rebuildOnyxIndex = false) =>
    send<ConfigView>("PUT", "/export", {
      enabled,
      mode,
      ...(rebuildOnyxIndex ? { onyx_index: "rebuild" } : {}),
    }),
  replay: (documentIds: string[] | "all") =>
    send<ReplayView>(
      "POST",
      "/dead-letters/replay",
      documentIds === "all" ? { all: true } : { document_ids: documentIds }
    ),
  startJob: (job: "resync" | "reconcile") => send<JobView>("POST", `/${job}`),
};
