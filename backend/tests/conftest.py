"""Shared fixtures.

Integration tests talk to the real local stack started by ``scripts/stack up``
(PostgreSQL, Redis, the embedding stub and a real R2R 3.6.6 server).  The stack
writes its connection facts to ``.stack/stack.env``; these fixtures read them.
Nothing here fakes R2R, Postgres or Redis.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
STACK_DIR = Path(os.environ.get("STACK_DIR", REPO_ROOT / ".stack"))
STACK_ENV_FILE = STACK_DIR / "stack.env"
STACK_SCRIPT = REPO_ROOT / "scripts" / "stack"


def read_stack_env() -> dict[str, str]:
    """Return the KEY=VALUE pairs written by ``scripts/stack up``."""
    values: dict[str, str] = {}
    for line in STACK_ENV_FILE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip()
    private_db = os.environ.get("ONYX_R2R_TEST_DB", "")
    if private_db and "ONYX_R2R_TEST_DATABASE_URL" in values:
        # a checkout of its own (a second worktree) tests against a ledger database of its
        # own: a test session empties its test ledger, which must never be another's
        base, _, _ = values["ONYX_R2R_TEST_DATABASE_URL"].rpartition("/")
        values["ONYX_R2R_TEST_DATABASE_URL"] = f"{base}/{private_db}"
    return values


def _ensure_database(url: str) -> None:
    """Create the database of *url* when it is missing (the private test ledger)."""
    from sqlalchemy import create_engine, text

    base, _, name = url.rpartition("/")
    admin = create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).scalar()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()


def run_stack(*args: str) -> None:
    """Run ``scripts/stack`` with *args*; raise with its output tail on failure."""
    proc = subprocess.run([str(STACK_SCRIPT), *args], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(
            f"scripts/stack {' '.join(args)} failed ({proc.returncode}):\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )


@pytest.fixture(scope="session")
def stack() -> dict[str, str]:
    """The running local stack's facts (starts it when it is not up)."""
    run_stack("up", "--quiet")
    values = read_stack_env()
    if os.environ.get("ONYX_R2R_TEST_DB"):
        _ensure_database(values["ONYX_R2R_TEST_DATABASE_URL"])
    return values


@pytest.fixture
def tenant_id() -> Iterator[str]:
    """A fresh tenant id, so tests never see each other's documents."""
    yield f"test_{uuid.uuid4().hex[:12]}"


# --------------------------------------------------------------------------
# Engine fixtures: the ledger in the real test database, real Celery worker
# processes on a per-test queue (so tests never share tasks), real Redis.
# --------------------------------------------------------------------------
import signal  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402


