"""The switches: the README's truth table against the real hook functions, no I/O when
off, lookups bounded to 50 ms when the ledger database is closed or silent, and failures
logged once per interval.

Onyx's own factory runs the same table in the real-Onyx contract tests; here the hooks
run with the tenant resolver and the ``R2RIndex`` builder replaced (both need Onyx), and a
tenant's stored choice comes from a replaced loader (or, for the timing tests, from a real
psycopg2 connection to a closed or silent port on loopback).
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import switch_table

from onyx.background.indexing import r2r_export
from onyx.document_index.r2r import factory_hooks
from onyx.r2r_integration import flags
from onyx.r2r_integration.logs import throttled

TENANT = "tenant_switches"
SWITCH_ENV = ("ONYX_EXPORT_R2R", "R2R_EXPORT_MODE", "ONYX_INDEX_BACKEND")


@dataclass
class _Settings:  # what SearchSettings look like to the hooks
    status: str


PRESENT = _Settings("PRESENT")
FUTURE = _Settings("FUTURE")


@dataclass
class Built:
    """What the real ``_build`` would return: an R2RIndex for these flags."""

    search_settings: Any
    tenant_id: str
    flags: flags.R2RFlags


@pytest.fixture
def hooks(monkeypatch) -> Iterator[list]:
    """The hooks with Onyx's tenant resolver and R2RIndex replaced; yields the loader calls."""
    calls: list = []
    for name in SWITCH_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(factory_hooks, "_current_tenant", lambda: TENANT)
    monkeypatch.setattr(factory_hooks, "_build", Built)
    monkeypatch.setattr(r2r_export, "build_sender", lambda tenant_id, settings: object())
    flags.forget_tenant_cache()
    yield calls
    flags.forget_tenant_cache()


def _writes(search_settings: Any) -> str:
    only = factory_hooks.replacement_indices(search_settings)
    if only is not None:
        assert len(only) == 1 and isinstance(only[0], Built)
        return "r2r"
    result = factory_hooks.with_mirror(["own"], search_settings)
    assert result[0] == "own" and len(result) <= 2
    return "own+r2r" if len(result) == 2 else "own"


@pytest.mark.parametrize("case", switch_table.cases(), ids=str)
def test_every_row_of_the_truth_table(hooks, monkeypatch, case) -> None:
    for name, value in case.environ.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(
        flags._choices, "load", lambda tenant_id, settings: hooks.append(tenant_id) or case.stored
    )
    flags.tenant_flags(TENANT, budget=10.0)  # fill the cache (no 50 ms race in this test)

    assert flags.tenant_flags(TENANT).mode == case.expect_mode
    assert _writes(PRESENT) == case.writes
    search = factory_hooks.default_index(PRESENT)
    assert ("r2r" if search is not None else "own") == case.search
    exporter = r2r_export.exporter_for_attempt(TENANT, is_primary=True)
    assert (exporter is not None) is case.exporter
    assert r2r_export.exporter_for_attempt(TENANT, is_primary=False) is None
    # FUTURE (re-embedding) settings: mirror leaves Onyx's list alone, replace keeps R2R only
    assert _writes(FUTURE) == ("r2r" if case.writes == "r2r" else "own")
    if case.row == 1:
        assert hooks == [], "stored choices were read although both switches are off"


def test_bypass_is_upstream(hooks, monkeypatch) -> None:
    monkeypatch.setenv("ONYX_EXPORT_R2R", "true")
    monkeypatch.setenv("R2R_EXPORT_MODE", "replace")
    monkeypatch.setattr(flags._choices, "load", lambda tenant_id, settings: None)
    with flags.bypass():
        assert factory_hooks.replacement_indices(PRESENT) is None
        assert factory_hooks.default_index(PRESENT) is None
        assert factory_hooks.with_mirror(["own"], PRESENT) == ["own"]


def test_a_broken_installation_leaves_onyx_as_upstream(hooks, monkeypatch, caplog) -> None:
    """R2RIndex cannot be built (e.g. a package the engine needs is gone): upstream, one line."""
    monkeypatch.setenv("ONYX_EXPORT_R2R", "true")
    monkeypatch.setattr(flags._choices, "load", lambda tenant_id, settings: None)

    def broken(*args: Any) -> Any:
        raise ModuleNotFoundError("No module named 'backoff'", name="backoff")

    monkeypatch.setattr(factory_hooks, "_build", broken)
    throttled.reset()
    with caplog.at_level(logging.ERROR, logger=factory_hooks.__name__):
        for _ in range(20):
            assert factory_hooks.with_mirror(["own"], PRESENT) == ["own"]
    lines = [r for r in caplog.records if r.name == factory_hooks.__name__]
    assert len(lines) == 1 and "backoff" in lines[0].getMessage()


