"""The running Onyx of ``scripts/onyx_e2e``: started once per session, stopped at the end.

Nothing here runs without the script (``ONYX_E2E_ENV_FILE``): the tests skip, saying how
to run them. The session fixture :func:`onyx` starts one API server, Onyx's Celery
workers and beat, and the mirror worker (:mod:`.onyx_procs`), logs in the first user
(Onyx makes it the admin), gives the LiteLLM embedding provider its key through Onyx's
API, and offers the ledger (private database) and R2R (the stack's, read-only use) to the
tests. Figures go to ``ONYX_E2E_TIMINGS``; the script prints them.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ENV_FILE = os.environ.get("ONYX_E2E_ENV_FILE", "")
SKIP_REASON = "end-to-end check with a real Onyx: run scripts/onyx_e2e ONYX_SOURCE_DIR"
TENANT = "public"  # Onyx's single-tenant schema


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Timings:
    """Figures of the run, appended to the script's timings file as ``name<TAB>seconds``."""

    path: Path | None
    values: dict[str, float] = field(default_factory=dict)

    def note(self, text: str) -> None:
        """A line the script prints after the timings (what was compared, outcomes)."""
        if self.path is not None:
            with open(self.path.with_name("notes.txt"), "a") as handle:
                handle.write(text.replace("\n", " ") + "\n")

    def record(self, name: str, seconds: float) -> None:
        self.values[name] = seconds
        if self.path is not None:
            with open(self.path, "a") as handle:
                handle.write(f"{name}\t{seconds:.1f}\n")


@dataclass
class OnyxE2E:
    """Everything a test needs: the processes, an admin client, the ledger, R2R."""

    procs: Any  # OnyxProcesses
    api: Any  # OnyxApi (the admin)
    env: dict[str, str]
    ledger: Any  # SQLAlchemy engine on the private ledger
    r2r: Any  # the engine's R2RClient on the stack's R2R
    redis: Any  # the private Redis (mirror counters on the broker database)
    timings: Timings
    state: dict[str, Any] = field(default_factory=dict)  # shared between ordered tests

    # ---------------------------------------------------------------- the ledger
    def ledger_rows(self, document_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The ledger's state of these Onyx documents (absent: never recorded)."""
        from sqlalchemy import text

        with self.ledger.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT document_id, status, desired_seq, desired_version, desired_deleted,"
                    " desired_labels, applied_seq, applied_version, applied_deleted,"
                    " applied_r2r_id, applied_labels FROM r2r_bridge.document_state"
                    " WHERE tenant_id = :tenant AND document_id = ANY(:ids)"
                ),
                {"tenant": TENANT, "ids": list(document_ids)},
            ).mappings()
            return {row["document_id"]: dict(row) for row in rows}

    def ledger_count(self) -> int:
        """How many documents the ledger holds for the tenant."""
        from sqlalchemy import text

        with self.ledger.connect() as conn:
            return int(
                conn.execute(
                    text("SELECT count(*) FROM r2r_bridge.document_state WHERE tenant_id = :t"),
                    {"t": TENANT},
                ).scalar_one()
            )

    def ledger_unsettled(self) -> int:
        """Documents of the tenant not yet applied as desired (pending, retrying, …)."""
        from sqlalchemy import text

        with self.ledger.connect() as conn:
            return int(
                conn.execute(
                    text(
                        "SELECT count(*) FROM r2r_bridge.document_state WHERE tenant_id = :t"
                        " AND (status <> 'synced' OR applied_seq IS DISTINCT FROM desired_seq)"
                    ),
                    {"t": TENANT},
                ).scalar_one()
            )

    def ledger_documents_like(self, pattern: str) -> list[str]:
        from sqlalchemy import text

        with self.ledger.connect() as conn:
            return [
                row[0]
                for row in conn.execute(
                    text(
                        "SELECT document_id FROM r2r_bridge.document_state"
                        " WHERE tenant_id = :tenant AND document_id LIKE :pattern"
                    ),
                    {"tenant": TENANT, "pattern": pattern},
                )
            ]

    def synced(self, document_ids: list[str]) -> bool:
        """Every document applied in R2R as desired (live, or deleted when deleted)."""
        rows = self.ledger_rows(document_ids)
        return len(rows) == len(document_ids) and all(
            row["status"] == "synced" and row["applied_seq"] == row["desired_seq"]
            for row in rows.values()
        )

    def r2r_writes(self) -> int:
        """The mirror's R2R write counter of the tenant (private Redis: this run only)."""
        raw = self.redis.hget(f"onyx_r2r:count:{TENANT}", "r2r_writes")
        return int(raw or 0)

    # ---------------------------------------------------------------- R2R
    def _r2r(self, call: Any, *, patience: float = 120.0) -> Any:
        """Run a read against the stack's shared R2R, waiting out a restart of it by
        someone else (connection refused for a while) instead of failing the check."""
        from onyx.r2r_sender.errors import R2RRetryableError

        deadline = time.monotonic() + patience
        while True:
            try:
                return call()
            except R2RRetryableError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(3.0)

    def r2r_documents(self, document_ids: list[str]) -> dict[str, Any]:
        """R2R's live documents of these Onyx documents (by the ledger's applied ids)."""
        rows = self.ledger_rows(document_ids)
        wanted = {
            str(row["applied_r2r_id"]): doc_id
            for doc_id, row in rows.items()
            if row["applied_r2r_id"] is not None and not row["applied_deleted"]
        }
        found = self._r2r(lambda: self.r2r.list_documents(list(wanted))) if wanted else []
        return {wanted[str(doc.id)]: doc for doc in found}

    def r2r_documents_of(self, onyx_document_id: str) -> list[Any]:
        """Every R2R document (any version) carrying this Onyx document id in its metadata."""
        from onyx.r2r_sender.hosts import ONYX

        scope = ONYX.scope(TENANT)
        found = []
        for doc in self._r2r(lambda: list(self.r2r.iter_all_documents())):
            meta = doc.metadata or {}
            if (
                meta.get("tenant_id") == scope.key
                and meta.get("source_document_id") == onyx_document_id
            ):
                found.append(doc)
        return found

    def collection_labels(self, r2r_document_id: Any) -> set[str]:
        """The bridge labels (``acl:…``, ``docset:…``) of an R2R document's collections."""
        from onyx.r2r_sender.hosts import ONYX

        scope = ONYX.scope(TENANT)
        labels = set()
        for collection in self._r2r(lambda: self.r2r.list_document_collections(r2r_document_id)):
            label = scope.label_of(collection.name)
            if label is not None:
                labels.add(label)
        return labels


