"""What every real-Onyx contract test module shares: is ``onyx`` Onyx's own package here,
and where the prepared copies are (set by ``scripts/onyx_contract``)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

SRC = Path(os.environ.get("ONYX_CONTRACT_SRC", "/nonexistent"))
PRISTINE = Path(os.environ.get("ONYX_CONTRACT_PRISTINE", "/nonexistent"))
WANT_PYTHON = os.environ.get("ONYX_CONTRACT_WANT_PYTHON", "3.13")
FULL = os.environ.get("ONYX_CONTRACT_KIND") == "full"


def onyx_is_real() -> bool:
    """``onyx`` is Onyx's own package: the prepared copy (not this repository's namespace)."""
    spec = importlib.util.find_spec("onyx")
    return bool(
        spec is not None
        and spec.origin
        and os.environ.get("ONYX_CONTRACT_SRC")
        and os.path.realpath(spec.origin).startswith(os.path.realpath(SRC))
    )


MARKS = [
    pytest.mark.onyx_contract,
    pytest.mark.skipif(
        not (os.environ.get("ONYX_SOURCE_DIR") and onyx_is_real()),
        reason="real-Onyx contract tests: run scripts/onyx_contract ONYX_SOURCE_DIR",
    ),
]


def needs_onyx_main() -> pytest.MarkDecorator:
    """Importing ``onyx.main`` needs Onyx's Python and every package of its default.txt."""
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if running != WANT_PYTHON:
        reason = f"onyx.main needs Onyx's Python {WANT_PYTHON}; this run uses {running}"
    elif not FULL:
        reason = "onyx.main needs all of Onyx's packages: run scripts/onyx_contract --full"
    else:
        reason = ""
    return pytest.mark.skipif(bool(reason), reason=reason)


def stack_env() -> dict[str, str]:
    """The local stack's ``stack.env`` (``ONYX_CONTRACT_STACK_ENV``), or ``{}`` without one."""
    repo = Path(__file__).resolve().parents[3]
    path = Path(os.environ.get("ONYX_CONTRACT_STACK_ENV", repo / ".stack/stack.env"))
    if not path.exists():
        return {}
    return dict(
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if "=" in line and line[0] != "#"
    )
