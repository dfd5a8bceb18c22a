import { describe, expect, it, vi } from "vitest";
import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { StatusPanel } from "@page/StatusPanel";
import { R2RApiError } from "@page/api";
import { breakerText, formatAgo, formatDuration } from "@page/format";
import { statusView } from "./helpers";

function card(testId: string) {
  return within(screen.getByTestId(testId));
}

describe("StatusPanel", () => {
  it("shows counts per state, lag, breaker and last reconcile", () => {
    render(
      <StatusPanel
        status={statusView({
          breaker: { state: "open", consecutive_failures: 0, trips: 2, open_for_seconds: 42 },
          last_reconcile: {
            id: 1,
            started_at: new Date(Date.now() - 600_000).toISOString(),
            finished_at: new Date(Date.now() - 300_000).toISOString(),
            outcome: "ok",
            result: {},
          },
        })}
        error={undefined}
        isLoading={false}
        onRetry={vi.fn()}
      />
    );
    expect(card("count-synced").getByText("1,234")).toBeInTheDocument();
    expect(card("count-pending").getByText("7")).toBeInTheDocument();
    expect(card("count-pending").getByText("2 retrying after an error")).toBeInTheDocument();
    expect(card("count-dead").getByText("1")).toBeInTheDocument();
    expect(screen.getByTestId("count-dead")).toHaveAttribute("data-tone", "bad");
    expect(card("count-deleted").getByText("3")).toBeInTheDocument();
    expect(card("lag").getByText("2 min")).toBeInTheDocument();
    expect(card("breaker").getByText("Paused")).toBeInTheDocument();
    expect(card("breaker").getByText(/sending resumes in 42 s/)).toBeInTheDocument();
    expect(card("reconcile").getByText("ok")).toBeInTheDocument();
    expect(card("reconcile").getByText("finished 5 min ago")).toBeInTheDocument();
    expect(screen.getByTestId("status-updated")).toHaveTextContent("R2R at http://r2r:7272");
  });

  it("draws backlog and throughput over time as an accessible SVG", () => {
    const { container } = render(
      <StatusPanel status={statusView()} error={undefined} isLoading={false} onRetry={vi.fn()} />
    );
    const chart = screen.getByRole("img");
    expect(chart).toHaveAttribute(
      "aria-label",
      "Backlog now 7; 52 documents applied in the last 15 minutes"
    );
    expect(container.querySelectorAll("rect.r2r-bar")).toHaveLength(2);
    expect(container.querySelectorAll("circle.r2r-dot")).toHaveLength(3);
    expect(container.querySelector("path.r2r-line")?.getAttribute("d")).toMatch(/^M[\d.]+,[\d.]+ L/);
  });

  it("says plainly when nothing is mirrored yet and when all is up to date", () => {
    render(
      <StatusPanel
        status={statusView({
          counts: { pending: 0, retrying: 0, synced: 0, deleted: 0, dead: 0 },
          total: 0,
          backlog: 0,
          oldest_pending_seconds: null,
          backlog_history: [],
        })}
        error={undefined}
        isLoading={false}
        onRetry={vi.fn()}
      />
    );
    expect(screen.getByText("Nothing mirrored yet")).toBeInTheDocument();
    expect(card("lag").getByText("Up to date")).toBeInTheDocument();
    expect(card("breaker").getByText("Healthy")).toBeInTheDocument();
    expect(card("reconcile").getByText("Never run")).toBeInTheDocument();
    expect(screen.getByText(/The backlog line fills in while this page is open/)).toBeInTheDocument();
  });

  it("shows a loading line, then an error with a retry button", async () => {
    const { rerender } = render(
      <StatusPanel status={undefined} error={undefined} isLoading onRetry={vi.fn()} />
    );
    expect(screen.getByRole("status")).toHaveTextContent("Loading the sync status…");
    const onRetry = vi.fn();
    rerender(
      <StatusPanel
        status={undefined}
        error={new R2RApiError("The bridge's database or broker is unreachable right now; try again in a moment.", 503, "backend_unavailable")}
        isLoading={false}
        onRetry={onRetry}
      />
    );
    const alert = screen.getByRole("alert");
    expect(alert).toHaveTextContent("Could not load the sync status");
    expect(alert).toHaveTextContent("unreachable right now");
    await userEvent.setup().click(screen.getByRole("button", { name: "Try again" }));
    expect(onRetry).toHaveBeenCalledOnce();
  });

  it("keeps the last values when a refresh fails", () => {
    render(
      <StatusPanel
        status={statusView()}
        error={new R2RApiError("Could not reach the Onyx server.", 0, "network_error")}
        isLoading={false}
        onRetry={vi.fn()}
      />
    );
    expect(screen.getByRole("alert")).toHaveTextContent("Showing the last known values.");
    expect(card("count-synced").getByText("1,234")).toBeInTheDocument();
  });
});

describe("formatting", () => {
  it("formats durations and ages for people", () => {
    expect(formatDuration(null)).toBe("—");
    expect(formatDuration(0.2)).toBe("just now");
    expect(formatDuration(42)).toBe("42 s");
    expect(formatDuration(3 * 3600 + 600)).toBe("3 h 10 min");
    expect(formatDuration(2 * 86400 + 4 * 3600)).toBe("2 d 4 h");
    expect(formatAgo(null)).toBe("never");
    expect(formatAgo(new Date(1_000_000 - 90_000).toISOString(), 1_000_000)).toBe("1 min ago");
    expect(breakerText("half_open", 0).label).toBe("Recovering");
  });
});
