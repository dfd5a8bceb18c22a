"""Settings of the bridge engine: one registry for the environment, checks and docs.

:data:`SETTINGS` holds one :class:`Setting` per :class:`BridgeSettings` field: its
environment variable, parser, check, one-line doc and whether its value is secret.
Everything else follows from it: :meth:`BridgeSettings.from_env`,
:meth:`BridgeSettings.to_env`, the checks of ``BridgeSettings.__post_init__`` and the
engine block of ``deployment/docker_compose/env.r2r.template``
(:func:`env_template_block`; ``scripts/render_env_template`` writes it there).

Every knob has a safe default for a single-tenant install; hosts (Onyx, tests, the CLI)
may also build :class:`BridgeSettings` directly.  The R2R API key and password are held
as :class:`Secret`, so they never show up in a repr, a log line or an error message.

This module imports nothing but the standard library (``scripts/render_env_template``
loads it without the engine's dependencies) and does no work at import time.
"""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

DEFAULT_DATABASE_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/onyx_r2r"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/15"
MIRROR_QUEUE = "r2r_mirror"
CHUNKING_MODES = ("bridge", "server")


class SettingsError(ValueError):
    """A setting has an invalid value; the message names the setting (never a secret)."""


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


# ------------------------------------------------------------------ parsers and checks
# A parser turns a variable's text into a value or raises ValueError with a reason
# ("must be an integer"); a check returns the reason a value is invalid, else None.
# The caller adds the setting's name and, unless it is secret, the value.
Parser = Callable[[str], Any]
Check = Callable[[Any], str | None]


def _text(raw: str) -> str:
    return raw.strip()


def _secret(raw: str) -> Secret:
    return Secret(raw)


def _integer(raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise ValueError("must be an integer") from None


def _number(raw: str) -> float:
    try:
        return float(raw.strip())
    except ValueError:
        raise ValueError("must be a number") from None


def _lowercase(raw: str) -> str:
    return raw.strip().lower()


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _integer_at_least(minimum: int) -> Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, int) or isinstance(value, bool):
            return "must be an integer"
        return None if value >= minimum else f"must be >= {minimum}"

    return check


def _number_at_least(minimum: float, *, inclusive: bool = True) -> Check:
    bound = f">= {minimum:g}" if inclusive else f"> {minimum:g}"

    def check(value: Any) -> str | None:
        if not _is_number(value) or not math.isfinite(value):
            return "must be a finite number"
        ok = value >= minimum if inclusive else value > minimum
        return None if ok else f"must be {bound}"

    return check


_positive = _number_at_least(0, inclusive=False)
_not_negative = _number_at_least(0)


def _port(value: Any) -> str | None:
    if not isinstance(value, int) or isinstance(value, bool):
        return "must be an integer"
    return None if 0 <= value <= 65535 else "must be 0 (off) or a TCP port up to 65535"


def _non_empty_text(value: Any) -> str | None:
    if not isinstance(value, str):
        return "must be a string"
    return None if value.strip() else "must not be empty"


def _any_text(value: Any) -> str | None:
    return None if isinstance(value, str) else "must be a string"


def _is_secret(value: Any) -> str | None:
    return None if isinstance(value, Secret) else "must be a string or a Secret"


def _one_of(choices: tuple[str, ...]) -> Check:
    def check(value: Any) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}"

    return check


