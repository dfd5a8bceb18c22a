"""Test cleanup in R2R that needs nothing but the engine's client (usable in CCBE's venv)."""

from __future__ import annotations

import contextlib
import uuid
from concurrent.futures import ThreadPoolExecutor

from onyx.r2r_sender import R2RClient, TenantScope
from onyx.r2r_sender.collections import label_from


def delete_collection(client: R2RClient, collection_id: uuid.UUID) -> None:
    """Delete one (emptied) collection; best effort, for test cleanup only."""
    with contextlib.suppress(Exception):
        client._transport.request(  # the client deliberately has no delete_collection
            "DELETE",
            f"/v3/collections/{collection_id}",
            operation="delete_collection",
            retry=False,
        )


def purge_scope(client: R2RClient, scope: TenantScope) -> None:
    """Delete what one scope left in R2R: documents first, then its (then empty) collections.

    Every Nextcloud document is in its provider's collection, so only the non-user
    collections are listed (all of them for a scope without any). Best effort.
    """
    mine = [
        c for c in client.iter_collections() if label_from(scope, c.name, c.description) is not None
    ]
    listed = [
        c.id
        for c in mine
        if not (label_from(scope, c.name, c.description) or "").startswith("acl:")
    ] or [c.id for c in mine]

    def documents(collection_id: uuid.UUID) -> list[uuid.UUID]:
        with contextlib.suppress(Exception):
            return [d.id for d in client.iter_collection_documents(collection_id)]
        return []

    def delete_document(document_id: uuid.UUID) -> None:
        with contextlib.suppress(Exception):
            client.delete_document(document_id, retry=False)

    with ThreadPoolExecutor(max_workers=8) as pool:
        held = {d for ids in pool.map(documents, listed) for d in ids}
        list(pool.map(delete_document, held))
        list(pool.map(lambda cid: delete_collection(client, cid), [c.id for c in mine]))
