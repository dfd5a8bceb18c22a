"""The R2R mirror's admin API: FastAPI router with prefix ``/admin/r2r``.

Installing it into Onyx (the patch to ``backend/onyx/main.py``)::

    from onyx.server.r2r.api import router as r2r_admin_router
    ...
    include_router_with_global_prefix_prepended(application, r2r_admin_router)

Inside Onyx, the module-level :data:`router` is guarded by Onyx's admin permission
dependency ``require_permission(Permission.FULL_ADMIN_PANEL_ACCESS)`` (from
``onyx.auth.permissions`` / ``onyx.db.enums``) and resolves the tenant with
``shared_configs.contextvars.get_current_tenant_id()``; both come from
:mod:`onyx.server.r2r.host`, the only module that imports Onyx.  Outside Onyx those
imports fail and the router refuses every request (403) unless a host builds its own with
:func:`create_router` (``auth=`` and ``tenant=`` are injectable; see
:mod:`onyx.server.r2r.standalone`).  The browser reaches it as ``/api/admin/r2r/...``.

Endpoints: ``GET/PUT/DELETE /config``, ``POST /test``, ``PUT /export``, ``GET /status``,
``GET /dead-letters``, ``GET /dead-letter-classes``, ``POST /dead-letters/replay``,
``POST /resync``, ``POST /reconcile``, ``POST /onyx-reindex``, ``GET /metrics`` (Prometheus
text format: the deployment-wide state gauges, see :func:`get_metrics`).  Each is a plain module-level handler function
(:func:`get_config`, :func:`put_config`, ...) taking the tenant id and the
:class:`AdminContext`; :func:`create_router` only wires them to routes and dependencies.
Every error is JSON ``{"detail": <plain sentence>, "error": <code>, ...}``; request bodies
are never echoed back (they may hold the API key), and no secret is ever returned or logged.
"""

import functools
import inspect
import logging
import os
import threading
import traceback
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from celery import Celery
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from onyx.r2r_integration.flags import (
    TENANT_CACHE_SECONDS,
    EnvSwitches,
    R2RFlags,
    forget_tenant_cache,
    onyx_has_own_index,
)
from onyx.r2r_sender.admin_status import dead_letter_classes, tenant_status
from onyx.r2r_sender.celery_app import build_app
from onyx.r2r_sender.config import BridgeSettings, Secret
from onyx.r2r_sender.credentials import (
    ConnectionTestError,
    CredentialInput,
    CredentialStore,
    CredentialView,
)
from onyx.r2r_sender.credentials_crypto import (
    EncryptionKeyError,
    EncryptionNotConfiguredError,
    Keyring,
)
from onyx.r2r_sender.doorbell import BACKFILL_TASK, RECONCILE_TASK, Doorbell
from onyx.r2r_sender.errors import CredentialError
from onyx.r2r_sender.ledger import Ledger, get_engine
from onyx.r2r_sender.url_policy import URL_POLICY_ENV, UrlPolicy
from onyx.server.r2r import host

logger = logging.getLogger(__name__)

PREFIX = "/admin/r2r"
_JOB_GUARD = "onyx_r2r:admin_job:"
_JOB_GUARD_SECONDS = 30
_TENANT_MAX = 128
_REBUILD_KEY = "onyx_r2r:onyx_rebuild:"
_REBUILD_KEEP_SECONDS = 7 * 24 * 3600
# every Onyx process has seen a switch after its tenant cache expired once
REBUILD_DELAY_SECONDS = TENANT_CACHE_SECONDS + 5
STALE_INDEX_MESSAGE = (
    "While R2R replaced Onyx's index, Onyx's own index was not written: documents added or "
    "changed since then are missing from it and deleted ones are still in it, and Onyx cannot "
    "repair that by itself. Switch together with a rebuild of Onyx's index (Onyx re-indexes "
    "every connector from the beginning; until it is done Onyx's search misses what it has "
    "not reached yet; documents from the ingestion API or user uploads must be uploaded again)."
)


# ------------------------------------------------------------------ errors
class AdminApiError(Exception):
    """An error answer: ``status`` with ``{"detail": message, "error": code, **extra}``."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


def _credential_error(exc: CredentialError) -> AdminApiError:
    if isinstance(exc, ConnectionTestError):
        return AdminApiError(
            400, exc.code, exc.message, reason=exc.reason, r2r_status=exc.status_code
        )
    if isinstance(exc, EncryptionNotConfiguredError | EncryptionKeyError):
        return AdminApiError(409, exc.code, exc.message)
    return AdminApiError(422, exc.code, exc.message)


def _safe_summary(exc: BaseException) -> str:
    """An exception's type and message without SQL parameters (they may hold ciphertext)."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        return f"{type(exc).__name__} ({type(exc.orig).__name__}): {str(exc.orig).strip()}"
    if isinstance(exc, SQLAlchemyError):
        return type(exc).__name__
    return f"{type(exc).__name__}: {exc}"


