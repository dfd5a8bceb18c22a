"""The Onyx adapters' sender, on the engine's bounded plumbing (:mod:`onyx.r2r_sender.plumbing`)."""

from __future__ import annotations

from onyx.r2r_integration.sender import R2RDocumentSender
from onyx.r2r_sender.config import BridgeSettings, R2RCredentials
from onyx.r2r_sender.plumbing import host_doorbell, host_ledger


def host_sender(
    tenant_id: str,
    settings: BridgeSettings,
    *,
    default_acl: list[str] | None = None,
    credentials: R2RCredentials | None = None,
) -> R2RDocumentSender:
    """An :class:`R2RDocumentSender` for an Onyx tenant (reads Onyx documents; cheap to build)."""
    return R2RDocumentSender(
        credentials.base_url if credentials else None,
        credentials.api_key.get() if credentials and credentials.api_key else None,
        tenant_id=tenant_id,
        default_acl=default_acl,
        settings=settings,
        ledger=host_ledger(settings),
        doorbell=host_doorbell(settings),
    )
