"""The ExApp overlay (``ccbe/context_chat_backend/exapp``) without CCBE: lifecycle routes,
the ``/init`` job against the fake Nextcloud, the worker threads' gate, the version header,
the v5.3 part check, and the 501 a scaffold answers.

The app under test is a FastAPI app set up the way CCBE's patched ``controller.py`` and
``main.py`` set theirs up (nc_py_api's ``AppAPIAuthMiddleware``, ``install_lifecycle``,
``ExAppVersionHeader`` added last); CCBE's own modules are the shaped ones
(``tests/ccbe_shaped``) for both generations. ``tests/ccbe_e2e`` runs the same code inside
real CCBE.
"""

from __future__ import annotations

import base64
import importlib
import logging
import threading
import time
import warnings
from collections.abc import Iterator
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from ccbe_shaped import GENERATIONS, load_generation
from fake_nextcloud import FakeNextcloud, appapi_headers
from fastapi import FastAPI
from fastapi.testclient import TestClient
from stack_helpers import wait_until
from starlette.datastructures import Headers, UploadFile

APP_VERSION = "5.4.0"
BACKEND_VARS = ("RAG_BACKEND", "PINECONE_API_KEY", "PINECONE_INDEX", "SUPABASE_DB_URL")
PINECONE_ENV = {"PINECONE_API_KEY": "pc-secret-key-123", "PINECONE_INDEX": "cc-index"}
E5 = "https://huggingface.co/x/multilingual-e5-large-instruct-GGUF/resolve/abc/e5.gguf"
MODELS = {
    E5: {"save_path": "/storage/model_files/multilingual-e5-large-instruct-q6_k.gguf"},
    "gpt2": {"cache_dir": "/storage/model_files/hub", "revision": "607a30d"},
}


@pytest.fixture(params=GENERATIONS)
def ccbe(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load_generation(request.param, monkeypatch, unset=BACKEND_VARS)


def sub(package: ModuleType, name: str) -> ModuleType:
    return importlib.import_module(f"{package.__name__}.{name}")


def config(ccbe: ModuleType, backend: str, embedding_url: str = "http://127.0.0.1:9/v1") -> Any:
    types = sub(ccbe, "types")
    return types.TConfig(vectordb=(backend, {}), embedding={"base_url": embedding_url})


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeNextcloud]:
    """The fake Nextcloud, and the AppAPI environment nc_py_api reads pointing at it."""
    nextcloud = FakeNextcloud(app_secret="lifecycle-secret-42")
    with nextcloud.serve_for_exapp(monkeypatch, APP_VERSION):
        yield nextcloud


class ExApp:
    """A FastAPI app wired as patched CCBE wires its own, plus what its handlers saw."""

    def __init__(self, ccbe: ModuleType, backend: str, models: dict | None = None) -> None:
        from nc_py_api.ex_app import AppAPIAuthMiddleware

        lifecycle = sub(ccbe, "exapp.lifecycle")
        version_header = sub(ccbe, "exapp.version_header")
        self.enabled_calls: list[tuple[bool, Any]] = []
        self.triggers: list[str] = []
        self.enabled_answer = ""
        self.app = FastAPI()
        self.app.extra["CONFIG"] = config(ccbe, backend)
        self.app.add_middleware(AppAPIAuthMiddleware)  # controller.py (unless disable_aaa)

        def enabled_handler(enabled: bool, nc: Any) -> str:
            self.enabled_calls.append((enabled, nc))
            return self.enabled_answer

        self.init_job = lifecycle.install_lifecycle(
            self.app, enabled_handler, models_to_fetch=models, trigger_handler=self.triggers.append
        )

        @self.app.get("/boom")
        def boom() -> None:
            raise RuntimeError("unhandled")

        self.app.add_middleware(version_header.ExAppVersionHeader)  # main.py, once
        self.client = TestClient(self.app, raise_server_exceptions=False)

    def signed(self, fake: FakeNextcloud, **changes: str) -> dict[str, str]:
        headers = appapi_headers(fake.app_id, APP_VERSION, fake.app_secret, user="admin")
        headers.update(changes)
        return headers


