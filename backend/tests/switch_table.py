"""The README's switch truth table, parsed and expanded into concrete cases.

``tests/unit/test_r2r_switches.py`` (the hook functions) and the real-Onyx contract tests
(Onyx's own factory) both check every case, so the README is the one place the behaviour
is written down.  The table follows the ``<!-- switch-table -->`` marker in README.md.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- switch-table"

# the concrete values each "any" expands to ("" = unset)
EXPORT_VALUES = ("", "false", "true", "tenant")
MODE_VALUES = ("", "mirror", "replace")
BACKEND_VALUES = ("", "r2r", "opensearch")
STORED_VALUES: dict[str, list[tuple[bool, str] | None]] = {
    "none": [None],
    "off": [(False, "mirror"), (False, "replace")],
    "mirror": [(True, "mirror")],
    "replace": [(True, "replace")],
}
WRITES = {"Onyx's own": "own", "Onyx's own + R2R": "own+r2r", "R2R only": "r2r"}
SEARCH = {"Onyx's own": "own", "R2R": "r2r"}


@dataclass(frozen=True)
class SwitchCase:
    """One concrete combination and what the table says Onyx gets."""

    row: int
    export: str
    mode: str
    backend: str
    stored: tuple[bool, str] | None
    expect_mode: str  # off | mirror | replace
    writes: str  # own | own+r2r | r2r
    search: str  # own | r2r
    exporter: bool

    @property
    def environ(self) -> dict[str, str]:
        env = {"ONYX_EXPORT_R2R": self.export, "R2R_EXPORT_MODE": self.mode}
        env["ONYX_INDEX_BACKEND"] = self.backend
        return {k: v for k, v in env.items() if v}

    def __str__(self) -> str:
        return (
            f"row{self.row}:export={self.export or 'unset'},mode={self.mode or 'unset'},"
            f"backend={self.backend or 'unset'},stored={self.stored}"
        )


def _values(cell: str, universe: tuple[str, ...]) -> list[str]:
    cell = cell.strip()
    if cell.startswith("any"):
        return list(universe)
    if cell == "not `r2r`":
        return [v for v in universe if v != "r2r"]
    values = re.findall(r"`([^`]*)`", cell)
    if re.search(r"\bunset\b", cell):
        values.append("")
    unknown = [v for v in values if v not in universe]
    if not values or unknown:
        raise ValueError(f"cannot read the table cell {cell!r}")
    return values


def _stored(cell: str) -> list[tuple[bool, str] | None]:
    cell = cell.strip()
    if cell.startswith("any"):
        return [v for values in STORED_VALUES.values() for v in values]
    return STORED_VALUES[cell]


def table_rows(readme: Path = README) -> list[list[str]]:
    """The cells of every row of the README's switch table (header excluded)."""
    lines = readme.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(MARKER))
    rows = []
    for line in lines[start + 3 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def cases(readme: Path = README) -> list[SwitchCase]:
    """Every concrete combination the table covers; raises when one is covered twice or
    left out (the table must be complete and unambiguous)."""
    found: dict[tuple, SwitchCase] = {}
    for number, cells in enumerate(table_rows(readme), start=1):
        export, mode, backend, stored, expect, writes, search, exporter = cells
        for combo in itertools.product(
            _values(export, EXPORT_VALUES),
            _values(mode, MODE_VALUES),
            _values(backend, BACKEND_VALUES),
            _stored(stored),
        ):
            if combo in found:
                raise ValueError(f"row {number} repeats {found[combo]}")
            found[combo] = SwitchCase(
                number, *combo, expect, WRITES[writes], SEARCH[search], exporter == "yes"
            )
    everything = set(
        itertools.product(EXPORT_VALUES, MODE_VALUES, BACKEND_VALUES, [v for v in _stored("any")])
    )
    missing = everything - set(found)
    if missing:
        raise ValueError(f"the table leaves out {len(missing)} cases, e.g. {sorted(missing)[0]}")
    return list(found.values())
