"""env.r2r.template: its engine block is what the settings registry renders.

``scripts/render_env_template`` writes the block; these tests fail when the committed
template differs from the registry (a new setting, a changed default or doc).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from onyx.r2r_sender.config import SETTINGS, BridgeSettings, env_template_block

REPO_ROOT = Path(__file__).resolve().parents[3]
SCRIPT = REPO_ROOT / "scripts" / "render_env_template"
TEMPLATE = REPO_ROOT / "deployment" / "docker_compose" / "env.r2r.template"


def _script() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("render_env_template", str(SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60
    )


def _split(text: str) -> tuple[str, str]:
    """(the generated block, everything else) of a template."""
    script = _script()
    head, rest = text.split(script.BEGIN, 1)
    block, tail = rest.split(script.END, 1)
    return block, head + tail


def test_committed_template_is_what_the_registry_renders() -> None:
    text = TEMPLATE.read_text(encoding="utf-8")
    block, _ = _split(text)
    assert block == env_template_block(), "run scripts/render_env_template"
    assert _script().splice(text, env_template_block()) == text


def test_check_mode_passes_on_the_committed_template() -> None:
    proc = _run("--check")
    assert proc.returncode == 0, proc.stderr
    assert "up to date" in proc.stdout


def test_check_mode_fails_on_a_stale_block_and_the_script_repairs_it(tmp_path: Path) -> None:
    stale = tmp_path / "env.r2r.template"
    committed = TEMPLATE.read_text(encoding="utf-8")
    stale.write_text(committed.replace("# ONYX_R2R_READ_TIMEOUT=30\n", ""), encoding="utf-8")
    proc = _run("--check", "--template", str(stale))
    assert proc.returncode == 1
    assert "+# ONYX_R2R_READ_TIMEOUT=30" in proc.stderr
    assert "stale; run scripts/render_env_template" in proc.stderr
    assert stale.read_text(encoding="utf-8") != committed  # --check writes nothing
    proc = _run("--template", str(stale))
    assert proc.returncode == 0, proc.stderr
    assert stale.read_text(encoding="utf-8") == committed


def test_the_script_refuses_a_template_without_markers(tmp_path: Path) -> None:
    broken = tmp_path / "env.r2r.template"
    broken.write_text(TEMPLATE.read_text().replace(_script().END, ""), encoding="utf-8")
    proc = _run("--template", str(broken))
    assert proc.returncode == 2
    assert "expected one" in proc.stderr


def test_block_lists_every_engine_setting_with_its_default() -> None:
    block, _ = _split(TEMPLATE.read_text(encoding="utf-8"))
    shown = dict(re.findall(r"^# ([A-Z][A-Z0-9_]+)=(.*)$", block, re.M))
    defaults = BridgeSettings()
    engine = [s for s in SETTINGS if not s.connection]
    assert list(shown) == [s.variable for s in engine]
    for setting in engine:
        assert setting.parse(shown[setting.variable]) == getattr(defaults, setting.name)
    for line in block.splitlines():
        assert line.startswith(("## ", "# ")) and len(line) <= 84, line


def test_connection_settings_are_documented_outside_the_block() -> None:
    """Where R2R, the ledger and the broker are: the deployment sections give them the
    compose defaults; each is documented there once, and never in the engine block."""
    block, rest = _split(TEMPLATE.read_text(encoding="utf-8"))
    outside = re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", rest, re.M)
    for setting in SETTINGS:
        names = [setting.variable] + ([setting.file_variable] if setting.file_variable else [])
        for name in names:
            if setting.connection:
                assert outside.count(name) == 1, name
                assert f"{name}=" not in block, name
            else:
                assert name not in outside, f"{name} is generated: remove it from the hand part"


def test_the_script_needs_no_virtualenv() -> None:
    """config.py is stdlib only: the system python renders the same block."""
    python = Path("/usr/bin/python3")
    if not python.exists():
        pytest.skip(f"{python} is not installed")
    proc = subprocess.run(
        [str(python), str(SCRIPT), "--check"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
