"""Running real Context Chat Backend (CCBE) processes for the end-to-end tests and the demo.

* :func:`prepared_checkout`: a copy of a CCBE checkout with this project's overlay and
  patches installed by ``patches/apply --host ccbe`` (the way an image build does it).
* :class:`CcbeProcess`: CCBE's own ``main.py`` in the CCBE virtualenv
  (``scripts/ccbe_venv``), in a session of its own (``setsid``); stopping it kills that
  process group (CCBE's forkserver and resource tracker included: a plain SIGTERM leaves
  uvicorn waiting for its threads for 20 s and more).
* :class:`EmbedStub`: a private instance of the stack's deterministic embedding stub
  (``scripts/r2r/embed_stub.py``): its counters belong to one test run.
* :class:`TcpGate`: a TCP forwarder in front of a server (the embedding stub, or R2R) whose
  listening port can be closed and reopened: "the store is down" for CCBE without stopping
  a server other tests share.
* :class:`ExAppClient`: requests to CCBE signed the way AppAPI signs them.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fake_nextcloud import appapi_headers, free_port

REPO = Path(__file__).resolve().parents[2]
APPLY = REPO / "patches" / "apply"
EMBED_STUB = REPO / "scripts" / "r2r" / "embed_stub.py"

__all__ = [
    "CcbeProcess",
    "EmbedStub",
    "ExAppClient",
    "TcpGate",
    "checkout_version",
    "prepared_checkout",
]


def checkout_version(checkout: Path) -> str:
    """The CCBE version in *checkout*'s ``appinfo/info.xml`` (``5.4.0``)."""
    match = re.search(
        r"<version>([0-9.]+)</version>", (checkout / "appinfo" / "info.xml").read_text()
    )
    if not match:
        raise ValueError(f"{checkout} has no <version> in appinfo/info.xml")
    return match.group(1)


