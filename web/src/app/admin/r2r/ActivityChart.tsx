"use client";

import { formatTime } from "./format";
import type { StatusView } from "./types";

const WIDTH = 640;
const HEIGHT = 180;
const PAD = { top: 14, right: 44, bottom: 26, left: 44 };

function niceMax(value: number): number {
  if (value <= 4) return 4;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (step * magnitude >= value) return step * magnitude;
  }
  return 10 * magnitude;
}

export interface ActivityChartProps {
  status: StatusView;
}

/**
 * Backlog (line, left axis) and documents applied per minute (bars, right axis) over the
 * status window. Hand-rolled SVG: no chart library.
 */
export function ActivityChart({ status }: ActivityChartProps) {
  const minutes = status.throughput;
  if (minutes.length === 0) return null;
  const start = Date.parse(minutes[0]!.minute);
  const end = Date.parse(minutes[minutes.length - 1]!.minute) + 60_000;
  const span = Math.max(end - start, 60_000);
  const innerW = WIDTH - PAD.left - PAD.right;
  const innerH = HEIGHT - PAD.top - PAD.bottom;
  const x = (t: number) => PAD.left + ((t - start) / span) * innerW;

  const backlog = status.backlog_history.filter((p) => Date.parse(p.at) >= start);
  const maxBacklog = niceMax(Math.max(0, ...backlog.map((p) => p.pending)));
  const maxApplied = niceMax(Math.max(0, ...minutes.map((m) => m.applied)));
  const yBacklog = (v: number) => PAD.top + innerH - (v / maxBacklog) * innerH;
  const yApplied = (v: number) => PAD.top + innerH - (v / maxApplied) * innerH;
  const barW = Math.max(2, (innerW / minutes.length) * 0.6);
  const totalApplied = minutes.reduce((sum, m) => sum + m.applied, 0);
  const line = backlog
    .map((p, i) => `${i === 0 ? "M" : "L"}${x(Date.parse(p.at)).toFixed(1)},${yBacklog(p.pending).toFixed(1)}`)
    .join(" ");
  const labels = [0, Math.floor(minutes.length / 2), minutes.length - 1];

  return (
    <figure className="r2r-chart">
      <figcaption className="r2r-chart-caption">
        <span className="r2r-legend r2r-legend-backlog">Backlog (pending documents)</span>
        <span className="r2r-legend r2r-legend-throughput">Applied per minute</span>
      </figcaption>
      <svg
        viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
        role="img"
        aria-label={`Backlog now ${status.backlog}; ${totalApplied} documents applied in the last ${minutes.length} minutes`}
        className="r2r-chart-svg"
      >
        {[0, 0.5, 1].map((f) => (
          <line
            key={f}
            x1={PAD.left}
            x2={WIDTH - PAD.right}
            y1={PAD.top + innerH * (1 - f)}
            y2={PAD.top + innerH * (1 - f)}
            className="r2r-grid"
          />
        ))}
        {minutes.map((m) => {
          const t = Date.parse(m.minute);
          const h = PAD.top + innerH - yApplied(m.applied);
          return m.applied > 0 ? (
            <rect
              key={m.minute}
              x={x(t + 30_000) - barW / 2}
              y={yApplied(m.applied)}
              width={barW}
              height={h}
              className="r2r-bar"
            >
              <title>{`${formatTime(m.minute)}: ${m.applied} applied`}</title>
            </rect>
          ) : null;
        })}
        {backlog.length > 1 && <path d={line} className="r2r-line" />}
        {backlog.map((p) => (
          <circle
            key={p.at}
            cx={x(Date.parse(p.at))}
            cy={yBacklog(p.pending)}
            r={backlog.length > 40 ? 1.5 : 2.5}
            className="r2r-dot"
          >
            <title>{`${formatTime(p.at)}: ${p.pending} pending`}</title>
          </circle>
        ))}
        <text x={PAD.left - 6} y={PAD.top + 4} className="r2r-axis r2r-axis-left">
          {maxBacklog}
        </text>
        <text x={PAD.left - 6} y={PAD.top + innerH + 4} className="r2r-axis r2r-axis-left">
          0
        </text>
        <text x={WIDTH - PAD.right + 6} y={PAD.top + 4} className="r2r-axis">
          {maxApplied}/min
        </text>
        {labels.map((i) => (
          <text
            key={i}
            x={x(Date.parse(minutes[i]!.minute) + 30_000)}
            y={HEIGHT - 6}
            className="r2r-axis r2r-axis-time"
          >
            {formatTime(minutes[i]!.minute)}
          </text>
        ))}
      </svg>
      {backlog.length < 2 && (
        <p className="r2r-help">
          The backlog line fills in while this page is open (a sample every few seconds).
        </p>
      )}
    </figure>
  );
}
