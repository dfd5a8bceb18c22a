"""No work at import time: importing the engine and its adapters builds no settings, no
Celery app, no Redis client and no database engine; the worker app is built on demand.

Each check runs in a fresh interpreter, so no earlier import in this session hides work
a module would do when imported first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

# packages whose import must stay free of work (alembic's migrations/ run on purpose)
PACKAGES = (
    "onyx.r2r_sender",
    "onyx.background.celery.tasks.r2r_mirror",
    "onyx.server.r2r",
)


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


def test_importing_builds_no_settings_app_redis_engine_or_router() -> None:
    """An invalid setting in the environment would make any import-time
    ``BridgeSettings.from_env()`` raise; module globals hold none of the costly objects."""
    proc = _python(
        f"""
        import importlib, json, pkgutil
        from celery import Celery
        from redis import Redis
        from sqlalchemy.engine import Engine
        from fastapi import APIRouter, FastAPI
        from onyx.r2r_sender.config import BridgeSettings

        found, modules, need_onyx = [], [], []
        for package in {PACKAGES!r}:
            root = importlib.import_module(package)
            modules.append(root)
            for info in pkgutil.walk_packages(root.__path__, package + "."):
                if ".migrations" in info.name:
                    continue
                try:
                    modules.append(importlib.import_module(info.name))
                except ModuleNotFoundError as exc:  # Onyx's own modules are absent here
                    if not (exc.name or "").startswith("onyx."):
                        raise
                    need_onyx.append(info.name)
        for module in modules:
            for name, value in list(vars(module).items()):
                costly = (Celery, BridgeSettings, Redis, Engine, APIRouter, FastAPI)
                if isinstance(value, costly):
                    found.append(f"{{module.__name__}}.{{name}}: {{type(value).__name__}}")
        print(json.dumps({{"modules": len(modules), "found": found, "need_onyx": need_onyx}}))
        """,
        ONYX_R2R_CLAIM_BATCH="not-a-number",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["found"] == []
    assert result["modules"] >= 30  # the walk really imported the packages
    # only the Onyx-side backfill source imports Onyx (the contract tests import it)
    assert result["need_onyx"] == ["onyx.background.celery.tasks.r2r_mirror.backfill_source"]


def test_celery_finds_the_worker_app_built_on_demand() -> None:
    """``celery -A onyx.r2r_sender.tasks`` resolves ``app``: built from the environment on
    first access, with the bridge's tasks, queue and beat schedule; one per process."""
    proc = _python(
        """
        import json
        from celery.app.utils import find_app
        from onyx.r2r_sender import tasks
        from onyx.r2r_sender.config import BridgeSettings

        assert "app" not in vars(tasks)
        app = find_app("onyx.r2r_sender.tasks")
        same = app is tasks.app is tasks.worker_app() is tasks.worker_app(
            BridgeSettings.from_env()
        )
        try:
            tasks.worker_app(BridgeSettings.from_env(queue="other"))
            conflict = "accepted"
        except ValueError as exc:
            conflict = str(exc)
        print(json.dumps({
            "same": same,
            "queue": app.conf.task_default_queue,
            "tasks": sorted(name for name in app.tasks if name.startswith("onyx_r2r.")),
            "beat": sorted(app.conf.beat_schedule),
            "sweep_every": app.conf.beat_schedule["onyx-r2r-sweep"]["schedule"],
            "conflict": conflict,
        }))
        """,
        ONYX_R2R_QUEUE="q_import_time_test",
        ONYX_R2R_SWEEP_INTERVAL_SECONDS="7",
        ONYX_R2R_RECONCILE_INTERVAL_SECONDS="600",
        ONYX_R2R_BACKFILL_SOURCE="",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {
        "same": True,
        "queue": "q_import_time_test",
        "tasks": [
            "onyx_r2r.backfill",
            "onyx_r2r.drain",
            "onyx_r2r.ping",
            "onyx_r2r.reconcile",
            "onyx_r2r.sweep",
        ],
        "beat": ["onyx-r2r-reconcile", "onyx-r2r-sweep"],
        "sweep_every": 7.0,
        "conflict": "this process's worker app was built with other settings",
    }


def test_the_bridge_tasks_stay_off_other_apps() -> None:
    """Building the worker app registers its tasks on it alone, not on every Celery app
    of the process (Onyx's own, the admin API's sender app)."""
    proc = _python(
        """
        from celery import Celery
        from onyx.r2r_sender import tasks

        tasks.worker_app()
        other = Celery("other", set_as_current=False)
        print(sorted(name for name in other.tasks if name.startswith("onyx_r2r.")))
        """
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"