def _validation_message(exc: RequestValidationError) -> str:
    parts: list[str] = []
    for error in exc.errors():
        loc = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query"))
        msg = str(error.get("msg", "invalid value"))
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "The request is not valid: " + "; ".join(parts or ["unreadable body"])


def _json_error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": message, "error": code, **extra})


def _route_class(passthrough: tuple[type[BaseException], ...]) -> type[APIRoute]:
    class R2RAdminRoute(APIRoute):
        """Turns every failure into a JSON error (without echoing the request body)."""

        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            original = super().get_route_handler()

            async def handler(request: Request) -> Response:
                try:
                    return await original(request)
                except AdminApiError as exc:
                    return _json_error(exc.status, exc.code, exc.message, **exc.extra)
                except CredentialError as exc:
                    err = _credential_error(exc)
                    return _json_error(err.status, err.code, err.message, **err.extra)
                except RequestValidationError as exc:
                    return _json_error(422, "invalid_request", _validation_message(exc))
                except StarletteHTTPException:
                    raise
                except Exception as exc:
                    if passthrough and isinstance(exc, passthrough):
                        raise
                    return _unexpected(request, exc)

            return handler

    return R2RAdminRoute


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    where = f"{request.method} {request.url.path}"
    trace = "".join(traceback.format_tb(exc.__traceback__))
    logger.error("r2r admin API %s failed: %s\n%s", where, _safe_summary(exc), trace)
    if isinstance(exc, DBAPIError | RedisError) or "OperationalError" in type(exc).__name__:
        return _json_error(
            503,
            "backend_unavailable",
            "The bridge's database or broker is unreachable right now; try again in a moment.",
        )
    return _json_error(500, "internal_error", "Internal error; the server log has the details.")


# ------------------------------------------------------------------ models
class ConnectionInput(BaseModel):
    """A credential to test or save.  ``null`` secrets keep the stored ones (same URL only);
    an empty ``api_key`` removes the stored key; an empty ``login_email`` removes the login."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(max_length=2048)
    api_key: SecretStr | None = Field(default=None, max_length=4096)
    login_email: str | None = Field(default=None, max_length=320)
    password: SecretStr | None = Field(default=None, max_length=4096)

    def to_input(self) -> CredentialInput:
        return CredentialInput(
            base_url=self.base_url,
            api_key=Secret(self.api_key.get_secret_value()) if self.api_key is not None else None,
            login_email=self.login_email,
            password=Secret(self.password.get_secret_value())
            if self.password is not None
            else None,
        )


class ExportInput(BaseModel):
    """The tenant's export choice; ``enabled: null`` forgets it (the environment decides).
    Leaving replace mode needs ``"onyx_index": "rebuild"`` (see :func:`put_export`)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None
    mode: Literal["mirror", "replace"] = "mirror"
    onyx_index: Literal["rebuild"] | None = None


class ReplayInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    all: bool = False
    document_ids: list[str] | None = Field(default=None, max_length=1000)


class EnvironmentView(BaseModel):
    base_url: str
    has_api_key: bool
    login_email: str | None


class EncryptionView(BaseModel):
    configured: bool
    key_source: str | None
    allow_unencrypted: bool


class SwitchesView(BaseModel):
    """The environment's switches as this server reads them."""

    export: Literal["false", "true", "tenant"]  # ONYX_EXPORT_R2R
    mode: Literal["mirror", "replace"]  # R2R_EXPORT_MODE
    backend: str  # ONYX_INDEX_BACKEND
    locked: bool  # both off: the bridge is off for every tenant and choices are not read


class StoredExportView(BaseModel):
    enabled: bool
    mode: Literal["mirror", "replace"]


class RebuildView(BaseModel):
    """The last rebuild of Onyx's own index requested for the tenant."""

    state: Literal["scheduled", "started", "failed"]
    at: datetime
    connectors: int | None = None
    message: str


