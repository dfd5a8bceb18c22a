"use client";

import { useState } from "react";
import { Notice, Switch } from "./onyx";
import { R2RApiError, r2rAdmin } from "./api";
import type { ConfigView, ExportMode } from "./types";

export interface ExportSettingsProps {
  config: ConfigView;
  onChanged: (config: ConfigView) => void | Promise<void>;
}

const MODES: { value: ExportMode; title: string; text: string }[] = [
  {
    value: "mirror",
    title: "Mirror",
    text: "Onyx keeps indexing as before; R2R receives a copy of every document.",
  },
  {
    value: "replace",
    title: "Replace",
    text: "R2R becomes Onyx's document index (Onyx searches through R2R).",
  },
];

export function ExportSettings({ config, onChanged }: ExportSettingsProps) {
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState<string | null>(null);
  // leaving replace mode: the switch waits for the admin to confirm Onyx's rebuild
  const [pending, setPending] = useState<{ enabled: boolean | null; mode: ExportMode } | null>(
    null
  );

  async function apply(enabled: boolean | null, mode: ExportMode, rebuild = false) {
    setSaving(true);
    setError(null);
    try {
      await onChanged(await r2rAdmin.setExport(enabled, mode, rebuild));
      setPending(null);
    } catch (err) {
      if (err instanceof R2RApiError && err.code === "onyx_index_stale") {
        setPending({ enabled, mode });
      }
      setError(
        err instanceof R2RApiError ? err.message : "The export setting was not saved."
      );
    } finally {
      setSaving(false);
    }
  }

  const source =
    config.export_source === "stored"
      ? "Chosen for this workspace on this page."
      : `From the environment (ONYX_EXPORT_R2R=${config.switches.export}, ` +
        `R2R_EXPORT_MODE=${config.switches.mode}` +
        (config.switches.backend ? `, ONYX_INDEX_BACKEND=${config.switches.backend}` : "") +
        ").";

  return (
    <div className="r2r-export">
      <div className="r2r-export-row">
        <div>
          <div className="r2r-label" id="r2r-export-label">
            Export Onyx's documents to R2R
          </div>
          <p className="r2r-help">
            {config.export_state === "replace"
              ? "Replace: R2R is Onyx's only index (writes and search)."
              : config.export_state === "mirror"
                ? `Mirror: indexed documents are sent to R2R; Onyx searches ${config.searches_r2r ? "R2R" : "its own index"}.`
                : "Off: Onyx works as without the bridge; nothing is sent to R2R."}{" "}
            {config.switches.locked
              ? "The bridge is switched off for the whole deployment (ONYX_EXPORT_R2R); this switch has no effect."
              : source}
          </p>
        </div>
        <Switch
          id="r2r-export"
          aria-labelledby="r2r-export-label"
          checked={config.export_enabled}
          disabled={saving || config.switches.locked}
          onCheckedChange={(checked) => void apply(checked, config.export_mode)}
        />
      </div>
      <fieldset className="r2r-modes" disabled={saving || config.switches.locked}>
        <legend className="r2r-label">Mode</legend>
        {MODES.map((mode) => (
          <label key={mode.value} className="r2r-mode">
            <input
              type="radio"
              name="r2r-export-mode"
              value={mode.value}
              checked={config.export_mode === mode.value}
              onChange={() => void apply(config.export_enabled, mode.value)}
            />
            <span>
              <strong>{mode.title}</strong> — {mode.text}
            </span>
          </label>
        ))}
      </fieldset>
      {config.export_source === "stored" && !config.switches.locked && (
        <button
          type="button"
          className="r2r-link"
          disabled={saving}
          onClick={() => void apply(null, config.export_mode)}
        >
          Use the environment&apos;s setting
        </button>
      )}
      {error && (
        <div role="alert">
          <Notice variant="error" title="Export setting not saved" description={error} />
        </div>
      )}
      {pending && (
        <div className="r2r-rebuild">
          {config.onyx_rebuild_available ? (
            <button
              type="button"
              disabled={saving}
              onClick={() => void apply(pending.enabled, pending.mode, true)}
            >
              Switch and rebuild Onyx&apos;s index
            </button>
          ) : (
            <p className="r2r-help">
              This server cannot start the rebuild, so R2R stays Onyx&apos;s index.
            </p>
          )}
        </div>
      )}
      {config.onyx_rebuild && (
        <p className="r2r-help" role="status">
          Rebuild of Onyx&apos;s index ({config.onyx_rebuild.state}):{" "}
          {config.onyx_rebuild.message}
        </p>
      )}
    </div>
  );
}
