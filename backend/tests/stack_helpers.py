"""Helpers shared by the tests (not fixtures): the local stack, polling, worker processes.

A plain module, so test modules import from it by name (``from stack_helpers import …``)
while each ``conftest.py`` owns only fixtures.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


def ensure_database(url: str) -> None:
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


def run_stack(*args: str, timeout: float = 600) -> None:
    """Run ``scripts/stack`` with *args* (``up --quiet``, ``stop-r2r``, …); raise with its
    output tail on failure."""
    proc = subprocess.run(
        [str(STACK_SCRIPT), *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"scripts/stack {' '.join(args)} failed ({proc.returncode}):\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )


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


def write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write *rows* as JSON lines (keys sorted) to *path*; return *path*."""
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, sort_keys=True) + "\n")
    return path


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