class ConfigView(BaseModel):
    tenant_id: str
    source: Literal["stored", "environment", "none"]
    credential_type: str
    base_url: str | None
    has_api_key: bool
    api_key_hint: str | None
    login_email: str | None
    has_password: bool
    encrypted: bool
    export_enabled: bool  # effective: the bridge is on for this tenant
    export_mode: Literal["mirror", "replace"]  # effective (when off: the mode it would use)
    export_state: Literal["off", "mirror", "replace"]  # effective mode (README truth table)
    export_source: Literal["stored", "environment"]  # where export_state comes from
    searches_r2r: bool  # Onyx's searches go to R2R
    stored_export: StoredExportView | None  # the admin's stored choice, if any
    switches: SwitchesView
    onyx_rebuild: RebuildView | None
    onyx_rebuild_available: bool  # this server can start a rebuild of Onyx's index
    updated_at: datetime | None
    environment: EnvironmentView
    encryption: EncryptionView
    url_policy: str


class TestView(BaseModel):
    ok: bool
    base_url: str
    auth: str
    elapsed_ms: int
    message: str


class DeleteView(BaseModel):
    deleted: bool
    message: str


class CountsView(BaseModel):
    pending: int
    retrying: int
    synced: int
    deleted: int
    dead: int


class ThroughputPoint(BaseModel):
    minute: datetime
    applied: int


class BacklogPointView(BaseModel):
    at: datetime
    pending: int
    dead: int


class BreakerView(BaseModel):
    state: str
    consecutive_failures: int = 0
    trips: int = 0
    open_for_seconds: float = 0.0


class ReconcileView(BaseModel):
    id: int
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    result: dict[str, Any]


class StatusView(BaseModel):
    tenant_id: str
    r2r_base_url: str
    counts: CountsView
    total: int
    backlog: int
    oldest_pending_seconds: float | None
    throughput: list[ThroughputPoint]
    backlog_history: list[BacklogPointView]
    breaker: BreakerView
    counters: dict[str, int]
    last_reconcile: ReconcileView | None
    generated_at: datetime


class DeadLetterView(BaseModel):
    document_id: str
    operation: Literal["upsert", "delete"]
    error_class: str | None
    reason: str | None
    attempts: int
    last_attempt_at: datetime | None


class DeadLetterPage(BaseModel):
    total: int
    offset: int
    limit: int
    items: list[DeadLetterView]


class DeadLetterClassView(BaseModel):
    name: str
    label: str
    description: str
    retried_by_reconcile: bool


class DeadLetterClassList(BaseModel):
    classes: list[DeadLetterClassView]


class ReplayView(BaseModel):
    requeued: int
    document_ids: list[str]
    message: str


class JobView(BaseModel):
    job: Literal["resync", "reconcile"]
    task: str
    task_id: str
    message: str


# ----------------------------------------------------------------- context
@dataclass
class AdminContext:
    """What the endpoints use; built lazily on the first request (imports stay cheap)."""

    settings: BridgeSettings
    store: CredentialStore
    ledger: Ledger
    redis: Redis
    celery: Celery
    doorbell: Doorbell
    # inside Onyx: makes Onyx rebuild its own index for a tenant (host.onyx_index_rebuilder)
    rebuild_onyx_index: Callable[[str], int] | None = None
    rebuild_delay_seconds: float = REBUILD_DELAY_SECONDS

    @classmethod
    def build(
        cls,
        settings: BridgeSettings,
        *,
        keyring: Keyring | None = None,
        url_policy: UrlPolicy | None = None,
        store: CredentialStore | None = None,
    ) -> "AdminContext":
        engine = get_engine(settings.database_url)
        redis = Redis.from_url(settings.broker_url)
        celery = build_app(settings)
        if url_policy is None and host.onyx_multi_tenant() and not _policy_env_set():
            url_policy = UrlPolicy.PUBLIC
        return cls(
            settings=settings,
            store=store or CredentialStore(engine, keyring=keyring, url_policy=url_policy),
            ledger=Ledger(engine, settings),
            redis=redis,
            celery=celery,
            doorbell=Doorbell(celery, redis, settings),
            rebuild_onyx_index=host.onyx_index_rebuilder(),
        )


def _policy_env_set() -> bool:
    return bool(os.environ.get(URL_POLICY_ENV, "").strip())


def check_tenant(tenant_id: str) -> str:
    """Return *tenant_id*; raise :class:`AdminApiError` (400) when it is empty or too long."""
    if not tenant_id or len(tenant_id) > _TENANT_MAX:
        raise AdminApiError(400, "invalid_tenant", "The tenant id is missing or too long.")
    return tenant_id


