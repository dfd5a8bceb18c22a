/** Shapes of the R2R admin API (`backend/onyx/server/r2r/api.py`). */

export type ExportMode = "mirror" | "replace";

export interface ConfigView {
  tenant_id: string;
  /** "stored": this tenant saved a connection; "environment": R2R_* settings; "none". */
  source: "stored" | "environment" | "none";
  credential_type: string;
  base_url: string | null;
  has_api_key: boolean;
  /** A harmless hint such as "key_Ab…9xQ"; the key itself is never returned. */
  api_key_hint: string | null;
  login_email: string | null;
  has_password: boolean;
  encrypted: boolean;
  /** Effective: the bridge is on for this workspace (README truth table). */
  export_enabled: boolean;
  /** Effective mode (when off: the mode the switch would use). */
  export_mode: ExportMode;
  export_state: "off" | "mirror" | "replace";
  /** Where export_state comes from: this workspace's stored choice or the environment. */
  export_source: "stored" | "environment";
  searches_r2r: boolean;
  stored_export: { enabled: boolean; mode: ExportMode } | null;
  switches: {
    export: "false" | "true" | "tenant";
    mode: ExportMode;
    backend: string;
    /** Both environment switches off: the bridge is off everywhere, this switch is ignored. */
    locked: boolean;
  };
  onyx_rebuild: {
    state: "scheduled" | "started" | "failed";
    at: string;
    connectors: number | null;
    message: string;
  } | null;
  onyx_rebuild_available: boolean;
  updated_at: string | null;
  environment: {
    base_url: string;
    has_api_key: boolean;
    login_email: string | null;
  };
  encryption: {
    configured: boolean;
    key_source: string | null;
    allow_unencrypted: boolean;
  };
  url_policy: string;
}

/** Body of PUT /config and POST /test. `null` secrets keep the stored ones. */
export interface ConnectionBody {
  base_url: string;
  api_key: string | null;
  login_email: string | null;
  password: string | null;
}

export interface TestView {
  ok: boolean;
  base_url: string;
  auth: string;
  elapsed_ms: number;
  message: string;
}

export interface StatusCounts {
  pending: number;
  retrying: number;
  synced: number;
  deleted: number;
  dead: number;
}

export interface BreakerView {
  state: "closed" | "open" | "half_open" | "unknown" | string;
  consecutive_failures: number;
  trips: number;
  open_for_seconds: number;
}

export interface ReconcileView {
  id: number;
  started_at: string;
  finished_at: string | null;
  outcome: string;
  result: Record<string, unknown>;
}

export interface StatusView {
  tenant_id: string;
  r2r_base_url: string;
  counts: StatusCounts;
  total: number;
  backlog: number;
  oldest_pending_seconds: number | null;
  throughput: { minute: string; applied: number }[];
  backlog_history: { at: string; pending: number; dead: number }[];
  breaker: BreakerView;
  counters: Record<string, number>;
  last_reconcile: ReconcileView | null;
  generated_at: string;
}

export interface DeadLetter {
  document_id: string;
  operation: "upsert" | "delete";
  error_class: string | null;
  reason: string | null;
  attempts: number;
  last_attempt_at: string | null;
}

/** One dead-letter class as `GET /dead-letter-classes` describes it (the engine's enum). */
export interface DeadLetterClassInfo {
  /** The value a dead letter's `error_class` holds, e.g. "r2r_config". */
  name: string;
  /** A short name for people, e.g. "R2R credential or settings". */
  label: string;
  /** One sentence: what happened and what fixes it. */
  description: string;
  /** Whether a reconciliation re-queues dead letters of this class by itself. */
  retried_by_reconcile: boolean;
}

export interface DeadLetterClassList {
  classes: DeadLetterClassInfo[];
}

export interface DeadLetterPage {
  total: number;
  offset: number;
  limit: number;
  items: DeadLetter[];
}

export interface ReplayView {
  requeued: number;
  document_ids: string[];
  message: string;
}

export interface JobView {
  job: "resync" | "reconcile";
  task: string;
  task_id: string;
  message: string;
}
