"""Searches that respect the mirror's ACL model and never show two versions of a document.

The allowed principals become collection ids through the same mapping the
workers use (never creating collections: a principal nobody was granted has
no collection and matches nothing).  The R2R filter is
``$and[ metadata.tenant_id = tenant, collection ∈ allowed principals, … ]``
(documents are in their tenant's ACL/set collections; the tenant itself is
chunk metadata, which costs R2R no membership write).  During a
gap-free replace R2R briefly holds two versions of a document; hits are
grouped by source document id and only the newest version (highest
``bridge_seq``) is kept.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Literal

from onyx.r2r_sender.applier import SEQ_KEY
from onyx.r2r_sender.client import R2RClient
from onyx.r2r_sender.collections import CollectionResolver
from onyx.r2r_sender.payload import ACL_PREFIX, FLAG_PREFIX, SET_PREFIX
from onyx.r2r_sender.r2r_types import SearchHit

SearchMode = Literal["semantic", "hybrid", "fulltext"]
HIDDEN_LABEL = FLAG_PREFIX + "hidden"  # [issue-4] hidden documents: excluded unless asked


def tenant_filter(tenant_id: str) -> dict[str, Any]:
    """The R2R filter clause that keeps *tenant_id*'s chunks (their ``tenant_id`` metadata)."""
    return {"metadata.tenant_id": {"$eq": tenant_id}}


def newest_versions(hits: list[SearchHit]) -> list[SearchHit]:
    """Drop hits of older versions of a document (keeps order; pure)."""
    newest: dict[str, int] = {}
    for hit in hits:
        doc = str(hit.metadata.get("source_document_id", hit.document_id))
        seq = int(hit.metadata.get(SEQ_KEY, 0) or 0)
        newest[doc] = max(seq, newest.get(doc, seq))
    return [
        hit
        for hit in hits
        if int(hit.metadata.get(SEQ_KEY, 0) or 0)
        == newest[str(hit.metadata.get("source_document_id", hit.document_id))]
    ]


class MirrorSearch:
    """Search one tenant's mirrored documents as a given set of principals."""

    def __init__(self, client: R2RClient, resolver: CollectionResolver) -> None:
        self.client = client
        self.resolver = resolver

    def search(
        self,
        tenant_id: str,
        query: str,
        *,
        acl: Collection[str] | None,
        document_sets: Collection[str] | None = None,
        filters: Mapping[str, Any] | None = None,
        limit: int = 10,
        mode: SearchMode = "semantic",
        include_hidden: bool = False,
    ) -> list[SearchHit]:
        """Return up to *limit* hits visible to *acl* (Onyx ACL entries, e.g. ``PUBLIC``).

        ``acl=None`` means no ACL restriction (Onyx's admin/internal searches):
        the tenant's documents only.  ``document_sets`` (when given) restricts
        hits to those sets.  Hidden documents are left out unless
        *include_hidden*.  Extra metadata ``filters`` use R2R's filter syntax
        and are ANDed.  An empty *acl* returns ``[]`` without calling R2R.
        Raises client errors.
        """
        acl_labels = None if acl is None else [ACL_PREFIX + p for p in acl]
        if acl_labels is not None and not acl_labels:
            return []
        set_labels = [SET_PREFIX + s for s in (document_sets or ())]
        known = self.resolver.resolve(
            tenant_id,
            [HIDDEN_LABEL, *(acl_labels or ()), *set_labels],
            create=False,
        )
        allowed: list[str] | None = None
        if acl_labels is not None:
            allowed = sorted({str(known[label]) for label in acl_labels if label in known})
            if not allowed:
                return []
        # documents are in their ACL/set collections only: the tenant is chunk metadata
        conditions: list[dict[str, Any]] = [tenant_filter(tenant_id)]
        if not include_hidden and HIDDEN_LABEL in known:
            conditions.append({"collection_ids": {"$nin": [str(known[HIDDEN_LABEL])]}})
        if document_sets is not None:
            set_ids = sorted({str(known[label]) for label in set_labels if label in known})
            if not set_ids:
                return []
            conditions.append({"collection_ids": {"$overlap": set_ids}})
        if filters:
            conditions.append(dict(filters))
        fetch = min(1000, max(limit * 2, limit + 10))
        hits = self.client.search(
            query,
            collection_ids=allowed,
            filters={"$and": conditions} if len(conditions) > 1 else conditions[0],
            limit=fetch,
            mode=mode,
        )
        return newest_versions(hits)[:limit]
