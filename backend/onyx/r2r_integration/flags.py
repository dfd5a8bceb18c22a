"""The switches of the Onyx integration, and the per-tenant hooks (credential, export state).

Environment (read on every call, so tests and operators can flip them):

=====================  ===========================================================
``ONYX_EXPORT_R2R``    ``true``: mirror into R2R - the docfetching sender records
                       connector documents and ``R2RIndex`` joins Onyx's index fan-out.
``R2R_EXPORT_MODE``    ``mirror`` (default): Onyx indexes as before, R2R gets a copy.
                       ``replace``: ``R2RIndex`` is Onyx's only index (writes and search).
``ONYX_INDEX_BACKEND`` ``r2r``: Onyx searches R2R (``get_default_document_index``);
                       Onyx's own index is still written, so switching back is instant.
=====================  ===========================================================

An admin can switch the export on/off and pick the mode per tenant on the
admin page (``r2r_bridge.tenant_config``, issue 5); a stored choice wins over
``ONYX_EXPORT_R2R``/``R2R_EXPORT_MODE``.  Lookups are cached for a few seconds
and never raise: when the ledger database is unreachable the environment decides.

No Onyx import.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace

from onyx.r2r_sender.config import BridgeSettings, R2RCredentials

logger = logging.getLogger(__name__)

EXPORT_ENV = "ONYX_EXPORT_R2R"
MODE_ENV = "R2R_EXPORT_MODE"
BACKEND_ENV = "ONYX_INDEX_BACKEND"
MODES = ("mirror", "replace")
TENANT_CACHE_SECONDS = 15.0


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class R2RFlags:
    """What the integration does for one tenant."""

    export: bool = False  # the docfetching sender runs and R2RIndex mirrors
    mode: str = "mirror"  # "mirror" | "replace"
    backend: str = ""  # "r2r": Onyx searches R2R

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> R2RFlags:
        env = os.environ if environ is None else environ
        mode = (env.get(MODE_ENV) or "mirror").strip().lower()
        if mode not in MODES:
            # never drop Onyx's own index because of a typo
            logger.warning("%s=%r is not one of %s; using 'mirror'", MODE_ENV, mode, MODES)
            mode = "mirror"
        return cls(
            export=_truthy(env.get(EXPORT_ENV)),
            mode=mode,
            backend=(env.get(BACKEND_ENV) or "").strip().lower(),
        )

    def with_tenant_state(self, state: tuple[bool, str] | None) -> R2RFlags:
        """Apply a tenant's stored ``(export_enabled, export_mode)`` (None: keep the env's)."""
        if state is None:
            return self
        enabled, mode = state
        return replace(self, export=bool(enabled), mode=mode if mode in MODES else "mirror")

    @property
    def replace_mode(self) -> bool:
        """R2R is Onyx's only index (writes and retrieval)."""
        return self.mode == "replace"

    @property
    def r2r_primary(self) -> bool:
        """Onyx retrieves from R2R."""
        return self.backend == "r2r" or self.replace_mode

    @property
    def in_fanout(self) -> bool:
        """``R2RIndex`` receives Onyx's writes (index/delete/update)."""
        return self.export or self.r2r_primary


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
_cache_lock = threading.Lock()
_state_cache: dict[str, tuple[float, tuple[bool, str] | None]] = {}
_credential_cache: dict[str, tuple[float, R2RCredentials | None]] = {}


def _store(settings: BridgeSettings) -> object:
    from onyx.r2r_sender.credentials import CredentialStore
    from onyx.r2r_sender.plumbing import host_engine

    return CredentialStore(host_engine(settings.database_url))


def _cached(
    cache: dict[str, tuple[float, object]], tenant_id: str, load: Callable[[], object]
) -> object:
    now = time.monotonic()
    with _cache_lock:
        hit = cache.get(tenant_id)
        if hit is not None and hit[0] > now:
            return hit[1]
    value = load()
    with _cache_lock:
        cache[tenant_id] = (now + TENANT_CACHE_SECONDS, value)
    return value


def tenant_export_state(tenant_id: str, settings: BridgeSettings) -> tuple[bool, str] | None:
    """HOOK: the tenant's saved ``(export_enabled, export_mode)`` (admin page), or ``None``."""

    def load() -> tuple[bool, str] | None:
        try:
            from onyx.r2r_sender.credentials import export_state

            return export_state(tenant_id, store=_store(settings))  # type: ignore[arg-type]
        except Exception:  # noqa: BLE001 - flags never fail the host: the env decides
            logger.warning("r2r: could not read the export state of tenant %s", tenant_id)
            return None

    return _cached(_state_cache, tenant_id, load)  # type: ignore[arg-type,return-value]


def tenant_flags(
    tenant_id: str, settings: BridgeSettings | None = None, environ: Mapping[str, str] | None = None
) -> R2RFlags:
    """The env's flags with the tenant's stored export switch applied.  Never raises."""
    flags = R2RFlags.from_env(environ)
    try:
        state = tenant_export_state(tenant_id, settings or BridgeSettings.from_env())
    except Exception:  # noqa: BLE001
        state = None
    return flags.with_tenant_state(state)


def tenant_credentials(tenant_id: str, settings: BridgeSettings) -> R2RCredentials:
    """HOOK: the tenant's stored R2R credential (issue 5's ``credentials_for``), else the env's.

    Never raises: an unreadable store falls back to ``R2R_BASE_URL``/``R2R_API_KEY``
    (``R2R_EMAIL``/``R2R_PASSWORD``).
    """

    def load() -> R2RCredentials | None:
        try:
            from onyx.r2r_sender.credentials import credentials_for

            return credentials_for(tenant_id, store=_store(settings))  # type: ignore[arg-type]
        except Exception:  # noqa: BLE001
            logger.warning("r2r: could not read the stored credential of tenant %s", tenant_id)
            return None

    stored = _cached(_credential_cache, tenant_id, load)
    return stored if isinstance(stored, R2RCredentials) else settings.credentials


def forget_tenant_cache() -> None:
    """Drop cached tenant lookups (tests; after an admin change for an immediate effect)."""
    with _cache_lock:
        _state_cache.clear()
        _credential_cache.clear()


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