# ------------------------------------------------------------------ routes and auth
def test_heartbeat_needs_no_auth_and_every_answer_carries_the_version(
    ccbe: ModuleType, fake: FakeNextcloud
) -> None:
    app = ExApp(ccbe, "pgvector")
    beat = app.client.get("/heartbeat")
    assert beat.status_code == 200 and beat.json() == {"status": "ok"}
    assert beat.headers.get_list("EX-APP-VERSION") == [APP_VERSION]
    refused = app.client.put("/enabled?enabled=1")
    assert refused.status_code == 401 and refused.headers["EX-APP-VERSION"] == APP_VERSION
    crashed = app.client.get("/boom", headers=app.signed(fake))
    assert crashed.status_code == 500 and crashed.json() == {"error": "Internal Server Error"}
    assert crashed.headers.get_list("EX-APP-VERSION") == [APP_VERSION]


def test_appapi_auth_is_upstreams(ccbe: ModuleType, fake: FakeNextcloud) -> None:
    app = ExApp(ccbe, "pgvector")
    wrong_secret = base64.b64encode(b"admin:not-the-secret").decode()
    for changes in (
        {"AUTHORIZATION-APP-API": wrong_secret},
        {"EX-APP-ID": "another_app"},
        {"EX-APP-VERSION": ""},
        {"AUTHORIZATION-APP-API": ""},
    ):
        answer = app.client.put("/enabled?enabled=1", headers=app.signed(fake, **changes))
        assert answer.status_code == 401, changes
        assert answer.headers["EX-APP-VERSION"] == APP_VERSION
    assert app.enabled_calls == []
    # upstream does not compare EX-APP-VERSION, it only requires one
    older = app.client.put(
        "/enabled?enabled=1", headers=app.signed(fake, **{"EX-APP-VERSION": "5.3.0"})
    )
    assert older.status_code == 200


def test_enabled_reads_its_query_parameter_and_answers_the_handlers_error(
    ccbe: ModuleType, fake: FakeNextcloud
) -> None:
    from nc_py_api import NextcloudApp

    app = ExApp(ccbe, "pgvector")
    on = app.client.put("/enabled?enabled=1", headers=app.signed(fake))
    assert on.status_code == 200 and on.json() == {"error": ""}
    app.enabled_answer = "Error in enabled handler: boom"
    off = app.client.put("/enabled", params={"enabled": "0"}, headers=app.signed(fake))
    assert off.json() == {"error": "Error in enabled handler: boom"}
    assert [flag for flag, _ in app.enabled_calls] == [True, False]
    assert all(isinstance(nc, NextcloudApp) for _, nc in app.enabled_calls)
    for bad in ("/enabled?enabled=maybe", "/enabled"):
        invalid = app.client.put(bad, headers=app.signed(fake))
        assert invalid.status_code == 422, bad
        assert invalid.json()["detail"][0]["loc"] == ["query", "enabled"]
        assert invalid.headers["EX-APP-VERSION"] == APP_VERSION
    assert len(app.enabled_calls) == 2
    trigger = app.client.post(
        "/trigger?providerId=context_chat-context_chat", headers=app.signed(fake)
    )
    assert trigger.json() == {} and app.triggers == ["context_chat-context_chat"]


def test_lifecycle_headers_are_logged_at_debug_without_credentials(
    ccbe: ModuleType, fake: FakeNextcloud, caplog: pytest.LogCaptureFixture
) -> None:
    app = ExApp(ccbe, "pgvector")
    headers = app.signed(fake, **{"Cookie": "oc_sessionPassphrase=abc", "harp-shared-key": "hk-1"})
    with caplog.at_level(logging.DEBUG, logger="ccb.exapp"):
        app.client.put("/enabled?enabled=1", headers=headers)
        app.client.get("/heartbeat")
    assert "PUT /enabled headers:" in caplog.text and "GET /heartbeat headers:" in caplog.text
    assert "'ex-app-id': 'context_chat_backend'" in caplog.text
    assert "'authorization-app-api': '<redacted>'" in caplog.text
    for secret in (fake.app_secret, headers["AUTHORIZATION-APP-API"], "abc", "hk-1"):
        assert secret not in caplog.text


