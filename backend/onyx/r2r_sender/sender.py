"""The asynchronous host API: record what R2R should hold, ring the doorbell, return.

``MirrorSender`` never calls R2R.  ``send_batch`` validates each
document on its own (one bad document never blocks its batch), writes the
desired state of the whole batch in one short transaction, rings the
tenant's doorbell and returns a :class:`BatchReport`.  Workers do the R2R
work later (:mod:`onyx.r2r_sender.worker`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from onyx.r2r_sender.config import BridgeSettings, Secret
from onyx.r2r_sender.desired_state import DesiredStateLedger
from onyx.r2r_sender.errors import BridgeError
from onyx.r2r_sender.hosts import TenantScope
from onyx.r2r_sender.payload import (
    ACL_PREFIX,
    FLAG_PREFIX,
    SET_PREFIX,
    InvalidDocumentError,
    PreparedDocument,
    SourceDocument,
    clean_text,
    prepare,
)
from onyx.r2r_sender.records import field_of, source_document_from_record

logger = logging.getLogger(__name__)

DEFAULT_TENANT = "public"  # Onyx's single-tenant schema name

# turns one host document into a SourceDocument (raises InvalidDocumentError on bad input)
Converter = Callable[[Any, "Collection[str] | None"], SourceDocument]


def record_converter(doc: Any, default_acl: Collection[str] | None) -> SourceDocument:
    """The default :data:`Converter`: a :class:`SourceDocument` as is, else a record in the
    engine's format (:func:`~onyx.r2r_sender.records.source_document_from_record`)."""
    if isinstance(doc, SourceDocument):
        return doc
    return source_document_from_record(doc, default_acl=default_acl)


class Ringer(Protocol):
    """What the sender needs of the workers' doorbell (:class:`~onyx.r2r_sender.doorbell.Doorbell`)."""

    def ring(self, tenant_id: str) -> Any:
        """Make sure a worker drains *tenant_id* soon (coalesced, best effort)."""
        ...


class SenderError(BridgeError):
    """The desired state could not be recorded (database unavailable); nothing was recorded."""


@dataclass(frozen=True)
class Rejection:
    """A document that was not accepted, and why (the reason names the problem)."""

    document_id: str
    reason: str


@dataclass
class BatchReport:
    """Outcome of one host call: counts and the rejected documents."""

    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    superseded: int = 0  # earlier copies of an id repeated in the same batch

    @property
    def accepted(self) -> int:
        return len(self.changed) + len(self.unchanged)


