"""Onyx's processes for the end-to-end check: one API server, Onyx's Celery workers, the mirror.

Each process runs in its own session (``start_new_session``: its own process group), with
the environment of ``scripts/onyx_e2e``'s env file, its output in ``<work>/logs/<name>.log``
and its process-group id in ``<work>/pgids/<name>``, so the script's exit trap kills
whatever a crashed test run left behind. :meth:`OnyxProcesses.stop_all` (the session
fixture's finalizer) stops them all: SIGTERM to the group, SIGKILL after a grace period.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

# Onyx a7d66a8's workers as its supervisord.conf starts them (app module, queues); the
# monitoring, user-file and scheduled-task workers serve nothing this check uses
CELERY_WORKERS: dict[str, tuple[str, str]] = {
    "primary": ("primary", "celery"),
    "light": (
        "light",
        "vespa_metadata_sync,connector_deletion,doc_permissions_upsert,checkpoint_cleanup,"
        "index_attempt_cleanup,opensearch_migration,chat_ttl_deletion",
    ),
    "heavy": (
        "heavy",
        "connector_pruning,connector_doc_permissions_sync,connector_external_group_sync,"
        "csv_generation,sandbox,connector_hierarchy_fetching",
    ),
    "docprocessing": ("docprocessing", "docprocessing,port"),
    "docfetching": ("docfetching", "connector_doc_fetching"),
}


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of the script's env file."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key] = value
    return values


@dataclass
class OnyxProcess:
    """One started process (its own process group)."""

    name: str
    proc: subprocess.Popen
    log_path: Path
    started: float

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass


@dataclass
class OnyxProcesses:
    """Starts, watches and stops Onyx's processes for one end-to-end run."""

    work: Path
    venv: Path
    backend_dir: Path
    env: dict[str, str]
    api_port: int
    procs: dict[str, OnyxProcess] = field(default_factory=dict)
    generation: dict[str, int] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def _argv(self, name: str) -> list[str]:
        bin_dir = self.venv / "bin"
        if name == "api":
            return [
                str(bin_dir / "uvicorn"), "onyx.main:app",
                "--host", "127.0.0.1", "--port", str(self.api_port),
            ]  # fmt: skip
        if name == "beat":
            return [
                str(bin_dir / "celery"), "-A", "onyx.background.celery.versioned_apps.beat",
                "beat", "--loglevel=INFO", "-s", str(self.work / "celerybeat-schedule"),
            ]  # fmt: skip
        if name == "mirror":
            return [
                str(bin_dir / "python"), "-m", "onyx.r2r_sender.cli", "worker", "--beat",
                "--concurrency", "4", "--hostname", "r2r_mirror_e2e@%h",
                "--schedule-file", str(self.work / "mirror-schedule"),
            ]  # fmt: skip
        app, queues = CELERY_WORKERS[name]
        return [
            str(bin_dir / "celery"), "-A", f"onyx.background.celery.versioned_apps.{app}",
            "worker", f"--hostname={name}@%h", "-Q", queues, "--loglevel=INFO",
        ]  # fmt: skip

    def start(
        self,
        name: str,
        *,
        kind: str | None = None,
        extra_env: dict[str, str] | None = None,
        backend_dir: Path | None = None,
    ) -> OnyxProcess:
        """Start *name*: ``kind`` (default: *name*) is api, beat, mirror or a key of
        :data:`CELERY_WORKERS`; ``backend_dir`` runs another copy of Onyx's backend."""
        count = self.generation.get(name, 0)
        self.generation[name] = count + 1
        log_path = self.work / "logs" / (f"{name}.log" if count == 0 else f"{name}-{count}.log")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            **self.env,
            **(extra_env or {}),
        }
        with open(log_path, "w") as handle:
            proc = subprocess.Popen(
                self._argv(kind or name),
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=backend_dir or self.backend_dir,
                start_new_session=True,
            )
        (self.work / "pgids" / name).write_text(str(proc.pid))
        started = OnyxProcess(name, proc, log_path, time.monotonic())
        self.procs[name] = started
        return started

    def wait_ready(self, name: str, *, timeout: float = 240.0) -> float:
        """Wait until *name* serves (API: ``/health``; Celery: its ``ready.`` line); seconds."""
        process = self.procs[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not process.alive():
                raise RuntimeError(
                    f"{name} exited ({process.proc.returncode}):\n{process.log()[-3000:]}"
                )
            if name == "api":
                try:
                    if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                        return time.monotonic() - process.started
                except httpx.HTTPError:
                    pass
            else:
                text = process.log()
                marker = "beat: Starting" if name == "beat" else " ready."
                if marker in text:
                    return time.monotonic() - process.started
            time.sleep(0.5)
        raise TimeoutError(f"{name} not ready in {timeout:.0f} s:\n{process.log()[-3000:]}")

    def wait_exit(self, name: str, *, timeout: float = 240.0) -> int:
        """Wait until *name* exits by itself; its exit code."""
        return self.procs[name].proc.wait(timeout=timeout)

    def kill9(self, name: str) -> None:
        """SIGKILL the whole process group of *name* and reap it."""
        process = self.procs[name]
        process.signal_group(signal.SIGKILL)
        process.proc.wait(timeout=30)

    def stop(self, name: str, *, grace: float = 15.0) -> None:
        process = self.procs.get(name)
        if process is None:
            return
        process.signal_group(signal.SIGTERM)
        try:
            process.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.signal_group(signal.SIGKILL)
            process.proc.wait(timeout=30)
        # the group may outlive its leader (Celery's children): make sure it is gone
        process.signal_group(signal.SIGKILL)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.procs[name].signal_group(signal.SIGTERM)
        for name in list(self.procs):
            self.stop(name, grace=10.0)