class ConnectionPeak:
    """Samples how many PostgreSQL connections Onyx's and the ledger's databases hold."""

    def __init__(self, engine: Any, databases: list[str]) -> None:
        self.engine, self.databases, self.peak = engine, databases, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from sqlalchemy import text

        while not self._stop.wait(1.0):
            try:
                with self.engine.connect() as conn:
                    count = conn.execute(
                        text("SELECT count(*) FROM pg_stat_activity WHERE datname = ANY(:dbs)"),
                        {"dbs": self.databases},
                    ).scalar_one()
                self.peak = max(self.peak, int(count) - 1)  # minus this sampler's own
            except Exception:
                continue

    def __enter__(self) -> ConnectionPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@pytest.fixture(scope="session")
def onyx() -> Iterator[OnyxE2E]:
    if not ENV_FILE:
        pytest.skip(SKIP_REASON)
    import redis

    from onyx.r2r_sender.client import R2RClient
    from onyx.r2r_sender.ledger import get_engine

    from .onyx_api import OnyxApi
    from .onyx_procs import OnyxProcesses, read_env_file

    work = Path(os.environ["ONYX_E2E_WORK"])
    env = read_env_file(Path(ENV_FILE))
    timings = Timings(
        Path(os.environ["ONYX_E2E_TIMINGS"]) if os.environ.get("ONYX_E2E_TIMINGS") else None
    )
    procs = OnyxProcesses(
        work=work,
        venv=Path(os.environ["ONYX_E2E_VENV"]),
        backend_dir=Path(os.environ["ONYX_E2E_SRC"]) / "backend",
        env=env,
        api_port=_free_port(),
    )
    ledger = get_engine(env["ONYX_R2R_DATABASE_URL"])
    r2r = R2RClient(env["R2R_BASE_URL"], email=env["R2R_EMAIL"], password=env["R2R_PASSWORD"])
    broker = redis.Redis.from_url(env["ONYX_R2R_BROKER_URL"])
    api = None
    peak = ConnectionPeak(
        ledger, [env["POSTGRES_DB"], env["ONYX_R2R_DATABASE_URL"].rsplit("/", 1)[1]]
    ).__enter__()
    try:
        start = time.monotonic()
        # the API server first: its start-up creates what the workers expect (search
        # settings swap, default cc-pair); Onyx opens ~40 PostgreSQL connections here
        procs.start("api")
        timings.record("API server ready (/health)", procs.wait_ready("api"))
        for name in ("primary", "light", "heavy", "docprocessing", "docfetching", "beat", "mirror"):
            procs.start(name)
        slowest = max(
            procs.wait_ready(name)
            for name in (
                "primary",
                "light",
                "heavy",
                "docprocessing",
                "docfetching",
                "beat",
                "mirror",
            )
        )
        timings.record("workers ready (slowest, started together)", slowest)
        timings.record("Onyx up (API + 6 Celery processes + mirror)", time.monotonic() - start)
        api = OnyxApi(procs.api_url)
        api.register_and_login(
            f"admin-{uuid.uuid4().hex[:6]}@e2e.example.com", "E2e-admin-Passw0rd!"
        )
        # the LiteLLM provider's key (the stub ignores it; Onyx insists on one) through
        # Onyx's own API, which encrypts it
        api.request(
            "PUT",
            "/admin/embedding/embedding-provider",
            json={
                "provider_type": "litellm",
                "api_key": "stub-key",
                "api_url": os.environ["ONYX_E2E_EMBED_STUB_URL"] + "/v1/embeddings",
            },
        )
        yield OnyxE2E(procs, api, env, ledger, r2r, broker, timings)
    finally:
        peak.__exit__(None, None, None)
        timings.record("peak PostgreSQL connections (Onyx + ledger databases)", peak.peak)
        if api is not None:
            api.close()
        procs.stop_all()
        r2r.close()
        ledger.dispose()
        broker.close()