# ------------------------------------------------------------------ the /init job
def test_init_answers_at_once_and_reports_progress_to_100(
    ccbe: ModuleType, fake: FakeNextcloud
) -> None:
    app = ExApp(ccbe, "pgvector")
    release = threading.Event()
    fetched: list[dict] = []
    real_fetch = app.init_job.fetch_models

    def slow_fetch(nc: Any, models: dict, start: int) -> None:
        fetched.append(models)
        release.wait(30)
        real_fetch(nc, {}, start)

    app.init_job.fetch_models = slow_fetch
    started = time.monotonic()
    answer = app.client.post("/init", headers=app.signed(fake))
    assert answer.status_code == 200 and answer.json() == {}
    assert time.monotonic() - started < 5
    wait_until(lambda: fetched, 20, 0.05, "the init job to reach the models")
    assert [r["progress"] for r in fake.init_reports] == [5, 20]
    again = app.client.post("/init", headers=app.signed(fake))  # AppAPI may retry
    assert again.json() == {}
    release.set()
    app.init_job.join(10)
    assert fake.init_reports[-1] == {"progress": 100, "error": ""}
    assert [r["progress"] for r in fake.init_reports] == [5, 20, 100], "one run only"
    assert fake.enabled is True


def test_init_fetches_no_local_embedding_model_for_backends_that_do_not_embed_with_it(
    ccbe: ModuleType, fake: FakeNextcloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    readiness = sub(ccbe, "exapp.readiness")
    for backend, expected in (("pgvector", [E5, "gpt2"]), ("pinecone", ["gpt2"])):
        models = readiness.models_needed(config(ccbe, backend), MODELS)
        assert list(models) == expected, backend
        assert models["gpt2"] == MODELS["gpt2"] and models["gpt2"] is not MODELS["gpt2"]
    init_job = sub(ccbe, "exapp.init_job")
    fetched: list[list[str]] = []
    job = init_job.InitJob(
        config(ccbe, "pgvector"), MODELS, lambda nc, m, s: fetched.append(sorted(m))
    )
    job.run(SimpleNamespace(set_init_status=lambda *a: None))
    assert fetched == [sorted([E5, "gpt2"])]


def test_init_reports_what_keeps_the_backend_from_working(
    ccbe: ModuleType, fake: FakeNextcloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scaffold, missing settings, an unconstructible backend: the error names it, the
    progress never reaches 100 and the app stays disabled."""
    cases = [
        ("pinecone", PINECONE_ENV, "backend not implemented: pinecone"),
        ("pinecone", {}, "RAG backend pinecone: PINECONE_API_KEY is not set"),
        ("supabase", {}, "RAG backend supabase: SUPABASE_DB_URL is not set"),
    ]
    for backend, env, expected in cases:
        for name in BACKEND_VARS:
            monkeypatch.delenv(name, raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        fake.init_reports.clear()
        app = ExApp(ccbe, backend, models=MODELS)
        assert app.client.post("/init", headers=app.signed(fake)).json() == {}
        app.init_job.join(20)
        assert fake.init_reports[0] == {"progress": 5, "error": ""}
        assert fake.init_reports[-1]["error"].startswith(expected), fake.init_reports
        assert all(r["progress"] < 100 for r in fake.init_reports)
        assert "pc-secret-key-123" not in str(fake.init_reports)
    assert fake.enabled is False


# ------------------------------------------------------------------ readiness gate
def test_the_gate_asks_the_backend_and_keeps_upstreams_gates_for_pgvector(
    ccbe: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import socket

    readiness = sub(ccbe, "exapp.readiness")
    for key, value in PINECONE_ENV.items():
        monkeypatch.setenv(key, value)
    scaffold = readiness.ConnectionGate(config(ccbe, "pinecone"))
    actions = readiness.ConnectionGate(config(ccbe, "pinecone"), upstream_gated=False)
    with caplog.at_level(logging.INFO, logger="ccb.exapp"):
        assert scaffold.check_connection("files_indexing") is False
        assert actions.check_connection("updates_processing") is False
    assert "[files_indexing] RAG backend pinecone cannot take work now" in caplog.text
    assert "[updates_processing] RAG backend pinecone cannot take work now" in caplog.text
    assert readiness.diagnose(config(ccbe, "pinecone")) == "backend not implemented: pinecone"
    # upstream's pgvector: the embedding server's probe where upstream probes, no gate elsewhere
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        up = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
        gated = readiness.ConnectionGate(config(ccbe, "pgvector", up))
        ungated = readiness.ConnectionGate(config(ccbe, "pgvector", up), upstream_gated=False)
        expect_probe = hasattr(sub(ccbe, "network_em").NetworkEmbeddings, "check_connection")
        assert gated.check_connection("files_indexing") is True
    down = readiness.ConnectionGate(config(ccbe, "pgvector", "http://127.0.0.1:9/v1"))
    # v5.4's client probes (closed port: False); v5.3's has no probe and v5.3 gates nothing
    assert down.check_connection("files_indexing") is (not expect_probe)
    assert ungated.check_connection("updates_processing") is True
    assert readiness.diagnose(config(ccbe, "pgvector")) == ""


def test_the_gate_never_raises(ccbe: ModuleType) -> None:
    readiness = sub(ccbe, "exapp.readiness")
    broken = SimpleNamespace(vectordb=("no_such_backend", {}))
    assert readiness.ConnectionGate(broken).check_connection("files_indexing") is False
    assert "unknown RAG backend 'no_such_backend'" in readiness.diagnose(broken)


# ------------------------------------------------------------------ 501 and v5.3 parts
def test_a_scaffold_answers_501_through_ccbes_handler_shape(
    ccbe: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mapping CCBE's ``SafeDbException`` handler does (``JSONResponse(args[0], args[1])``,
    a string with status >= 400 becoming ``{"error": …}``), on what a scaffold raises."""
    for key, value in PINECONE_ENV.items():
        monkeypatch.setenv(key, value)
    backend = sub(ccbe, "backends").get_backend_class("pinecone")(None)
    with pytest.raises(sub(ccbe, "vectordb.types").SafeDbException) as raised:
        backend.count_documents_by_provider()
    message, status = raised.value.args
    assert (status, {"error": message}) == (501, {"error": "backend not implemented: pinecone"})


def part(filename: str | None, **headers: str) -> UploadFile:
    import io

    return UploadFile(io.BytesIO(b"x"), filename=filename, headers=Headers(headers))


def test_a_bad_load_sources_part_is_named_with_its_header(ccbe: ModuleType) -> None:
    push = sub(ccbe, "exapp.push")
    good = {
        "userIds": "alice,bob",
        "title": "",
        "type": "text/plain",
        "modified": "1700000000",
        "provider": "files__default",
    }
    assert push.part_problem(part("files__default: 1", **good)) is None
    assert push.part_problem(part("files__default: 2", **{**good, "modified": "2024-01-01"})) == (
        "files__default: 2: header 'modified' must be unix epoch digits, not '2024-01-01'"
    )
    missing = {k: v for k, v in good.items() if k != "provider"}
    assert (
        push.part_problem(part("files__default: 3", **missing))
        == "files__default: 3: header 'provider' is missing"
    )
    assert push.part_problem(part("files__default: 4", **{**good, "userIds": " "})) == (
        "files__default: 4: header 'userIds' is empty"
    )
    assert push.part_problem(part("", **{**good, "title": "a.txt"})) == (
        "a part without a filename (title 'a.txt'): the filename must be the source id"
    )


def test_the_overlay_imports_no_onyx_adapter_and_nc_py_api_only_where_used() -> None:
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[3] / "ccbe" / "context_chat_backend" / "exapp"
    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("onyx"), path.name
                if node.module.startswith("nc_py_api") and node.col_offset == 0:
                    pytest.fail(f"{path.name} imports nc_py_api at module level")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # importing the overlay warns about nothing
        load_generation("5.4")
        importlib.import_module("context_chat_backend.exapp.lifecycle")
