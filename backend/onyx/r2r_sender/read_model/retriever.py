"""The engine's retrieval: searches and document reads within a :class:`SearchScope`.

A :class:`Retriever` holds an R2R client and the label → collection resolver.  It never
writes to R2R: labels are resolved with ``create=False`` (a label nobody was ever
granted has no collection and matches nothing).  Every result is a
:class:`~onyx.r2r_sender.read_model.chunks.MirroredChunk` that passed the scope's rules,
and a search never shows two versions of one document.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from onyx.r2r_sender.client import R2RClient, SearchMode
from onyx.r2r_sender.collections import CollectionResolver
from onyx.r2r_sender.errors import R2RNotFoundError
from onyx.r2r_sender.r2r_types import R2RChunk
from onyx.r2r_sender.read_model.chunks import MirroredChunk, newest_versions, raw_version
from onyx.r2r_sender.read_model.scope import ResolvedScope, SearchScope

logger = logging.getLogger(__name__)

MAX_RESULTS = 1000
"""The most results one search returns (and the most it asks R2R for)."""
MAX_FETCH_WORKERS = 8
"""Concurrent ``list_document_chunks`` requests of one :meth:`Retriever.document_chunks`."""


def fetch_limit(limit: int) -> int:
    """How many hits to ask R2R for to return *limit* after the newest-version dedupe."""
    return min(MAX_RESULTS, max(limit * 2, limit + 10))


class Retriever:
    """Search and read one scope's mirrored chunks in R2R (thread-safe; no R2R writes)."""

    def __init__(self, client: R2RClient, resolver: CollectionResolver) -> None:
        self.client = client
        self.resolver = resolver

    def resolve(self, scope: SearchScope) -> ResolvedScope | None:
        """Bind *scope* to collection ids; ``None`` when nothing can match (fail closed).

        An impossible scope is not looked up at all.  Raises R2R client errors only when
        the resolver has no collection store and must ask R2R by name.
        """
        if scope.impossible is not None:
            logger.info("r2r retrieval matches nothing: %s", scope.impossible)
            return None
        known = self.resolver.resolve(scope.scope_key, scope.labels, create=False)
        return scope.resolve(known)

    def search(
        self,
        scope: SearchScope | ResolvedScope,
        query: str,
        *,
        mode: SearchMode = "hybrid",
        limit: int = 10,
    ) -> list[MirroredChunk]:
        """Up to *limit* (at most :data:`MAX_RESULTS`) chunks matching *query*, best first.

        One R2R search with the scope's filter and ACL collections; a few more hits than
        *limit* are fetched so that dropping older versions of a document
        (:func:`newest_versions`) still fills the list.  An empty or blank *query*, a
        *limit* ≤ 0 and a scope that resolves to ``None`` return ``[]`` without a
        search.  Raises R2R client errors.
        """
        if not query or not query.strip() or limit <= 0:
            return []
        resolved = self.resolve(scope) if isinstance(scope, SearchScope) else scope
        if resolved is None:
            return []
        limit = min(limit, MAX_RESULTS)
        hits = self.client.search(
            query,
            collection_ids=resolved.collection_ids,
            filters=resolved.r2r_filter(),
            limit=fetch_limit(limit),
            mode=mode,
        )
        hidden = _hidden(resolved)
        return [
            MirroredChunk.from_r2r(hit, hidden_collection=hidden)
            for hit in newest_versions(hits, raw_version)[:limit]
        ]

    def document_chunks(
        self, scope: SearchScope | ResolvedScope, r2r_ids: Sequence[uuid.UUID]
    ) -> list[list[MirroredChunk]]:
        """The chunks of each R2R document in *r2r_ids* that the scope allows, in chunk order.

        One list per id, aligned with *r2r_ids*.  A document R2R does not know (404:
        replaced or deleted meanwhile) reads as empty, as does every document when the
        scope resolves to ``None``.  Documents are fetched concurrently (at most
        :data:`MAX_FETCH_WORKERS` at once).  Raises other R2R client errors.
        """
        resolved = self.resolve(scope) if isinstance(scope, SearchScope) else scope
        if resolved is None:
            return [[] for _ in r2r_ids]
        return [_in_scope(chunks, resolved) for chunks in self._fetch(r2r_ids)]

    def _fetch(self, r2r_ids: Sequence[uuid.UUID]) -> list[list[R2RChunk]]:
        def fetch(r2r_id: uuid.UUID) -> list[R2RChunk]:
            try:
                return self.client.list_document_chunks(r2r_id)
            except R2RNotFoundError:
                return []

        if len(r2r_ids) <= 1:
            return [fetch(r) for r in r2r_ids]
        with ThreadPoolExecutor(max_workers=min(MAX_FETCH_WORKERS, len(r2r_ids))) as pool:
            return list(pool.map(fetch, r2r_ids))


def _hidden(resolved: ResolvedScope) -> uuid.UUID | None:
    """The scope's hidden collection as a UUID (parsed once per call, not once per chunk)."""
    return uuid.UUID(resolved.hidden_collection) if resolved.hidden_collection else None


def _in_scope(chunks: list[R2RChunk], resolved: ResolvedScope) -> list[MirroredChunk]:
    hidden = _hidden(resolved)
    mapped = [
        MirroredChunk.from_r2r(chunk, hidden_collection=hidden, fallback_order=position)
        for position, chunk in enumerate(chunks)
    ]
    ordered = sorted(zip(mapped, chunks, strict=True), key=lambda pair: pair[0].chunk_order)
    return [m for m, raw in ordered if resolved.matches(raw.collection_ids, raw.metadata)]
