"""The only place the admin API touches Onyx: its admin permission and its tenant.

Inside an Onyx deployment (``onyx.auth.permissions`` importable) the router is guarded by
``require_permission(Permission.FULL_ADMIN_PANEL_ACCESS)`` (``onyx.auth.permissions``,
``onyx.db.enums``) and the tenant is ``shared_configs.contextvars.get_current_tenant_id()``.
Outside Onyx (CI, the standalone app) these imports fail and the defaults are fail-closed:
every request is refused with 403 until a host injects its own auth dependency (see
:func:`onyx.server.r2r.api.create_router`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import HTTPException

logger = logging.getLogger(__name__)

DEFAULT_TENANT = "public"  # Onyx's single-tenant schema (POSTGRES_DEFAULT_SCHEMA)


def deny_all() -> None:
    """Auth dependency used when no host auth is available: refuse (fail closed)."""
    raise HTTPException(
        status_code=403,
        detail="Admin access required: this server has no admin authentication configured "
        "for the R2R admin API.",
    )


def onyx_admin_dependency() -> Callable[..., Any] | None:
    """Onyx's admin permission dependency, or ``None`` when not running inside Onyx."""
    try:
        from onyx.auth.permissions import require_permission  # type: ignore[import-not-found]
        from onyx.db.enums import Permission  # type: ignore[import-not-found]
    except ImportError:
        return None
    return require_permission(Permission.FULL_ADMIN_PANEL_ACCESS)


def onyx_tenant_dependency() -> Callable[[], str] | None:
    """Onyx's current-tenant resolver (a plain function), or ``None`` outside Onyx."""
    try:
        from shared_configs.contextvars import (  # type: ignore[import-not-found]
            get_current_tenant_id,
        )
    except ImportError:
        return None

    def current_tenant() -> str:
        return str(get_current_tenant_id())

    return current_tenant


def onyx_multi_tenant() -> bool:
    """Whether Onyx runs multi-tenant (then admin-entered URLs default to public-only)."""
    try:
        from shared_configs.configs import MULTI_TENANT  # type: ignore[import-not-found]
    except ImportError:
        return False
    return bool(MULTI_TENANT)


def passthrough_exceptions() -> tuple[type[BaseException], ...]:
    """Host exception types the router must let through to the host's own handlers."""
    try:
        from onyx.error_handling.exceptions import OnyxError  # type: ignore[import-not-found]
    except ImportError:
        return ()
    return (OnyxError,)


def default_tenant() -> str:
    return DEFAULT_TENANT


def onyx_index_rebuilder() -> Callable[[str], int] | None:
    """Inside Onyx: a function that makes Onyx rebuild its own index for one tenant.

    It clears the content hash of every Onyx document of the tenant (so Onyx's
    content-hash gate lets each one through again) and triggers a complete re-index
    (``IndexingMode.REINDEX``) of every active connector; it returns how many connectors
    were triggered.  Onyx's own beat starts the runs.  ``None`` outside Onyx, or when these
    Onyx functions are gone or changed (the admin page then says so).
    """
    try:
        from onyx.db.connector import (  # type: ignore[import-not-found]
            mark_ccpair_with_indexing_trigger,
        )
        from onyx.db.connector_credential_pair import (  # type: ignore[import-not-found]
            fetch_indexable_standard_connector_credential_pair_ids,
        )
        from onyx.db.engine.sql_engine import (  # type: ignore[import-not-found]
            get_session_with_tenant,
        )
        from onyx.db.enums import IndexingMode  # type: ignore[import-not-found]
        from onyx.db.models import Document  # type: ignore[import-not-found]
        from sqlalchemy import update

        reindex = IndexingMode.REINDEX
    except Exception:  # noqa: BLE001 - not inside Onyx, or Onyx changed these names
        logger.info("r2r admin: Onyx's re-index functions are not available here")
        return None

    def rebuild(tenant_id: str) -> int:
        with get_session_with_tenant(tenant_id=tenant_id) as db_session:
            db_session.execute(update(Document).values(content_hash=None))
            db_session.commit()
            cc_pair_ids = fetch_indexable_standard_connector_credential_pair_ids(db_session)
            for cc_pair_id in cc_pair_ids:
                mark_ccpair_with_indexing_trigger(cc_pair_id, reindex, db_session)
        return len(cc_pair_ids)

    return rebuild