def _config_view(ctx: AdminContext, tenant_id: str, view: CredentialView | None) -> ConfigView:
    """What ``/config`` shows: the stored connection, else the environment's, plus facts."""
    settings = ctx.settings
    env_creds = settings.credentials
    env_has_secret = bool(env_creds.api_key) or env_creds.uses_login
    keyring = ctx.store.keyring
    stored = view is not None and view.has_secret
    source: Literal["stored", "environment", "none"] = (
        "stored" if stored else "environment" if env_has_secret else "none"
    )
    env = EnvSwitches.from_env()
    stored_choice = _stored_choice(view)
    flags = env.resolve(stored_choice)
    if flags.export:
        mode: Literal["mirror", "replace"] = "replace" if flags.replace_mode else "mirror"
    else:
        mode = "replace" if stored_choice and stored_choice[1] == "replace" else env.mode
    return ConfigView(
        tenant_id=tenant_id,
        source=source,
        credential_type=view.credential_type if view is not None else "r2r_api",
        base_url=view.base_url if stored and view else settings.r2r_base_url,
        has_api_key=bool(view and view.has_api_key),
        api_key_hint=view.api_key_hint if view else None,
        login_email=view.login_email if view else None,
        has_password=bool(view and view.has_password),
        encrypted=bool(view and view.encrypted),
        export_enabled=flags.export,
        export_mode=mode,
        export_state=flags.mode,
        export_source=flags.source,
        searches_r2r=flags.r2r_primary,
        stored_export=StoredExportView(
            enabled=stored_choice[0],
            mode="replace" if stored_choice[1] == "replace" else "mirror",
        )
        if stored_choice
        else None,
        switches=SwitchesView(
            export=env.export, mode=env.mode, backend=env.backend, locked=env.all_off
        ),
        onyx_rebuild=_rebuild_status(ctx, tenant_id),
        onyx_rebuild_available=ctx.rebuild_onyx_index is not None,
        updated_at=view.updated_at if view else None,
        environment=EnvironmentView(
            base_url=settings.r2r_base_url,
            has_api_key=bool(env_creds.api_key),
            login_email=env_creds.email or None,
        ),
        encryption=EncryptionView(
            configured=keyring.encrypts,
            key_source=keyring.current.source if keyring.current else None,
            allow_unencrypted=keyring.allow_unencrypted,
        ),
        url_policy=ctx.store.url_policy.value,
    )


# ----------------------------------------------------------------- handlers
# Plain functions: FastAPI sees them through create_router, which injects ``tenant_id``
# (the checked tenant) and ``ctx``; every other parameter is the request's body or query.
# A CredentialError or AdminApiError they raise becomes the JSON error answer (route class).


def get_config(tenant_id: str, ctx: AdminContext) -> ConfigView:
    """The tenant's R2R connection (the API key is never returned: a hint at most)."""
    return _config_view(ctx, tenant_id, ctx.store.get(tenant_id))


def put_config(body: ConnectionInput, tenant_id: str, ctx: AdminContext) -> ConfigView:
    """Validate, live-test, encrypt and store the connection; nothing is stored on failure.

    Raises the store's :class:`CredentialError` (invalid URL or credential: 422, failed
    live test: 400 with R2R's reason, no usable encryption key: 409).
    """
    view = ctx.store.save(tenant_id, body.to_input())
    return _config_view(ctx, tenant_id, view)


def delete_config(
    tenant_id: str,
    ctx: AdminContext,
    onyx_index: Annotated[Literal["rebuild"] | None, Query()] = None,
) -> DeleteView:
    """Forget the stored connection and export choice (the environment's server and switch
    remain).  When that ends replace mode it needs ``?onyx_index=rebuild`` like
    :func:`put_export` (409 ``onyx_index_stale`` otherwise)."""
    rebuild = _check_leaving_replace(ctx, tenant_id, None, onyx_index)
    deleted = ctx.store.delete(tenant_id)
    forget_tenant_cache()
    message = (
        "The stored connection was removed."
        if deleted
        else "No connection was stored for this tenant."
    )
    if rebuild:
        message += " " + _schedule_rebuild(ctx, tenant_id, ctx.rebuild_delay_seconds).message
    return DeleteView(deleted=deleted, message=message)


def test_connection(body: ConnectionInput, tenant_id: str, ctx: AdminContext) -> TestView:
    """Live-test a connection without storing it (``null`` secrets use the stored ones).

    Raises the store's :class:`CredentialError` like :func:`put_config`.
    """
    credentials = ctx.store.resolve(tenant_id, body.to_input())
    result = ctx.store.test(credentials)
    auth_text = {"api_key": "the API key", "login": "the login"}.get(
        result.auth, "the API key and the login"
    )
    return TestView(
        ok=True,
        base_url=result.base_url,
        auth=result.auth,
        elapsed_ms=int(result.elapsed_seconds * 1000),
        message=f"Connected to R2R at {result.base_url} with {auth_text}; its settings fit "
        "the bridge.",
    )


