"""Where a service account's R2R login token (JWT) is kept between processes.

R2R 3.6.6 bcrypt-checks an API key on every request and a password at every login (about
0.45 s each on two cores). A host that runs every storage operation in a fresh process
(Nextcloud's Context Chat Backend) would pay one login per operation with an in-memory
token only. A :class:`TokenStore` lets every process of one host share the token:
:class:`~onyx.r2r_sender.client_auth.LoginAuth` reads it before its first request, logs in
(and saves the new token) only when there is none or R2R answered 401, and holds the
store's lock while it does, so concurrent processes log in once, not once each.

:class:`FileTokenStore` keeps the tokens in one JSON file (mode 0600, written atomically),
one entry per R2R server × account, and locks with ``fcntl.flock`` on a sibling lock file.
The token is a credential: it never appears in a ``repr``, a log line or an error.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

logger = logging.getLogger(__name__)

__all__ = ["FileTokenStore", "TokenStore", "token_key"]


def token_key(base_url: str, email: str) -> str:
    """The store key of one account on one server (a hash: no address or e-mail on disk)."""
    return hashlib.sha256(f"{base_url.rstrip('/')}\x00{email}".encode()).hexdigest()[:32]


@runtime_checkable
class TokenStore(Protocol):
    """Login tokens shared by the processes of one host (see the module docstring)."""

    def load(self, key: str) -> str | None:
        """The saved token of *key*, or ``None``; never raises (an unreadable store is empty)."""
        ...

    def save(self, key: str, token: str | None) -> None:
        """Save (``None``: forget) the token of *key*; never raises (failures are logged)."""
        ...

    def locked(self) -> contextlib.AbstractContextManager[None]:
        """A lock held across processes while one of them logs in."""
        ...


class FileTokenStore:
    """Tokens in a JSON file (0600), locked with ``fcntl.flock``; cheap to build (no I/O).

    The directory is created (0700) on the first save. Pickles as its path.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._thread_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FileTokenStore({str(self.path)!r})"

    def __reduce__(self) -> tuple[object, ...]:
        return (FileTokenStore, (str(self.path),))

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return (
            {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}
        )

    def load(self, key: str) -> str | None:
        return self._read().get(key)

    def save(self, key: str, token: str | None) -> None:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            data = self._read()
            if token is None:
                data.pop(key, None)
            else:
                data[key] = token
            fd, tmp = tempfile.mkstemp(prefix=".tokens-", dir=self.path.parent)
            try:
                os.fchmod(fd, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    json.dump(data, out)
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as e:
            # the store also keeps other values than login tokens (CCBE: collection ids)
            logger.warning("cannot save %s in %s: %s", self.path.name, self.path.parent, e)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with self._thread_lock:
            try:
                self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                handle = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as e:  # no lock file: log in without one (a second login is harmless)
                logger.warning("cannot lock %s: %s", self.lock_path, e)
                yield
                return
            try:
                fcntl.flock(handle, fcntl.LOCK_EX)
                yield
            finally:
                with contextlib.suppress(OSError):
                    fcntl.flock(handle, fcntl.LOCK_UN)
                os.close(handle)
