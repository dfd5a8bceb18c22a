"""Make R2R match one claimed ledger row, idempotently.

Contract of :meth:`Applier.apply`
---------------------------------
* **Tombstone**: every R2R id this engine created for the document is deleted
  (404 counts as done).  Deleting a document drops its memberships with it.
* **Labels only** (same content version): collection membership diff on the
  applied R2R document, revocations first, then grants.  Nothing is re-embedded.
* **New or changed content**: gap-free replace.  The desired version has its
  own deterministic R2R id (:func:`~onyx.r2r_sender.ids.r2r_version_id`).
  Revocations are applied to the old version first (fail closed), the new
  version is created (or adopted when an interrupted earlier attempt already
  created it): by default as chunks the bridge split (:mod:`~onyx.r2r_sender.chunking`),
  one request that also puts it in every desired collection; with
  ``chunking="server"`` as raw text that R2R splits, which assigns only the first
  collection (R2R #2028) and leaves the others to grants.  It is then
  verified (R2R reports the ingestion finished inside the request, or a
  read-back shows ``ingestion_status == success``) and given its grants;
  only then are the old version and any orphan of an interrupted attempt
  deleted.  At every instant one complete version is searchable; searches made
  through :mod:`onyx.r2r_sender.read_model` keep only the newest version of a
  document, raw R2R searches may briefly see two.
* Every step is idempotent, so a crash anywhere leaves a state the next apply
  completes.  Raises the client's :class:`~onyx.r2r_sender.errors.R2RError`
  subclasses, or :class:`ApplyError` for a row that cannot be applied.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from onyx.r2r_sender import schema
from onyx.r2r_sender.chunking import split_text
from onyx.r2r_sender.client import R2RClient
from onyx.r2r_sender.collections import TENANT_LABEL, CollectionResolver
from onyx.r2r_sender.config import BridgeSettings
from onyx.r2r_sender.errors import (
    BridgeError,
    DeadLetterClass,
    R2RAlreadyExistsError,
    R2RAuthError,
    R2RBusyError,
    R2RConfigError,
    R2RError,
    R2RFatalError,
    R2RNotFoundError,
    R2RRetryableError,
)
from onyx.r2r_sender.hosts import TenantScope
from onyx.r2r_sender.r2r_types import R2RDocument

logger = logging.getLogger(__name__)

VERSION_KEY = schema.VERSION
SEQ_KEY = schema.SEQ


class ApplyError(BridgeError):
    """A ledger row that cannot be applied as it stands (not an R2R failure)."""

    def __init__(self, document_id: str, reason: str, *, retryable: bool) -> None:
        self.document_id = document_id
        self.reason = reason
        self.retryable = retryable
        super().__init__(f"document {document_id!r}: {reason}")


@dataclass(frozen=True, kw_only=True)
class ApplyTask:
    """What R2R must hold for one document, and what it holds now.

    Host- and ledger-neutral: the asynchronous path builds it from a ledger row
    (:class:`~onyx.r2r_sender.ledger.Claim` is one), the synchronous path from R2R's own
    record (:mod:`onyx.r2r_sender.sync`).  ``tenant_id`` is the scope key.  The desired
    version lives under ``target_id`` when given, else under its version id
    (:meth:`~onyx.r2r_sender.hosts.TenantScope.version_id`).  ``pending_r2r_ids`` are
    other R2R ids of this document (interrupted attempts, older versions) that must not
    survive a completed apply.
    """

    tenant_id: str
    document_id: str
    seq: int
    desired_version: str | None
    desired_deleted: bool
    desired_labels: list[str]
    applied_version: str | None
    applied_deleted: bool
    applied_r2r_id: uuid.UUID | None
    applied_collections: list[uuid.UUID]
    pending_r2r_ids: list[uuid.UUID]
    text: str | None
    chunks: list[str] | None
    r2r_metadata: dict[str, Any] | None
    target_id: uuid.UUID | None = None

    @property
    def target_r2r_id(self) -> uuid.UUID | None:
        """The R2R id of the desired version (None for a tombstone)."""
        if self.desired_deleted or self.desired_version is None:
            return None
        if self.target_id is not None:
            return self.target_id
        return TenantScope.from_key(self.tenant_id).version_id(
            self.document_id, self.desired_version
        )

    @property
    def content_changed(self) -> bool:
        """True when R2R must receive new content (create or replace)."""
        return not self.desired_deleted and (
            self.applied_r2r_id is None
            or self.applied_deleted
            or self.applied_version != self.desired_version
        )


@dataclass(frozen=True)
class Outcome:
    """What an apply achieved in R2R (written as the applied state)."""

    r2r_id: uuid.UUID | None
    version: str | None
    deleted: bool
    labels: list[str]
    collections: list[uuid.UUID]
    writes: int = 0


def classify_failure(exc: BaseException) -> tuple[DeadLetterClass, bool, bool]:
    """Return (error_class, retryable, counts_against_breaker) for an apply failure.

    The one classification of both paths: the asynchronous worker dead-letters a
    non-retryable class, the synchronous path reports it as a permanent error.
    """
    if isinstance(exc, R2RRetryableError):
        return DeadLetterClass.R2R_UNAVAILABLE, True, True
    if isinstance(exc, R2RBusyError):
        return DeadLetterClass.R2R_BUSY, True, False
    if isinstance(exc, R2RAuthError | R2RConfigError):
        return DeadLetterClass.R2R_CONFIG, True, False
    if isinstance(exc, R2RNotFoundError):
        return DeadLetterClass.R2R_NOT_FOUND, True, False
    if isinstance(exc, R2RAlreadyExistsError):
        return DeadLetterClass.R2R_CONFLICT, True, False
    if isinstance(exc, R2RFatalError):
        return DeadLetterClass.R2R_REJECTED, False, False
    if isinstance(exc, R2RError):
        return DeadLetterClass.R2R_ERROR, True, False
    if isinstance(exc, ApplyError):
        return DeadLetterClass.INVALID_STATE, exc.retryable, False
    return DeadLetterClass.INTERNAL, True, False


class Applier:
    """Applies :class:`ApplyTask` s to one R2R server.  Thread-safe (shares the pooled client)."""

    def __init__(
        self, client: R2RClient, resolver: CollectionResolver, settings: BridgeSettings
    ) -> None:
        self.client = client
        self.resolver = resolver
        self.settings = settings

    # ----------------------------------------------------------------- entry
    def apply(self, claim: ApplyTask) -> Outcome:
        """Make R2R match *claim*'s desired state; return what was applied.

        Raises the client's R2R errors, or :class:`ApplyError`; classify them with
        :func:`classify_failure`.
        """
        if claim.desired_deleted:
            return self._apply_tombstone(claim)
        if not claim.content_changed and claim.applied_r2r_id is not None:
            try:
                return self._apply_labels(claim, claim.applied_r2r_id)
            except R2RNotFoundError as exc:
                if "ollection" in exc.message:
                    raise
                # the applied document vanished from R2R: re-create it
                logger.warning(
                    "r2r document %s of %r is missing; re-creating it",
                    claim.applied_r2r_id,
                    claim.document_id,
                )
                return self._apply_content(claim, old_id=None)
        old_id = None if claim.applied_deleted else claim.applied_r2r_id
        return self._apply_content(claim, old_id=old_id)

    # ------------------------------------------------------------- tombstone
    def _apply_tombstone(self, claim: ApplyTask) -> Outcome:
        writes = 0
        for r2r_id in _unique([claim.applied_r2r_id, *claim.pending_r2r_ids]):
            if self.client.delete_document(r2r_id):
                writes += 1
        return Outcome(
            r2r_id=None, version=None, deleted=True, labels=[], collections=[], writes=writes
        )

    # ---------------------------------------------------------------- labels
    def _desired_collections(self, claim: ApplyTask) -> dict[str, uuid.UUID]:
        """The document's collections: one per label, or the tenant's holding collection."""
        labels = claim.desired_labels or [TENANT_LABEL]
        return self.resolver.resolve(claim.tenant_id, labels, create=True)

    def _apply_labels(self, claim: ApplyTask, r2r_id: uuid.UUID) -> Outcome:
        by_label = self._desired_collections(claim)
        writes = self._sync_memberships(
            claim, r2r_id, current=set(claim.applied_collections), by_label=by_label
        )
        for stale in _unique(claim.pending_r2r_ids):
            if stale != r2r_id and self.client.delete_document(stale):
                writes += 1
        return Outcome(
            r2r_id=r2r_id,
            version=claim.applied_version,
            deleted=False,
            labels=claim.desired_labels,
            collections=sorted(set(by_label.values())),
            writes=writes,
        )

    def _sync_memberships(
        self,
        claim: ApplyTask,
        r2r_id: uuid.UUID,
        *,
        current: set[uuid.UUID],
        by_label: dict[str, uuid.UUID],
    ) -> int:
        """Revoke, then grant, so the document is never visible to a revoked principal."""
        desired = set(by_label.values())
        writes = 0
        for collection_id in sorted(current - desired):
            if self.client.remove_document_from_collection(collection_id, r2r_id):
                writes += 1
        for label, collection_id in sorted(by_label.items()):
            if collection_id in current:
                continue
            writes += self._grant(claim, r2r_id, label, collection_id)
        return writes

    def _grant(
        self, claim: ApplyTask, r2r_id: uuid.UUID, label: str, collection_id: uuid.UUID
    ) -> int:
        try:
            return int(self.client.add_document_to_collection(collection_id, r2r_id))
        except R2RNotFoundError as exc:
            if "ollection" not in exc.message:
                raise
            # the collection was deleted behind our back: resolve it again, once
            self.resolver.invalidate(claim.tenant_id, label)
            fresh = self.resolver.resolve(claim.tenant_id, [label], create=True)[label]
            return int(self.client.add_document_to_collection(fresh, r2r_id))

    # --------------------------------------------------------------- content
    def _apply_content(self, claim: ApplyTask, *, old_id: uuid.UUID | None) -> Outcome:
        target = claim.target_r2r_id
        if target is None or claim.r2r_metadata is None:
            raise ApplyError(
                claim.document_id,
                "the ledger has no payload for the desired version (re-send the document)",
                retryable=False,
            )
        by_label = self._desired_collections(claim)
        desired = set(by_label.values())
        writes = 0
        # 1. fail closed: revoke on the old version before anything is granted
        if old_id is not None and old_id != target:
            for collection_id in sorted(set(claim.applied_collections) - desired):
                if self.client.remove_document_from_collection(collection_id, old_id):
                    writes += 1
        # 2. the new version exists, complete, with the right content
        created, current = self._ensure_version(claim, target, by_label)
        writes += int(created)
        # 3. its memberships are exactly the desired ones
        writes += self._sync_memberships(claim, target, current=current, by_label=by_label)
        # 4. only now retire the old version and any orphan of an interrupted attempt
        for stale in _unique([old_id, *claim.pending_r2r_ids]):
            if stale != target and self.client.delete_document(stale):
                writes += 1
        return Outcome(
            r2r_id=target,
            version=claim.desired_version,
            deleted=False,
            labels=claim.desired_labels,
            collections=sorted(desired),
            writes=writes,
        )

    def _ensure_version(
        self, claim: ApplyTask, target: uuid.UUID, by_label: dict[str, uuid.UUID]
    ) -> tuple[bool, set[uuid.UUID]]:
        """Create the target version unless a complete copy exists.

        Returns (created, the collections the version is in now).  A create that R2R
        reports as ingested inside the request (simple orchestration) is complete: its
        collections are the ones the create assigns (all of them on the chunk path, the
        first on the raw-text path), with no extra read.  A queued ingestion, or a
        version an earlier attempt left, is read back and must be ``success``.  Should
        R2R drop an assignment silently, reconciliation finds the drift and repairs it.
        """
        desired = sorted(set(by_label.values()))
        metadata = {
            **(claim.r2r_metadata or {}),
            VERSION_KEY: claim.desired_version,
            SEQ_KEY: claim.seq,
        }
        chunks = claim.chunks or self._bridge_chunks(claim)
        for _ in range(3):
            try:
                if chunks:
                    # the chunk path assigns every collection at once
                    assigned = desired
                    result = self.client.ingest_document(
                        document_id=target,
                        chunks=chunks,
                        metadata=metadata,
                        collection_ids=assigned,
                    )
                else:
                    # R2R assigns only the first collection on raw-text create (#2028);
                    # the grants follow in _sync_memberships.
                    assigned = desired[:1]
                    result = self.client.ingest_document(
                        document_id=target,
                        raw_text=claim.text or "",
                        metadata=metadata,
                        collection_ids=assigned,
                    )
            except R2RAlreadyExistsError:
                existing = self.client.get_document(target)
                if existing.ingestion_status == "success":
                    # an interrupted attempt already created it
                    return False, set(existing.collection_ids)
                if existing.ingestion_status == "failed":
                    self.client.delete_document(target)
                    continue
                self._handle_in_progress(claim, existing)
                continue
            except R2RBusyError:
                existing = self.client.get_document(target)
                self._handle_in_progress(claim, existing)
                continue
            if result.completed:
                return True, set(assigned)
            document = self.client.get_document(target)
            if document.ingestion_status not in ("success", "failed"):
                # a queued ingestion (Hatchet) still running: a later attempt adopts it
                # (409 -> success) or clears it once stuck (_handle_in_progress)
                raise R2RBusyError(
                    f"ingestion queued as task {result.task_id}, "
                    f"status {document.ingestion_status}",
                    operation="create_document",
                    document_id=str(target),
                )
            if document.ingestion_status != "success":
                failure = str(document.metadata.get("failure", document.ingestion_status))
                # leave nothing half-made behind; the next attempt starts clean
                self.client.delete_document(target)
                raise R2RRetryableError(
                    f"ingestion ended with status {document.ingestion_status}: {failure}",
                    operation="create_document",
                    document_id=str(target),
                )
            return True, set(document.collection_ids)
        raise R2RRetryableError(
            "the document stayed in a non-final ingestion state",
            operation="create_document",
            document_id=str(target),
        )

    def _bridge_chunks(self, claim: ApplyTask) -> list[str] | None:
        """The claim's text split by the bridge, or None when R2R does the splitting."""
        if self.settings.chunking != "bridge" or not claim.text:
            return None
        return (
            split_text(
                claim.text,
                chunk_size=self.settings.chunk_size,
                chunk_overlap=self.settings.chunk_overlap,
            )
            or None
        )

    def _handle_in_progress(self, claim: ApplyTask, existing: R2RDocument) -> None:
        """An ingestion of *existing* is running or stuck: wait (busy) or clear it."""
        updated = existing.updated_at or existing.created_at
        age = (datetime.now(UTC) - updated).total_seconds() if updated is not None else float("inf")
        if age < self.settings.stuck_ingestion_seconds:
            raise R2RBusyError(
                f"document is being ingested (status {existing.ingestion_status}, {age:.0f}s old)",
                operation="create_document",
                document_id=str(existing.id),
            )
        logger.warning(
            "deleting r2r document %s of %r stuck in %s for %.0fs",
            existing.id,
            claim.document_id,
            existing.ingestion_status,
            age,
        )
        self.client.delete_document(existing.id)
        time.sleep(0.05)


def _unique(ids: Iterable[uuid.UUID | None]) -> list[uuid.UUID]:
    seen: list[uuid.UUID] = []
    for value in ids:
        if value is not None and value not in seen:
            seen.append(value)
    return seen
