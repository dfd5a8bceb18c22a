"""Onyx's ``BackfillSource``: walk a tenant's ``document`` rows, content from Onyx's own index.

Configured on the mirror worker (which runs with Onyx's code and environment)::

    ONYX_R2R_BACKFILL_SOURCE=onyx.background.celery.tasks.r2r_mirror.backfill_source:build_source

The engine's beat then runs resumable, throttled backfill slices
(``onyx_r2r.backfill``, cursor in ``r2r_bridge.sync_cursor``) for every tenant
with the mirror on whose pass is not done - like Onyx's OpenSearch migration
task, but in the mirror's own worker (no Onyx beat patch).  The admin page's
"resync" starts a new pass.

* Ids: ``document.id`` in byte order (``COLLATE "C"``: stable whatever the
  database locale), read in the tenant's schema.
* Content: Onyx's primary index (``id_based_retrieval`` through the factory with the
  R2R hooks bypassed), regular chunks only, in chunk order.  Onyx's OpenSearch index
  does not return hidden documents, so hidden documents are not backfilled (they
  are not searchable anyway; a resync after un-hiding records them).
* Access, document sets, hidden: from Onyx's database (``get_access_for_documents``,
  ``fetch_document_sets_for_documents``, ``document.hidden``).

Importable only inside Onyx.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from onyx.access.access import get_access_for_documents
from onyx.context.search.models import IndexFilters
from onyx.db.document_set import fetch_document_sets_for_documents
from onyx.db.engine.sql_engine import get_session_with_current_tenant
from onyx.db.engine.tenant_utils import get_all_tenant_ids
from onyx.db.models import Document as DbDocument
from onyx.db.search_settings import get_current_search_settings
from onyx.document_index.factory import get_default_document_index
from onyx.document_index.interfaces_new import DocumentSectionRequest
from shared_configs.contextvars import CURRENT_TENANT_ID_CONTEXTVAR
from sqlalchemy import select

from onyx.r2r_integration.flags import bypass, tenant_flags
from onyx.r2r_integration.onyx_shapes import enum_value
from onyx.r2r_sender.payload import SourceDocument

logger = logging.getLogger(__name__)


class OnyxBackfillSource:
    """The documents of one Onyx tenant, as the mirror records them."""

    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = tenant_id

    @contextlib.contextmanager
    def _tenant(self) -> Iterator[None]:
        token = CURRENT_TENANT_ID_CONTEXTVAR.set(self.tenant_id)
        try:
            yield
        finally:
            CURRENT_TENANT_ID_CONTEXTVAR.reset(token)

    def list_ids(self, after: str | None, limit: int) -> Sequence[str]:
        key = DbDocument.id.collate("C")
        query = select(DbDocument.id).order_by(key).limit(limit)
        if after is not None:
            query = query.where(key > after)
        with self._tenant(), get_session_with_current_tenant() as session:
            return [str(i) for i in session.scalars(query)]

    def fetch(self, document_ids: Sequence[str]) -> Iterable[SourceDocument]:
        with self._tenant():
            with get_session_with_current_tenant() as session:
                rows = {
                    row.id: row
                    for row in session.scalars(
                        select(DbDocument).where(DbDocument.id.in_(list(document_ids)))
                    )
                }
                if not rows:
                    return []
                access = get_access_for_documents(document_ids=list(rows), db_session=session)
                sets = dict(fetch_document_sets_for_documents(list(rows), session))
                search_settings = get_current_search_settings(session)
                with bypass():
                    index = get_default_document_index(search_settings, None, session)
            chunks = index.id_based_retrieval(
                chunk_requests=[DocumentSectionRequest(document_id=i) for i in rows],
                filters=IndexFilters(access_control_list=None, tenant_id=self.tenant_id),
                batch_retrieval=True,
            )
        by_doc: dict[str, list[Any]] = {}
        for chunk in chunks:
            if getattr(chunk, "large_chunk_reference_ids", None):
                continue
            by_doc.setdefault(chunk.document_id, []).append(chunk)
        out: list[SourceDocument] = []
        for doc_id, doc_chunks in by_doc.items():
            row = rows.get(doc_id)
            if row is None:
                continue
            doc_chunks.sort(key=lambda c: c.chunk_id)
            first = doc_chunks[0]
            links = first.source_links or {}
            doc_access = access.get(doc_id)
            out.append(
                SourceDocument(
                    document_id=doc_id,
                    text="\n".join(c.content for c in doc_chunks),
                    title=first.title or row.semantic_id,
                    semantic_identifier=row.semantic_id or first.semantic_identifier,
                    link=row.link or (links[min(links)] if links else None),
                    source_type=enum_value(first.source_type),
                    updated_at=row.doc_updated_at or first.updated_at,
                    metadata=dict(first.metadata or {}),
                    acl=sorted(doc_access.to_acl()) if doc_access is not None else [],
                    sets=sorted(sets.get(doc_id) or []),
                    flags=["hidden"] if row.hidden else [],
                )
            )
        return out


BEAT_LOOKUP_SECONDS = 5.0


def build_source(tenant_id: str) -> OnyxBackfillSource:
    """The factory named by ``ONYX_R2R_BACKFILL_SOURCE``."""
    return OnyxBackfillSource(tenant_id)


def tenants() -> list[str]:
    """Onyx's tenants with the mirror switched on (the beat backfills these).

    The mirror's own beat may wait for the ledger database (Onyx's request paths never do).
    """
    return [
        t for t in get_all_tenant_ids() if tenant_flags(t, budget=BEAT_LOOKUP_SECONDS).in_fanout
    ]
