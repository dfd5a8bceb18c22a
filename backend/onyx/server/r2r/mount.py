"""Mount the R2R admin router into Onyx's application without ever stopping Onyx.

The patch to ``backend/onyx/main.py`` calls, inside ``get_application()``::

    try:
        from onyx.server.r2r.mount import include_r2r_admin_router

        include_r2r_admin_router(application, include_router_with_global_prefix_prepended)
    except Exception:
        logger.exception("onyx-r2r: the R2R admin page is not available")

Building the router imports the engine and Onyx's auth dependency
(``require_permission(Permission.FULL_ADMIN_PANEL_ACCESS)``); any failure there - a
missing package, a renamed permission, a changed signature - is logged as one clear error
and Onyx starts without the page.  This module imports only the standard library.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

Include = Callable[[Any, Any], None]


def _build_router() -> Any:
    from onyx.server.r2r.api import router  # builds the router (engine + Onyx's auth)

    return router


def include_r2r_admin_router(
    application: Any, include: Include, build: Callable[[], Any] | None = None
) -> bool:
    """Build the admin router and add it with *include* (Onyx's
    ``include_router_with_global_prefix_prepended``); return whether the page is mounted.

    Never raises: a failure is one ERROR line naming the cause, and *application* is left
    without any of the router's routes.
    """
    try:
        router = (build or _build_router)()
    except Exception as exc:  # noqa: BLE001 - the page must never stop Onyx from starting
        logger.error(
            "onyx-r2r: the R2R admin page is not available: building its router failed "
            "(%s: %s); Onyx runs without it. Check the onyx-r2r installation against this "
            "Onyx version (scripts/onyx_contract).",
            type(exc).__name__,
            exc,
        )
        return False
    routes_before = list(application.router.routes)
    try:
        include(application, router)
    except Exception as exc:  # noqa: BLE001
        application.router.routes[:] = routes_before  # nothing half-mounted
        logger.error(
            "onyx-r2r: the R2R admin page is not available: mounting its router failed "
            "(%s: %s); Onyx runs without it.",
            type(exc).__name__,
            exc,
        )
        return False
    return True
