"""What the patches put on Onyx's import path, against a real Onyx (``scripts/onyx_contract``).

* The patched ``onyx.document_index.factory`` (imported, then called with the bridge off),
  ``run_docfetching`` and ``onyx.main`` import no third-party package that the pristine
  modules do not import themselves, and they import with the engine's extra packages
  (``backoff`` first of all, which Onyx pins only as a dependency of others) blocked.
* ``get_application()`` mounts the admin page, and a failure to build it (a renamed
  permission, a changed ``require_permission``) logs one error while Onyx starts without
  the page.

Each check runs in a fresh interpreter of the contract venv (``sys.executable``) on the
pristine or the patched copy, so no import of this session hides one of the module's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from contract_env import MARKS, PRISTINE, SRC, needs_onyx_main, stack_env

pytestmark = MARKS

# packages the engine needs that an Onyx module may not pull in on its own
ENGINE_PACKAGES = (
    "backoff",
    "httpx",
    "celery",
    "kombu",
    "redis",
    "sqlalchemy",
    "psycopg2",
    "alembic",
    "cryptography",
)

SNAPSHOT = r"""
import importlib, importlib.abc, json, os, sys
blocked = {m for m in sys.argv[2].split(",") if m}

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
        return None

sys.meta_path.insert(0, Block())
for name in ("ONYX_EXPORT_R2R", "R2R_EXPORT_MODE", "ONYX_INDEX_BACKEND"):
    os.environ.pop(name, None)
module = importlib.import_module(sys.argv[1])
if sys.argv[3] == "call":  # Onyx's factory with the bridge off (OpenSearch stubbed)
    from onyx.db.enums import IndexModelStatus
    from onyx.db.models import SearchSettings
    module.DISABLE_VECTOR_DB = False
    module.ONYX_DISABLE_VESPA = True
    module.ENABLE_OPENSEARCH_INDEXING_FOR_ONYX = True
    module._build_opensearch_pair = lambda *a, **k: "opensearch"
    module.get_opensearch_retrieval_state = lambda db: True
    present = SearchSettings(status=IndexModelStatus.PRESENT, index_name="danswer_chunk")
    for _ in range(50):
        assert module.get_all_document_indices(present, None) == ["opensearch"]
        assert module.get_default_document_index(present, None, None) == "opensearch"
own = {"onyx", "ee", "shared_configs", "__main__"}
third = {m.split(".")[0] for m in sys.modules} - set(sys.stdlib_module_names) - own
print(json.dumps(sorted(third)))
"""


def _imported(root: Path, module: str, *, blocked: tuple[str, ...] = (), call: bool = False):
    env = {**os.environ, "PYTHONPATH": str(root / "backend")}
    proc = subprocess.run(
        [sys.executable, "-c", SNAPSHOT, module, ",".join(blocked), "call" if call else ""],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=root / "backend",
        env=env,
    )
    assert proc.returncode == 0, f"{module} on {root.name}:\n{proc.stderr[-4000:]}"
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


def _check_adds_nothing(module: str, *, call: bool = False) -> None:
    pristine = _imported(PRISTINE, module, call=call)
    patched = _imported(SRC, module, call=call)
    assert patched - pristine == set(), f"the patches add these packages: {patched - pristine}"
    # "if backoff ever goes": everything the engine needs that upstream does not import
    missing = tuple(p for p in ENGINE_PACKAGES if p not in pristine)
    assert "backoff" in missing or "backoff" in pristine
    _imported(SRC, module, blocked=missing, call=call)


def test_the_factory_imports_and_runs_off_with_nothing_upstream_does_not_need() -> None:
    _check_adds_nothing("onyx.document_index.factory", call=True)


def test_docfetching_imports_nothing_upstream_does_not_need() -> None:
    _check_adds_nothing("onyx.background.indexing.run_docfetching")


@needs_onyx_main()
def test_onyx_main_imports_nothing_upstream_does_not_need() -> None:
    _check_adds_nothing("onyx.main")


APPLICATION = r"""
import logging, sys
logging.basicConfig(level=logging.ERROR, format="LOG %(levelname)s %(name)s %(message)s")
import onyx.main  # Onyx's own routers are built here; the R2R page only in get_application
if sys.argv[1] == "renamed-permission":  # what a future Onyx might do
    import onyx.db.enums as enums
    import enum
    members = {m.name: m.value for m in enums.Permission if m.name != "FULL_ADMIN_PANEL_ACCESS"}
    enums.Permission = enum.Enum("Permission", members)
elif sys.argv[1] == "changed-signature":
    import onyx.auth.permissions as permissions
    def require_permission(permission, *, scope):  # a new required argument
        raise TypeError("require_permission() missing 1 required keyword-only argument")
    permissions.require_permission = require_permission
