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