# ------------------------------------------------------------------ the registry
@dataclass(frozen=True)
class Setting:
    """How one :class:`BridgeSettings` field meets the environment.

    ``name`` is the field, ``variable`` its environment variable (``file_variable``: an
    alternative variable naming a file that holds the value).  ``parse`` reads the
    variable's text, ``check`` validates any value of the field.  A ``secret`` value
    never appears in a message.  ``connection`` settings (where R2R, the ledger and the
    broker are, and who the bridge is to R2R) get deployment-specific defaults, so
    env.r2r.template documents them in its deployment sections by hand; every other
    setting is in its generated engine block.
    """

    name: str
    variable: str
    parse: Parser
    check: Check
    doc: str
    secret: bool = False
    connection: bool = False
    file_variable: str = ""

    def describe(self, reason: str, value: Any, *, from_env: bool) -> str:
        """The error message for *value* failing with *reason* (hides secret values)."""
        where = self.variable if from_env else f"{self.name} ({self.variable})"
        if self.secret:
            return f"{where} {reason} (the value is secret and not shown)"
        return f"{where} {reason}, got {value!r}"

    def read(self, environ: Mapping[str, str]) -> Any:
        """The field's value from *environ*, or :data:`UNSET` when the variable is unset
        or empty (whitespace only, for non-secrets).  Raises :class:`SettingsError`
        naming the variable for text that does not parse or check."""
        raw = environ.get(self.variable, "")
        if raw == "" or (not self.secret and not raw.strip()):
            if not self.file_variable or not environ.get(self.file_variable, "").strip():
                return UNSET
            path = environ[self.file_variable].strip()
            try:
                with open(path, encoding="utf-8") as handle:
                    raw = handle.read().strip()
            except OSError as exc:
                raise SettingsError(
                    f"{self.file_variable}: cannot read {path!r}: {exc.strerror}"
                ) from None
        try:
            value = self.parse(raw)
        except ValueError as exc:
            # a parser's own message may quote the text: never for a secret
            reason = "is not valid" if self.secret else str(exc)
            raise SettingsError(self.describe(reason, raw, from_env=True)) from None
        reason = self.check(value)
        if reason is not None:
            raise SettingsError(self.describe(reason, raw, from_env=True))
        return value

    def render(self, value: Any) -> str:
        """*value* as this setting's variable text (``parse(render(v)) == v``)."""
        if isinstance(value, Secret):
            return value.get()
        if isinstance(value, float):
            return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
        return str(value)


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


# parser and check of the engine's numeric settings
_COUNT = (_integer, _integer_at_least(1))  # an integer >= 1
_SECONDS = (_number, _positive)  # a duration > 0
_DELAY = (_number, _not_negative)  # a duration >= 0


def _engine(name: str, kind: tuple[Parser, Check], doc: str) -> Setting:
    """A tuning setting of the engine, read from ``ONYX_R2R_<NAME>``."""
    return Setting(name, f"ONYX_R2R_{name.upper()}", kind[0], kind[1], doc)