test_connection.__test__ = False  # type: ignore[attr-defined]  # a handler, not a pytest test


def put_export(body: ExportInput, tenant_id: str, ctx: AdminContext) -> ConfigView:
    """Store the tenant's export choice (on/off, mirror/replace), or forget it
    (``enabled: null``); creates the tenant's row.

    Raises :class:`AdminApiError` 409 ``switched_off_by_environment`` when both environment
    switches are off (no choice is read then, so none is stored), and 409
    ``onyx_index_stale`` when the change ends replace mode without ``"onyx_index":
    "rebuild"`` (Onyx's own index was not written meanwhile).  With it, the rebuild of Onyx's
    index starts once every Onyx process has seen the switch (:data:`REBUILD_DELAY_SECONDS`).
    """
    env = EnvSwitches.from_env()
    if env.all_off:
        raise AdminApiError(
            409,
            "switched_off_by_environment",
            "The R2R bridge is switched off for this whole deployment (ONYX_EXPORT_R2R is false "
            "or unset and ONYX_INDEX_BACKEND is not r2r), so Onyx ignores this switch. Set "
            "ONYX_EXPORT_R2R=true (on for every workspace) or ONYX_EXPORT_R2R=tenant (each "
            "workspace decides here) on Onyx's services first.",
        )
    choice = None if body.enabled is None else (body.enabled, body.mode)
    rebuild = _check_leaving_replace(ctx, tenant_id, choice, body.onyx_index)
    view = ctx.store.set_export(
        tenant_id,
        enabled=body.enabled,
        mode=body.mode,
        default_base_url=ctx.settings.r2r_base_url,
    )
    forget_tenant_cache()
    logger.info(
        "r2r export of tenant %s: %s",
        tenant_id,
        "the environment decides" if choice is None else f"{env.resolve(choice).mode} (stored)",
    )
    if rebuild:
        _schedule_rebuild(ctx, tenant_id, ctx.rebuild_delay_seconds)
    return _config_view(ctx, tenant_id, view)


def rebuild_onyx_index(tenant_id: str, ctx: AdminContext) -> RebuildView:
    """Make Onyx rebuild its own index for the tenant now (after leaving replace mode by the
    environment): clear its documents' content hashes, re-index every active connector.

    Raises :class:`AdminApiError` 409 ``rebuild_unavailable`` outside Onyx, and 409
    ``still_replacing`` while R2R still replaces Onyx's index (the rebuild would write to R2R).
    """
    if ctx.rebuild_onyx_index is None:
        raise AdminApiError(409, "rebuild_unavailable", _REBUILD_UNAVAILABLE)
    if _effective(ctx, tenant_id).replace_mode:
        raise AdminApiError(
            409,
            "still_replacing",
            "R2R still replaces Onyx's index for this workspace: a rebuild now would only "
            "write to R2R. Switch to mirror or off first.",
        )
    return _schedule_rebuild(ctx, tenant_id, 0.0)


_NO_ONYX_INDEX = (
    "Onyx has no index of its own on this server (ONYX_DISABLE_VESPA=true and "
    "ENABLE_OPENSEARCH_INDEXING_FOR_ONYX=false), so R2R must stay its index: in mirror mode "
    "or off Onyx could neither index nor search. Set up OpenSearch or Vespa for Onyx first, "
    "then switch together with a rebuild of Onyx's index."
)
_REBUILD_UNAVAILABLE = (
    "This server cannot start a rebuild of Onyx's index (it is not running inside Onyx, or "
    "Onyx's re-index functions changed), so R2R stays Onyx's index. Run the switch from "
    "Onyx's own admin page."
)


def _stored_choice(view: CredentialView | None) -> tuple[bool, str] | None:
    if view is None or view.export_enabled is None:
        return None
    return (view.export_enabled, view.export_mode)


def _effective(ctx: AdminContext, tenant_id: str) -> R2RFlags:
    return EnvSwitches.from_env().resolve(_stored_choice(ctx.store.get(tenant_id)))


