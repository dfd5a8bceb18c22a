/** Pure formatting helpers of the R2R admin page (no React, no Onyx). */

import type { DeadLetterClassInfo } from "./types";

export function formatCount(n: number): string {
  return new Intl.NumberFormat("en-US").format(n);
}

/** "just now", "42 s", "5 min", "3 h 10 min", "2 d 4 h". */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) {
    return "—";
  }
  const s = Math.max(0, Math.round(seconds));
  if (s < 1) return "just now";
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

/** "12 s ago", "3 min ago"… relative to *now* (ms since epoch). */
export function formatAgo(
  iso: string | null | undefined,
  now: number = Date.now()
): string {
  if (!iso) return "never";
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return "—";
  const seconds = (now - then) / 1000;
  if (seconds < 5) return "just now";
  return `${formatDuration(seconds)} ago`;
}

export function formatTime(iso: string): string {
  const date = new Date(iso);
  return `${String(date.getHours()).padStart(2, "0")}:${String(
    date.getMinutes()
  ).padStart(2, "0")}`;
}

/**
 * How a dead letter's class is shown: its label from the API's class list (with the
 * description as a hint), else the raw class name while the list is missing.
 */
export function errorClassText(
  errorClass: string | null,
  classes: readonly DeadLetterClassInfo[] | undefined
): { label: string; description: string | null } {
  if (!errorClass) return { label: "Unknown", description: null };
  const known = classes?.find((c) => c.name === errorClass);
  return known
    ? { label: known.label, description: known.description }
    : { label: errorClass, description: null };
}

export function breakerText(
  state: string,
  openForSeconds: number
): { label: string; detail: string; tone: "ok" | "warn" | "bad" } {
  switch (state) {
    case "closed":
      return {
        label: "Healthy",
        detail: "Workers are sending to R2R.",
        tone: "ok",
      };
    case "half_open":
      return {
        label: "Recovering",
        detail: "R2R failed recently; workers are probing it again.",
        tone: "warn",
      };
    case "open":
      return {
        label: "Paused",
        detail: `R2R keeps failing; sending resumes in ${formatDuration(
          openForSeconds
        )}.`,
        tone: "bad",
      };
    default:
      return {
        label: "Unknown",
        detail: "The breaker state could not be read.",
        tone: "warn",
      };
  }
}