# ------------------------------------------------------------------ no I/O when off
NO_IO = """
import socket, sys, json
attempts = []
def refuse(*args, **kwargs):
    attempts.append(repr(args[:2]))
    raise OSError("network I/O attempted")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse

import shared_configs.contextvars  # the test's stand-in for Onyx's
from onyx.document_index.r2r import factory_hooks
from onyx.background.indexing import r2r_export

class S:
    status = "PRESENT"
for _ in range(200):
    assert factory_hooks.replacement_indices(S()) is None
    assert factory_hooks.with_mirror(["own"], S()) == ["own"]
    assert factory_hooks.default_index(S()) is None
    assert r2r_export.exporter_for_attempt("tenant_a", is_primary=True) is None
heavy = sorted(m for m in ("sqlalchemy", "psycopg2", "redis", "celery", "kombu", "httpx",
                           "backoff", "onyx.r2r_sender.credentials") if m in sys.modules)
print(json.dumps({"attempts": attempts, "heavy": heavy}))
"""


def _shared_configs_stub(tmp_path) -> str:
    """A ``shared_configs.contextvars`` like Onyx's (the hooks ask it for the tenant)."""
    package = tmp_path / "shared_configs"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "contextvars.py").write_text("def get_current_tenant_id():\n    return 'tenant_a'\n")
    return str(tmp_path)


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"ONYX_EXPORT_R2R": "false", "R2R_EXPORT_MODE": "replace"},
        {"ONYX_EXPORT_R2R": "false", "ONYX_INDEX_BACKEND": "opensearch"},
    ],
    ids=["unset", "false+replace", "false+opensearch"],
)
def test_no_io_and_no_engine_import_when_both_switches_are_off(tmp_path, environ, listener) -> None:
    """Onyx's search and indexing paths with the bridge off: not one connection attempt
    (a stored choice would need the ledger database) and the engine is never imported.
    The ledger database and the broker point at a loopback listener that counts every
    connection, so libpq's own sockets (not Python's) are caught too."""
    port, accepted = listener
    env = {k: v for k, v in os.environ.items() if k not in SWITCH_ENV}
    env.update(environ)
    env["ONYX_R2R_DATABASE_URL"] = f"postgresql+psycopg2://postgres@127.0.0.1:{port}/ledger"
    env["ONYX_R2R_BROKER_URL"] = f"redis://127.0.0.1:{port}/0"
    env["PYTHONPATH"] = os.pathsep.join([_shared_configs_stub(tmp_path), *sys.path])
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(NO_IO)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = proc.stdout.strip().splitlines()[-1]
    assert result == '{"attempts": [], "heavy": []}'
    time.sleep(0.3)  # a connection made at the very end would still be accepted
    assert accepted == []


@pytest.fixture
def listener() -> Iterator[tuple[int, list]]:
    """A loopback listener that records every connection made to it (and answers nothing)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    server.settimeout(0.1)
    accepted: list = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], accepted
    finally:
        stop.set()
        thread.join(2)
        for conn in accepted:
            conn.close()
        server.close()


# ------------------------------------------------------- bounded stored-choice lookups
@pytest.fixture
def silent_server() -> Iterator[int]:
    """A listening socket on loopback that accepts connections and never answers."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                accepted.append(conn)  # held open, never read or written
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        for conn in accepted:
            conn.close()
        server.close()


def _closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens here now
    return port


def _lookup_times(monkeypatch, port: int, tenants: list[str]) -> list[float]:
    from onyx.r2r_sender import BridgeSettings

    monkeypatch.setenv("ONYX_EXPORT_R2R", "true")
    settings = BridgeSettings(
        database_url=f"postgresql+psycopg2://postgres@127.0.0.1:{port}/ledger"
    )
    times = []
    for tenant in tenants:
        started = time.perf_counter()
        mode = flags.tenant_flags(tenant, settings).mode
        times.append(time.perf_counter() - started)
        assert mode == "mirror"  # the environment decides while the database is away
    return times


