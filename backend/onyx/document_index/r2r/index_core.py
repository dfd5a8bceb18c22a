"""``R2RIndexCore``: everything of Onyx's ``DocumentIndex`` for R2R, without importing Onyx.

``R2RIndex`` (``r2r_index.py``) is ``class R2RIndex(R2RIndexCore, DocumentIndex)``
inside Onyx; CI drives this class directly with Onyx-shaped objects.  Onyx's
objects are read by attribute name; results are built by two factories the
host passes in (Onyx's ``InferenceChunk`` and ``DocumentInsertionRecord``).

Writes (``index``/``delete``/``update``) only **record** into the mirror's
ledger (one short transaction, bounded by :mod:`host` timeouts) and ring the
workers' doorbell: no R2R call, because Onyx holds document row locks during
``index()``.  They never raise because of the mirror: a failure is logged and
counted, and reconciliation/backfill repair what was missed.  For FUTURE
(re-embedding) search settings writes are skipped (``writes_enabled=False``)
while insertion records are still returned, so Onyx's accounting completes.

Reads (the five retrievals) are served by R2R through the collections the
engine maintains (see :mod:`filters`); a user never receives a chunk outside
the collections of their ACL principals.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from onyx.document_index.r2r.chunk_mapping import inference_chunk_fields
from onyx.document_index.r2r.filters import scope_from_index_filters
from onyx.document_index.r2r.search_errors import (
    R2RSearchError,
    breaker_open,
    search_failure,
)
from onyx.r2r_integration.onyx_shapes import (
    document_access_acl,
    enum_value,
    field_of,
    source_document_from_onyx,
)
from onyx.r2r_integration.policy import index_owns_content
from onyx.r2r_integration.sender import R2RDocumentSender
from onyx.r2r_sender.config import BridgeSettings, R2RCredentials
from onyx.r2r_sender.metrics import Counters
from onyx.r2r_sender.payload import SourceDocument
from onyx.r2r_sender.read_model import MirroredChunk, ResolvedScope

logger = logging.getLogger(__name__)

HIDDEN_FLAG = "hidden"
SEMANTIC_RETRIEVAL_UNSUPPORTED = (
    "R2RIndex cannot serve semantic_retrieval: R2R embeds queries with its own model, so "
    "Onyx's query embedding is unusable and this call carries no query text. Onyx "
    "(a7d66a8) never calls it; use hybrid_retrieval or keyword_retrieval."
)

ChunkFactory = Callable[..., Any]
RecordFactory = Callable[[str, bool], Any]
# (HTTP status, detail) -> the exception Onyx receives (R2RIndex: Onyx's OnyxError)
ErrorFactory = Callable[[int, str], Exception]
_T = TypeVar("_T")


@dataclass
class IndexStats:
    """Per-instance counters of what the index recorded or had to give up on."""

    documents_seen: int = 0
    content_recorded: int = 0
    access_recorded: int = 0
    content_fallback: int = 0
    deletes_recorded: int = 0
    updates_recorded: int = 0
    unknown: int = 0
    errors: int = 0
    skipped_future: int = 0
    search_errors: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)


@dataclass
class _SeenDocument:
    """One document of an ``index()`` call: its Onyx document, access and regular chunks."""

    doc: Any
    access: Any
    sets: set[str] | None
    parts: list[tuple[int, str]] = field(default_factory=list)

    def acl(self) -> list[str] | None:
        return None if self.access is None else document_access_acl(self.access)

    def text(self) -> str:
        return "\n".join(content for _, content in sorted(self.parts, key=lambda p: p[0]))

    def source_document(self) -> SourceDocument:
        base = source_document_from_onyx(self.doc, default_acl=None)
        return dataclasses.replace(
            base,
            text=self.text(),
            acl=self.acl(),
            sets=sorted(self.sets) if self.sets is not None else None,
        )


class R2RIndexCore:
    """Onyx's ``DocumentIndex`` contract, served by the mirror engine and R2R.

    *sender_factory* builds the tenant's :class:`R2RDocumentSender` (called lazily,
    so construction never fails); *reader_factory* builds the retrieval
    :class:`~onyx.r2r_integration.host.Reader`.  *docfetching_export* is whether
    the docfetching sender owns connector documents' content (see :mod:`policy`).
    """

    def __init__(
        self,
        *,
        tenant_id: str,
        chunk_factory: ChunkFactory,
        record_factory: RecordFactory,
        docfetching_export: bool,
        writes_enabled: bool = True,
        settings: BridgeSettings | None = None,
        credentials: R2RCredentials | Callable[[], R2RCredentials] | None = None,
        sender_factory: Callable[[], R2RDocumentSender] | None = None,
        reader_factory: Callable[[], Any] | None = None,
        breaker_factory: Callable[[], Any] | None = None,
        error_factory: ErrorFactory | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.chunk_factory = chunk_factory
        self.record_factory = record_factory
        self.docfetching_export = docfetching_export
        self.writes_enabled = writes_enabled
        self._settings = settings
        self._credentials = credentials
        self._sender_factory = sender_factory
        self._reader_factory = reader_factory
        self._breaker_factory = breaker_factory
        self.error_factory = error_factory
        self._sender: R2RDocumentSender | None = None
        self.stats = IndexStats()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(tenant_id={self.tenant_id!r}, "
            f"writes_enabled={self.writes_enabled}, docfetching_export={self.docfetching_export})"
        )

    # ------------------------------------------------------------ plumbing
    @property
    def settings(self) -> BridgeSettings:
        if self._settings is None:
            self._settings = BridgeSettings.from_env()
        return self._settings

    def credentials(self) -> R2RCredentials | None:
        """The tenant's R2R server and credential (resolved lazily, then kept)."""
        if callable(self._credentials):
            self._credentials = self._credentials()
        return self._credentials

    def sender(self) -> R2RDocumentSender:
        if self._sender is None:
            if self._sender_factory is not None:
                self._sender = self._sender_factory()
            else:
                from onyx.r2r_integration.host import host_sender

                self._sender = host_sender(
                    self.tenant_id, self.settings, credentials=self.credentials()
                )
        return self._sender

    def reader(self) -> Any:
        if self._reader_factory is not None:
            return self._reader_factory()
        from onyx.r2r_sender.plumbing import host_reader

        return host_reader(self.settings, self.credentials())

    def _count(self, name: str, amount: int = 1) -> None:
        """Count in-process and (best effort) in the engine's Redis counters."""
        if amount <= 0:
            return
        self.stats.add(name, amount)
        try:
            from onyx.r2r_sender.plumbing import host_redis

            Counters(host_redis(self.settings.broker_url)).add(
                self.tenant_id, f"index_{name}", amount
            )
        except Exception:  # counting never fails the caller
            logger.debug("could not count %s", name, exc_info=True)

    # --------------------------------------------------------------- schema
    def verify_and_create_index_if_necessary(
        self,
        embedding_dim: int,  # R2R embeds with its own model
        embedding_precision: Any,
    ) -> None:
        """No-op: R2R's schema is R2R's; never fails Onyx's start-up."""
        return None

    # ---------------------------------------------------------------- index
    def index(self, chunks: Iterable[Any], indexing_metadata: Any) -> list[Any]:
        """Record the documents of *chunks*; return one insertion record per document seen.

        The stream is consumed once.  Large (multipass) chunks, which overlap the
        regular ones, are skipped when the text is rebuilt.  Errors of the stream
        itself propagate (Onyx retries per document); the mirror's never do.
        """
        seen: dict[str, _SeenDocument] = {}
        for chunk in chunks:
            doc = field_of(chunk, "source_document")
            doc_id = str(field_of(doc, "id"))
            item = seen.get(doc_id)
            if item is None:
                sets = field_of(chunk, "document_sets")
                item = _SeenDocument(
                    doc=doc,
                    access=field_of(chunk, "access"),
                    sets=set(sets) if sets is not None else None,
                )
                seen[doc_id] = item
            if field_of(chunk, "large_chunk_reference_ids"):
                continue
            item.parts.append(
                (int(field_of(chunk, "chunk_id", 0)), field_of(chunk, "content") or "")
            )
        records = [self.record_factory(d, _already_existed(indexing_metadata, d)) for d in seen]
        self.stats.add("documents_seen", len(seen))
        if not seen:
            return records
        if not self.writes_enabled:
            self.stats.add("skipped_future", len(seen))
            return records
        try:
            self._record_index(seen)
        except Exception:  # the mirror never fails Onyx's indexing
            logger.exception(
                "r2r mirror: could not record %d documents of tenant %s (reconciliation repairs)",
                len(seen),
                self.tenant_id,
            )
            self._count("errors", len(seen))
        return records

    def _record_index(self, seen: dict[str, _SeenDocument]) -> None:
        sender = self.sender()
        content: list[_SeenDocument] = []
        access_only: dict[str, _SeenDocument] = {}
        for doc_id, item in seen.items():
            owns = index_owns_content(
                source=enum_value(field_of(item.doc, "source")),
                from_ingestion_api=bool(field_of(item.doc, "from_ingestion_api", False)),
                docfetching_export=self.docfetching_export,
            )
            if owns:
                content.append(item)
            else:
                access_only[doc_id] = item
        if access_only:
            report = sender.update_access(
                {d: item.acl() for d, item in access_only.items()},
                sets_by_document={
                    d: (sorted(item.sets) if item.sets is not None else None)
                    for d, item in access_only.items()
                },
            )
            self.stats.add("access_recorded", len(report.changed) + len(report.unchanged))
            # the docfetching send never reached the ledger: nobody else will record it
            fallback = [access_only[d] for d in report.unknown if d in access_only]
            if fallback:
                self._count("content_fallback", len(fallback))
                content.extend(fallback)
        if content:
            docs: list[SourceDocument] = []
            for item in content:
                try:
                    docs.append(item.source_document())
                except Exception as exc:  # noqa: BLE001 - one document never breaks the batch
                    logger.warning(
                        "r2r mirror: unreadable document %r: %s", field_of(item.doc, "id"), exc
                    )
                    self._count("errors")
            if docs:
                report = sender.send_batch(docs)
                self.stats.add("content_recorded", report.accepted)
                if report.rejected:
                    self._count("errors", len(report.rejected))

    # --------------------------------------------------------------- delete
    def delete(self, document_id: str, chunk_count: int | None = None) -> int:
        """Record the deletion; returns 0 (R2R deletes asynchronously).  Never raises."""
        if not self.writes_enabled:
            return 0
        try:
            self.sender().delete_documents([document_id])
            self.stats.add("deletes_recorded")
        except Exception:  # deletion/pruning must never stall on the mirror
            logger.exception(
                "r2r mirror: could not record deletion of %r (tenant %s)",
                document_id,
                self.tenant_id,
            )
            self._count("errors")
        return 0

    # --------------------------------------------------------------- update
    def update(self, update_requests: list[Any]) -> None:
        """Record ACL, document-set and hidden changes (labels; no re-embedding).  Never raises.

        ``boost``, ``project_ids``, ``persona_ids``, ``created_at`` and
        ``secondary_index_updated`` have no R2R counterpart and are ignored.
        """
        if not self.writes_enabled:
            return
        try:
            acl: dict[str, list[str] | None] = {}
            sets: dict[str, list[str] | None] = {}
            flags: dict[str, list[str] | None] = {}
            for request in update_requests:
                access = field_of(request, "access")
                document_sets = field_of(request, "document_sets")
                hidden = field_of(request, "hidden")
                for doc_id in field_of(request, "document_ids") or ():
                    if access is not None:
                        acl[doc_id] = document_access_acl(access)
                    if document_sets is not None:
                        sets[doc_id] = sorted(document_sets)
                    if hidden is not None:
                        flags[doc_id] = [HIDDEN_FLAG] if hidden else []
            if not (acl or sets or flags):
                return
            report = self.sender().update_access(
                acl, sets_by_document=sets, flags_by_document=flags
            )
            self.stats.add("updates_recorded", len(report.changed) + len(report.unchanged))
            if report.unknown:
                # not mirrored yet (e.g. the mirror was switched on later): backfill records them
                self._count("unknown", len(report.unknown))
            if report.rejected:
                self._count("errors", len(report.rejected))
        except Exception:  # metadata sync must never stall on the mirror
            logger.exception(
                "r2r mirror: could not record %d metadata updates (tenant %s)",
                len(update_requests),
                self.tenant_id,
            )
            self._count("errors")

    # ------------------------------------------------------------ retrieval
    def _base_url(self) -> str:
        try:
            credentials = self.credentials()
        except Exception:  # noqa: BLE001 - only for messages
            credentials = None
        return credentials.base_url if credentials is not None else self.settings.r2r_base_url

    def _breaker_wait(self) -> float:
        """Seconds the mirror's breaker for this R2R server stays open (0: closed or unknown)."""
        try:
            if self._breaker_factory is not None:
                breaker = self._breaker_factory()
            else:
                from onyx.r2r_sender.breaker import CircuitBreaker
                from onyx.r2r_sender.plumbing import host_redis

                settings = self.settings
                breaker = CircuitBreaker(
                    host_redis(settings.broker_url),
                    self._base_url(),
                    threshold=settings.breaker_threshold,
                    cooldown_seconds=settings.breaker_cooldown_seconds,
                    max_cooldown_seconds=settings.breaker_max_cooldown_seconds,
                )
            return float(breaker.wait_seconds())
        except Exception:
            logger.debug("could not read the circuit breaker", exc_info=True)
            return 0.0

    def _served(self, retrieval: Callable[[], _T]) -> _T:
        """Run *retrieval*; a service failure reaches Onyx with an HTTP status and a detail
        (:mod:`search_errors`), built by :attr:`error_factory` when the host gave one."""
        try:
            wait = self._breaker_wait()
            if wait > 0:
                raise breaker_open(self._base_url(), wait)
            return retrieval()
        except R2RSearchError as exc:
            failure: R2RSearchError | None = exc
            cause: BaseException = exc
        except Exception as exc:
            failure = search_failure(exc, self._base_url())
            if failure is None:
                raise
            cause = exc
        logger.warning("R2RIndex search failed: %s", failure.detail)
        self._count("search_errors")
        if self.error_factory is not None:
            raise self.error_factory(failure.status_code, failure.detail) from cause
        if failure is cause:
            raise failure
        raise failure from cause

    def _scope(self, filters: Any, include_hidden: bool) -> tuple[Any, ResolvedScope | None]:
        reader = self.reader()
        scope = scope_from_index_filters(
            filters, tenant_id=self.tenant_id, include_hidden=include_hidden
        )
        return reader, reader.retriever.resolve(scope)

    def _search(
        self,
        query: str,
        filters: Any,
        num_to_retrieve: int,
        mode: Literal["hybrid", "fulltext", "semantic"],
        include_hidden: bool = False,
    ) -> list[Any]:
        if not query or not query.strip() or num_to_retrieve <= 0:
            return []
        reader, resolved = self._scope(filters, include_hidden)
        if resolved is None:
            return []
        chunks = reader.retriever.search(resolved, query, mode=mode, limit=num_to_retrieve)
        return [self._chunk(chunk) for chunk in chunks]

    def hybrid_retrieval(
        self,
        query: str,
        query_embedding: Any,  # R2R embeds the query itself
        final_keywords: list[str] | None,
        query_type: Any,
        filters: Any,
        num_to_retrieve: int,
    ) -> list[Any]:
        """R2R hybrid search (its own embedding + full text, RRF) with *filters* applied."""
        final_query = " ".join(final_keywords) if final_keywords else query
        return self._served(lambda: self._search(final_query, filters, num_to_retrieve, "hybrid"))

    def keyword_retrieval(
        self, query: str, filters: Any, num_to_retrieve: int, include_hidden: bool = False
    ) -> list[Any]:
        """R2R full-text search; *include_hidden* serves Onyx's admin search."""
        return self._served(
            lambda: self._search(query, filters, num_to_retrieve, "fulltext", include_hidden)
        )

    def semantic_retrieval(
        self,
        query_embedding: Any,
        filters: Any,
        num_to_retrieve: int,
    ) -> list[Any]:
        """Not servable: raises :class:`NotImplementedError` (see module README)."""
        raise NotImplementedError(SEMANTIC_RETRIEVAL_UNSUPPORTED)

    def _chunk(self, chunk: MirroredChunk) -> Any:
        return self.chunk_factory(**inference_chunk_fields(chunk))

    def id_based_retrieval(
        self,
        chunk_requests: list[Any],
        filters: Any,
        batch_retrieval: bool = False,
    ) -> list[Any]:
        """The chunks of whole documents or chunk ranges, in order, that *filters* allow.

        Hidden documents are not returned (as Onyx's OpenSearch index does).
        """
        if not chunk_requests:
            return []
        return self._served(lambda: self._id_based(chunk_requests, filters))

    def _id_based(self, chunk_requests: list[Any], filters: Any) -> list[Any]:
        reader, resolved = self._scope(filters, include_hidden=False)
        if resolved is None:
            return []
        doc_ids = list(dict.fromkeys(str(field_of(r, "document_id")) for r in chunk_requests))
        applied = reader.applied_r2r_ids(self.tenant_id, doc_ids)
        wanted = [d for d in doc_ids if d in applied]
        chunks_of = reader.retriever.document_chunks(resolved, [applied[d] for d in wanted])
        fetched = dict(zip(wanted, chunks_of, strict=True))
        out: list[Any] = []
        for request in chunk_requests:
            low = field_of(request, "min_chunk_ind")
            high = field_of(request, "max_chunk_ind")
            for chunk in fetched.get(str(field_of(request, "document_id")), []):
                order = chunk.chunk_order
                if (low is not None and order < low) or (high is not None and order > high):
                    continue
                out.append(self._chunk(chunk))
        return out

    def random_retrieval(
        self, filters: Any, num_to_retrieve: int = 10, dirty: bool | None = None
    ) -> list[Any]:
        """Random chunks the filters allow (one per document, sampled from the ledger).

        Chunks in R2R are never "dirty" (there is no secondary index to port to),
        so ``dirty=True`` returns nothing.
        """
        if dirty or num_to_retrieve <= 0:
            return []
        return self._served(lambda: self._random(filters, num_to_retrieve))

    def _random(self, filters: Any, num_to_retrieve: int) -> list[Any]:
        reader, resolved = self._scope(filters, include_hidden=False)
        if resolved is None:
            return []
        sample = reader.sample_applied(self.tenant_id, min(1000, num_to_retrieve * 4))
        out: list[Any] = []
        for allowed in reader.retriever.document_chunks(resolved, list(sample.values())):
            if allowed:
                out.append(self._chunk(random.choice(allowed)))
            if len(out) >= num_to_retrieve:
                break
        return out


def _already_existed(indexing_metadata: Any, document_id: str) -> bool:
    """Onyx's own signal: the document had chunks before this indexing run."""
    try:
        counts = field_of(indexing_metadata, "doc_id_to_chunk_cnt_diff") or {}
        entry = counts.get(document_id)
        return bool(entry is not None and (field_of(entry, "old_chunk_cnt") or 0) > 0)
    except Exception:  # noqa: BLE001 - a record is always returned
        return False
