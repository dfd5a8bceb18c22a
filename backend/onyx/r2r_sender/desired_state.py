"""What hosts may do with the desired-state ledger: one typed protocol.

Hosts record desired state (content, labels, tombstones, rejections), look up what is
known, and nothing else: claiming, finalising, retries and repairs belong to the
engine's workers and jobs.  :class:`~onyx.r2r_sender.ledger.Ledger` (PostgreSQL) is the
implementation that runs; :class:`~onyx.r2r_sender.memory_ledger.InMemoryLedger` is its
twin for unit tests of host adapters (the same contract, checked by one shared test
suite against both).  ``tenant_id`` is always a scope key
(:attr:`~onyx.r2r_sender.hosts.TenantScope.key`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from onyx.r2r_sender.payload import PreparedDocument

LabelUpdate = tuple[Iterable[str] | None, ...]
"""``(acl_labels, set_labels)`` or ``(acl_labels, set_labels, flag_labels)``, prefixed;
``None`` keeps that part."""


@dataclass(frozen=True)
class RecordResult:
    """What a ``record_*`` call changed."""

    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DesiredState:
    """The recorded desired state of one document."""

    version: str | None
    labels: list[str]
    deleted: bool
    status: str


@runtime_checkable
class DesiredStateLedger(Protocol):
    """The host-facing ledger.  Every call is one short transaction and never calls R2R;
    an implementation raises only when its store fails (then nothing was recorded)."""

    def record_documents(self, tenant_id: str, docs: Sequence[PreparedDocument]) -> RecordResult:
        """Record desired content and labels (last copy of a repeated id wins).

        A part of the labels that is ``None`` keeps the recorded one.  A document whose
        version and labels are already recorded (and not tombstoned) is ``unchanged``:
        no write, no R2R work.
        """
        ...

    def record_deletes(self, tenant_id: str, document_ids: Iterable[str]) -> RecordResult:
        """Tombstone documents; ids never seen are ``unknown``, tombstoned ones ``unchanged``."""
        ...

    def record_labels(self, tenant_id: str, updates: Mapping[str, LabelUpdate]) -> RecordResult:
        """Replace label parts of known, live documents; others are ``unknown``."""
        ...

    def record_invalid(self, tenant_id: str, document_id: str, reason: str) -> None:
        """Dead-letter a document the engine cannot mirror (an earlier valid version stays)."""
        ...

    def desired_of(self, tenant_id: str, document_ids: Sequence[str]) -> dict[str, DesiredState]:
        """The recorded desired state of the known *document_ids*."""
        ...

    def known_live(self, tenant_id: str, document_ids: Sequence[str]) -> set[str]:
        """The ids among *document_ids* with a live (not tombstoned) desired version."""
        ...

    def applied_r2r_ids(self, tenant_id: str, document_ids: Sequence[str]) -> dict[str, uuid.UUID]:
        """The R2R id of the applied, live version of each of *document_ids* R2R holds."""
        ...

    def sample_applied(self, tenant_id: str, n: int) -> dict[str, uuid.UUID]:
        """Up to *n* random applied, live documents (document id → R2R id)."""
        ...

    def pending_count(self, tenant_id: str, document_ids: Sequence[str] | None = None) -> int:
        """How many of *document_ids* (default: all of the tenant's) wait to be applied."""
        ...

    def collection_ids(self, tenant_id: str, principals: Sequence[str]) -> dict[str, uuid.UUID]:
        """The remembered R2R collection ids of those labels that have one."""
        ...

    def save_collection(
        self, tenant_id: str, principal: str, collection_id: uuid.UUID, name: str
    ) -> None:
        """Remember one label's R2R collection id."""
        ...

    def save_collections(
        self, tenant_id: str, entries: Sequence[tuple[str, uuid.UUID, str]]
    ) -> None:
        """Remember many ``(label, collection id, name)`` at once (one transaction)."""
        ...

    def forget_collection(self, tenant_id: str, principal: str) -> None:
        """Forget one label's collection (it vanished from R2R)."""
        ...