# The bound is Event.wait(LOOKUP_BUDGET_SECONDS) in the caller's thread; the margin above
# it only absorbs scheduling (the GIL) on a loaded two-core machine.  Without the bound a
# lookup on the silent port waits for psycopg2's connect timeout (3 s).
SLACK_SECONDS = 0.2


@pytest.fixture
def warm_engine_imports() -> None:
    """Import what a lookup uses, as an Onyx process has: SQLAlchemy's psycopg2 dialect and
    the engine's credential store (a fresh interpreter imports them once, in the lookup
    thread, and that CPU work competes with the caller for the GIL)."""
    from sqlalchemy import create_engine

    from onyx.r2r_sender import CredentialStore, export_state, host_engine  # noqa: F401

    create_engine("postgresql+psycopg2://nobody@127.0.0.1:1/none").dispose()


@pytest.mark.parametrize("where", ["closed port", "silent listener"])
def test_a_lookup_never_waits_longer_than_the_budget(
    monkeypatch, silent_server, warm_engine_imports, where
) -> None:
    port = _closed_port() if where == "closed port" else silent_server
    for name in SWITCH_ENV:
        monkeypatch.delenv(name, raising=False)
    flags.forget_tenant_cache()
    throttled.reset()
    tenants = [f"tenant_{where[0]}_{i}" for i in range(12)]
    first = _lookup_times(monkeypatch, port, tenants)  # every tenant's first lookup
    again = _lookup_times(monkeypatch, port, tenants)  # failed, or the load still hangs
    assert max(first + again) < flags.LOOKUP_BUDGET_SECONDS + SLACK_SECONDS, (first, again)
    # only one caller ever waits for a database that does not answer
    assert sum(t > flags.LOOKUP_BUDGET_SECONDS / 2 for t in first + again) <= 1, (first, again)
    flags.forget_tenant_cache()


def test_failures_are_logged_once_per_interval(monkeypatch, caplog, warm_engine_imports) -> None:
    for name in SWITCH_ENV:
        monkeypatch.delenv(name, raising=False)
    flags.forget_tenant_cache()
    throttled.reset()
    port = _closed_port()
    tenants = [f"tenant_log_{i}" for i in range(25)]
    with caplog.at_level(logging.WARNING, logger=flags.__name__):
        _lookup_times(monkeypatch, port, tenants)
        time.sleep(1.0)  # every background load has failed by now
        _lookup_times(monkeypatch, port, tenants)
    failures = [r for r in caplog.records if "could not read the stored export" in r.getMessage()]
    assert len(failures) == 1, [r.getMessage() for r in failures]
    flags.forget_tenant_cache()


def test_a_known_choice_survives_an_outage(monkeypatch) -> None:
    """The last value read stays in force while the database is away (not the env's)."""
    for name in SWITCH_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ONYX_EXPORT_R2R", "tenant")
    flags.forget_tenant_cache()
    answers = iter([(True, "replace")])

    def load(tenant_id: str, settings: Any) -> Any:
        try:
            return next(answers)
        except StopIteration:
            raise ConnectionError("database down") from None

    monkeypatch.setattr(flags._choices, "load", load)
    monkeypatch.setattr(flags, "TENANT_CACHE_SECONDS", 0.0)
    monkeypatch.setattr(flags._choices, "ttl", 0.0)
    assert flags.tenant_flags("tenant_outage", budget=5.0).mode == "replace"
    for _ in range(5):
        assert flags.tenant_flags("tenant_outage").mode == "replace"
        time.sleep(0.02)
    flags.forget_tenant_cache()


@pytest.mark.parametrize(
    ("environ", "has_index"),
    [
        ({}, True),  # Onyx's defaults: Vespa off, OpenSearch on
        ({"ENABLE_OPENSEARCH_INDEXING_FOR_ONYX": "false"}, False),
        ({"ENABLE_OPENSEARCH_INDEXING_FOR_ONYX": "False", "ONYX_DISABLE_VESPA": "true"}, False),
        ({"ENABLE_OPENSEARCH_INDEXING_FOR_ONYX": "false", "ONYX_DISABLE_VESPA": "false"}, True),
        ({"ENABLE_OPENSEARCH_INDEXING_FOR_ONYX": "false", "DISABLE_VECTOR_DB": "true"}, True),
    ],
)
def test_onyx_has_own_index_reads_onyxs_variables_with_onyxs_defaults(environ, has_index):
    from onyx.r2r_integration.flags import onyx_has_own_index

    assert onyx_has_own_index(environ) is has_index
