"""The ExApp's ``/init`` job against the fake Nextcloud with real stores (no CCBE needed).

The job (``exapp/init_job.py``) reports through nc_py_api's ``NextcloudApp`` to the fake
Nextcloud, exactly as inside CCBE; the backends are real: supabase on a scratch database
of the local PostgreSQL, and R2R on the local stack's R2R once ``backends/r2r.py`` is more
than its placeholder (until then those cases skip, saying so).
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from ccbe_pg import scratch_vector_database
from ccbe_shaped import GENERATIONS, load_generation, r2r_placeholder_reason
from fake_nextcloud import FakeNextcloud, free_port

pytestmark = pytest.mark.integration

APP_VERSION = "5.4.0"
SETTINGS = ("RAG_BACKEND", "SUPABASE_DB_URL", "SUPABASE_URL", "SUPABASE_ANON_KEY")


@pytest.fixture(scope="module")
def scratch(stack: dict[str, str]) -> Iterator[str]:
    """A fresh database with the vector extension; its ``postgresql://`` URL."""
    with scratch_vector_database(stack, "ccbe_exapp_init") as url:
        yield url


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeNextcloud]:
    nextcloud = FakeNextcloud(app_secret="init-job-secret")
    with nextcloud.serve_for_exapp(monkeypatch, APP_VERSION):
        yield nextcloud


@pytest.fixture(params=GENERATIONS)
def ccbe(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load_generation(request.param, monkeypatch, unset=SETTINGS)


def run_init(ccbe: ModuleType, backend: str) -> None:
    """One ``/init`` job run for *backend*, reporting with nc_py_api to the fake."""
    from nc_py_api import NextcloudApp

    types = importlib.import_module(f"{ccbe.__name__}.types")
    init_job = importlib.import_module(f"{ccbe.__name__}.exapp.init_job")
    app_config: Any = types.TConfig(vectordb=(backend, {}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        nc = NextcloudApp()
    init_job.InitJob(app_config, models={}).run(nc)


def test_supabase_ready_reaches_100(
    ccbe: ModuleType, fake: FakeNextcloud, scratch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPABASE_DB_URL", scratch)
    run_init(ccbe, "supabase")
    assert fake.init_reports == [
        {"progress": 5, "error": ""},
        {"progress": 20, "error": ""},
        {"progress": 100, "error": ""},
    ]
    assert fake.enabled is True


def test_supabase_unreachable_or_refusing_is_reported_by_name(
    ccbe: ModuleType, fake: FakeNextcloud, scratch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = scratch.rpartition("/")[0]
    cases = {
        "postgresql://postgres:pw-init-1@127.0.0.1:1/postgres": "RAG backend supabase: cannot reach the database at 127.0.0.1:1: connection refused",
        server.replace("postgres@", "no_such_role_init:pw-init-1@")
        + "/postgres": "RAG backend supabase: the database at 127.0.0.1:5432 refused the credentials in SUPABASE_DB_URL",
    }
    for url, expected in cases.items():
        fake.init_reports.clear()
        monkeypatch.setenv("SUPABASE_DB_URL", url)
        run_init(ccbe, "supabase")
        assert fake.init_reports == [
            {"progress": 5, "error": ""},
            {"progress": 5, "error": expected},
        ]
        assert "pw-init-1" not in str(fake.init_reports)
    assert fake.enabled is False


@pytest.fixture
def r2r_backend(stack: dict[str, str]) -> dict[str, str]:
    reason = r2r_placeholder_reason()
    if reason:
        pytest.skip(reason)
    return {
        "R2R_BASE_URL": stack["R2R_BASE_URL"],
        "R2R_EMAIL": stack["R2R_ADMIN_EMAIL"],
        "R2R_PASSWORD": stack["R2R_ADMIN_PASSWORD"],
    }


def test_r2r_reachable_reaches_100_unreachable_and_refused_are_named(
    ccbe: ModuleType,
    fake: FakeNextcloud,
    r2r_backend: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> None:
    monkeypatch.setenv("APP_PERSISTENT_STORAGE", str(tmp_path))
    for key, value in r2r_backend.items():
        monkeypatch.setenv(key, value)
    run_init(ccbe, "r2r")
    assert fake.init_reports[-1] == {"progress": 100, "error": ""}
    closed = f"http://127.0.0.1:{free_port()}"
    for changes in ({"R2R_BASE_URL": closed}, {"R2R_PASSWORD": "wrong-password-init-9"}):
        fake.init_reports.clear()
        for key, value in {**r2r_backend, **changes}.items():
            monkeypatch.setenv(key, value)
        run_init(ccbe, "r2r")
        error = fake.init_reports[-1]["error"]
        assert error and fake.init_reports[-1]["progress"] < 100, changes
        assert "wrong-password-init-9" not in error and r2r_backend["R2R_PASSWORD"] not in error
