"""Backfill: record what the host has and the ledger lacks, resumably and throttled.

When the mirror is switched on for a host that already holds documents (an
existing Onyx), nothing would ever reach R2R for unchanged documents: Onyx's
content-hash gate skips them.  A :class:`BackfillSource` lists the host's
document ids in a stable ascending order and fetches documents by id;
:func:`run_backfill_slice` walks the ids after the persisted cursor
(``r2r_bridge.sync_cursor``, job ``backfill``), asks the ledger which of each
batch it lacks (no live desired version) and records only those through
:class:`~onyx.r2r_sender.sender.MirrorSender` - the same path as every
other write, so workers apply them like any change.

* **Resumable**: the cursor is saved after every batch; a killed slice loses at
  most one batch of progress, and re-recording is idempotent anyway.
* **Throttled**: a slice works at most ``max_seconds`` (and ``max_batches``),
  sleeps ``throttle_seconds`` between batches, and stops early while the
  tenant already has more than ``max_pending`` rows waiting (backpressure: the
  backfill never floods the workers ahead of live changes).
* A pass ends with state ``done``; :func:`run_backfill_slice` with
  ``restart=True`` starts a new pass (the admin page's "resync").

Host-agnostic; the Onyx source lives in
``onyx/background/celery/tasks/r2r_mirror/backfill_source.py``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from onyx.r2r_sender.ledger import ops as ledger_ops
from onyx.r2r_sender.records import field_of
from onyx.r2r_sender.sender import MirrorSender

logger = logging.getLogger(__name__)

JOB = "backfill"


@runtime_checkable
class BackfillSource(Protocol):
    """Where a backfill reads the host's documents from."""

    def list_ids(self, after: str | None, limit: int) -> Sequence[str]:
        """Up to *limit* document ids after *after* (from the start when None), in the
        source's stable ascending order (the last id returned becomes the cursor)."""
        ...

    def fetch(self, document_ids: Sequence[str]) -> Iterable[Any]:
        """The documents with these ids that still exist: :class:`SourceDocument`s
        (with their ACL and sets) or records in the engine's format
        (:mod:`onyx.r2r_sender.records`)."""
        ...


@dataclass
class BackfillProgress:
    """What one slice did, and where the pass stands."""

    tenant_id: str
    state: str = "running"  # running | done
    after: str | None = None
    batches: int = 0
    scanned: int = 0
    missing: int = 0
    recorded: int = 0
    rejected: int = 0
    stopped: str = ""  # why the slice ended before the pass did
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_backfill_slice(
    tenant_id: str,
    source: BackfillSource,
    *,
    sender: MirrorSender,
    batch_size: int = 200,
    max_seconds: float = 20.0,
    max_batches: int | None = None,
    throttle_seconds: float = 0.0,
    max_pending: int = 5000,
    restart: bool = False,
) -> BackfillProgress:
    """Advance the tenant's backfill pass for one slice; see the module doc.

    Raises database errors of the cursor bookkeeping and the source's errors
    (the cursor stays at the last completed batch).
    """
    ledger = sender.ledger
    started = time.monotonic()
    cursor = ledger_ops.get_cursor(ledger, tenant_id, JOB)
    if restart or cursor.state not in ("running", "done"):
        cursor = ledger_ops.Cursor(cursor={}, state="running", updated_at=None)
        ledger_ops.save_cursor(ledger, tenant_id, JOB, {}, "running")
    progress = BackfillProgress(
        tenant_id=tenant_id, state=cursor.state, after=cursor.cursor.get("after")
    )
    if cursor.state == "done":
        progress.stopped = "pass already done (restart to run a new one)"
        return progress
    deadline = started + max_seconds
    while True:
        if max_batches is not None and progress.batches >= max_batches:
            progress.stopped = "max_batches"
            break
        if time.monotonic() >= deadline:
            progress.stopped = "time slice used"
            break
        if max_pending and ledger.pending_count(tenant_id) > max_pending:
            progress.stopped = f"backpressure: more than {max_pending} documents pending"
            break
        ids = [str(i) for i in source.list_ids(progress.after, batch_size)]
        if not ids:
            progress.state = "done"
            ledger_ops.save_cursor(ledger, tenant_id, JOB, {"after": progress.after}, "done")
            break
        known = ledger.known_live(tenant_id, ids)
        lacking = [i for i in ids if i not in known]
        if lacking:
            docs = [d for d in source.fetch(lacking) if _doc_id(d) in set(lacking)]
            if docs:
                report = sender.send_batch(docs)
                progress.recorded += len(report.changed)
                progress.rejected += len(report.rejected)
                progress.errors.extend(f"{r.document_id}: {r.reason}" for r in report.rejected[:20])
        progress.missing += len(lacking)
        progress.scanned += len(ids)
        progress.batches += 1
        progress.after = ids[-1]  # the source's own order (e.g. a database collation)
        ledger_ops.save_cursor(ledger, tenant_id, JOB, {"after": progress.after}, "running")
        if throttle_seconds > 0:
            time.sleep(throttle_seconds)
    progress.seconds = round(time.monotonic() - started, 3)
    logger.info(
        "backfill slice of tenant %s: %s after %r, scanned %d, recorded %d%s",
        tenant_id,
        progress.state,
        progress.after,
        progress.scanned,
        progress.recorded,
        f" ({progress.stopped})" if progress.stopped else "",
    )
    return progress


def _doc_id(doc: Any) -> str:
    value = getattr(doc, "document_id", None)
    if value is None:
        value = field_of(doc, "id")
    return str(value)


class StaticBackfillSource:
    """A :class:`BackfillSource` over documents in memory or a JSONL file (CLI, tests)."""

    def __init__(self, documents: Iterable[Any]) -> None:
        self._docs = {_doc_id(d): d for d in documents}
        self._ids = sorted(self._docs)

    @classmethod
    def from_jsonl(cls, *paths: str | Path) -> StaticBackfillSource:
        docs: list[Any] = []
        for path in paths:
            with open(path, encoding="utf-8") as handle:
                docs.extend(json.loads(line) for line in handle if line.strip())
        return cls(d for d in docs if isinstance(d, dict) and d.get("op", "upsert") == "upsert")

    def list_ids(self, after: str | None, limit: int) -> Sequence[str]:
        import bisect

        start = 0 if after is None else bisect.bisect_right(self._ids, after)
        return self._ids[start : start + limit]

    def fetch(self, document_ids: Sequence[str]) -> Iterable[Any]:
        return [self._docs[i] for i in document_ids if i in self._docs]