def prepared_checkout(source: Path, dest: Path) -> Path:
    """Copy the CCBE checkout *source* (a work tree, or a bare/git directory: its HEAD) to
    *dest* and install the overlay and patches into the copy with ``patches/apply --host
    ccbe``. Raises ``RuntimeError`` with the tool's report when a patch does not fit."""
    dest.mkdir(parents=True)
    is_git_dir = (source / "HEAD").is_file() and not (source / "appinfo").is_dir()
    if is_git_dir:
        archive = subprocess.run(
            ["git", "-C", str(source), "archive", "--format=tar", "HEAD"],
            capture_output=True,
            check=True,
        )
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(dest, filter="data")
    else:
        shutil.copytree(source, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".git"))
    result = subprocess.run(
        [str(APPLY), "--host", "ccbe", str(dest)], capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0:
        raise RuntimeError(f"patches/apply --host ccbe failed:\n{result.stdout}\n{result.stderr}")
    return dest


def _wait_port(host: str, port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection((host, port), 0.5):
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(
                f"the process exited ({proc.returncode}) before {host}:{port} opened"
            )
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listens on {host}:{port} after {timeout:.0f} s")
        time.sleep(0.2)


def _stop_group(proc: subprocess.Popen, grace: float) -> None:
    """SIGTERM to *proc*'s process group (its own session), SIGKILL after *grace* seconds."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)


@dataclass
class EmbedStub:
    """The stack's embedding stub on a private port (system ``python3``, own session)."""

    port: int = field(default_factory=free_port)
    log: Path | None = None
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> EmbedStub:
        with open(self.log or os.devnull, "ab") as out:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                ["python3", str(EMBED_STUB), "--host", "127.0.0.1", "--port", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait_port("127.0.0.1", self.port, 30, self.proc)
        return self

    def embedded_texts(self) -> int:
        """How many texts the stub embedded since it started."""
        return int(httpx.get(f"{self.url}/health", timeout=10).json()["embedded_texts"])

    def stop(self) -> None:
        if self.proc is not None:
            _stop_group(self.proc, 5)


class TcpGate:
    """Forwards ``127.0.0.1:port`` to *target* (host, port) while open.

    :meth:`close` stops listening and cuts the live connections (a client then gets
    "connection refused", as from a stopped server); :meth:`open` listens again on the same
    port. Nothing is altered in between: bytes pass through unchanged.
    """

    def __init__(self, target: tuple[str, int], port: int | None = None) -> None:
        self.target = target
        self.port = port or free_port()
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def open(self) -> TcpGate:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def close(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, set()
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, 10)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._conns |= {client, upstream}
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._conns -= {src, dst}


@dataclass
class CcbeProcess:
    """CCBE's ``main.py`` from a prepared checkout, run by the CCBE virtualenv's Python.

    *env* is added to a minimal environment (``PATH``, ``HOME``, the offline Hugging Face
    settings of ``scripts/ccbe_venv``); *storage* becomes ``APP_PERSISTENT_STORAGE`` and gets
    the checkout's ``config.cpu.yaml`` as ``config.yaml`` (``debug: true``, as shipped).
    """

    checkout: Path
    venv: Path
    storage: Path
    env: Mapping[str, str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180) -> CcbeProcess:
        self.storage.mkdir(parents=True, exist_ok=True)
        config = self.storage / "config.yaml"
        if not config.exists():
            shutil.copy(self.checkout / "config.cpu.yaml", config)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "HF_HOME": str(self.venv / "hf-home"),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "CC_DOWNLOAD_MODELS_FROM_HF": "false",
            "PYTHONDONTWRITEBYTECODE": "1",
            "COMPUTE_DEVICE": "CPU",
            "APP_HOST": "127.0.0.1",
            "APP_PORT": str(self.port),
            "APP_PERSISTENT_STORAGE": str(self.storage),
            "CI": "true",
            **self.env,
        }
        self.log_path = self.storage / "main.log"
        with open(self.log_path, "ab") as out:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [str(self.venv / "bin" / "python"), "-u", "main.py"],
                cwd=self.checkout,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            _wait_port("127.0.0.1", self.port, timeout, self.proc)
        except RuntimeError as e:
            raise RuntimeError(f"{e}\n--- CCBE output ---\n{self.output()[-4000:]}") from None
        return self

    def output(self) -> str:
        """What ``main.py`` printed (stdout and stderr)."""
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def log_records(self) -> list[dict[str, Any]]:
        """CCBE's JSON log (``logs/ccb.log`` in the persistent storage; every ``ccb.*`` logger
        at DEBUG with the shipped ``debug: true``)."""
        records = []
        for path in sorted((self.storage / "logs").glob("ccb.log*")):
            for line in path.read_text(errors="replace").splitlines():
                with contextlib.suppress(ValueError):
                    records.append(json.loads(line))
        return records

    def stop(self) -> None:
        if self.proc is not None:
            _stop_group(self.proc, 3)


class ExAppClient:
    """HTTP requests to CCBE as AppAPI sends them (signed; ``user`` empty = system calls)."""

    def __init__(self, base_url: str, app_id: str, app_version: str, secret: str) -> None:
        self.base_url = base_url
        self.app_id = app_id
        self.app_version = app_version
        self.secret = secret
        self.http = httpx.Client(base_url=base_url, timeout=600)

    def headers(self, user: str = "", **changes: str) -> dict[str, str]:
        headers = appapi_headers(self.app_id, self.app_version, self.secret, user)
        headers.update(changes)
        return headers

    def request(self, method: str, path: str, *, user: str = "", **kwargs: Any) -> httpx.Response:
        headers = {**self.headers(user), **kwargs.pop("headers", {})}
        return self.http.request(method, path, headers=headers, **kwargs)

    def close(self) -> None:
        self.http.close()


@contextlib.contextmanager
def running(*things: Any) -> Iterator[None]:
    """Stop (``stop()``/``close()``) each started thing on exit, last first."""
    try:
        yield
    finally:
        for thing in reversed(things):
            with contextlib.suppress(Exception):
                (getattr(thing, "stop", None) or thing.close)()
