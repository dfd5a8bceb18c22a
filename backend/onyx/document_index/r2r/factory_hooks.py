"""What the patched ``onyx/document_index/factory.py`` calls (three one-line hooks).

* :func:`replacement_indices` - first thing in ``get_all_document_indices``:
  in replace mode, ``[R2RIndex]`` is every index Onyx writes to (for FUTURE
  search settings a write-skipping ``R2RIndex``, so a model swap still completes);
  otherwise ``None`` and the factory goes on as upstream.
* :func:`with_mirror` - on the factory's result: appends ``R2RIndex`` last
  when the export (or R2R retrieval) is on and the search settings are not
  FUTURE.  Last, so Onyx's own index stays first (Onyx reports the first
  index's results and the factory's docstring wants Vespa first).
* :func:`default_index` - first thing in ``get_default_document_index``:
  ``R2RIndex`` when ``ONYX_INDEX_BACKEND=r2r`` or in replace mode, else ``None``.

None of them raises: a broken mirror configuration leaves Onyx as upstream
(logged).  :func:`bypass` switches them off in a block (the backfill reads
Onyx's own index through the factory).
"""

from __future__ import annotations

import logging
from typing import Any

from shared_configs.contextvars import get_current_tenant_id

from onyx.r2r_integration.flags import R2RFlags, bypassed, is_future_settings, tenant_flags
from onyx.r2r_sender.config import BridgeSettings

logger = logging.getLogger(__name__)


def _flags() -> tuple[str, R2RFlags, BridgeSettings] | None:
    if bypassed():
        return None
    try:
        settings = BridgeSettings.from_env()
        tenant_id = get_current_tenant_id()
        return tenant_id, tenant_flags(tenant_id, settings), settings
    except Exception:
        logger.exception("r2r: invalid configuration; Onyx runs without the R2R index")
        return None


def _build(search_settings: Any, tenant_id: str, flags: R2RFlags, settings: BridgeSettings) -> Any:
    # imported here: the factory imports this module at start-up, R2RIndex pulls in
    # Onyx's search models (no import cycle through the factory)
    from onyx.document_index.r2r.r2r_index import R2RIndex

    return R2RIndex(search_settings, tenant_id=tenant_id, flags=flags, settings=settings)


def replacement_indices(search_settings: Any) -> list[Any] | None:
    """``[R2RIndex]`` in replace mode, else ``None`` (the factory continues as upstream)."""
    found = _flags()
    if found is None or not found[1].replace_mode:
        return None
    try:
        return [_build(search_settings, *found)]
    except Exception:
        logger.exception("r2r: could not build R2RIndex; Onyx uses its own indices")
        return None


def with_mirror(result: list[Any], search_settings: Any) -> list[Any]:
    """*result* plus ``R2RIndex`` (last) when R2R takes Onyx's writes; FUTURE settings skipped."""
    found = _flags()
    if found is None or not found[1].in_fanout or found[1].replace_mode:
        return result
    if is_future_settings(search_settings):
        return result
    try:
        return [*result, _build(search_settings, *found)]
    except Exception:
        logger.exception("r2r: could not build R2RIndex; the mirror misses this call")
        return result


def default_index(search_settings: Any) -> Any | None:
    """``R2RIndex`` when Onyx retrieves from R2R, else ``None``."""
    found = _flags()
    if found is None or not found[1].r2r_primary:
        return None
    try:
        return _build(search_settings, *found)
    except Exception:
        logger.exception("r2r: could not build R2RIndex; Onyx searches its own index")
        return None
