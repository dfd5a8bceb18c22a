"""Say loudly which real-Onyx contract tests were skipped, and why (a skipped contract test
proves nothing)."""

from __future__ import annotations

from typing import Any


def pytest_terminal_summary(terminalreporter: Any) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        terminalreporter.write_line("[onyx_contract] no test was skipped", green=True)
        return
    bar = "!" * 78
    terminalreporter.write_line(bar, red=True, bold=True)
    terminalreporter.write_line(
        f"[onyx_contract] {len(skipped)} contract test(s) SKIPPED - they proved nothing:",
        red=True,
        bold=True,
    )
    for report in skipped:
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        terminalreporter.write_line(f"  {report.nodeid}: {reason}", red=True)
    terminalreporter.write_line(bar, red=True, bold=True)