def _check_leaving_replace(
    ctx: AdminContext,
    tenant_id: str,
    choice: tuple[bool, str] | None,
    onyx_index: str | None,
) -> bool:
    """Whether the change ends replace mode (then it must come with a rebuild: 409
    ``onyx_index_stale`` without one, 409 ``rebuild_unavailable`` when none can start)."""
    if not _effective(ctx, tenant_id).replace_mode:
        return False
    if EnvSwitches.from_env().resolve(choice).replace_mode:
        return False
    if not onyx_has_own_index():
        raise AdminApiError(409, "no_onyx_index", _NO_ONYX_INDEX)
    if onyx_index != "rebuild":
        raise AdminApiError(409, "onyx_index_stale", STALE_INDEX_MESSAGE)
    if ctx.rebuild_onyx_index is None:
        raise AdminApiError(409, "rebuild_unavailable", _REBUILD_UNAVAILABLE)
    return True


def _rebuild_status(ctx: AdminContext, tenant_id: str) -> RebuildView | None:
    try:
        raw = ctx.redis.get(_REBUILD_KEY + tenant_id)
    except RedisError:
        return None
    return RebuildView.model_validate_json(raw) if raw else None


def _record_rebuild(ctx: AdminContext, tenant_id: str, view: RebuildView) -> None:
    try:
        ctx.redis.set(_REBUILD_KEY + tenant_id, view.model_dump_json(), ex=_REBUILD_KEEP_SECONDS)
    except RedisError:
        logger.warning("could not record the rebuild state of tenant %s", tenant_id)


def _schedule_rebuild(ctx: AdminContext, tenant_id: str, delay: float) -> RebuildView:
    """Start the rebuild of Onyx's index after *delay* seconds, in a thread of this server;
    its outcome is logged and recorded (``GET /config`` shows it)."""
    rebuild = ctx.rebuild_onyx_index
    assert rebuild is not None

    def run() -> None:
        try:
            count = rebuild(tenant_id)
        except Exception as exc:  # noqa: BLE001 - reported on the page and in the log
            logger.error(
                "r2r admin: the rebuild of Onyx's index for tenant %s failed: %s",
                tenant_id,
                _safe_summary(exc),
            )
            view = RebuildView(
                state="failed",
                at=datetime.now(UTC),
                message="The rebuild of Onyx's index could not be started "
                f"({_safe_summary(exc)[:300]}); start it again.",
            )
        else:
            logger.info("r2r admin: Onyx re-indexes %d connectors of tenant %s", count, tenant_id)
            view = RebuildView(
                state="started",
                at=datetime.now(UTC),
                connectors=count,
                message=f"Onyx re-indexes {count} connector{'s' if count != 1 else ''} from "
                "the beginning; its own search is complete again when those runs finish.",
            )
        _record_rebuild(ctx, tenant_id, view)

    scheduled = RebuildView(
        state="scheduled",
        at=datetime.now(UTC),
        message=f"The rebuild of Onyx's index starts in {delay:.0f} s, once every Onyx "
        "process uses the new setting.",
    )
    _record_rebuild(ctx, tenant_id, scheduled)
    timer = threading.Timer(delay, run)
    timer.daemon = True
    timer.start()
    return scheduled


def get_status(
    tenant_id: str,
    ctx: AdminContext,
    minutes: Annotated[int, Query(ge=1, le=60)] = 15,
) -> StatusView:
    """Counts per state, backlog, lag, throughput per minute, breaker, last reconcile.

    ``minutes`` (1..60) is the length of the throughput and backlog series.
    """
    view = ctx.store.get(tenant_id)
    base_url = view.base_url if view is not None and view.has_secret else None
    snapshot = tenant_status(
        tenant_id,
        settings=ctx.settings,
        ledger=ctx.ledger,
        redis=ctx.redis,
        base_url=base_url or ctx.settings.r2r_base_url,
        minutes=minutes,
    )
    return StatusView.model_validate(snapshot)


def get_dead_letters(
    tenant_id: str,
    ctx: AdminContext,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 25,
) -> DeadLetterPage:
    """Dead-lettered documents (newest failure first) with class and reason; one page."""
    rows = ctx.ledger.counts(tenant_id)
    total = int(rows[0]["dead"]) if rows else 0
    items = [
        DeadLetterView(
            document_id=d.document_id,
            operation="delete" if d.desired_deleted else "upsert",
            error_class=d.error_class,
            reason=d.error,
            attempts=d.attempts,
            last_attempt_at=d.last_attempt_at,
        )
        for d in ctx.ledger.dead_letters(tenant_id, offset=offset, limit=limit)
    ]
    return DeadLetterPage(total=total, offset=offset, limit=limit, items=items)


def get_dead_letter_classes() -> DeadLetterClassList:
    """Every dead-letter class (the ``error_class`` of a dead letter) with its label, a
    sentence for people and whether a reconciliation retries it; the same for every tenant."""
    return DeadLetterClassList.model_validate({"classes": dead_letter_classes()})