class MirrorSender:
    """Mirror documents of one host tenant into R2R, asynchronously and durably.

    *tenant_id* is a scope key or a :class:`~onyx.r2r_sender.hosts.TenantScope` (a bare
    string is an Onyx tenant).  ``base_url``/``api_key`` name the R2R server for this
    process's workers (they override ``R2R_BASE_URL``/``R2R_API_KEY``); sending itself
    needs only the ledger database and the broker.  ``default_acl`` is used for documents
    that carry no ACL of their own (empty = visible to nobody until an access update
    arrives: fail closed; ``None`` = keep the ACL recorded by another path, e.g. Onyx's
    index fan-out).  *convert* turns a host's document into a :class:`SourceDocument`
    (default: :func:`record_converter`); hosts with their own shapes pass theirs.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        tenant_id: str | TenantScope = DEFAULT_TENANT,
        default_acl: Collection[str] | None = (),
        settings: BridgeSettings | None = None,
        ledger: DesiredStateLedger | None = None,
        doorbell: Ringer | None = None,
        convert: Converter = record_converter,
    ) -> None:
        settings = settings or BridgeSettings.from_env()
        overrides: dict[str, Any] = {}
        if base_url is not None:
            overrides["r2r_base_url"] = base_url
        if api_key is not None:
            overrides["r2r_api_key"] = Secret(api_key)
        self.settings = settings.with_overrides(**overrides) if overrides else settings
        scope = tenant_id if isinstance(tenant_id, TenantScope) else TenantScope.from_key(tenant_id)
        self.scope = scope
        self.tenant_id = scope.key
        self.convert = convert
        self.default_acl = None if default_acl is None else tuple(default_acl)
        if ledger is None:
            from onyx.r2r_sender.ledger import Ledger

            ledger = Ledger.from_settings(self.settings)
        self.ledger: DesiredStateLedger = ledger
        if doorbell is None:
            from redis import Redis

            from onyx.r2r_sender.celery_app import build_app
            from onyx.r2r_sender.doorbell import Doorbell

            doorbell = Doorbell(
                build_app(self.settings), Redis.from_url(self.settings.broker_url), self.settings
            )
        self.doorbell: Ringer = doorbell

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(tenant_id={self.tenant_id!r}, "
            f"r2r={self.settings.r2r_base_url!r})"
        )

    # ------------------------------------------------------------------ API
    def send_batch(self, docs: Iterable[Any]) -> BatchReport:
        """Record the desired state of *docs* and ring the doorbell.

        *docs* are whatever the sender's converter reads (by default
        :class:`~onyx.r2r_sender.payload.SourceDocument` or engine records).  Invalid
        documents are dead-lettered with a reason naming them and listed in
        ``rejected``; the rest of the batch always goes through.  A document id
        repeated in the batch keeps its last copy.  Unchanged documents cost no
        write.  Raises :class:`SenderError` only when the ledger cannot be
        written (then nothing of the batch was recorded).
        """
        report = BatchReport()
        prepared: dict[str, PreparedDocument] = {}
        for doc in docs:
            try:
                source = self.convert(doc, self.default_acl)
                item = prepare(source, self.settings, self.tenant_id)
            except InvalidDocumentError as exc:
                self._reject(report, exc.document_id, exc.reason)
                continue
            except Exception as exc:  # noqa: BLE001 - one document never breaks the batch
                doc_id = _guess_id(doc)
                self._reject(report, doc_id, f"unreadable document ({type(exc).__name__}: {exc})")
                continue
            if item.document_id in prepared:
                report.superseded += 1
                del prepared[item.document_id]  # keep the last copy, in its position
            prepared[item.document_id] = item
        if prepared:
            try:
                result = self.ledger.record_documents(self.tenant_id, list(prepared.values()))
            except Exception as exc:
                raise SenderError(
                    f"could not record {len(prepared)} documents: {type(exc).__name__}"
                ) from exc
            report.changed.extend(result.changed)
            report.unchanged.extend(result.unchanged)
        if report.rejected:
            self._record_rejections(report.rejected)
        if report.changed:
            self.doorbell.ring(self.tenant_id)
        return report

    def delete_documents(self, document_ids: Iterable[str]) -> BatchReport:
        """Record that *document_ids* must disappear from R2R; ring the doorbell.

        Ids the ledger never saw are listed in ``unknown`` (nothing to delete).
        Raises :class:`SenderError` when the ledger cannot be written.
        """
        ids = [clean_text(str(d)) for d in document_ids if d]
        try:
            result = self.ledger.record_deletes(self.tenant_id, ids)
        except Exception as exc:
            raise SenderError(
                f"could not record {len(ids)} deletions: {type(exc).__name__}"
            ) from exc
        if result.changed:
            self.doorbell.ring(self.tenant_id)
        return BatchReport(
            changed=result.changed, unchanged=result.unchanged, unknown=result.unknown
        )

    def update_access(
        self,
        acl_by_document: Mapping[str, Collection[str] | None],
        *,
        sets_by_document: Mapping[str, Collection[str] | None] | None = None,
        flags_by_document: Mapping[str, Collection[str] | None] | None = None,
    ) -> BatchReport:
        """Replace the ACL (and optionally document sets and flags) of known documents.

        Only collection memberships change in R2R (no re-embedding); revocations
        are applied before grants.  ``None`` for a document keeps that part.
        Flags (e.g. ``["hidden"]``; ``[]`` clears them) are labels too.
        Raises :class:`SenderError` when the ledger cannot be written.
        """
        sets_by_document = sets_by_document or {}
        flags_by_document = flags_by_document or {}  # [issue-4]
        updates: dict[str, tuple[list[str] | None, list[str] | None, list[str] | None]] = {}
        report = BatchReport()
        for doc_id in set(acl_by_document) | set(sets_by_document) | set(flags_by_document):
            acl = acl_by_document.get(doc_id)
            sets = sets_by_document.get(doc_id)
            try:
                updates[doc_id] = (
                    _prefixed(doc_id, acl, ACL_PREFIX, "acl"),
                    _prefixed(doc_id, sets, SET_PREFIX, "sets"),
                    _prefixed(doc_id, flags_by_document.get(doc_id), FLAG_PREFIX, "flags"),
                )
            except InvalidDocumentError as exc:
                report.rejected.append(Rejection(exc.document_id, exc.reason))
        try:
            result = self.ledger.record_labels(self.tenant_id, updates)
        except Exception as exc:
            raise SenderError(
                f"could not record {len(updates)} access updates: {type(exc).__name__}"
            ) from exc
        report.changed.extend(result.changed)
        report.unchanged.extend(result.unchanged)
        report.unknown.extend(result.unknown)
        if result.changed:
            self.doorbell.ring(self.tenant_id)
        return report

    def known_live(self, document_ids: Iterable[str]) -> set[str]:
        """The ids among *document_ids* whose live desired state the ledger holds.

        Raises :class:`SenderError` when the ledger cannot be read.
        """
        ids = [str(d) for d in document_ids if d]
        try:
            return self.ledger.known_live(self.tenant_id, ids)
        except Exception as exc:
            raise SenderError(
                f"could not look up {len(ids)} documents: {type(exc).__name__}"
            ) from exc

    # -------------------------------------------------------------- helpers
    def _reject(self, report: BatchReport, document_id: str, reason: str) -> None:
        logger.warning("r2r mirror rejected document %r: %s", document_id, reason)
        report.rejected.append(Rejection(document_id, reason))

    def _record_rejections(self, rejected: list[Rejection]) -> None:
        for item in rejected:
            if not item.document_id or "\x00" in item.document_id:
                continue  # no usable id: reported to the caller only
            # the dead letter's reason names the document (operators read it on its own)
            reason = f"document {item.document_id!r}: {item.reason}"
            try:
                self.ledger.record_invalid(self.tenant_id, item.document_id, reason)
            except Exception:
                logger.warning("could not dead-letter %r", item.document_id, exc_info=True)


def _prefixed(
    document_id: str, values: Collection[str] | None, prefix: str, what: str
) -> list[str] | None:
    if values is None:
        return None
    if isinstance(values, str | bytes):
        raise InvalidDocumentError(document_id, f"{what} must be a collection of strings")
    out = []
    for value in values:
        if not isinstance(value, str) or not value.strip():
            raise InvalidDocumentError(document_id, f"{what} entries must be non-empty strings")
        out.append(prefix + clean_text(value))
    return sorted(set(out))


def _guess_id(doc: Any) -> str:
    value = field_of(doc, "id")
    if value is None:
        value = getattr(doc, "document_id", None)
    if isinstance(value, str):
        return clean_text(value)
    return "<no id>"
