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

  async function apply(enabled: boolean, mode: ExportMode) {
    setSaving(true);
    setError(null);
    try {
      await onChanged(await r2rAdmin.setExport(enabled, mode));
    } catch (err) {
      setError(
        err instanceof R2RApiError ? err.message : "The export setting was not saved."
      );
    } finally {
      setSaving(false);
    }
  }

  return (
    <div className="r2r-export">
      <div className="r2r-export-row">
        <div>
          <div className="r2r-label" id="r2r-export-label">
            Export Onyx's documents to R2R
          </div>
          <p className="r2r-help">
            {config.export_enabled
              ? "On: indexed documents are sent to R2R."
              : "Off: nothing new is sent to R2R."}
          </p>
        </div>
        <Switch
          id="r2r-export"
          aria-labelledby="r2r-export-label"
          checked={config.export_enabled}
          disabled={saving}
          onCheckedChange={(checked) => void apply(checked, config.export_mode)}
        />
      </div>
      <fieldset className="r2r-modes" disabled={saving}>
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
      {error && (
        <div role="alert">
          <Notice variant="error" title="Export setting not saved" description={error} />
        </div>
      )}
    </div>
  );
}
