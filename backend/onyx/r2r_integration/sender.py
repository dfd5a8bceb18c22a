"""``R2RDocumentSender``: the engine's asynchronous sender, reading Onyx's documents.

``send_batch`` takes Onyx ``Document``-shaped objects (or dicts with the same keys, or
the engine's :class:`~onyx.r2r_sender.payload.SourceDocument`) and maps each with
:func:`~onyx.r2r_integration.onyx_shapes.source_document_from_onyx`; everything else
(validation, one short ledger transaction, the doorbell, rejections naming the
document) is the engine's :class:`~onyx.r2r_sender.sender.MirrorSender`.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from onyx.r2r_integration.onyx_shapes import source_document_from_onyx
from onyx.r2r_sender.hosts import TenantScope
from onyx.r2r_sender.payload import SourceDocument
from onyx.r2r_sender.sender import DEFAULT_TENANT, MirrorSender


def onyx_converter(doc: Any, default_acl: Collection[str] | None) -> SourceDocument:
    """The engine :data:`~onyx.r2r_sender.sender.Converter` for Onyx's documents."""
    return source_document_from_onyx(doc, default_acl=default_acl)


class R2RDocumentSender(MirrorSender):
    """Mirror one Onyx tenant's documents into R2R (see :class:`MirrorSender`)."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        tenant_id: str | TenantScope = DEFAULT_TENANT,
        default_acl: Collection[str] | None = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(
            base_url,
            api_key,
            tenant_id=tenant_id,
            default_acl=default_acl,
            convert=onyx_converter,
            **kwargs,
        )