def wait_until(
    predicate: Callable[[], object], timeout: float, interval: float = 0.25, what: str = "condition"
) -> object:
    """Poll *predicate* until it returns a truthy value; fail the test after *timeout*."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@pytest.fixture(scope="session")
def ledger_engine(stack: dict[str, str]):
    """SQLAlchemy engine on the migrated test ledger database."""
    from onyx.r2r_sender.ledger import get_engine
    from onyx.r2r_sender.ledger.migrate import upgrade

    engine = get_engine(stack["ONYX_R2R_TEST_DATABASE_URL"])
    upgrade(engine)
    # A test session starts from an empty test ledger: rows left by earlier runs would
    # be swept into every test worker's queue (sweeps ring all tenants with due rows).
    from sqlalchemy import text

    with engine.begin() as conn:
        conn.execute(
            text(
                "TRUNCATE r2r_bridge.document_state, r2r_bridge.document_payload, "
                "r2r_bridge.collection_map, r2r_bridge.sync_cursor, r2r_bridge.reconcile_run, "
                "r2r_bridge.tenant_config"
            )
        )
    return engine


@pytest.fixture
def settings(stack: dict[str, str], ledger_engine):
    """Bridge settings for one test: the real stack, a private queue, fast retries."""
    from onyx.r2r_sender.config import BridgeSettings

    return BridgeSettings(
        r2r_base_url=stack["R2R_BASE_URL"],
        database_url=stack["ONYX_R2R_TEST_DATABASE_URL"],
        broker_url=stack["ONYX_R2R_BROKER_URL"],
        queue=f"r2r_mirror_test_{uuid.uuid4().hex[:10]}",
        sweep_interval_seconds=1.0,
        retry_base_seconds=0.5,
        retry_cap_seconds=5.0,
        breaker_cooldown_seconds=2.0,
        breaker_max_cooldown_seconds=5.0,
        client_retry_max_time=3.0,
        drain_slice_seconds=5.0,
    ).with_overrides(
        r2r_api_key=stack["R2R_API_KEY"],
        # workers log in (JWT): R2R bcrypt-checks API keys on every request
        r2r_email=stack["R2R_ADMIN_EMAIL"],
        r2r_password=stack["R2R_ADMIN_PASSWORD"],
    )


def settings_env(settings) -> dict[str, str]:
    """Environment variables that make a child process use *settings*."""
    return settings.to_env()


@dataclass
class WorkerProcess:
    """A real ``onyx-r2r worker`` child process."""

    proc: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill9(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill9()


@dataclass
class WorkerFactory:
    settings: object
    tmp: Path
    workers: list[WorkerProcess] = field(default_factory=list)

    def start(
        self, *, concurrency: int = 4, beat: bool = True, name: str | None = None, wait: bool = True
    ) -> WorkerProcess:
        """Start a worker process on the test's queue; wait until Celery says ready."""
        index = len(self.workers)
        log_path = self.tmp / f"worker{index}.log"
        env = {**os.environ, **settings_env(self.settings), "PYTHONUNBUFFERED": "1"}
        cmd = [
            sys.executable,
            "-m",
            "onyx.r2r_sender.cli",
            "worker",
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "INFO",
            "--hostname",
            f"{name or f'w{index}'}-{uuid.uuid4().hex[:6]}@%h",
            "--schedule-file",
            str(self.tmp / f"beat{index}"),
        ]
        if beat:
            cmd.append("--beat")
        handle = open(log_path, "w")
        proc = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=self.tmp)
        worker = WorkerProcess(proc, log_path)
        self.workers.append(worker)
        if wait:
            wait_until(
                lambda: " ready." in worker.log() or not worker.alive(), 60, what="worker ready"
            )
            assert worker.alive(), f"worker died at start:\n{worker.log()[-3000:]}"
        return worker

    def stop_all(self) -> None:
        for worker in self.workers:
            worker.stop()


@pytest.fixture
def workers(settings, tmp_path: Path) -> Iterator[WorkerFactory]:
    """Start real worker processes for the test; all are stopped afterwards."""
    factory = WorkerFactory(settings=settings, tmp=tmp_path)
    yield factory
    factory.stop_all()


@pytest.fixture
def r2r_client(stack: dict[str, str]):
    """A real R2R client with the stack's superuser key."""
    from onyx.r2r_sender.client import R2RClient

    with R2RClient(stack["R2R_BASE_URL"], stack["R2R_API_KEY"]) as client:
        yield client


@pytest.fixture
def make_sender(settings):
    """Build an R2RDocumentSender for a tenant with the test's settings."""
    from onyx.r2r_integration.sender import R2RDocumentSender

    def build(tenant_id: str, **kwargs):
        return R2RDocumentSender(tenant_id=tenant_id, settings=settings, **kwargs)

    return build


@pytest.fixture
def embed_stub(stack: dict[str, str]) -> Iterator[Callable[..., dict]]:
    """Control the embedding stub (``fail_embeddings``, ``delay_seconds``); reset afterwards."""
    import httpx

    url = stack["EMBED_STUB_URL"]

    def control(**settings_: object) -> dict:
        if settings_:
            httpx.post(f"{url}/control", json=settings_, timeout=5).raise_for_status()
        return httpx.get(f"{url}/control", timeout=5).json()

    yield control
    httpx.post(f"{url}/control/reset", timeout=5).raise_for_status()