SETTINGS: tuple[Setting, ...] = (
    # --- where R2R, the ledger and the broker are; who the bridge is to R2R
    Setting(
        "r2r_base_url",
        "R2R_BASE_URL",
        _text,
        _non_empty_text,
        "Where the bridge reaches R2R (a tenant may store its own server on the admin page).",
        connection=True,
    ),
    Setting(
        "r2r_api_key",
        "R2R_API_KEY",
        _secret,
        _is_secret,
        "A superuser API key (or R2R_API_KEY_FILE naming a file that holds it); "
        "R2R 3.6.6 bcrypt-checks it on every request, so a login is preferred.",
        secret=True,
        connection=True,
        file_variable="R2R_API_KEY_FILE",
    ),
    Setting(
        "r2r_email",
        "R2R_EMAIL",
        _text,
        _any_text,
        "The R2R service account; with R2R_PASSWORD the client logs in (JWT, wins over a key).",
        connection=True,
    ),
    Setting(
        "r2r_password",
        "R2R_PASSWORD",
        _secret,
        _is_secret,
        "The service account's password (or R2R_PASSWORD_FILE naming a file that holds it).",
        secret=True,
        connection=True,
        file_variable="R2R_PASSWORD_FILE",
    ),
    # URLs may embed passwords: secret (never in messages), kept out of the repr
    Setting(
        "database_url",
        "ONYX_R2R_DATABASE_URL",
        _text,
        _non_empty_text,
        "The ledger's SQLAlchemy URL (PostgreSQL; schema r2r_bridge).",
        secret=True,
        connection=True,
    ),
    Setting(
        "broker_url",
        "ONYX_R2R_BROKER_URL",
        _text,
        _non_empty_text,
        "The mirror's Redis: Celery broker, doorbells, counters and circuit breakers.",
        secret=True,
        connection=True,
    ),
    Setting(
        "queue",
        "ONYX_R2R_QUEUE",
        _text,
        _non_empty_text,
        "The Celery queue the mirror's workers consume.",
        connection=True,
    ),
    # --- worker behaviour
    _engine("claim_batch", _COUNT, "Documents claimed per worker transaction."),
    _engine(
        "drain_slice_seconds",
        _SECONDS,
        "How long one drain task applies documents before yielding to other tenants.",
    ),
    _engine(
        "task_expires_seconds",
        _SECONDS,
        "A queued task no worker has started after this long is dropped (the sweep rings again).",
    ),
    _engine(
        "sweep_interval_seconds",
        _SECONDS,
        "Beat's sweep: re-rings tenants with due rows (retries, lost rings).",
    ),
    _engine(
        "heavy_chunks",
        _COUNT,
        "A document with more chunks than this is heavy: it waits (up to "
        "heavy_yield_seconds) while lighter documents are applied in its worker process.",
    ),
    _engine(
        "heavy_principals",
        _COUNT,
        "A document with more ACL principals than this is heavy (see heavy_chunks).",
    ),
    _engine(
        "heavy_yield_seconds",
        _DELAY,
        "Longest time a heavy document waits for lighter ones before it is applied anyway "
        "(0: never waits).",
    ),
    # --- retries of documents (ledger level; the client retries inside one call too)
    _engine(
        "retry_base_seconds",
        _DELAY,
        "Per-document retry backoff: first delay (doubles per attempt, with jitter).",
    ),
    _engine("retry_cap_seconds", _DELAY, "Per-document retry backoff: longest delay."),
    _engine(
        "max_attempts",
        _COUNT,
        "Attempts before a document becomes a dead letter (`onyx-r2r status`, `replay`).",
    ),
    _engine(
        "busy_retry_seconds",
        _DELAY,
        "Delay before retrying a document whose ingestion R2R is still running (not "
        "counted as an attempt).",
    ),
    _engine(
        "stuck_ingestion_seconds",
        _SECONDS,
        "An ingestion R2R still reports as running after this long is stuck: the document "
        "is deleted and created again.",
    ),
    # --- circuit breaker
    _engine(
        "breaker_threshold",
        _COUNT,
        "Circuit breaker per R2R server: consecutive failures that open it.",
    ),
    _engine(
        "breaker_cooldown_seconds",
        _DELAY,
        "Circuit breaker: first cool-down (doubles on each trip).",
    ),
    _engine("breaker_max_cooldown_seconds", _DELAY, "Circuit breaker: longest cool-down."),
    _engine(
        "breaker_probe_seconds",
        _SECONDS,
        "While the breaker is open, how often one drain asks R2R's health to close it early.",
    ),
    # --- client timeouts
    _engine("connect_timeout", _SECONDS, "Connect timeout of one R2R request (seconds)."),
    _engine("read_timeout", _SECONDS, "Read timeout of one R2R request (seconds)."),
    _engine(
        "client_retry_max_time",
        _DELAY,
        "Time budget of the HTTP client's own retries within one R2R call.",
    ),
    # --- input limits (bad input is dead-lettered with a reason, never crashes)
    _engine(
        "max_text_bytes",
        _COUNT,
        "Largest text of one document (UTF-8 bytes); larger ones are dead-lettered as "
        "invalid_document.",
    ),
    _engine(
        "max_acl_entries",
        _COUNT,
        "Most ACL principals plus document sets of one document; more are dead-lettered.",
    ),
    _engine(
        "max_metadata_bytes",
        _COUNT,
        "Largest metadata of one document (bytes of JSON); more is dead-lettered.",
    ),
    # --- metrics
    Setting(
        "metrics_port",
        "ONYX_R2R_METRICS_PORT",
        _integer,
        _port,
        "The worker's Prometheus /metrics port (0: off). One port per worker process: "
        "several workers on one host need one port each.",
    ),
    Setting(
        "metrics_address",
        "ONYX_R2R_METRICS_ADDRESS",
        _text,
        _non_empty_text,
        "The address the worker's /metrics port binds to (0.0.0.0 to let Prometheus in "
        "from other hosts).",
    ),
    # --- chunking
    _engine(
        "chunking",
        (_lowercase, _one_of(CHUNKING_MODES)),
        "Who splits text into chunks: bridge (one create per document that also assigns "
        "every collection) or server (R2R's raw-text ingestion with its [ingestion] "
        "settings; one extra membership call per collection beyond the first, R2R #2028).",
    ),
    _engine(
        "chunk_size",
        _COUNT,
        "Chunk size in characters; keep it equal to R2R's [ingestion] chunk_size.",
    ),
    _engine(
        "chunk_overlap",
        (_integer, _integer_at_least(0)),
        "Chunk overlap in characters (below chunk_size); keep it equal to R2R's "
        "[ingestion] chunk_overlap.",
    ),
)


