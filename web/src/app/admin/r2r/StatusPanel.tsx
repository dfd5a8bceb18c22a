"use client";

import { useEffect, useState } from "react";
import { Button, Notice } from "./onyx";
import { ActivityChart } from "./ActivityChart";
import { breakerText, formatAgo, formatCount, formatDuration } from "./format";
import type { R2RApiError } from "./api";
import type { StatusView } from "./types";

export interface StatusPanelProps {
  status: StatusView | undefined;
  error: R2RApiError | undefined;
  isLoading: boolean;
  onRetry: () => void;
}

interface CardProps {
  label: string;
  value: string;
  detail?: string;
  tone?: "ok" | "warn" | "bad" | "neutral";
  testId: string;
}

function StatCard({ label, value, detail, tone = "neutral", testId }: CardProps) {
  return (
    <div className="r2r-card" data-tone={tone} data-testid={testId}>
      <div className="r2r-card-label">{label}</div>
      <div className="r2r-card-value">{value}</div>
      {detail && <div className="r2r-card-detail">{detail}</div>}
    </div>
  );
}

function useNow(intervalMs: number): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), intervalMs);
    return () => clearInterval(timer);
  }, [intervalMs]);
  return now;
}

export function StatusPanel({ status, error, isLoading, onRetry }: StatusPanelProps) {
  const now = useNow(1000);
  if (!status) {
    if (error) {
      return (
        <div role="alert" className="r2r-stack">
          <Notice
            variant="error"
            title="Could not load the sync status"
            description={error.message}
          />
          <div>
            <Button kind="secondary" onClick={onRetry}>
              Try again
            </Button>
          </div>
        </div>
      );
    }
    return (
      <p className="r2r-help" role="status">
        {isLoading ? "Loading the sync status…" : "No status yet."}
      </p>
    );
  }

  const { counts } = status;
  const breaker = breakerText(status.breaker.state, status.breaker.open_for_seconds);
  const lag = status.oldest_pending_seconds;
  const reconcile = status.last_reconcile;

  return (
    <div className="r2r-stack" aria-live="polite">
      {error && (
        <div role="alert">
          <Notice
            variant="warning"
            title="The status could not be refreshed"
            description={`${error.message} Showing the last known values.`}
          />
        </div>
      )}
      {status.total === 0 && (
        <div role="status">
          <Notice
            variant="info"
            title="Nothing mirrored yet"
            description="Once Onyx indexes documents (or you start a resync), they appear here as pending, then synced."
          />
        </div>
      )}
      <div className="r2r-cards">
        <StatCard
          testId="count-synced"
          label="Synced"
          value={formatCount(counts.synced)}
          detail="in R2R and up to date"
          tone="ok"
        />
        <StatCard
          testId="count-pending"
          label="Pending"
          value={formatCount(counts.pending)}
          detail={
            counts.retrying
              ? `${formatCount(counts.retrying)} retrying after an error`
              : "waiting for a worker"
          }
          tone={counts.retrying ? "warn" : "neutral"}
        />
        <StatCard
          testId="count-dead"
          label="Dead letters"
          value={formatCount(counts.dead)}
          detail={counts.dead ? "need attention (see below)" : "none"}
          tone={counts.dead ? "bad" : "ok"}
        />
        <StatCard
          testId="count-deleted"
          label="Deleted"
          value={formatCount(counts.deleted)}
          detail="removed from R2R"
        />
        <StatCard
          testId="lag"
          label="Lag"
          value={lag === null ? "Up to date" : formatDuration(lag)}
          detail={lag === null ? "nothing waiting" : "age of the oldest pending change"}
          tone={lag === null ? "ok" : lag > 600 ? "bad" : lag > 60 ? "warn" : "neutral"}
        />
        <StatCard
          testId="breaker"
          label="R2R connection"
          value={breaker.label}
          detail={breaker.detail}
          tone={breaker.tone}
        />
        <StatCard
          testId="reconcile"
          label="Last reconcile"
          value={reconcile ? reconcile.outcome : "Never run"}
          detail={
            reconcile
              ? `${reconcile.finished_at ? "finished" : "started"} ${formatAgo(
                  reconcile.finished_at ?? reconcile.started_at,
                  now
                )}`
              : "compares R2R with the ledger"
          }
          tone={
            !reconcile ? "neutral" : reconcile.outcome === "ok" ? "ok" : "warn"
          }
        />
      </div>
      <ActivityChart status={status} />
      <p className="r2r-help" data-testid="status-updated">
        Updated {formatAgo(status.generated_at, now)} · refreshes automatically ·
        R2R at {status.r2r_base_url}
      </p>
    </div>
  );
}