def replay_dead_letters(body: ReplayInput, tenant_id: str, ctx: AdminContext) -> ReplayView:
    """Re-queue all dead letters, or the given ones, and ring the doorbell.

    Raises :class:`AdminApiError` (422) unless exactly one of ``all`` and a non-empty
    ``document_ids`` is given.
    """
    if body.all == bool(body.document_ids):
        raise AdminApiError(
            422,
            "invalid_request",
            'Send either {"all": true} or a non-empty "document_ids" list.',
        )
    requeued = ctx.ledger.replay(tenant_id, None if body.all else body.document_ids)
    ids = [doc for _, doc in requeued]
    if ids:
        ctx.doorbell.ring(tenant_id)
    logger.info("replayed %d dead letters of tenant %s", len(ids), tenant_id)
    message = (
        f"Re-queued {len(ids)} document{'s' if len(ids) != 1 else ''}."
        if ids
        else "Nothing to replay: no matching dead letters (documents rejected as invalid "
        "stay dead until Onyx sends a valid version)."
    )
    return ReplayView(requeued=len(ids), document_ids=ids[:1000], message=message)


def start_job(ctx: AdminContext, tenant_id: str, job: Literal["resync", "reconcile"]) -> JobView:
    """Queue the job's Celery task for the tenant (kwargs ``tenant_id``, with ``expires``).

    Raises :class:`AdminApiError` (409) when the same job was requested for the tenant less
    than 30 seconds ago.
    """
    task = BACKFILL_TASK if job == "resync" else RECONCILE_TASK
    if not ctx.redis.set(f"{_JOB_GUARD}{job}:{tenant_id}", "1", nx=True, ex=_JOB_GUARD_SECONDS):
        raise AdminApiError(
            409,
            "already_requested",
            f"A {job} was requested less than {_JOB_GUARD_SECONDS} seconds ago; it is "
            "queued or running.",
        )
    result = ctx.celery.send_task(
        task,
        kwargs={"tenant_id": tenant_id},
        queue=ctx.settings.queue,
        expires=ctx.settings.task_expires_seconds,
    )
    logger.info("queued %s (%s) for tenant %s", job, task, tenant_id)
    what = (
        "Resync started: Onyx's documents will be compared with the ledger and missing ones queued."
        if job == "resync"
        else "Reconciliation started: R2R's documents will be compared with the ledger and "
        "drift repaired."
    )
    return JobView(job=job, task=task, task_id=str(result.id), message=what)


def resync(tenant_id: str, ctx: AdminContext) -> JobView:
    """Queue the backfill task (``onyx_r2r.backfill``) for the tenant (see :func:`start_job`)."""
    return start_job(ctx, tenant_id, "resync")


def reconcile(tenant_id: str, ctx: AdminContext) -> JobView:
    """Queue the reconciliation task (``onyx_r2r.reconcile``) for the tenant (see
    :func:`start_job`)."""
    return start_job(ctx, tenant_id, "reconcile")


def get_metrics(ctx: AdminContext) -> Response:
    """The deployment-wide state gauges in Prometheus' text format (no tenant label):
    documents by state, the oldest pending age, dead letters by class, and the circuit
    breaker of the deployment's R2R server (``R2R_BASE_URL``).  Per-tenant series and the
    process counters are on the workers' ``ONYX_R2R_METRICS_PORT``.  Read at each request;
    a ledger failure answers ``onyx_r2r_ledger_up 0``, not an error."""
    from prometheus_client import CONTENT_TYPE_LATEST

    from onyx.r2r_sender.breaker import CircuitBreaker
    from onyx.r2r_sender.prometheus_metrics import render_gauges, server_label

    settings = ctx.settings
    breaker = CircuitBreaker(
        ctx.redis,
        settings.r2r_base_url,
        threshold=settings.breaker_threshold,
        cooldown_seconds=settings.breaker_cooldown_seconds,
        max_cooldown_seconds=settings.breaker_max_cooldown_seconds,
    )
    body = render_gauges(ctx.ledger, lambda: [(server_label(settings.r2r_base_url), breaker)])
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)


@dataclass(frozen=True)
class Route:
    """One endpoint: method, path below :data:`PREFIX`, handler, success status."""

    method: str
    path: str
    handler: Callable[..., BaseModel]
    status_code: int = 200


