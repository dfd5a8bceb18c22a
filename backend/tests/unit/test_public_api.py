"""The engine's public API is ``onyx.r2r_sender.__all__``: it resolves, it is cheap to
import, hosts use nothing else, and the engine imports no host."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import onyx.r2r_sender as engine

BACKEND = Path(__file__).resolve().parents[2]
ENGINE_DIR = BACKEND / "onyx" / "r2r_sender"
# host adapters held to the public API (the admin router in onyx/server/r2r is the
# engine's operator surface and still reaches into credential and status modules)
ADAPTER_DIRS = [
    BACKEND / "onyx" / "document_index" / "r2r",
    BACKEND / "onyx" / "background",
    BACKEND / "onyx" / "r2r_integration",
]


@pytest.mark.parametrize("name", engine.__all__)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(engine, name) is not None


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Applier'"):
        engine.Applier  # noqa: B018 - internal, not exported


def test_the_synchronous_path_imports_no_database_broker_or_celery() -> None:
    """A host that only has httpx (Nextcloud's backend) can import and build it."""
    code = (
        "import sys, onyx.r2r_sender as e\n"
        "assert not any(m in sys.modules for m in ('sqlalchemy', 'celery', 'redis')), 'import'\n"
        "from onyx.r2r_sender import SyncApplier, NEXTCLOUD, SourceDocument, BridgeSettings, "
        "LabelChange, R2RClient, make_client, schema, source_document_from_record\n"
        "heavy = [m for m in ('sqlalchemy', 'celery', 'redis', 'kombu') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def _engine_imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) of every ``from onyx.r2r_sender… import name`` in *path*."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("onyx.r2r_sender"):
            found.extend((node.module or "", alias.name) for alias in node.names)
    return found


def test_host_adapters_use_only_the_public_api() -> None:
    offenders = []
    for directory in ADAPTER_DIRS:
        for path in directory.rglob("*.py"):
            for module, name in _engine_imports(path):
                if name not in engine.__all__:
                    offenders.append(f"{path.relative_to(BACKEND)}: {module}.{name}")
    assert not offenders, "\n".join(offenders)


def test_the_engine_imports_no_host() -> None:
    offenders = []
    for path in ENGINE_DIR.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            modules = []
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            for module in modules:
                if module.startswith("onyx.") and not module.startswith("onyx.r2r_sender"):
                    offenders.append(f"{path.relative_to(BACKEND)}: {module}")
                if module.startswith("context_chat_backend"):
                    offenders.append(f"{path.relative_to(BACKEND)}: {module}")
    assert not offenders, "\n".join(offenders)


def test_every_public_name_is_documented_on_the_readme_engine_page() -> None:
    readme = (BACKEND.parent / "README.md").read_text()
    page = readme[
        readme.index("## Engine API") : readme.index("\n## ", readme.index("## Engine API") + 5)
    ]
    missing = [name for name in engine.__all__ if f"`{name}`" not in page]
    assert not missing, f"not on the README's Engine API page: {missing}"
