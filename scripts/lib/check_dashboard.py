#!/usr/bin/env python3
"""Check the Grafana dashboard JSON of deployment/grafana (standard library only).

    python3 scripts/lib/check_dashboard.py deployment/grafana/onyx-r2r-dashboard.json

Exit 0 and print a one-line summary when it holds; exit 1 naming every problem otherwise.
Checks: the JSON parses; a uid, a title and a schemaVersion; unique panel ids; every panel
with queries uses the ``${datasource}`` variable; every query is PromQL over
``onyx_r2r_*`` metrics only; panels for backlog, lag, throughput, errors and the breaker
exist; a ``tenant`` variable.  ``backend/tests/test_deployment.py`` also checks that every
metric a query names is one the engine defines.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

REQUIRED_TOPICS = ("backlog", "lag", "throughput", "errors", "breaker")
METRIC = re.compile(r"\b(onyx_r2r_[a-z0-9_]+)")


def metric_names(expr: str) -> set[str]:
    """The ``onyx_r2r_*`` names a PromQL expression uses."""
    return set(METRIC.findall(expr))


def panels_of(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for panel in dashboard.get("panels", []):
        out.append(panel)
        out.extend(panel.get("panels", []))  # collapsed rows hold their panels
    return out


def problems(dashboard: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for key in ("uid", "title", "schemaVersion"):
        if not dashboard.get(key):
            found.append(f"no {key}")
    panels = panels_of(dashboard)
    ids = [p.get("id") for p in panels]
    if len(ids) != len(set(ids)) or None in ids:
        found.append(f"panel ids are missing or repeated: {ids}")
    titles = " ".join(str(p.get("title", "")).lower() for p in panels)
    for topic in REQUIRED_TOPICS:
        if topic not in titles:
            found.append(f"no panel about {topic}")
    variables = {v.get("name") for v in dashboard.get("templating", {}).get("list", [])}
    for name in ("datasource", "tenant"):
        if name not in variables:
            found.append(f"no ${name} variable")
    for panel in panels:
        targets = panel.get("targets", [])
        if panel.get("type") != "row" and not targets:
            found.append(f"panel {panel.get('title')!r} has no query")
        if targets and panel.get("datasource", {}).get("uid") != "${datasource}":
            found.append(f"panel {panel.get('title')!r} does not use ${{datasource}}")
        for target in targets:
            expr = str(target.get("expr", ""))
            if not metric_names(expr):
                found.append(f"panel {panel.get('title')!r}: query names no onyx_r2r_ metric")
            if expr.count("(") != expr.count(")") or expr.count("{") != expr.count("}"):
                found.append(f"panel {panel.get('title')!r}: unbalanced query {expr!r}")
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        dashboard = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        print(f"{argv[1]}: {exc}")
        return 1
    found = problems(dashboard)
    if found:
        print("; ".join(found))
        return 1
    panels = [p for p in panels_of(dashboard) if p.get("type") != "row"]
    names = set().union(*(metric_names(t["expr"]) for p in panels for t in p["targets"]))
    print(f"{len(panels)} panels over {len(names)} metrics")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
