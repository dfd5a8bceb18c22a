"""What the patched ``onyx/document_index/factory.py`` calls (three one-line hooks).

* :func:`replacement_indices` - first thing in ``get_all_document_indices``: in replace
  mode ``[R2RIndex]`` is every index Onyx writes to (for FUTURE search settings a
  write-skipping ``R2RIndex``, so a model swap still completes); otherwise ``None`` and
  the factory goes on as upstream.
* :func:`with_mirror` - on the factory's result: appends ``R2RIndex`` last in mirror
  mode when the search settings are not FUTURE.  Last, so Onyx's own index stays first
  (Onyx reports the first index's results and the factory's docstring wants Vespa first).
* :func:`default_index` - first thing in ``get_default_document_index``: ``R2RIndex``
  when the tenant searches R2R (replace mode, or mirror with ``ONYX_INDEX_BACKEND=r2r``).

The tenant's mode is :func:`onyx.r2r_integration.flags.tenant_flags` (the README's truth
table).  With the bridge off the hooks return upstream's answer without any I/O.  None of
them raises: a broken mirror configuration or installation leaves Onyx as upstream, logged
once per interval.  :func:`~onyx.r2r_integration.flags.bypass` switches them off in a block
(the backfill reads Onyx's own index through the factory).

This module is imported by Onyx's factory at start-up, so it imports nothing but the
standard library and the flags module at import time: ``R2RIndex``, the engine and their
packages load on the first call that needs them.
"""

from __future__ import annotations

import logging
from typing import Any

from onyx.r2r_integration.flags import R2RFlags, bypassed, is_future_settings, tenant_flags
from onyx.r2r_integration.logs import throttled

logger = logging.getLogger(__name__)


def _current_tenant() -> str:
    from shared_configs.contextvars import get_current_tenant_id  # Onyx's

    return str(get_current_tenant_id())


def _flags() -> tuple[str, R2RFlags] | None:
    if bypassed():
        return None
    try:
        tenant_id = _current_tenant()
        return tenant_id, tenant_flags(tenant_id)
    except Exception as exc:  # noqa: BLE001 - the factory never fails because of the bridge
        _failed("flags", "could not determine the R2R switches", exc)
        return None


def _failed(key: str, what: str, exc: BaseException) -> None:
    throttled.log(
        logger,
        logging.ERROR,
        f"factory:{key}",
        "r2r: %s (%s: %s); Onyx uses its own indices",
        what,
        type(exc).__name__,
        exc,
        exc_info=True,
    )


def _build(search_settings: Any, tenant_id: str, flags: R2RFlags) -> Any:
    # imported here: R2RIndex pulls in Onyx's search models and the engine (SQLAlchemy,
    # Celery, httpx, backoff), which Onyx's factory must not need at import time
    from onyx.document_index.r2r.r2r_index import R2RIndex

    return R2RIndex(search_settings, tenant_id=tenant_id, flags=flags)


def replacement_indices(search_settings: Any) -> list[Any] | None:
    """``[R2RIndex]`` in replace mode, else ``None`` (the factory continues as upstream)."""
    found = _flags()
    if found is None or not found[1].replace_mode:
        return None
    try:
        return [_build(search_settings, *found)]
    except Exception as exc:  # noqa: BLE001
        _failed("replace", "could not build R2RIndex for replace mode", exc)
        return None


def with_mirror(result: list[Any], search_settings: Any) -> list[Any]:
    """*result* plus ``R2RIndex`` (last) in mirror mode; FUTURE settings are skipped."""
    found = _flags()
    if found is None or found[1].mode != "mirror" or is_future_settings(search_settings):
        return result
    try:
        return [*result, _build(search_settings, *found)]
    except Exception as exc:  # noqa: BLE001
        _failed("mirror", "could not build R2RIndex; the mirror misses this call", exc)
        return result


def default_index(search_settings: Any) -> Any | None:
    """``R2RIndex`` when the tenant searches R2R, else ``None``."""
    found = _flags()
    if found is None or not found[1].r2r_primary:
        return None
    try:
        return _build(search_settings, *found)
    except Exception as exc:  # noqa: BLE001
        _failed("search", "could not build R2RIndex; Onyx searches its own index", exc)
        return None
