"""The synchronous apply path: make R2R match a batch *now*, with R2R itself as the record.

For hosts whose own queue is the durable record and whose contract is "searchable when
the call returns" (Nextcloud Context Chat's ``add_indocuments`` reports one result per
document and re-queues what failed).  No ledger, no Celery, no Redis: this module imports
none of them, so it runs inside a host process that has only httpx.

How R2R is the record
---------------------
A document alternates between two deterministic R2R ids, its *slots*
(:meth:`~onyx.r2r_sender.hosts.TenantScope.slot_id`).  One ``GET /v3/documents?ids=…``
for both slots of every document of a batch tells what R2R holds: the complete
(``success``) copy whose ``bridge_version`` is the desired one, else the one with the
highest ``bridge_seq``, is the *applied* version; any other copy is stale.  A new version
is created in the other slot, then the old one is deleted (gap-free replace: the same
:class:`~onyx.r2r_sender.applier.Applier` as the asynchronous path, with its revocations
before grants, 409 / "already ingested" handling and error classes).  Searches keep the
newest ``bridge_seq`` of a document, so the moment both copies exist shows one of them.

Every operation returns one :class:`SyncOutcome` per document and never raises because of
a document: bad input is ``permanent`` with a reason naming the document, R2R trouble is
``retryable`` or ``permanent`` by :func:`~onyx.r2r_sender.applier.classify_failure`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from onyx.r2r_sender import schema
from onyx.r2r_sender.applier import Applier, ApplyTask, Outcome, classify_failure
from onyx.r2r_sender.client import R2RClient
from onyx.r2r_sender.collections import CollectionResolver
from onyx.r2r_sender.config import BridgeSettings
from onyx.r2r_sender.errors import DeadLetterClass
from onyx.r2r_sender.hosts import TenantScope
from onyx.r2r_sender.payload import (
    ACL_PREFIX,
    FLAG_PREFIX,
    SET_PREFIX,
    InvalidDocumentError,
    PreparedDocument,
    SourceDocument,
    prepare,
)
from onyx.r2r_sender.r2r_types import R2RDocument

logger = logging.getLogger(__name__)

SyncStatus = Literal["applied", "unchanged", "deleted", "not_found", "retryable", "permanent"]
_SLOTS = (0, 1)


@dataclass(frozen=True)
class SyncOutcome:
    """What happened to one document.

    ``applied``: R2R now holds the desired state (``writes`` R2R writes were made);
    ``unchanged``: it already did (no write); ``deleted``: the document is gone from R2R;
    ``not_found``: R2R holds no such document (updates and deletes);
    ``retryable`` / ``permanent``: nothing is lost, R2R still holds the previous state;
    ``error_class`` and ``reason`` say why (the reason names the document).
    ``created_id``: the R2R id of the version :meth:`SyncApplier.apply_documents` created
    (``None`` when no content was written).
    """

    document_id: str
    status: SyncStatus
    writes: int = 0
    error_class: str | None = None
    reason: str | None = None
    created_id: uuid.UUID | None = None

    @property
    def ok(self) -> bool:
        """True when R2R holds what was asked (applied, unchanged or deleted)."""
        return self.status in ("applied", "unchanged", "deleted")


@dataclass(frozen=True)
class AppliedDocument:
    """What R2R holds for one document of a scope (its applied version)."""

    document_id: str
    r2r_id: uuid.UUID
    version: str | None
    seq: int
    modified: Any
    collection_ids: tuple[uuid.UUID, ...]
    metadata: Mapping[str, Any]
    stale_ids: tuple[uuid.UUID, ...] = ()


@dataclass(frozen=True)
class LabelChange:
    """A change of one document's labels (collection memberships, no re-embedding).

    ``acl``, ``sets`` and ``flags`` replace that part when given (``None`` keeps it);
    then ``grant`` adds and ``revoke`` removes ACL principals.
    """

    acl: Collection[str] | None = None
    sets: Collection[str] | None = None
    flags: Collection[str] | None = None
    grant: Collection[str] = ()
    revoke: Collection[str] = ()


@dataclass
class _Candidate:
    slot: int
    document: R2RDocument

    @property
    def seq(self) -> int:
        try:
            return int(self.document.metadata.get(schema.SEQ, 0) or 0)
        except (TypeError, ValueError):
            return 0

    @property
    def version(self) -> str | None:
        value = self.document.metadata.get(schema.VERSION)
        return str(value) if value is not None else None


@dataclass
class _Record:
    """Both slots of one document as R2R holds them."""

    candidates: list[_Candidate] = field(default_factory=list)

    def applied(self, desired_version: str | None = None) -> _Candidate | None:
        complete = [c for c in self.candidates if c.document.ingestion_status == "success"]
        if desired_version is not None:
            for candidate in complete:
                if candidate.version == desired_version:
                    return candidate
        return max(complete, key=lambda c: c.seq, default=None)

    @property
    def max_seq(self) -> int:
        return max((c.seq for c in self.candidates), default=0)


class SyncApplier:
    """Apply desired state to one R2R server synchronously (see module doc).

    Cheap to build (no I/O); thread-safe.  *concurrency* documents of a batch are applied
    at once (R2R's ingestion, not the bridge, is the bottleneck).  *resolver* may be
    shared to keep label → collection ids across calls of one process.
    """

    def __init__(
        self,
        client: R2RClient,
        settings: BridgeSettings,
        *,
        resolver: CollectionResolver | None = None,
        concurrency: int = 4,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self.client = client
        self.settings = settings
        self.resolver = resolver or CollectionResolver(client)
        self.applier = Applier(client, self.resolver, settings)
        self.concurrency = concurrency

    # ------------------------------------------------------------------ reads
    def lookup(self, scope: TenantScope, document_ids: Iterable[str]) -> dict[str, AppliedDocument]:
        """What R2R holds for each of *document_ids* (absent: R2R holds no complete copy).

        One ``GET /v3/documents`` per 50 documents.  Raises R2R client errors.
        """
        records = self._records(scope, list(dict.fromkeys(document_ids)))
        out: dict[str, AppliedDocument] = {}
        for doc_id, record in records.items():
            applied = record.applied()
            if applied is not None:
                out[doc_id] = _applied_document(doc_id, applied, record)
        return out

    def labelled(self, scope: TenantScope, label: str) -> list[str]:
        """The ids of the documents R2R holds with *label* (e.g. ``"acl:alice"``), in R2R's
        order; ``[]`` when the label has no collection (nothing is created).

        One listing of the label's collection (1,000 documents per request). Raises R2R
        client errors.
        """
        cid = self.resolver.resolve(scope.key, [label], create=False).get(label)
        if cid is None:
            return []
        ids: dict[str, None] = {}
        for document in self.client.iter_collection_documents(cid):
            metadata = document.metadata
            doc_id = metadata.get(schema.SOURCE_DOCUMENT_ID)
            if metadata.get(schema.TENANT) == scope.key and isinstance(doc_id, str):
                ids[doc_id] = None
        return list(ids)

    def label_counts(self, scope: TenantScope, prefix: str) -> dict[str, int]:
        """How many documents each label of the scope starting with *prefix* holds
        (``"set:"`` → ``{"set:x": 12, …}``), from R2R's collection ``document_count``: one
        listing of the account's collections, whatever the number of documents. A document
        caught in the middle of a replace counts twice for that moment. Raises R2R client
        errors.
        """
        return {
            label: int(collection.document_count or 0)
            for label, collection in self.resolver.labelled(scope.key, prefix).items()
        }

    def _records(self, scope: TenantScope, document_ids: Sequence[str]) -> dict[str, _Record]:
        by_id: dict[uuid.UUID, tuple[str, int]] = {}
        for doc_id in document_ids:
            for slot in _SLOTS:
                by_id[scope.slot_id(doc_id, slot)] = (doc_id, slot)
        records: dict[str, _Record] = {doc_id: _Record() for doc_id in document_ids}
        if not by_id:
            return records
        for document in self.client.list_documents(list(by_id)):
            owner = by_id.get(document.id)
            if owner is not None:
                records[owner[0]].candidates.append(_Candidate(owner[1], document))
        return records

    # ----------------------------------------------------------------- writes
    def apply_documents(
        self,
        scope: TenantScope,
        documents: Iterable[SourceDocument],
        *,
        budget_seconds: float | None = None,
    ) -> dict[str, SyncOutcome]:
        """Make R2R hold each document's desired content and labels; one outcome per id.

        A document whose version R2R already holds costs no content write (only a
        membership diff when its labels changed).  A new version replaces the old one
        without a gap.  Labels a document leaves as ``None`` keep what R2R holds.  An id
        repeated in *documents* keeps its last copy.  Documents not started within
        *budget_seconds* come back ``retryable``.  Never raises because of a document.
        """
        deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
        outcomes: dict[str, SyncOutcome] = {}
        prepared: dict[str, PreparedDocument] = {}
        for doc in documents:
            try:
                item = prepare(doc, self.settings, scope.key)
            except InvalidDocumentError as exc:
                outcomes[exc.document_id] = _failure(exc.document_id, exc)
                continue
            except Exception as exc:  # noqa: BLE001 - one document never breaks the batch
                doc_id = str(getattr(doc, "document_id", "<no id>"))
                outcomes[doc_id] = SyncOutcome(
                    doc_id,
                    "permanent",
                    error_class=DeadLetterClass.INVALID_DOCUMENT,
                    reason=f"document {doc_id!r}: {exc}",
                )
                continue
            prepared.pop(item.document_id, None)
            prepared[item.document_id] = item
            outcomes.pop(item.document_id, None)
        if not prepared:
            return outcomes
        try:
            records = self._records(scope, list(prepared))
        except Exception as exc:  # noqa: BLE001 - reported per document
            for doc_id in prepared:
                outcomes[doc_id] = _failure(doc_id, exc)
            return outcomes

        def run(item: PreparedDocument) -> SyncOutcome:
            if deadline is not None and time.monotonic() > deadline:
                return SyncOutcome(
                    item.document_id,
                    "retryable",
                    error_class="budget_exhausted",
                    reason=f"document {item.document_id!r}: the time budget ran out first",
                )
            try:
                return self._apply_content(scope, item, records[item.document_id])
            except Exception as exc:  # noqa: BLE001 - reported per document
                return _failure(item.document_id, exc)

        for outcome in self._map(run, list(prepared.values())):
            outcomes[outcome.document_id] = outcome
        return outcomes

    def _apply_content(
        self, scope: TenantScope, item: PreparedDocument, record: _Record
    ) -> SyncOutcome:
        applied = record.applied(item.version)
        current = (
            list(self.resolver.labels_of(scope.key, applied.document.collection_ids).values())
            if applied is not None
            else []
        )
        labels = item.merged_labels(current)
        stale = [c for c in record.candidates if c is not applied]
        if applied is not None and applied.version == item.version:
            task = self._task(scope, item.document_id, applied, stale, labels)
            outcome = self.applier.apply(task)
            return _done(item.document_id, outcome)
        target_slot = 1 - applied.slot if applied is not None else 0
        writes = 0
        for candidate in stale:
            # a complete older copy in the target slot would be adopted by the create's
            # "already exists" handling: retire it first (the applied copy stays searchable)
            if candidate.slot == target_slot and candidate.document.ingestion_status == "success":
                writes += int(self.client.delete_document(candidate.document.id))
        task = ApplyTask(
            tenant_id=scope.key,
            document_id=item.document_id,
            seq=record.max_seq + 1,
            desired_version=item.version,
            desired_deleted=False,
            desired_labels=labels,
            applied_version=applied.version if applied else None,
            applied_deleted=False,
            applied_r2r_id=applied.document.id if applied else None,
            applied_collections=list(applied.document.collection_ids) if applied else [],
            pending_r2r_ids=[c.document.id for c in stale if c.slot != target_slot],
            text=item.text,
            chunks=item.chunks,
            r2r_metadata=item.r2r_metadata,
            target_id=scope.slot_id(item.document_id, target_slot),
        )
        outcome = self.applier.apply(task)
        done = _done(item.document_id, outcome, extra_writes=writes)
        return dataclasses.replace(done, created_id=task.target_r2r_id)

    def update_labels(
        self,
        scope: TenantScope,
        changes: Mapping[str, LabelChange],
        *,
        delete_unlabelled: bool = False,
    ) -> dict[str, SyncOutcome]:
        """Change the labels of documents R2R holds (memberships only, revocations first).

        A document R2R does not hold is ``not_found``.  With *delete_unlabelled*, a
        document left with no ACL principal is deleted (``deleted``).  Never raises
        because of a document.
        """
        outcomes: dict[str, SyncOutcome] = {}
        try:
            records = self._records(scope, list(changes))
        except Exception as exc:  # noqa: BLE001 - reported per document
            return {doc_id: _failure(doc_id, exc) for doc_id in changes}

        def run(doc_id: str) -> SyncOutcome:
            record = records[doc_id]
            applied = record.applied()
            if applied is None:
                return SyncOutcome(doc_id, "not_found", reason=f"document {doc_id!r} is not in R2R")
            try:
                change = changes[doc_id]
                held = self.resolver.labels_of(scope.key, applied.document.collection_ids)
                labels = _changed_labels(doc_id, sorted(held.values()), change)
                if delete_unlabelled and not any(lb.startswith(ACL_PREFIX) for lb in labels):
                    writes = sum(
                        int(self.client.delete_document(c.document.id)) for c in record.candidates
                    )
                    return SyncOutcome(doc_id, "deleted", writes=writes)
                stale = [c for c in record.candidates if c is not applied]
                return _done(
                    doc_id, self.applier.apply(self._task(scope, doc_id, applied, stale, labels))
                )
            except Exception as exc:  # noqa: BLE001 - reported per document
                return _failure(doc_id, exc)

        for outcome in self._map(run, list(changes)):
            outcomes[outcome.document_id] = outcome
        return outcomes

    def delete_documents(
        self, scope: TenantScope, document_ids: Iterable[str]
    ) -> dict[str, SyncOutcome]:
        """Delete documents from R2R (every copy); ``not_found`` when R2R held none."""
        ids = list(dict.fromkeys(document_ids))
        try:
            records = self._records(scope, ids)
        except Exception as exc:  # noqa: BLE001 - reported per document
            return {doc_id: _failure(doc_id, exc) for doc_id in ids}

        def run(doc_id: str) -> SyncOutcome:
            record = records[doc_id]
            if not record.candidates:
                return SyncOutcome(doc_id, "not_found")
            try:
                writes = sum(
                    int(self.client.delete_document(c.document.id)) for c in record.candidates
                )
            except Exception as exc:  # noqa: BLE001 - reported per document
                return _failure(doc_id, exc)
            return SyncOutcome(doc_id, "deleted", writes=writes)

        return {outcome.document_id: outcome for outcome in self._map(run, ids)}

    # ---------------------------------------------------------------- helpers
    def _task(
        self,
        scope: TenantScope,
        doc_id: str,
        applied: _Candidate,
        stale: list[_Candidate],
        labels: list[str],
    ) -> ApplyTask:
        """A labels-only task on the applied copy (its content is the desired one)."""
        return ApplyTask(
            tenant_id=scope.key,
            document_id=doc_id,
            seq=applied.seq,
            desired_version=applied.version,
            desired_deleted=False,
            desired_labels=labels,
            applied_version=applied.version,
            applied_deleted=False,
            applied_r2r_id=applied.document.id,
            applied_collections=list(applied.document.collection_ids),
            pending_r2r_ids=[c.document.id for c in stale],
            text=None,
            chunks=None,
            r2r_metadata=None,
            target_id=applied.document.id,
        )

    def _map(self, fn: Any, items: list[Any]) -> list[SyncOutcome]:
        if self.concurrency == 1 or len(items) <= 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(items))) as pool:
            return list(pool.map(fn, items))


def _applied_document(doc_id: str, candidate: _Candidate, record: _Record) -> AppliedDocument:
    metadata = candidate.document.metadata
    return AppliedDocument(
        document_id=doc_id,
        r2r_id=candidate.document.id,
        version=candidate.version,
        seq=candidate.seq,
        modified=metadata.get(schema.MODIFIED),
        collection_ids=tuple(candidate.document.collection_ids),
        metadata=metadata,
        stale_ids=tuple(c.document.id for c in record.candidates if c is not candidate),
    )


def _changed_labels(doc_id: str, held: list[str], change: LabelChange) -> list[str]:
    parts = {
        ACL_PREFIX: change.acl,
        SET_PREFIX: change.sets,
        FLAG_PREFIX: change.flags,
    }
    labels: set[str] = set()
    for prefix, values in parts.items():
        if values is None:
            labels.update(label for label in held if label.startswith(prefix))
        else:
            labels.update(_prefixed(doc_id, prefix, values))
    labels.update(_prefixed(doc_id, ACL_PREFIX, change.grant))
    labels.difference_update(_prefixed(doc_id, ACL_PREFIX, change.revoke))
    return sorted(labels)


def _prefixed(doc_id: str, prefix: str, values: Collection[str]) -> set[str]:
    if isinstance(values, str | bytes):
        raise InvalidDocumentError(doc_id, "labels must be a collection of strings, not a string")
    out: set[str] = set()
    for value in values:
        if not isinstance(value, str) or not value.strip():
            raise InvalidDocumentError(
                doc_id, f"label values must be non-empty strings, got {value!r:.80}"
            )
        out.add(prefix + value)
    return out


def _done(doc_id: str, outcome: Outcome, *, extra_writes: int = 0) -> SyncOutcome:
    writes = outcome.writes + extra_writes
    return SyncOutcome(doc_id, "applied" if writes else "unchanged", writes=writes)


def _failure(doc_id: str, exc: BaseException) -> SyncOutcome:
    if isinstance(exc, InvalidDocumentError):
        return SyncOutcome(
            doc_id, "permanent", error_class=DeadLetterClass.INVALID_DOCUMENT, reason=str(exc)
        )
    error_class, retryable, _ = classify_failure(exc)
    if error_class is DeadLetterClass.INTERNAL:
        logger.exception("internal error applying %r", doc_id)
        message = f"{type(exc).__name__}: {exc}"
    else:
        message = str(exc)
    if doc_id not in message:
        message = f"document {doc_id!r}: {message}"
    return SyncOutcome(
        doc_id,
        "retryable" if retryable else "permanent",
        error_class=error_class,
        reason=message,
    )
