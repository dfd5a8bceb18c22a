"""``R2RIndex``: Onyx's ``DocumentIndex`` backed by the R2R mirror (importable inside Onyx only).

All behaviour lives in :class:`~onyx.document_index.r2r.index_core.R2RIndexCore`
(tested in CI without Onyx); this class binds it to Onyx's real interface
(``interfaces_new.DocumentIndex``, all nine abstract methods) and result types.
Built by :mod:`onyx.document_index.r2r.factory_hooks` (the patched factory).
"""

from __future__ import annotations

from typing import Any

from onyx.configs.constants import DocumentSource
from onyx.context.search.models import InferenceChunk
from onyx.db.models import SearchSettings
from onyx.document_index.interfaces_new import DocumentIndex, DocumentInsertionRecord
from shared_configs.contextvars import get_current_tenant_id

from onyx.document_index.r2r.index_core import R2RIndexCore
from onyx.document_index.r2r.search_errors import R2RSearchError
from onyx.r2r_integration.flags import (
    R2RFlags,
    is_future_settings,
    tenant_credentials,
    tenant_flags,
)
from onyx.r2r_sender.config import BridgeSettings


def _inference_chunk(**fields: Any) -> InferenceChunk:
    try:
        fields["source_type"] = DocumentSource(fields["source_type"])
    except ValueError:
        fields["source_type"] = DocumentSource.NOT_APPLICABLE
    return InferenceChunk(**fields)


def onyx_search_error(status_code: int, detail: str) -> Exception:
    """Onyx's own ``OnyxError`` (503 ``SERVICE_UNAVAILABLE`` / 502 ``BAD_GATEWAY``), which
    its handler answers as JSON with the status and the detail; without Onyx's error module
    (an older Onyx), an :class:`R2RSearchError`, whose ``status_code`` is an ``int`` too."""
    try:
        from onyx.error_handling.error_codes import OnyxErrorCode
        from onyx.error_handling.exceptions import OnyxError
    except ImportError:
        return R2RSearchError(status_code, detail)
    code = OnyxErrorCode.SERVICE_UNAVAILABLE if status_code == 503 else OnyxErrorCode.BAD_GATEWAY
    return OnyxError(code, detail, status_code_override=status_code)


def _insertion_record(document_id: str, already_existed: bool) -> DocumentInsertionRecord:
    return DocumentInsertionRecord(document_id=document_id, already_existed=already_existed)


class R2RIndex(R2RIndexCore, DocumentIndex):
    """R2R as an Onyx document index: a write-only mirror or the primary index.

    Construction makes no R2R call and never raises (the tenant's export switch is a
    cached, time-bounded lookup; its credential is read on first use).  The tenant
    defaults to Onyx's current tenant (the factory runs with the tenant contextvar set).
    """

    def __init__(
        self,
        search_settings: SearchSettings | None = None,
        *,
        tenant_id: str | None = None,
        flags: R2RFlags | None = None,
        settings: BridgeSettings | None = None,
    ) -> None:
        tenant = tenant_id or get_current_tenant_id()
        bridge_settings = settings or BridgeSettings.from_env()
        flags = flags or tenant_flags(tenant, bridge_settings)
        super().__init__(
            tenant_id=tenant,
            chunk_factory=_inference_chunk,
            record_factory=_insertion_record,
            docfetching_export=flags.export,
            writes_enabled=not is_future_settings(search_settings),
            settings=bridge_settings,
            credentials=lambda: tenant_credentials(tenant, bridge_settings),
            error_factory=onyx_search_error,
        )