# ------------------------------------------------------------------ the settings
@dataclass(frozen=True)
class BridgeSettings:
    """Everything the engine needs to run; immutable.

    Every field has a :data:`SETTINGS` entry (variable, parser, check, doc).  Building
    an instance checks every field (:class:`SettingsError`, a ``ValueError``, names the
    field and its variable; never a secret value) and wraps plain strings given for
    ``r2r_api_key``/``r2r_password`` in :class:`Secret`.  Use :meth:`from_env` in
    processes and :meth:`with_overrides` in tests.
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
    heavy_chunks: int = 256
    heavy_principals: int = 1000
    heavy_yield_seconds: float = 10.0
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
    breaker_probe_seconds: float = 5.0
    # client timeouts
    connect_timeout: float = 3.0
    read_timeout: float = 30.0
    client_retry_max_time: float = 20.0
    # input limits (bad input is dead-lettered with a reason, never crashes)
    max_text_bytes: int = 20 * 1024 * 1024
    max_acl_entries: int = 10_000
    max_metadata_bytes: int = 256 * 1024
    # the worker's Prometheus port (0: off) and the address it binds to
    metrics_port: int = 0
    metrics_address: str = "127.0.0.1"
    # who splits text into chunks: "bridge" (one pre-chunked create that also assigns
    # every collection) or "server" (R2R's raw-text ingestion with its own config;
    # costs a membership call per collection beyond the first, R2R #2028).  The size
    # and overlap should match R2R's [ingestion] chunk_size/chunk_overlap.
    chunking: str = "bridge"
    chunk_size: int = 1024
    chunk_overlap: int = 256

    def __post_init__(self) -> None:
        for setting in SETTINGS:
            value = getattr(self, setting.name)
            if setting.parse is _secret and isinstance(value, str):
                object.__setattr__(self, setting.name, Secret(value))
                value = getattr(self, setting.name)
            reason = setting.check(value)
            if reason is not None:
                raise SettingsError(setting.describe(reason, value, from_env=False))
        if self.chunk_overlap >= self.chunk_size:
            raise SettingsError(
                f"chunk_size (ONYX_R2R_CHUNK_SIZE) must be >= 1 and chunk_overlap "
                f"(ONYX_R2R_CHUNK_OVERLAP) in [0, chunk_size), got {self.chunk_size} and "
                f"{self.chunk_overlap}"
            )

    @classmethod
    def from_env(cls, **overrides: Any) -> BridgeSettings:
        """Build settings from the environment (:data:`SETTINGS`), then apply *overrides*.

        An unset or empty variable means the field's default.  Raises
        :class:`SettingsError` naming the variable (and its value, unless secret) for a
        value that does not parse or check, and ``TypeError`` for unknown *overrides*.
        """
        _check_names(overrides)
        values = {}
        for setting in SETTINGS:
            value = setting.read(os.environ)
            if value is not UNSET:
                values[setting.name] = value
        return cls(**{**values, **overrides})

    def to_env(self) -> dict[str, str]:
        """The environment variables that make :meth:`from_env` rebuild these settings.

        One entry per setting (and an empty ``R2R_API_KEY_FILE``, so a key file named in
        a parent's environment cannot replace an empty key).  For starting child
        processes (workers, the CLI) on the same settings.  The values include the
        secrets: pass the result to a process, never log it.
        """
        env: dict[str, str] = {}
        for setting in SETTINGS:
            env[setting.variable] = setting.render(getattr(self, setting.name))
            if setting.file_variable:
                env[setting.file_variable] = ""
        return env

    def with_overrides(self, **overrides: Any) -> BridgeSettings:
        """Return a copy with *overrides* applied (strings for secrets are wrapped).

        Raises ``TypeError`` for unknown field names and :class:`SettingsError` for
        invalid values."""
        _check_names(overrides)
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


def _check_names(overrides: Mapping[str, Any]) -> None:
    unknown = set(overrides) - {f.name for f in fields(BridgeSettings)}
    if unknown:
        raise TypeError(f"unknown BridgeSettings fields: {sorted(unknown)}")


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


# ------------------------------------------------------------------ documentation
def env_template_block(width: int = 84) -> str:
    """The engine block of env.r2r.template: each non-connection setting's doc as
    ``## `` lines wrapped at *width*, then ``# VARIABLE=default`` (secrets: empty)."""
    defaults = BridgeSettings()
    lines: list[str] = []
    for setting in SETTINGS:
        if setting.connection:
            continue
        lines += textwrap.wrap(
            setting.doc,
            width=width,
            initial_indent="## ",
            subsequent_indent="## ",
            break_long_words=False,
            break_on_hyphens=False,
        )
        value = "" if setting.secret else setting.render(getattr(defaults, setting.name))
        lines.append(f"# {setting.variable}={value}")
    return "\n".join(lines) + "\n"