ROUTES: tuple[Route, ...] = (
    Route("GET", "/config", get_config),
    Route("PUT", "/config", put_config),
    Route("DELETE", "/config", delete_config),
    Route("POST", "/test", test_connection),
    Route("PUT", "/export", put_export),
    Route("GET", "/status", get_status),
    Route("GET", "/dead-letters", get_dead_letters),
    Route("GET", "/dead-letter-classes", get_dead_letter_classes),
    Route("POST", "/dead-letters/replay", replay_dead_letters),
    Route("POST", "/resync", resync, status_code=202),
    Route("POST", "/reconcile", reconcile, status_code=202),
    Route("POST", "/onyx-reindex", rebuild_onyx_index, status_code=202),
)


# ------------------------------------------------------------------ router
class _LazyContext:
    """The router's :class:`AdminContext`: given, or built once on the first request."""

    def __init__(
        self,
        context: AdminContext | Callable[[], AdminContext] | None,
        settings: BridgeSettings | Callable[[], BridgeSettings] | None,
    ) -> None:
        self._context = context
        self._settings = settings
        self._built: AdminContext | None = None
        self._lock = threading.Lock()

    def __call__(self) -> AdminContext:
        if isinstance(self._context, AdminContext):
            return self._context
        with self._lock:
            if self._built is None:
                if callable(self._context):
                    self._built = self._context()
                else:
                    chosen = self._settings() if callable(self._settings) else self._settings
                    self._built = AdminContext.build(chosen or BridgeSettings.from_env())
            return self._built


def _checked_tenant(tenant: Callable[..., str]) -> Callable[..., str]:
    """A dependency: the host's tenant (its own dependency), checked by :func:`check_tenant`."""

    def current_tenant(tenant_id: Annotated[str, Depends(tenant)]) -> str:
        return check_tenant(tenant_id)

    return current_tenant


def _endpoint(
    handler: Callable[..., BaseModel],
    tenant: Callable[..., str],
    context: Callable[[], AdminContext],
) -> Callable[..., BaseModel]:
    """*handler* as FastAPI sees it: its ``tenant_id`` and ``ctx`` parameters come from the
    *tenant* and *context* dependencies, every other parameter stays as declared."""
    injected = {
        "tenant_id": Annotated[str, Depends(tenant)],
        "ctx": Annotated[AdminContext, Depends(context)],
    }
    signature = inspect.signature(handler)
    parameters = [
        p.replace(annotation=injected[p.name]) if p.name in injected else p
        for p in signature.parameters.values()
    ]

    @functools.wraps(handler)
    def endpoint(**kwargs: Any) -> BaseModel:
        return handler(**kwargs)

    endpoint.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    return endpoint


def create_router(
    *,
    auth: Callable[..., Any] | None = None,
    tenant: Callable[..., str] | None = None,
    settings: BridgeSettings | Callable[[], BridgeSettings] | None = None,
    context: AdminContext | Callable[[], AdminContext] | None = None,
    passthrough: tuple[type[BaseException], ...] | None = None,
) -> APIRouter:
    """Build the admin router: :data:`ROUTES` behind the auth dependency, JSON errors.

    ``auth``: a FastAPI dependency that raises (403) for non-admins; default: Onyx's admin
    permission inside Onyx, else refuse everything.  ``tenant``: a dependency returning the
    tenant id; default: Onyx's current tenant, else ``"public"``.  ``settings``/``context``:
    what the endpoints use (default: ``BridgeSettings.from_env()``, built on first use).
    ``passthrough``: exception types left to the host's own handlers (default: Onyx's).
    """
    auth_dep = auth or host.onyx_admin_dependency() or host.deny_all
    current_tenant = _checked_tenant(tenant or host.onyx_tenant_dependency() or host.default_tenant)
    get_context = _LazyContext(context, settings)
    router = APIRouter(
        prefix=PREFIX,
        tags=["r2r-mirror"],
        dependencies=[Depends(auth_dep)],
        route_class=_route_class(
            passthrough if passthrough is not None else host.passthrough_exceptions()
        ),
    )
    for route in ROUTES:
        router.add_api_route(
            route.path,
            _endpoint(route.handler, current_tenant, get_context),
            methods=[route.method],
            status_code=route.status_code,
        )

    def metrics_endpoint(ctx: Annotated[AdminContext, Depends(get_context)]) -> Response:
        return get_metrics(ctx)

    metrics_endpoint.__doc__ = get_metrics.__doc__
    router.add_api_route(
        "/metrics",
        metrics_endpoint,
        methods=["GET"],
        response_class=Response,
        include_in_schema=True,
    )
    return router


def __getattr__(name: str) -> Any:
    """``router``, the one Onyx registers (Onyx's admin permission and tenant, settings from
    the environment), is built on first access, not when the module is imported."""
    if name == "router":
        value = create_router()
        globals()["router"] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
