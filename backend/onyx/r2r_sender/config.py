"""Settings of the bridge engine, read from the environment.

Every knob has a safe default for a single-tenant install; hosts (Onyx, tests,
the CLI) may also build :class:`BridgeSettings` directly.  The R2R API key is
held as a :class:`Secret` so it never shows up in a repr or a log line.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any, TypeVar

T = TypeVar("T", int, float)

DEFAULT_DATABASE_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/onyx_r2r"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/15"
MIRROR_QUEUE = "r2r_mirror"


class Secret:
    """A string that never prints itself (repr/str give ``'***'``)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        """Return the secret value; only hand it to the code that must send it."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _env_number(name: str, default: T, cast: Callable[[str], T]) -> T:
    """The variable *name* parsed with *cast* (int or float), else *default*."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return cast(raw)
    except ValueError as exc:
        kind = "an integer" if cast is int else "a number"
        raise ValueError(f"{name} must be {kind}, got {raw!r}") from exc


def _env_float(name: str, default: float) -> float:
    return _env_number(name, default, float)


def _env_int(name: str, default: int) -> int:
    return _env_number(name, default, int)


CHUNKING_MODES = ("bridge", "server")


@dataclass(frozen=True)
class BridgeSettings:
    """Everything the engine needs to run; immutable.

    ``r2r_api_key`` is a :class:`Secret`.  Use :meth:`from_env` in processes
    and :meth:`with_overrides` in tests.
    """

    r2r_base_url: str = "http://127.0.0.1:7272"
    r2r_api_key: Secret = field(default_factory=lambda: Secret(""))
    # Alternative to the API key: a service account's login.  R2R 3.6.6 bcrypt-checks
    # an API key on every request (~0.45 s on 2 cores, serialised server-wide); a login
    # gets a JWT that costs ~3 ms per request.  Used when both are set.
    r2r_email: str = ""
    r2r_password: Secret = field(default_factory=lambda: Secret(""))
    # URLs may embed passwords: keep them out of the repr
    database_url: str = field(default=DEFAULT_DATABASE_URL, repr=False)
    broker_url: str = field(default=DEFAULT_BROKER_URL, repr=False)
    queue: str = MIRROR_QUEUE
    # worker behaviour
    claim_batch: int = 4
    drain_slice_seconds: float = 20.0
    task_expires_seconds: float = 3600.0
    sweep_interval_seconds: float = 15.0
    # retries of documents (ledger level; the client retries inside one call too)
    retry_base_seconds: float = 2.0
    retry_cap_seconds: float = 300.0
    max_attempts: int = 25
    busy_retry_seconds: float = 5.0
    stuck_ingestion_seconds: float = 900.0
    # circuit breaker
    breaker_threshold: int = 5
    breaker_cooldown_seconds: float = 15.0
    breaker_max_cooldown_seconds: float = 300.0
    # client timeouts
    connect_timeout: float = 3.0
    read_timeout: float = 30.0
    client_retry_max_time: float = 20.0
    # input limits (bad input is dead-lettered with a reason, never crashes)
    max_text_bytes: int = 20 * 1024 * 1024
    max_acl_entries: int = 10_000
    max_metadata_bytes: int = 256 * 1024
    # who splits text into chunks: "bridge" (one pre-chunked create that also assigns
    # every collection) or "server" (R2R's raw-text ingestion with its own config;
    # costs a membership call per collection beyond the first, R2R #2028).  The size
    # and overlap should match R2R's [ingestion] chunk_size/chunk_overlap.
    chunking: str = "bridge"
    chunk_size: int = 1024
    chunk_overlap: int = 256

    def __post_init__(self) -> None:
        if self.chunking not in CHUNKING_MODES:
            raise ValueError(
                f"chunking (ONYX_R2R_CHUNKING) must be one of {', '.join(CHUNKING_MODES)}, "
                f"got {self.chunking!r}"
            )
        if self.chunk_size < 1 or not 0 <= self.chunk_overlap < self.chunk_size:
            raise ValueError(
                f"chunk_size (ONYX_R2R_CHUNK_SIZE) must be >= 1 and chunk_overlap "
                f"(ONYX_R2R_CHUNK_OVERLAP) in [0, chunk_size), got {self.chunk_size} and "
                f"{self.chunk_overlap}"
            )

    @classmethod
    def from_env(cls, **overrides: Any) -> BridgeSettings:
        """Build settings from ``R2R_*``/``ONYX_R2R_*`` variables, then apply *overrides*."""
        base = cls(
            r2r_base_url=os.environ.get("R2R_BASE_URL", cls.r2r_base_url),
            r2r_api_key=Secret(_read_api_key()),
            r2r_email=os.environ.get("R2R_EMAIL", ""),
            r2r_password=Secret(os.environ.get("R2R_PASSWORD", "")),
            database_url=os.environ.get("ONYX_R2R_DATABASE_URL", DEFAULT_DATABASE_URL),
            broker_url=os.environ.get("ONYX_R2R_BROKER_URL", DEFAULT_BROKER_URL),
            queue=os.environ.get("ONYX_R2R_QUEUE", MIRROR_QUEUE),
            claim_batch=_env_int("ONYX_R2R_CLAIM_BATCH", cls.claim_batch),
            drain_slice_seconds=_env_float("ONYX_R2R_DRAIN_SLICE_SECONDS", cls.drain_slice_seconds),
            sweep_interval_seconds=_env_float(
                "ONYX_R2R_SWEEP_INTERVAL_SECONDS", cls.sweep_interval_seconds
            ),
            retry_base_seconds=_env_float("ONYX_R2R_RETRY_BASE_SECONDS", cls.retry_base_seconds),
            retry_cap_seconds=_env_float("ONYX_R2R_RETRY_CAP_SECONDS", cls.retry_cap_seconds),
            max_attempts=_env_int("ONYX_R2R_MAX_ATTEMPTS", cls.max_attempts),
            breaker_threshold=_env_int("ONYX_R2R_BREAKER_THRESHOLD", cls.breaker_threshold),
            breaker_cooldown_seconds=_env_float(
                "ONYX_R2R_BREAKER_COOLDOWN_SECONDS", cls.breaker_cooldown_seconds
            ),
            client_retry_max_time=_env_float(
                "ONYX_R2R_CLIENT_RETRY_MAX_TIME", cls.client_retry_max_time
            ),
            chunking=os.environ.get("ONYX_R2R_CHUNKING", cls.chunking).strip().lower(),
            chunk_size=_env_int("ONYX_R2R_CHUNK_SIZE", cls.chunk_size),
            chunk_overlap=_env_int("ONYX_R2R_CHUNK_OVERLAP", cls.chunk_overlap),
        )
        return base.with_overrides(**overrides) if overrides else base

    def to_env(self) -> dict[str, str]:
        """The environment variables that make :meth:`from_env` rebuild these settings.

        For starting child processes (workers, the CLI) on the same settings.  The
        values include the secrets: pass the result to a process, never log it.
        """
        return {
            "R2R_BASE_URL": self.r2r_base_url,
            "R2R_API_KEY": self.r2r_api_key.get(),
            "R2R_EMAIL": self.r2r_email,
            "R2R_PASSWORD": self.r2r_password.get(),
            "ONYX_R2R_DATABASE_URL": self.database_url,
            "ONYX_R2R_BROKER_URL": self.broker_url,
            "ONYX_R2R_QUEUE": self.queue,
            "ONYX_R2R_CLAIM_BATCH": str(self.claim_batch),
            "ONYX_R2R_DRAIN_SLICE_SECONDS": str(self.drain_slice_seconds),
            "ONYX_R2R_SWEEP_INTERVAL_SECONDS": str(self.sweep_interval_seconds),
            "ONYX_R2R_RETRY_BASE_SECONDS": str(self.retry_base_seconds),
            "ONYX_R2R_RETRY_CAP_SECONDS": str(self.retry_cap_seconds),
            "ONYX_R2R_MAX_ATTEMPTS": str(self.max_attempts),
            "ONYX_R2R_BREAKER_THRESHOLD": str(self.breaker_threshold),
            "ONYX_R2R_BREAKER_COOLDOWN_SECONDS": str(self.breaker_cooldown_seconds),
            "ONYX_R2R_CLIENT_RETRY_MAX_TIME": str(self.client_retry_max_time),
            "ONYX_R2R_CHUNKING": self.chunking,
            "ONYX_R2R_CHUNK_SIZE": str(self.chunk_size),
            "ONYX_R2R_CHUNK_OVERLAP": str(self.chunk_overlap),
        }

    def with_overrides(self, **overrides: Any) -> BridgeSettings:
        """Return a copy with *overrides* applied (strings for the key are wrapped)."""
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown BridgeSettings fields: {sorted(unknown)}")
        for name in ("r2r_api_key", "r2r_password"):
            if isinstance(overrides.get(name), str):
                overrides[name] = Secret(overrides[name])
        return replace(self, **overrides)

    @property
    def credentials(self) -> R2RCredentials:
        """The default R2R server and credentials (tenants may have their own)."""
        return R2RCredentials(
            base_url=self.r2r_base_url,
            api_key=self.r2r_api_key,
            email=self.r2r_email,
            password=self.r2r_password,
        )


@dataclass(frozen=True)
class R2RCredentials:
    """Where an R2R server is and how to authenticate (API key, or email + password).

    Hashable, so workers can share one client per distinct credential.
    """

    base_url: str
    api_key: Secret = field(default_factory=lambda: Secret(""))
    email: str = ""
    password: Secret = field(default_factory=lambda: Secret(""))

    @property
    def uses_login(self) -> bool:
        return bool(self.email and self.password)


def _read_api_key() -> str:
    key = os.environ.get("R2R_API_KEY", "")
    if key:
        return key
    path = os.environ.get("R2R_API_KEY_FILE", "")
    if path:
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip()
    return ""
