"""Reconciliation: compare what R2R really holds for a tenant with the ledger, and repair.

Onyx never reports a secondary index's failures and the ledger only knows what
workers *applied*; documents deleted in R2R by hand, chunks lost with a
deleted collection, memberships changed behind the engine's back, or versions
a crashed worker left behind are only found by looking at R2R itself.
:func:`reconcile_tenant` pages every R2R document (``client.iter_all_documents``),
keeps the tenant's (chunk metadata carries ``tenant_id``, ``source_document_id``
and ``bridge_version``), compares them with the ledger and repairs:

* **orphans** - R2R documents of the tenant no live ledger row points at (no row,
  a tombstone, or an old version of a synced row): deleted;
* **missing** - synced rows whose applied version is not in R2R (or is
  ``failed`` there): made pending with the applied version forgotten, so the
  worker re-creates it from the stored payload;
* **failed** - dead letters whose failure may have been transient: re-queued;
* **collection drift** - R2R memberships differ from the recorded ones: made
  pending with the applied collections set to what R2R really has, so the
  worker's diff revokes and grants against reality.

Rows that are pending (a worker may be applying them) are left alone, and an
R2R version newer than the row's applied one (``bridge_seq``) is never an
orphan: reconciliation never races a worker.  **Mass-delete circuit breaker**:
when more than ``max_delete_share`` of the tenant's R2R documents (and more
than ``delete_floor``) would be deleted - a wiped or wrong ledger database
looks exactly like that - nothing is changed and the run is recorded as
``stopped``.  Every run is recorded in ``r2r_bridge.reconcile_run``.
Host-agnostic; no Onyx import.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from onyx.r2r_sender.applier import SEQ_KEY, VERSION_KEY
from onyx.r2r_sender.client import R2RClient
from onyx.r2r_sender.ledger import Ledger
from onyx.r2r_sender.ledger import ops as ledger_ops
from onyx.r2r_sender.ledger.models import DocStatus
from onyx.r2r_sender.r2r_types import R2RDocument

logger = logging.getLogger(__name__)

DEFAULT_MAX_DELETE_SHARE = 0.2
DEFAULT_DELETE_FLOOR = 10
_LIST_LIMIT = 200  # ids kept per category in the recorded result


@dataclass
class ReconcileResult:
    """What one run found and did (stored as the run's ``result``)."""

    tenant_id: str
    outcome: str = "running"  # ok | stopped | dry_run | failed
    reason: str = ""
    r2r_documents: int = 0
    ledger_rows: int = 0
    orphans: list[str] = field(default_factory=list)  # R2R ids
    missing: list[str] = field(default_factory=list)  # document ids
    drift: list[str] = field(default_factory=list)  # document ids
    failed_requeued: list[str] = field(default_factory=list)  # document ids
    deleted: int = 0
    repaired: int = 0
    skipped_pending: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    run_id: int | None = None

    def summary(self) -> dict[str, Any]:
        """The JSON stored in ``reconcile_run.result`` (long lists truncated)."""
        data = asdict(self)
        for key in ("orphans", "missing", "drift", "failed_requeued", "errors"):
            data[f"{key}_count"] = len(data[key])
            data[key] = data[key][:_LIST_LIMIT]
        return data


def iter_tenant_documents(
    client: R2RClient, tenant_id: str, *, page_size: int = 1000
) -> Iterator[R2RDocument]:
    """Yield every R2R document whose metadata names *tenant_id*, in whatever collections.

    Pages all documents visible to the client (see ``R2RClient.iter_all_documents``):
    documents are in their ACL/set collections, not in a tenant-wide one.
    """
    for doc in client.iter_all_documents(page_size=page_size):
        if doc.metadata.get("tenant_id") == tenant_id:
            yield doc


def _seq(document: R2RDocument) -> int:
    try:
        return int(document.metadata.get(SEQ_KEY, 0) or 0)
    except (TypeError, ValueError):
        return 0


def reconcile_tenant(
    tenant_id: str,
    *,
    ledger: Ledger,
    client: R2RClient,
    max_delete_share: float = DEFAULT_MAX_DELETE_SHARE,
    delete_floor: int = DEFAULT_DELETE_FLOOR,
    dry_run: bool = False,
    ring: Callable[[str], Any] | None = None,
    page_size: int = 1000,
) -> ReconcileResult:
    """Compare R2R with the ledger for *tenant_id* and repair; see the module doc.

    *ring* (e.g. ``Doorbell.ring``) is called when rows were made pending.
    Raises nothing but database errors of the run bookkeeping; R2R failures
    are recorded as ``failed`` runs.
    """
    started = time.monotonic()
    result = ReconcileResult(tenant_id=tenant_id)
    result.run_id = ledger_ops.start_run(ledger, tenant_id)
    try:
        _reconcile(
            result,
            ledger=ledger,
            client=client,
            max_delete_share=max_delete_share,
            delete_floor=delete_floor,
            dry_run=dry_run,
            ring=ring,
            page_size=page_size,
        )
    except Exception as exc:  # recorded as a failed run
        logger.exception("reconciliation of tenant %s failed", tenant_id)
        result.outcome = "failed"
        result.reason = f"{type(exc).__name__}: {exc}"[:500]
    result.seconds = round(time.monotonic() - started, 3)
    ledger_ops.finish_run(ledger, result.run_id, result.outcome, result.summary())
    logger.info(
        "reconciliation of tenant %s: %s (%d R2R documents, %d orphans, %d missing, "
        "%d drift, %d dead re-queued)%s",
        tenant_id,
        result.outcome,
        result.r2r_documents,
        len(result.orphans),
        len(result.missing),
        len(result.drift),
        len(result.failed_requeued),
        f": {result.reason}" if result.reason else "",
    )
    return result


def _reconcile(
    result: ReconcileResult,
    *,
    ledger: Ledger,
    client: R2RClient,
    max_delete_share: float,
    delete_floor: int,
    dry_run: bool,
    ring: Callable[[str], Any] | None,
    page_size: int,
) -> None:
    tenant_id = result.tenant_id
    # 1. R2R first, then the ledger: a row finalised in between looks "missing"
    #    at worst (a harmless re-apply), never makes a live version an orphan
    r2r_docs: dict[uuid.UUID, R2RDocument] = {
        doc.id: doc
        for doc in iter_tenant_documents(client, tenant_id, page_size=page_size)
        if doc.metadata.get("source_document_id") and VERSION_KEY in doc.metadata
    }
    rows = {row["document_id"]: row for row in ledger.iter_states(tenant_id)}
    result.r2r_documents = len(r2r_docs)
    result.ledger_rows = len(rows)

    # 2. orphans: R2R versions no live row points at
    orphans: list[uuid.UUID] = []
    for r2r_id, doc in r2r_docs.items():
        row = rows.get(str(doc.metadata["source_document_id"]))
        if row is None:
            orphans.append(r2r_id)
            continue
        if row["status"] == DocStatus.PENDING:
            result.skipped_pending += 1
            continue
        if row["applied_r2r_id"] == r2r_id and not row["applied_deleted"]:
            continue
        if row["applied_seq"] is not None and _seq(doc) > int(row["applied_seq"]):
            continue  # newer than what the row applied: an apply in flight
        orphans.append(r2r_id)

    # 3. missing / failed-in-R2R and 4. drift, for synced live rows
    missing: list[tuple[str, uuid.UUID]] = []
    drift: list[tuple[str, uuid.UUID, list[uuid.UUID]]] = []
    for doc_id, row in rows.items():
        r2r_id = row["applied_r2r_id"]
        if row["status"] != DocStatus.SYNCED or row["applied_deleted"] or r2r_id is None:
            continue
        live = r2r_docs.get(r2r_id)
        if live is None or live.ingestion_status == "failed":
            missing.append((doc_id, r2r_id))
            continue
        if set(live.collection_ids) != set(row["applied_collections"] or []):
            drift.append((doc_id, r2r_id, list(live.collection_ids)))

    result.orphans = [str(o) for o in orphans]
    result.missing = [d for d, _ in missing]
    result.drift = [d for d, _, _ in drift]

    # 5. the circuit breaker, before anything changes
    limit = max(delete_floor, max_delete_share * len(r2r_docs))
    if len(orphans) > limit:
        result.outcome = "stopped"
        result.reason = (
            f"mass-delete circuit breaker: {len(orphans)} of {len(r2r_docs)} R2R documents "
            f"would be deleted (limit {max_delete_share:.0%}, at least {delete_floor}); "
            "nothing was changed - check that the ledger database is the right one"
        )
        logger.error("reconciliation of tenant %s stopped: %s", tenant_id, result.reason)
        return
    if dry_run:
        result.outcome = "dry_run"
        return

    # 6. repair
    for r2r_id in orphans:
        try:
            if client.delete_document(r2r_id):
                result.deleted += 1
        except Exception as exc:  # noqa: BLE001 - the next run retries
            result.errors.append(f"delete {r2r_id}: {type(exc).__name__}: {exc}"[:300])
    for doc_id, r2r_id in missing:
        if ledger_ops.mark_missing(ledger, tenant_id, doc_id, r2r_id):
            result.repaired += 1
    for doc_id, r2r_id, actual in drift:
        if ledger_ops.mark_drift(ledger, tenant_id, doc_id, r2r_id, actual):
            result.repaired += 1
    result.failed_requeued = ledger_ops.requeue_dead(ledger, tenant_id)
    result.repaired += len(result.failed_requeued)
    if result.repaired and ring is not None:
        ring(tenant_id)
    result.outcome = "ok" if not result.errors else "partial"
