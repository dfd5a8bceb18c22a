"""Every benchmark in ``bench/`` still starts: its imports resolve against today's engine
and adapters, and its command line parses (``--help``). A benchmark is only run by hand,
so a module moved in a refactor would otherwise be found the day someone needs the number."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench"
SCRIPTS = sorted(p for p in BENCH.glob("bench_*.py"))
LIBRARIES = sorted(p for p in BENCH.glob("*.py") if not p.name.startswith("bench_"))


def test_the_bench_directory_is_found() -> None:
    assert len(SCRIPTS) >= 5 and LIBRARIES


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_a_benchmark_starts(script: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(script), "--help"],
        cwd=BENCH,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout


@pytest.mark.parametrize("library", LIBRARIES, ids=lambda p: p.name)
def test_a_benchmark_library_imports(library: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", f"import {library.stem}"],
        cwd=BENCH,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
