"""An in-memory :class:`~onyx.r2r_sender.desired_state.DesiredStateLedger`, for unit tests.

The twin of the PostgreSQL :class:`~onyx.r2r_sender.ledger.Ledger` (as LangChain's
``InMemoryRecordManager`` is of its SQL record manager): the same host-facing contract,
checked by one shared test suite against both (``tests/ledger_contract.py``), so a host
adapter's unit tests can record and look up without a database.  It never applies
anything: :meth:`InMemoryLedger.mark_applied` stands in for a worker.  Thread-safe; holds
everything in one process, so it is no substitute for the real ledger anywhere else.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from onyx.r2r_sender.desired_state import DesiredState, LabelUpdate, RecordResult
from onyx.r2r_sender.errors import DeadLetterClass
from onyx.r2r_sender.payload import ACL_PREFIX, FLAG_PREFIX, SET_PREFIX, PreparedDocument


@dataclass
class _Row:
    version: str | None
    labels: list[str]
    deleted: bool = False
    status: str = "pending"
    last_error_class: str | None = None
    last_error: str | None = None
    applied_r2r_id: uuid.UUID | None = None
    applied_deleted: bool = False
    payload: PreparedDocument | None = field(default=None, repr=False)


class InMemoryLedger:
    """The desired-state ledger's host contract, held in a dict (see module doc)."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], _Row] = {}
        self._collections: dict[tuple[str, str], uuid.UUID] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ writes
    def record_documents(self, tenant_id: str, docs: Sequence[PreparedDocument]) -> RecordResult:
        latest = {doc.document_id: doc for doc in docs}
        changed: list[str] = []
        unchanged: list[str] = []
        with self._lock:
            for doc_id in sorted(latest):
                doc = latest[doc_id]
                row = self._rows.get((tenant_id, doc_id))
                recorded = list(row.labels) if row is not None and not row.deleted else []
                labels = doc.merged_labels(recorded)
                rejected = (
                    row is not None and row.last_error_class == DeadLetterClass.INVALID_DOCUMENT
                )
                if row is None or rejected or row.deleted or row.version != doc.version:
                    self._rows[(tenant_id, doc_id)] = _Row(
                        version=doc.version,
                        labels=labels,
                        applied_r2r_id=row.applied_r2r_id if row else None,
                        applied_deleted=row.applied_deleted if row else False,
                        payload=doc,
                    )
                    changed.append(doc_id)
                elif recorded != labels:
                    row.labels, row.status = labels, "pending"
                    changed.append(doc_id)
                else:
                    unchanged.append(doc_id)
        return RecordResult(changed=changed, unchanged=unchanged)

    def record_deletes(self, tenant_id: str, document_ids: Iterable[str]) -> RecordResult:
        ids = sorted(set(document_ids))
        changed: list[str] = []
        unchanged: list[str] = []
        unknown: list[str] = []
        with self._lock:
            for doc_id in ids:
                row = self._rows.get((tenant_id, doc_id))
                if row is None:
                    unknown.append(doc_id)
                elif row.deleted:
                    unchanged.append(doc_id)
                else:
                    row.deleted, row.labels, row.status, row.payload = True, [], "pending", None
                    row.last_error_class = row.last_error = None
                    changed.append(doc_id)
        return RecordResult(changed=changed, unchanged=unchanged, unknown=unknown)

    def record_labels(self, tenant_id: str, updates: Mapping[str, LabelUpdate]) -> RecordResult:
        changed: list[str] = []
        unchanged: list[str] = []
        unknown: list[str] = []
        with self._lock:
            for doc_id in sorted(updates):
                row = self._rows.get((tenant_id, doc_id))
                if row is None or row.deleted:
                    unknown.append(doc_id)
                    continue
                acl_new, sets_new, *rest = updates[doc_id]
                flags_new = rest[0] if rest else None
                parts = ((ACL_PREFIX, acl_new), (SET_PREFIX, sets_new), (FLAG_PREFIX, flags_new))
                labels: set[str] = set()
                for prefix, new in parts:
                    if new is None:
                        labels.update(lb for lb in row.labels if lb.startswith(prefix))
                    else:
                        labels.update(new)
                if sorted(labels) == list(row.labels):
                    unchanged.append(doc_id)
                else:
                    row.labels, row.status = sorted(labels), "pending"
                    row.last_error_class = row.last_error = None
                    changed.append(doc_id)
        return RecordResult(changed=changed, unchanged=unchanged, unknown=unknown)

    def record_invalid(self, tenant_id: str, document_id: str, reason: str) -> None:
        with self._lock:
            row = self._rows.setdefault((tenant_id, document_id), _Row(version=None, labels=[]))
            row.status, row.last_error = "dead", reason
            row.last_error_class = DeadLetterClass.INVALID_DOCUMENT

    # ----------------------------------------------------------------- lookups
    def desired_of(self, tenant_id: str, document_ids: Sequence[str]) -> dict[str, DesiredState]:
        with self._lock:
            return {
                doc_id: DesiredState(
                    version=row.version,
                    labels=list(row.labels),
                    deleted=row.deleted,
                    status=row.status,
                )
                for doc_id in document_ids
                if (row := self._rows.get((tenant_id, doc_id))) is not None
            }

    def known_live(self, tenant_id: str, document_ids: Sequence[str]) -> set[str]:
        with self._lock:
            return {
                doc_id
                for doc_id in document_ids
                if (row := self._rows.get((tenant_id, doc_id))) is not None
                and not row.deleted
                and row.version is not None
            }

    def applied_r2r_ids(self, tenant_id: str, document_ids: Sequence[str]) -> dict[str, uuid.UUID]:
        with self._lock:
            return {
                doc_id: row.applied_r2r_id
                for doc_id in document_ids
                if (row := self._rows.get((tenant_id, doc_id))) is not None
                and row.applied_r2r_id is not None
                and not row.applied_deleted
            }

    def sample_applied(self, tenant_id: str, n: int) -> dict[str, uuid.UUID]:
        with self._lock:
            live = [
                (doc_id, row.applied_r2r_id)
                for (tenant, doc_id), row in self._rows.items()
                if tenant == tenant_id
                and row.applied_r2r_id is not None
                and not row.applied_deleted
            ]
        return dict(random.sample(live, min(max(1, n), len(live))))

    def pending_count(self, tenant_id: str, document_ids: Sequence[str] | None = None) -> int:
        with self._lock:
            wanted = None if document_ids is None else set(document_ids)
            return sum(
                1
                for (tenant, doc_id), row in self._rows.items()
                if tenant == tenant_id
                and row.status == "pending"
                and (wanted is None or doc_id in wanted)
            )

    # ------------------------------------------------------------- collections
    def collection_ids(self, tenant_id: str, principals: Sequence[str]) -> dict[str, uuid.UUID]:
        with self._lock:
            return {
                p: self._collections[(tenant_id, p)]
                for p in principals
                if (tenant_id, p) in self._collections
            }

    def save_collection(
        self, tenant_id: str, principal: str, collection_id: uuid.UUID, name: str
    ) -> None:
        with self._lock:
            self._collections[(tenant_id, principal)] = collection_id

    def save_collections(
        self, tenant_id: str, entries: Sequence[tuple[str, uuid.UUID, str]]
    ) -> None:
        with self._lock:
            for principal, collection_id, _name in entries:
                self._collections[(tenant_id, principal)] = collection_id

    def forget_collection(self, tenant_id: str, principal: str) -> None:
        with self._lock:
            self._collections.pop((tenant_id, principal), None)

    # ------------------------------------------------------------- the worker
    def mark_applied(self, tenant_id: str, document_id: str, r2r_id: uuid.UUID | None) -> None:
        """Stand in for a worker: R2R now holds the desired state (``None``: deleted)."""
        with self._lock:
            row = self._rows[(tenant_id, document_id)]
            row.status = "synced"
            row.applied_deleted = row.deleted
            row.applied_r2r_id = None if row.deleted else r2r_id
