"use client";

import { useState } from "react";
import { Button, Notice } from "./onyx";
import { R2RApiError, r2rAdmin } from "./api";
import { errorClassText, formatAgo } from "./format";
import type { DeadLetterClassInfo, DeadLetterPage } from "./types";

export interface DeadLetterTableProps {
  page: DeadLetterPage | undefined;
  /** The API's dead-letter classes (labels); `undefined` while loading or unavailable. */
  classes: DeadLetterClassInfo[] | undefined;
  error: R2RApiError | undefined;
  isLoading: boolean;
  onPage: (offset: number) => void;
  onReplayed: () => void | Promise<void>;
}

type Result = { kind: "success" | "error"; text: string };

export function DeadLetterTable({
  page,
  classes,
  error,
  isLoading,
  onPage,
  onReplayed,
}: DeadLetterTableProps) {
  const [busy, setBusy] = useState<string | null>(null);
  const [result, setResult] = useState<Result | null>(null);

  async function replay(ids: string[] | "all") {
    setBusy(ids === "all" ? "*" : ids[0]!);
    setResult(null);
    try {
      const outcome = await r2rAdmin.replay(ids);
      setResult({ kind: "success", text: outcome.message });
      await onReplayed();
    } catch (err) {
      setResult({
        kind: "error",
        text: err instanceof R2RApiError ? err.message : "The replay failed.",
      });
    } finally {
      setBusy(null);
    }
  }

  if (!page) {
    if (error) {
      return (
        <div role="alert">
          <Notice
            variant="error"
            title="Could not load the dead letters"
            description={error.message}
          />
        </div>
      );
    }
    return (
      <p className="r2r-help" role="status">
        {isLoading ? "Loading dead letters…" : ""}
      </p>
    );
  }

  const first = page.total === 0 ? 0 : page.offset + 1;
  const last = page.offset + page.items.length;

  return (
    <div className="r2r-stack">
      {result && (
        <div role={result.kind === "error" ? "alert" : "status"}>
          <Notice
            variant={result.kind === "error" ? "error" : "success"}
            title={result.kind === "error" ? "Replay failed" : "Replay queued"}
            description={result.text}
          />
        </div>
      )}
      {page.total === 0 ? (
        <p className="r2r-empty" data-testid="dead-letters-empty">
          No dead letters. Documents that R2R refuses, or that keep failing, show up here
          with the reason, so you can fix the cause and replay them.
        </p>
      ) : (
        <>
          <div className="r2r-table-wrap">
            <table className="r2r-table" aria-label="Dead letters">
              <thead>
                <tr>
                  <th scope="col">Document</th>
                  <th scope="col">Reason</th>
                  <th scope="col">Attempts</th>
                  <th scope="col">Last try</th>
                  <th scope="col">
                    <span className="r2r-sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {page.items.map((item) => {
                  const errorClass = errorClassText(item.error_class, classes);
                  return (
                    <tr key={item.document_id}>
                      <td className="r2r-doc">
                        <span className="r2r-doc-id" title={item.document_id}>
                          {item.document_id}
                        </span>
                        {item.operation === "delete" && (
                          <span className="r2r-tag">delete</span>
                        )}
                      </td>
                      <td>
                        <span
                          className="r2r-tag"
                          data-tone="bad"
                          title={errorClass.description ?? undefined}
                        >
                          {errorClass.label}
                        </span>
                        <div className="r2r-reason">{item.reason ?? "No reason recorded."}</div>
                      </td>
                      <td className="r2r-num">{item.attempts}</td>
                      <td className="r2r-nowrap">{formatAgo(item.last_attempt_at)}</td>
                      <td>
                        <Button
                          kind="secondary"
                          disabled={busy !== null}
                          aria-label={`Replay ${item.document_id}`}
                          onClick={() => void replay([item.document_id])}
                        >
                          {busy === item.document_id ? "Replaying…" : "Replay"}
                        </Button>
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
          <div className="r2r-actions r2r-actions-spread">
            <span className="r2r-help">
              Showing {first}–{last} of {page.total}
            </span>
            <div className="r2r-actions">
              <Button
                kind="secondary"
                disabled={page.offset === 0}
                onClick={() => onPage(Math.max(0, page.offset - page.limit))}
              >
                Previous
              </Button>
              <Button
                kind="secondary"
                disabled={last >= page.total}
                onClick={() => onPage(page.offset + page.limit)}
              >
                Next
              </Button>
              <Button disabled={busy !== null} onClick={() => void replay("all")}>
                {busy === "*" ? "Replaying…" : `Replay all ${page.total}`}
              </Button>
            </div>
          </div>
        </>
      )}
    </div>
  );
}
