"""The switches of the Onyx integration: one truth table, and bounded per-tenant lookups.

Environment (read on every call, so operators and tests can flip them):

=====================  =================================================================
``ONYX_EXPORT_R2R``    ``false`` (default): the bridge is off for every tenant and
                       nothing is looked up.  ``true``: on for every tenant in
                       ``R2R_EXPORT_MODE``, unless the tenant's admin stored another
                       choice.  ``tenant``: each tenant's admin decides on the admin
                       page; a tenant that stored nothing is off.
``R2R_EXPORT_MODE``    ``mirror`` (default): Onyx indexes as before, R2R gets a copy.
                       ``replace``: R2R is Onyx's only index.  Only the default mode of
                       ``ONYX_EXPORT_R2R=true``; an unknown value means ``mirror``.
``ONYX_INDEX_BACKEND`` ``r2r``: a tenant in mirror mode searches R2R.  With
                       ``ONYX_EXPORT_R2R=false`` it switches the mirror on by itself
                       (R2R cannot serve searches it is not fed).
=====================  =================================================================

A tenant's stored choice (``off``/``mirror``/``replace``, admin page) wins over the
environment's default whenever stored choices are read, i.e. unless both environment
switches are off.  The effective state of a tenant is one of three modes:

* ``off``: Onyx as upstream (the factory's own indices, no docfetching exporter);
* ``mirror``: ``R2RIndex`` appended last to Onyx's writes (not for FUTURE search
  settings) and the docfetching exporter; searches from R2R iff ``ONYX_INDEX_BACKEND=r2r``;
* ``replace``: ``[R2RIndex]`` is every index (a write-skipping one for FUTURE settings),
  searches from R2R, and the docfetching exporter.

With both environment switches off the hooks do no I/O at all.  Otherwise a tenant's
stored choice comes from a per-process cache filled in the background: a call never
waits more than :data:`LOOKUP_BUDGET_SECONDS` for the ledger database (only the first call
for a tenant waits at all; later ones use the last value while it is refreshed), and
when the database is unreachable the last known choice, else the environment, decides.
Failures are logged once per interval.

No Onyx import; no engine import at module level (Onyx's factory imports this module).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from onyx.r2r_integration.logs import throttled

if TYPE_CHECKING:
    from onyx.r2r_sender import BridgeSettings, R2RCredentials

logger = logging.getLogger(__name__)

EXPORT_ENV = "ONYX_EXPORT_R2R"
MODE_ENV = "R2R_EXPORT_MODE"
BACKEND_ENV = "ONYX_INDEX_BACKEND"
MODES = ("mirror", "replace")
EXPORT_VALUES = ("false", "true", "tenant")
TENANT_CACHE_SECONDS = 15.0  # a stored choice reaches every process within this time
RETRY_SECONDS = 5.0  # after a failed lookup, the next attempt starts no sooner
LOOKUP_BUDGET_SECONDS = 0.05  # the most a hook ever waits for a tenant's stored choice
CREDENTIAL_BUDGET_SECONDS = 5.0  # the first credential lookup of a tenant (see below)

Mode = Literal["off", "mirror", "replace"]
Source = Literal["environment", "stored"]
StoredChoice = tuple[bool, str]  # (export_enabled, export_mode) as the admin saved it


def _truthy(value: str) -> bool:
    return value in ("1", "true", "yes", "on")


def _falsy(value: str) -> bool:
    return value in ("", "0", "false", "no", "off")


def onyx_has_own_index(environ: Mapping[str, str] | None = None) -> bool:
    """Whether Onyx has a document index of its own (Vespa or OpenSearch), read from Onyx's
    own variables with Onyx's defaults (a7d66a8 ``app_configs``).

    ``False`` for the replace-mode install without either (``ONYX_DISABLE_VESPA=true``,
    ``ENABLE_OPENSEARCH_INDEXING_FOR_ONYX=false``): there upstream's factory raises for a
    tenant that is not in replace mode.  ``DISABLE_VECTOR_DB=true`` counts as having one
    (Onyx's ``DisabledDocumentIndex`` answers, as upstream).
    """
    env = os.environ if environ is None else environ

    def flag(name: str, default: str) -> bool:
        return (env.get(name) or default).strip().lower() == "true"

    if flag("DISABLE_VECTOR_DB", "false"):
        return True
    return not flag("ONYX_DISABLE_VESPA", "true") or flag(
        "ENABLE_OPENSEARCH_INDEXING_FOR_ONYX", "true"
    )


@dataclass(frozen=True)
class EnvSwitches:
    """The three environment variables, parsed (never raises; unknown values mean off/mirror)."""

    export: Literal["false", "true", "tenant"] = "false"
    mode: Literal["mirror", "replace"] = "mirror"
    backend: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EnvSwitches:
        env = os.environ if environ is None else environ
        raw_export = (env.get(EXPORT_ENV) or "").strip().lower()
        export: Literal["false", "true", "tenant"] = "false"
        if _truthy(raw_export):
            export = "true"
        elif raw_export == "tenant":
            export = "tenant"
        elif not _falsy(raw_export):
            throttled.log(
                logger,
                logging.WARNING,
                f"export:{raw_export}",
                "%s=%r is not one of true, false, tenant; the bridge stays off",
                EXPORT_ENV,
                raw_export,
            )
        raw_mode = (env.get(MODE_ENV) or "mirror").strip().lower()
        mode: Literal["mirror", "replace"] = "replace" if raw_mode == "replace" else "mirror"
        if raw_mode not in MODES:
            # never drop Onyx's own index because of a typo
            throttled.log(
                logger,
                logging.WARNING,
                f"mode:{raw_mode}",
                "%s=%r is not one of %s; using 'mirror'",
                MODE_ENV,
                raw_mode,
                MODES,
            )
        return cls(export=export, mode=mode, backend=(env.get(BACKEND_ENV) or "").strip().lower())

    @property
    def search_r2r(self) -> bool:
        """``ONYX_INDEX_BACKEND=r2r``."""
        return self.backend == "r2r"

    @property
    def all_off(self) -> bool:
        """Both environment switches off: Onyx as upstream, stored choices are not read."""
        return self.export == "false" and not self.search_r2r

    @property
    def default_mode(self) -> Mode:
        """The mode of a tenant that stored no choice."""
        if self.export == "true":
            return self.mode
        if self.export == "false" and self.search_r2r:
            return "mirror"
        return "off"

    def resolve(self, stored: StoredChoice | None) -> R2RFlags:
        """The effective flags of a tenant whose stored choice is *stored* (None: none).

        This is the truth table (README, "Switches"): with both switches off the stored
        choice is ignored; otherwise it wins over :attr:`default_mode`.
        """
        if self.all_off:
            return R2RFlags(mode="off", backend=self.backend, source="environment")
        if stored is None:
            return R2RFlags(mode=self.default_mode, backend=self.backend, source="environment")
        enabled, mode = stored
        effective: Mode = "off" if not enabled else ("replace" if mode == "replace" else "mirror")
        return R2RFlags(mode=effective, backend=self.backend, source="stored")


@dataclass(frozen=True)
class R2RFlags:
    """What the integration does for one tenant (see the module docstring's table)."""

    mode: Mode = "off"
    backend: str = ""  # ONYX_INDEX_BACKEND
    source: Source = "environment"  # where the mode comes from

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> R2RFlags:
        """The flags of a tenant that stored no choice."""
        return EnvSwitches.from_env(environ).resolve(None)

    @property
    def export(self) -> bool:
        """The bridge is on: the docfetching exporter runs and ``R2RIndex`` takes writes."""
        return self.mode != "off"

    @property
    def replace_mode(self) -> bool:
        """R2R is Onyx's only index (writes and retrieval)."""
        return self.mode == "replace"

    @property
    def r2r_primary(self) -> bool:
        """Onyx retrieves from R2R."""
        return self.replace_mode or (self.mode == "mirror" and self.backend == "r2r")

    @property
    def in_fanout(self) -> bool:
        """``R2RIndex`` receives Onyx's writes (index/delete/update)."""
        return self.export


def is_future_settings(search_settings: object) -> bool:
    """Whether Onyx ``SearchSettings`` are FUTURE (being re-embedded): the mirror skips them."""
    if search_settings is None:
        return False
    status = getattr(search_settings, "status", None)
    check = getattr(status, "is_future", None)
    if callable(check):
        return bool(check())
    return str(getattr(status, "value", status)).upper() == "FUTURE"


# ------------------------------------------------------------------ tenants
_UNKNOWN: Any = object()  # no value yet (the first lookup of a tenant is still running)


@dataclass
class _Entry:
    value: Any = _UNKNOWN  # the last value read (kept while a refresh fails)
    fresh_until: float = 0.0
    loading: threading.Event | None = None  # set when the queued refresh ends
    settings: Any = None
    waited: bool = False  # a caller already waited for this load (the next ones do not)


@dataclass
class BoundedLookup:
    """A per-process cache of one per-tenant lookup, filled by one background thread.

    :meth:`get` returns a fresh value at once; a stale one at once while a background
    refresh runs; and for a tenant never read it waits at most *budget* seconds for the
    first load, then returns *default*.  A load that fails keeps the last value (or the
    default) and is retried after :data:`RETRY_SECONDS`.  *load* may block (a silent
    database) without delaying a caller beyond the budget.  One thread per process does
    the loads one after the other, so a database outage costs one blocked thread, not one
    per tenant.  Failures log once per interval.
    """

    name: str
    load: Callable[[str, Any], Any]  # (tenant_id, settings) -> value; may raise
    ttl: float = TENANT_CACHE_SECONDS
    _entries: dict[str, _Entry] = field(default_factory=dict)
    _queue: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _wake: threading.Condition | None = None
    _worker: threading.Thread | None = None
    _busy_since: float | None = None  # when the running load started
    _pid: int = field(default_factory=os.getpid)

    def get(self, tenant_id: str, settings: Any, *, default: Any, budget: float) -> Any:
        now = time.monotonic()
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's thread is gone
                self._reset()
            entry = self._entries.setdefault(tenant_id, _Entry())
            if entry.value is not _UNKNOWN and entry.fresh_until > now:
                return entry.value
            if entry.loading is None and entry.fresh_until <= now:
                entry.loading = threading.Event()
                entry.settings = settings
                self._enqueue(tenant_id)
            loading = entry.loading
            value = entry.value
            # wait only when the database may answer in time: not twice for one load, and
            # not behind a load that is already overdue (a silent database)
            stuck = self._busy_since is not None and now - self._busy_since > budget
            wait = loading is not None and budget > 0 and not entry.waited and not stuck
            if wait:
                entry.waited = True
        if value is not _UNKNOWN:
            return value  # stale while it is refreshed (or retried after a failure)
        if wait and loading is not None:
            loading.wait(budget)
            with self._lock:
                value = entry.value
        if value is _UNKNOWN:
            throttled.log(
                logger,
                logging.WARNING,
                f"{self.name}:slow",
                "r2r: the %s of tenant %s is not known yet (the ledger database did not "
                "answer within %.0f ms); the environment decides until it does",
                self.name,
                tenant_id,
                budget * 1000,
            )
            return default
        return value

    def _enqueue(self, tenant_id: str) -> None:  # with self._lock held
        self._queue.append(tenant_id)
        if self._wake is None:
            self._wake = threading.Condition(self._lock)
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(
                target=self._run, name=f"onyx-r2r-{self.name}", daemon=True
            )
            self._worker.start()
        self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._lock:
                assert self._wake is not None
                while not self._queue:
                    self._wake.wait()
                tenant_id = self._queue.pop(0)
                entry = self._entries.get(tenant_id)
                self._busy_since = time.monotonic()
            try:
                if entry is not None and entry.loading is not None:
                    self._refresh(tenant_id, entry)
            finally:
                with self._lock:
                    self._busy_since = None

    def _refresh(self, tenant_id: str, entry: _Entry) -> None:
        loading = entry.loading
        try:
            value = self.load(tenant_id, entry.settings)
        except Exception as exc:  # noqa: BLE001 - lookups never fail the host
            with self._lock:
                entry.fresh_until = time.monotonic() + RETRY_SECONDS
                entry.loading = None
                entry.waited = False
            throttled.log(
                logger,
                logging.WARNING,
                f"{self.name}:failed",
                "r2r: could not read the %s of tenant %s from the ledger database (%s: %s); "
                "using the last known value, else the environment",
                self.name,
                tenant_id,
                type(exc).__name__,
                str(exc).splitlines()[0][:200] if str(exc) else "",
            )
        else:
            with self._lock:
                entry.value = value
                entry.fresh_until = time.monotonic() + self.ttl
                entry.loading = None
                entry.waited = False
        finally:
            if loading is not None:
                loading.set()

    def _reset(self) -> None:  # with self._lock held
        self._entries.clear()
        self._queue.clear()
        self._wake = None
        self._worker = None
        self._busy_since = None
        self._pid = os.getpid()

    def forget(self) -> None:
        """Drop every cached value (a running load finishes into a forgotten entry)."""
        with self._lock:
            self._entries.clear()
            self._queue.clear()


def _store(settings: BridgeSettings) -> Any:
    from onyx.r2r_sender import CredentialStore, host_engine

    return CredentialStore(host_engine(settings.database_url))


def _load_choice(tenant_id: str, settings: BridgeSettings) -> StoredChoice | None:
    from onyx.r2r_sender import export_state

    return export_state(tenant_id, store=_store(settings))


def _load_credentials(tenant_id: str, settings: BridgeSettings) -> R2RCredentials | None:
    from onyx.r2r_sender import credentials_for

    return credentials_for(tenant_id, store=_store(settings))


_choices = BoundedLookup("stored export switch", _load_choice)
_credentials = BoundedLookup("stored R2R credential", _load_credentials)


def tenant_flags(
    tenant_id: str,
    settings: BridgeSettings | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    budget: float = LOOKUP_BUDGET_SECONDS,
) -> R2RFlags:
    """The tenant's effective flags (the truth table).  Never raises.

    With both environment switches off: no I/O, no settings read, Onyx as upstream.
    Otherwise the tenant's stored choice, waiting at most *budget* seconds for it (the
    mirror's own worker passes a longer budget; Onyx's paths keep the default 50 ms).
    """
    env = EnvSwitches.from_env(environ)
    if env.all_off:
        return env.resolve(None)
    try:
        if settings is None:
            from onyx.r2r_sender import BridgeSettings

            settings = BridgeSettings.from_env()
        stored = _choices.get(tenant_id, settings, default=None, budget=budget)
    except Exception as exc:  # noqa: BLE001 - e.g. an invalid ONYX_R2R_* setting
        throttled.log(
            logger,
            logging.ERROR,
            "flags:settings",
            "r2r: cannot read tenant %s's export switch (%s: %s); the environment decides",
            tenant_id,
            type(exc).__name__,
            exc,
        )
        stored = None
    return env.resolve(stored)


def tenant_credentials(tenant_id: str, settings: BridgeSettings) -> R2RCredentials:
    """The tenant's stored R2R credential, else the environment's (``R2R_BASE_URL``, …).

    Never raises.  Only the mirror's writes and R2R retrieval need it (never a tenant
    that is off), and a wrong server would be worse than a wait: the first lookup of a
    tenant waits up to :data:`CREDENTIAL_BUDGET_SECONDS`, later ones use the cache.
    """
    stored = _credentials.get(tenant_id, settings, default=None, budget=CREDENTIAL_BUDGET_SECONDS)
    return stored if stored is not None else settings.credentials


def forget_tenant_cache() -> None:
    """Drop cached tenant lookups (tests; after an admin change for an immediate effect)."""
    _choices.forget()
    _credentials.forget()


# Within ``bypass()`` the factory behaves exactly as upstream (the backfill reads
# Onyx's own index through the factory); a context variable, so per thread/task.
_bypass: contextvars.ContextVar[bool] = contextvars.ContextVar("onyx_r2r_bypass", default=False)


@contextlib.contextmanager
def bypass() -> Iterator[None]:
    """Within the block the R2R integration is off for this thread/task."""
    token = _bypass.set(True)
    try:
        yield
    finally:
        _bypass.reset(token)


def bypassed() -> bool:
    """True inside :func:`bypass`."""
    return _bypass.get()