app = onyx.main.get_application()
paths = [getattr(r, "path", "") for r in app.routes]
print("R2R_ROUTES", sum("/admin/r2r" in p for p in paths), "ALL", len(paths))
"""


def _application(variant: str) -> tuple[int, int, list[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(APPLICATION), variant],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=SRC / "backend",
        env={**os.environ, "PYTHONPATH": str(SRC / "backend")},
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("R2R_ROUTES"))
    _, r2r, _, total = line.split()
    errors = [x for x in (proc.stdout + proc.stderr).splitlines() if "onyx-r2r" in x]
    return int(r2r), int(total), errors


def _mounted_admin_routes() -> int:
    """How many routes the admin router mounts (ROUTES plus GET /metrics)."""
    from onyx.server.r2r.api import ROUTES, create_router

    mounted = len(create_router(auth=lambda: None, tenant=lambda: "public").routes)
    assert mounted > len(ROUTES)
    return mounted


@needs_onyx_main()
def test_get_application_mounts_the_admin_page() -> None:
    r2r, total, errors = _application("as-is")
    assert r2r == _mounted_admin_routes() and total > 100, (r2r, total)
    assert errors == []


@needs_onyx_main()
@pytest.mark.parametrize("variant", ["renamed-permission", "changed-signature"])
def test_a_broken_admin_page_leaves_onyx_running_without_it(variant) -> None:
    r2r, total, errors = _application(variant)
    as_is_total = _application("as-is")[1]
    assert r2r == 0 and total == as_is_total - _mounted_admin_routes(), (r2r, total, as_is_total)
    assert len(errors) == 1 and "the R2R admin page is not available" in errors[0], errors


CONFIG = r"""
import json, logging, os, sys
logging.basicConfig(level=logging.ERROR)
import onyx.main
from fastapi.testclient import TestClient
app = onyx.main.get_application()
route = next(r for r in app.routes if getattr(r, "path", "").endswith("/admin/r2r/config"))
for depends in route.dependencies:  # the router's: Onyx's admin permission (an admin here)
    app.dependency_overrides[depends.dependency] = lambda: None
answer = TestClient(app).get(route.path)
print("CONFIG", answer.status_code, json.dumps(answer.json()))
"""


@needs_onyx_main()
@pytest.mark.parametrize(
    ("switches", "state", "enabled", "mode"),
    [
        ({"ONYX_EXPORT_R2R": "true", "R2R_EXPORT_MODE": "replace"}, "replace", True, "replace"),
        ({"ONYX_EXPORT_R2R": "true"}, "mirror", True, "mirror"),
        ({}, "off", False, "mirror"),
    ],
)
def test_onyxs_admin_config_shows_the_environments_switches(switches, state, enabled, mode):
    """Issue 17: with the bridge switched on by the environment and nothing stored, Onyx's
    ``GET /admin/r2r/config`` (its real application, its real route) reported export off
    and mode mirror.  It shows the effective state and that it comes from the environment."""
    stack = stack_env()
    url = stack.get("ONYX_R2R_TEST_DATABASE_URL")
    if not url:
        pytest.skip("the local stack is not set up (no ONYX_R2R_TEST_DATABASE_URL)")
    env = {k: v for k, v in os.environ.items() if k not in SWITCHES}
    env.update(switches)
    env.update(
        PYTHONPATH=str(SRC / "backend"),
        ONYX_R2R_DATABASE_URL=_private_ledger(url),
        ONYX_R2R_BROKER_URL=stack["ONYX_R2R_BROKER_URL"],
        ONYX_R2R_ALLOW_UNENCRYPTED_SECRETS="true",
    )
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CONFIG)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=SRC / "backend",
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("CONFIG "))
    _, status, body = line.split(" ", 2)
    view = json.loads(body)
    assert status == "200", (view, proc.stderr[-3000:])
    if view["stored_export"] is not None:
        pytest.skip("the ledger database has a stored choice for Onyx's tenant")
    assert (view["export_state"], view["export_enabled"], view["export_mode"]) == (
        state,
        enabled,
        mode,
    ), view
    assert view["export_source"] == "environment"
    assert view["switches"]["export"] == (switches.get("ONYX_EXPORT_R2R") or "false")


SWITCHES = ("ONYX_EXPORT_R2R", "R2R_EXPORT_MODE", "ONYX_INDEX_BACKEND")


def _private_ledger(url: str) -> str:
    """The test ledger of this checkout (``ONYX_R2R_TEST_DB``), migrated; else *url*."""
    private = os.environ.get("ONYX_R2R_TEST_DB", "")
    if not private:
        return url
    base, _, _ = url.rpartition("/")
    return f"{base}/{private}"
