"use client";

import { useState } from "react";
import { Button, Notice, type ButtonKind } from "./onyx";
import { R2RApiError } from "./api";

export interface ConfirmActionProps {
  label: string;
  description: string;
  question: string;
  confirmLabel: string;
  /** Title of the success notice, e.g. "Resync queued". */
  doneTitle: string;
  kind?: ButtonKind;
  confirmKind?: ButtonKind;
  disabled?: boolean;
  action: () => Promise<string>;
}

/** A button that asks for confirmation inline, then runs *action* and shows its result. */
export function ConfirmAction({
  label,
  description,
  question,
  confirmLabel,
  doneTitle,
  kind = "secondary",
  confirmKind = "primary",
  disabled,
  action,
}: ConfirmActionProps) {
  const [asking, setAsking] = useState(false);
  const [running, setRunning] = useState(false);
  const [result, setResult] = useState<{ ok: boolean; text: string } | null>(null);

  async function run() {
    setRunning(true);
    setResult(null);
    try {
      setResult({ ok: true, text: await action() });
    } catch (err) {
      setResult({
        ok: false,
        text: err instanceof R2RApiError ? err.message : "The request failed.",
      });
    } finally {
      setRunning(false);
      setAsking(false);
    }
  }

  return (
    <div className="r2r-job">
      <div className="r2r-job-row">
        <div>
          <div className="r2r-label">{label}</div>
          <p className="r2r-help">{description}</p>
        </div>
        {!asking && (
          <Button kind={kind} disabled={disabled || running} onClick={() => setAsking(true)}>
            {running ? "Working…" : label}
          </Button>
        )}
      </div>
      {asking && (
        <div className="r2r-confirm" role="group" aria-label={`Confirm: ${label}`}>
          <span>{question}</span>
          <div className="r2r-actions">
            <Button kind="secondary" onClick={() => setAsking(false)}>
              Cancel
            </Button>
            <Button kind={confirmKind} onClick={() => void run()}>
              {confirmLabel}
            </Button>
          </div>
        </div>
      )}
      {result && (
        <div role={result.ok ? "status" : "alert"}>
          <Notice
            variant={result.ok ? "success" : "error"}
            title={result.ok ? doneTitle : `${label}: failed`}
            description={result.text}
          />
        </div>
      )}
    </div>
  );
}
