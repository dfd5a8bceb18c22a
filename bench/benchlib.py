"""Shared plumbing of the benchmarks: the local stack, settings, worker processes, corpora.

Benchmarks run against the real local stack (``scripts/stack up``) and print
ratios measured side by side in one run; they never assert on timings.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from sample_corpus import make_corpus  # noqa: E402

from onyx.r2r_sender.config import BridgeSettings  # noqa: E402
from onyx.r2r_sender.ledger import get_engine, migrate  # noqa: E402


def stack_dir() -> Path:
    """The stack's state directory: ``$STACK_DIR``, as ``scripts/stack`` uses it."""
    return Path(os.environ.get("STACK_DIR") or REPO / ".stack")


def stack_env() -> dict[str, str]:
    """The facts ``scripts/stack up`` wrote (brings the stack up first), read as the tests
    read them: ``STACK_DIR`` names the stack (default ``<repo>/.stack``) and
    ``ONYX_R2R_TEST_DB`` a test ledger database of this checkout's own, created when missing.
    """
    subprocess.run([str(REPO / "scripts" / "stack"), "up", "--quiet"], check=True)
    sys.path.insert(0, str(REPO / "backend" / "tests"))
    from stack_helpers import ensure_database
    from stack_helpers import read_stack_env as read_tests_stack_env  # as the tests read it

    values = read_tests_stack_env()
    if os.environ.get("ONYX_R2R_TEST_DB"):
        ensure_database(values["ONYX_R2R_TEST_DATABASE_URL"])
    return values


def read_stack_env(directory: Path) -> dict[str, str]:
    """The KEY=VALUE facts in *directory*/stack.env (a private instance's, see private_stack)."""
    values: dict[str, str] = {}
    for line in (directory / "stack.env").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    return values


def bench_settings(env: dict[str, str], **overrides: Any) -> BridgeSettings:
    """Settings on the test ledger database with a private queue, logging in (JWT)."""
    settings = BridgeSettings(
        r2r_base_url=env["R2R_BASE_URL"],
        database_url=env["ONYX_R2R_TEST_DATABASE_URL"],
        broker_url=env["ONYX_R2R_BROKER_URL"],
        queue=f"r2r_mirror_bench_{uuid.uuid4().hex[:8]}",
        sweep_interval_seconds=2.0,
    ).with_overrides(
        r2r_email=env["R2R_ADMIN_EMAIL"], r2r_password=env["R2R_ADMIN_PASSWORD"], **overrides
    )
    migrate.upgrade(get_engine(settings.database_url))
    return settings


@contextmanager
def worker_process(
    settings: BridgeSettings, *, concurrency: int = 8, log: Path | None = None
) -> Iterator[subprocess.Popen]:
    """A real ``onyx-r2r worker`` process (with beat) for the duration of the block."""
    log = log or Path(f"/tmp/bench-worker-{uuid.uuid4().hex[:6]}.log")
    handle = open(log, "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "onyx.r2r_sender.cli",
            "worker",
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "WARNING",
            "--beat",
            "--schedule-file",
            f"{log}.beat",
        ],
        stdout=handle,
        stderr=subprocess.STDOUT,
        env={**os.environ, **settings.to_env()},
        start_new_session=True,  # its own process group: the beat child goes with it
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"worker died: {log.read_text()[-2000:]}")
            if _celery_ready(settings):
                break
            time.sleep(0.2)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        # Celery's embedded beat is a child process that can outlive the worker; left
        # running, it keeps queueing sweeps for a queue nobody consumes
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        handle.close()


def _celery_ready(settings: BridgeSettings) -> bool:
    from onyx.r2r_sender.celery_app import build_app

    app = build_app(settings)
    try:
        return bool(app.control.ping(timeout=0.5))
    finally:
        app.close()


def wait_synced(ledger: Any, tenant_id: str, timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    while ledger.pending_count(tenant_id) > 0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"tenant {tenant_id} still has pending documents")
        time.sleep(0.1)


class DocumentSource(str, Enum):  # noqa: UP042 - shaped like Onyx's enum
    """Shaped like Onyx's enum (configs/constants.py): a str enum with ``.value``."""

    CONFLUENCE = "confluence"
    SALESFORCE = "salesforce"
    GOOGLE_DRIVE = "google_drive"
    ZENDESK = "zendesk"


class TextSection(BaseModel):
    text: str
    link: str | None = None


class ExternalAccess(BaseModel):
    external_user_emails: set[str] = set()
    external_user_group_ids: set[str] = set()
    is_public: bool = False


class Document(BaseModel):
    """Shaped like Onyx's ``connectors.models.Document`` (the fields docfetching fills)."""

    id: str
    sections: list[TextSection]
    source: DocumentSource
    semantic_identifier: str
    metadata: dict[str, str | list[str]]
    doc_updated_at: datetime | None = None
    title: str | None = None
    external_access: ExternalAccess | None = None


def onyx_documents(count: int, *, prefix: str, seed: int = 1) -> list[Document]:
    """*count* pydantic documents shaped like Onyx's, from the sample corpus generator."""
    docs = []
    for raw in make_corpus(count, seed=seed, prefix=prefix):
        acl = raw["acl"]
        docs.append(
            Document(
                id=raw["id"],
                sections=[TextSection(**s) for s in raw["sections"]],
                source=DocumentSource(raw["source"]),
                semantic_identifier=raw["semantic_identifier"],
                metadata=raw["metadata"],
                doc_updated_at=datetime.fromisoformat(raw["doc_updated_at"]),
                external_access=ExternalAccess(
                    external_user_emails={
                        a.split(":", 1)[1] for a in acl if a.startswith("user_email:")
                    },
                    external_user_group_ids={
                        a.split(":", 1)[1] for a in acl if a.startswith("group:")
                    },
                    is_public="PUBLIC" in acl,
                ),
            )
        )
    return docs


def best_of(runs: int, fn: Callable[[], float]) -> float:
    """The fastest of *runs* measurements (seconds) returned by *fn*."""
    return min(fn() for _ in range(runs))
