"""The desired-state ledger in PostgreSQL: the host protocol and the workers' claims.

Hosts call the ``record_*`` methods (one short transaction per batch, no R2R
call).  Workers :meth:`Ledger.claim` due rows on a :class:`LockSession`, apply
them, then :meth:`Ledger.finalize_success` / :meth:`Ledger.finalize_failure`.

Concurrency contract
--------------------
* A claim selects due rows with ``FOR UPDATE SKIP LOCKED`` and takes a
  session-level advisory lock per document on the claiming connection.  Only
  the holder of that lock applies the document or writes its *applied* columns,
  so no two workers (threads, processes, machines) ever apply one document at
  once.  When a worker dies its connection closes and PostgreSQL releases the
  lock at once; the row is still ``pending`` and the next claim takes it.
* Every desired change bumps ``desired_seq`` (the fencing token).  A worker
  finalises with the seq it claimed: the row becomes ``synced`` only if no newer
  desired state arrived meanwhile, otherwise it stays ``pending`` and the next
  apply starts from what R2R really holds.  A stale apply therefore never
  hides a newer one.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, create_engine, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.types import Text

from onyx.r2r_sender.applier import ApplyTask, Outcome
from onyx.r2r_sender.config import BridgeSettings
from onyx.r2r_sender.desired_state import DesiredState, RecordResult
from onyx.r2r_sender.errors import DeadLetterClass
from onyx.r2r_sender.ledger.models import SCHEMA, DocStatus
from onyx.r2r_sender.payload import (
    ACL_PREFIX,
    FLAG_PREFIX,
    SET_PREFIX,
    PreparedDocument,
    content_version,
)

# classid of our advisory locks ("R2RL"); the objid is hashtext(tenant ␟ doc)
LOCK_CLASS = 0x5232524C
# The per-document advisory locks workers hold right now, read once per query
# (pg_locks is a function scan: correlating it per row made claims O(backlog)).
_HELD_LOCKS_CTE = (
    "held AS MATERIALIZED (SELECT l.objid FROM pg_locks l WHERE l.locktype = 'advisory' "
    "AND l.classid = CAST(:cls AS oid) AND l.objsubid = 2)"
)
_NOT_HELD = (
    "NOT (CAST(hashtext(s.tenant_id || chr(31) || s.document_id) AS oid) "
    "= ANY (ARRAY(SELECT objid FROM held)))"
)
_KEY_SQL = "hashtext(tenant_id || chr(31) || document_id)"
_ERROR_TEXT_LIMIT = 2000

_engines: dict[str, Engine] = {}


def get_engine(database_url: str, *, pool_size: int | None = None) -> Engine:
    """Return the process-wide engine for *database_url* (created once).

    The pool holds ``pool_size`` connections plus as many overflow ones (default
    ``ONYX_R2R_DB_POOL_SIZE`` or 10): size it to the worker's thread count + 2.
    """
    engine = _engines.get(database_url)
    if engine is None:
        if pool_size is None:
            pool_size = int(os.environ.get("ONYX_R2R_DB_POOL_SIZE", "") or 10)
        engine = create_engine(
            database_url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
            pool_recycle=1800,
        )
        _engines[database_url] = engine
    return engine


@dataclass(frozen=True, kw_only=True)
class Claim(ApplyTask):
    """A claimed ledger row: the :class:`ApplyTask` plus what only the ledger tracks."""

    applied_labels: list[str]
    attempts: int


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered document, as listed for operators."""

    tenant_id: str
    document_id: str
    error_class: str | None
    error: str | None
    attempts: int
    last_attempt_at: datetime | None
    desired_deleted: bool


class LockSession:
    """A dedicated connection holding the per-document advisory locks of one drain.

    Close it (context manager) to release every lock; a killed process releases
    them implicitly when PostgreSQL sees its connection drop.
    """

    def __init__(self, engine: Engine) -> None:
        self._conn: Connection = engine.connect()

    @property
    def connection(self) -> Connection:
        return self._conn

    def unlock(self, tenant_id: str, document_id: str) -> None:
        """Release the lock of one document (no-op if not held)."""
        self._conn.execute(
            text(
                "SELECT pg_advisory_unlock(:cls, hashtext(CAST(:t AS text) || chr(31) || CAST(:d AS text)))"
            ),
            {"cls": LOCK_CLASS, "t": tenant_id, "d": document_id},
        )
        self._conn.commit()

    def close(self) -> None:
        try:
            self._conn.execute(text("SELECT pg_advisory_unlock_all()"))
            self._conn.commit()
        finally:
            self._conn.close()

    def __enter__(self) -> LockSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _labels_split(labels: Iterable[str]) -> tuple[set[str], set[str], set[str]]:
    acl = {label for label in labels if label.startswith(ACL_PREFIX)}
    sets = {label for label in labels if label.startswith(SET_PREFIX)}
    flags = {label for label in labels if label.startswith(FLAG_PREFIX)}  # [issue-4]
    return acl, sets, flags


class Ledger:
    """Desired and applied state of mirrored documents, in PostgreSQL.

    Implements the host-facing :class:`~onyx.r2r_sender.desired_state.DesiredStateLedger`
    plus what workers, jobs and operators need.  Every method opens and commits its own
    short transaction; none calls R2R.  Raises SQLAlchemy errors only for database failures.
    """

    def __init__(self, engine: Engine, settings: BridgeSettings) -> None:
        self.engine = engine
        self.settings = settings

    @classmethod
    def from_settings(cls, settings: BridgeSettings) -> Ledger:
        return cls(get_engine(settings.database_url), settings)

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    # ------------------------------------------------------------------ hosts
    def record_documents(self, tenant_id: str, docs: Sequence[PreparedDocument]) -> RecordResult:
        """Record the desired content of *docs* (last one wins for repeated ids).

        A document whose ACL or sets are None keeps the recorded ones.  Unchanged documents (same version and labels, not deleted) are left
        alone: no write, no R2R work.  Returns which ids changed.
        """
        latest: dict[str, PreparedDocument] = {}
        for doc in docs:
            latest[doc.document_id] = doc
        if not latest:
            return RecordResult()
        ids = sorted(latest)
        with self._tx() as conn:
            current = {
                row.document_id: row
                for row in conn.execute(
                    text(
                        "SELECT document_id, desired_version, desired_labels, desired_deleted, status, "
                        f"last_error_class FROM {SCHEMA}.document_state "
                        "WHERE tenant_id = :t AND document_id = ANY(:ids) "
                        "ORDER BY document_id FOR UPDATE"
                    ),
                    {"t": tenant_id, "ids": ids},
                )
            }
            # (document, its version to record, labels)
            changed: list[tuple[PreparedDocument, str, list[str]]] = []
            content_changed: list[PreparedDocument] = []
            unchanged: list[str] = []
            live = {
                doc_id: row
                for doc_id, row in current.items()
                if not row.desired_deleted
                and row.last_error_class != DeadLetterClass.INVALID_DOCUMENT
            }
            same_content = self._same_content(
                conn,
                tenant_id,
                {
                    doc_id: latest[doc_id]
                    for doc_id, row in live.items()
                    if row.desired_version != latest[doc_id].version
                },
            )
            for doc_id in ids:
                doc = latest[doc_id]
                row = current.get(doc_id)
                recorded = (
                    list(row.desired_labels) if row is not None and not row.desired_deleted else []
                )
                labels = doc.merged_labels(recorded)
                if doc_id not in live or (
                    live[doc_id].desired_version != doc.version and doc_id not in same_content
                ):
                    changed.append((doc, doc.version, labels))
                    content_changed.append(doc)
                elif recorded != labels:
                    changed.append((doc, live[doc_id].desired_version, labels))
                else:
                    unchanged.append(doc_id)
            if changed:
                self._upsert_desired(
                    conn,
                    tenant_id,
                    [(d.document_id, version, labels, False) for d, version, labels in changed],
                )
            if content_changed:
                # one statement for the whole batch (executemany costs a round trip per row)
                conn.execute(
                    text(
                        f"INSERT INTO {SCHEMA}.document_payload "
                        "(tenant_id, document_id, version, text_content, chunks, r2r_metadata) "
                        "SELECT :t, u.d, u.v, u.txt, CAST(u.c AS jsonb), CAST(u.m AS jsonb) "
                        "FROM unnest(CAST(:ids AS text[]), CAST(:versions AS text[]), "
                        "  CAST(:texts AS text[]), CAST(:chunks AS text[]), CAST(:metas AS text[])) "
                        "  AS u(d, v, txt, c, m) "
                        "ON CONFLICT (tenant_id, document_id) DO UPDATE SET "
                        "version = EXCLUDED.version, text_content = EXCLUDED.text_content, "
                        "chunks = EXCLUDED.chunks, r2r_metadata = EXCLUDED.r2r_metadata"
                    ),
                    {
                        "t": tenant_id,
                        "ids": [d.document_id for d in content_changed],
                        "versions": [d.version for d in content_changed],
                        "texts": [d.text for d in content_changed],
                        "chunks": [
                            None if d.chunks is None else json.dumps(d.chunks, ensure_ascii=False)
                            for d in content_changed
                        ],
                        "metas": [d.r2r_metadata_json for d in content_changed],
                    },
                )
        return RecordResult(changed=[d.document_id for d, _, _ in changed], unchanged=unchanged)

    @staticmethod
    def _same_content(
        conn: Connection, tenant_id: str, candidates: Mapping[str, PreparedDocument]
    ) -> set[str]:
        """Ids of *candidates* whose stored payload has the content they bring.

        A row recorded under an earlier version formula (one that hashed the update time
        in) has another version string for the same content; its stored payload, hashed
        with today's :func:`content_version`, tells.  Such a row keeps its version (R2R's
        copy is named after it) and costs no R2R write.
        """
        if not candidates:
            return set()
        rows = conn.execute(
            text(
                f"SELECT document_id, text_content, chunks, r2r_metadata "
                f"FROM {SCHEMA}.document_payload "
                "WHERE tenant_id = :t AND document_id = ANY(:ids)"
            ),
            {"t": tenant_id, "ids": sorted(candidates)},
        )
        same: set[str] = set()
        for row in rows:
            if not isinstance(row.r2r_metadata, dict):
                continue
            stored = content_version(row.r2r_metadata, text=row.text_content, chunks=row.chunks)
            if stored == candidates[row.document_id].version:
                same.add(row.document_id)
        return same

    def _upsert_desired(
        self,
        conn: Connection,
        tenant_id: str,
        rows: Sequence[tuple[str, str | None, list[str], bool]],
    ) -> None:
        # one statement for the whole batch; labels travel as JSON arrays
        conn.execute(
            text(
                f"INSERT INTO {SCHEMA}.document_state AS s "
                "(tenant_id, document_id, desired_seq, desired_version, desired_labels, "
                " desired_deleted, status, next_attempt_at) "
                "SELECT :t, u.d, 1, u.v, "
                "  ARRAY(SELECT jsonb_array_elements_text(CAST(u.l AS jsonb))), "
                "  u.del, 'pending', now() "
                "FROM unnest(CAST(:ids AS text[]), CAST(:versions AS text[]), "
                "  CAST(:labels AS text[]), CAST(:deleted AS boolean[])) AS u(d, v, l, del) "
                "ON CONFLICT (tenant_id, document_id) DO UPDATE SET "
                "desired_seq = s.desired_seq + 1, desired_version = EXCLUDED.desired_version, "
                "desired_labels = EXCLUDED.desired_labels, "
                "desired_deleted = EXCLUDED.desired_deleted, desired_at = now(), "
                "status = 'pending', attempts = 0, next_attempt_at = now(), "
                "last_error_class = NULL, last_error = NULL, updated_at = now()"
            ),
            {
                "t": tenant_id,
                "ids": [row[0] for row in rows],
                "versions": [row[1] for row in rows],
                "labels": [json.dumps(row[2]) for row in rows],
                "deleted": [row[3] for row in rows],
            },
        )

    def record_deletes(self, tenant_id: str, document_ids: Iterable[str]) -> RecordResult:
        """Tombstone *document_ids*; ids the ledger never saw are reported as unknown."""
        ids = sorted(set(document_ids))
        if not ids:
            return RecordResult()
        with self._tx() as conn:
            rows = (
                conn.execute(
                    text(
                        f"UPDATE {SCHEMA}.document_state SET desired_seq = desired_seq + 1, "
                        "desired_deleted = true, desired_labels = '{}', desired_at = now(), "
                        "status = 'pending', attempts = 0, next_attempt_at = now(), "
                        "last_error_class = NULL, last_error = NULL, updated_at = now() "
                        "WHERE tenant_id = :t AND document_id = ANY(:ids) AND NOT desired_deleted "
                        "RETURNING document_id"
                    ),
                    {"t": tenant_id, "ids": ids},
                )
                .scalars()
                .all()
            )
            changed = sorted(rows)
            conn.execute(
                text(
                    f"DELETE FROM {SCHEMA}.document_payload "
                    "WHERE tenant_id = :t AND document_id = ANY(:ids)"
                ),
                {"t": tenant_id, "ids": changed},
            )
            known = set(
                conn.execute(
                    text(
                        f"SELECT document_id FROM {SCHEMA}.document_state "
                        "WHERE tenant_id = :t AND document_id = ANY(:ids)"
                    ),
                    {"t": tenant_id, "ids": ids},
                ).scalars()
            )
        changed_set = set(changed)
        return RecordResult(
            changed=changed,
            unchanged=[i for i in ids if i in known and i not in changed_set],
            unknown=[i for i in ids if i not in known],
        )

    def record_labels(
        self,
        tenant_id: str,
        updates: Mapping[str, tuple[Iterable[str] | None, ...]],
    ) -> RecordResult:
        """Replace the ACL, set and/or flag labels of known documents (None keeps that part).

        *updates* maps a document id to ``(acl_labels, set_labels)`` or
        ``(acl_labels, set_labels, flag_labels)``, each already prefixed (see
        :mod:`onyx.r2r_sender.payload`).  Tombstoned and unknown documents are
        not touched (reported as unknown).
        """
        ids = sorted(updates)
        if not ids:
            return RecordResult()
        with self._tx() as conn:
            current = {
                row.document_id: row
                for row in conn.execute(
                    text(
                        f"SELECT document_id, desired_version, desired_labels FROM {SCHEMA}.document_state "
                        "WHERE tenant_id = :t AND document_id = ANY(:ids) AND NOT desired_deleted "
                        "ORDER BY document_id FOR UPDATE"
                    ),
                    {"t": tenant_id, "ids": ids},
                )
            }
            rows: list[tuple[str, str | None, list[str], bool]] = []
            unchanged: list[str] = []
            for doc_id in ids:
                row = current.get(doc_id)
                if row is None:
                    continue
                acl_now, sets_now, flags_now = _labels_split(row.desired_labels)
                acl_new, sets_new, *rest = updates[doc_id]
                flags_new = rest[0] if rest else None
                labels = sorted(
                    (set(acl_new) if acl_new is not None else acl_now)
                    | (set(sets_new) if sets_new is not None else sets_now)
                    | (set(flags_new) if flags_new is not None else flags_now)
                )
                if labels == list(row.desired_labels):
                    unchanged.append(doc_id)
                else:
                    rows.append((doc_id, row.desired_version, labels, False))
            if rows:
                self._upsert_desired(conn, tenant_id, rows)
        return RecordResult(
            changed=[r[0] for r in rows],
            unchanged=unchanged,
            unknown=[i for i in ids if i not in current],
        )

    def record_invalid(self, tenant_id: str, document_id: str, reason: str) -> None:
        """Dead-letter a document the host sent but the engine cannot mirror.

        The previous desired state (if any) is kept, so a valid earlier
        version stays mirrored; the row shows the rejection until the host
        sends a valid version.
        """
        with self._tx() as conn:
            conn.execute(
                text(
                    f"INSERT INTO {SCHEMA}.document_state AS s "
                    "(tenant_id, document_id, desired_version, status, last_error_class, "
                    " last_error, attempts, last_attempt_at) "
                    "VALUES (:t, :d, NULL, 'dead', 'invalid_document', :e, 1, now()) "
                    "ON CONFLICT (tenant_id, document_id) DO UPDATE SET "
                    "status = 'dead', last_error_class = 'invalid_document', last_error = :e, "
                    "attempts = s.attempts + 1, last_attempt_at = now(), updated_at = now()"
                ),
                {"t": tenant_id, "d": document_id, "e": reason[:_ERROR_TEXT_LIMIT]},
            )

    def desired_of(self, tenant_id: str, document_ids: Sequence[str]) -> dict[str, DesiredState]:
        """The recorded desired state of the known *document_ids* (for dry runs)."""
        with self.engine.connect() as conn:
            return {
                row.document_id: DesiredState(
                    version=row.desired_version,
                    labels=list(row.desired_labels or []),
                    deleted=row.desired_deleted,
                    status=row.status,
                )
                for row in conn.execute(
                    text(
                        "SELECT document_id, desired_version, desired_labels, desired_deleted, "
                        f"status FROM {SCHEMA}.document_state "
                        "WHERE tenant_id = :t AND document_id = ANY(:ids)"
                    ),
                    {"t": tenant_id, "ids": list(document_ids)},
                )
            }

    def pending_count(self, tenant_id: str, document_ids: Sequence[str] | None = None) -> int:
        """How many of *document_ids* (default: all of the tenant's) are still pending."""
        extra = "AND document_id = ANY(:ids)" if document_ids is not None else ""
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    text(
                        f"SELECT count(*) FROM {SCHEMA}.document_state "
                        f"WHERE tenant_id = :t AND status = 'pending' {extra}"
                    ),
                    {"t": tenant_id, "ids": list(document_ids or [])},
                ).scalar()
                or 0
            )

    def known_live(self, tenant_id: str, document_ids: Sequence[str]) -> set[str]:
        """The ids among *document_ids* the ledger holds a live desired version of."""
        if not document_ids:
            return set()
        with self.engine.connect() as conn:
            return set(
                conn.execute(
                    text(
                        f"SELECT document_id FROM {SCHEMA}.document_state "
                        "WHERE tenant_id = :t AND document_id = ANY(:ids) "
                        "AND NOT desired_deleted AND desired_version IS NOT NULL"
                    ),
                    {"t": tenant_id, "ids": list(document_ids)},
                ).scalars()
            )

    def applied_r2r_ids(self, tenant_id: str, document_ids: Sequence[str]) -> dict[str, uuid.UUID]:
        """The R2R id of the applied (live) version of each known document."""
        if not document_ids:
            return {}
        with self.engine.connect() as conn:
            return {
                row.document_id: row.applied_r2r_id
                for row in conn.execute(
                    text(
                        f"SELECT document_id, applied_r2r_id FROM {SCHEMA}.document_state "
                        "WHERE tenant_id = :t AND document_id = ANY(:ids) "
                        "AND applied_r2r_id IS NOT NULL AND NOT applied_deleted"
                    ),
                    {"t": tenant_id, "ids": list(document_ids)},
                )
            }

    def sample_applied(self, tenant_id: str, n: int) -> dict[str, uuid.UUID]:
        """Up to *n* random live documents of *tenant_id* (document id → applied R2R id)."""
        with self.engine.connect() as conn:
            return {
                row.document_id: row.applied_r2r_id
                for row in conn.execute(
                    text(
                        f"SELECT document_id, applied_r2r_id FROM {SCHEMA}.document_state "
                        "WHERE tenant_id = :t AND applied_r2r_id IS NOT NULL "
                        "AND NOT applied_deleted ORDER BY random() LIMIT :n"
                    ),
                    {"t": tenant_id, "n": max(1, n)},
                )
            }

    # ---------------------------------------------------------------- workers
    def claim(self, locks: LockSession, tenant_id: str, limit: int) -> list[Claim]:
        """Claim up to *limit* due documents of *tenant_id* for the caller's LockSession.

        Rows locked by other claimers (row or advisory lock) are skipped.  The
        target R2R id of each content change is added to ``pending_r2r_ids``
        before anything is sent, so a crash mid-create leaves a known orphan that
        the next apply deletes.
        """
        conn = locks.connection
        with conn.begin():
            # The advisory locks held right now are read once (a hashed set), and the
            # due index is walked in claim order, stopping after :n rows: the cost does
            # not grow with the backlog.  Payloads are joined for the picked rows only.
            rows = conn.execute(
                text(
                    f"WITH {_HELD_LOCKS_CTE}, picked AS ("
                    f"  SELECT s.tenant_id, s.document_id FROM {SCHEMA}.document_state s "
                    "  WHERE s.tenant_id = :t AND s.status = 'pending' "
                    "  AND s.next_attempt_at <= now() "
                    f"  AND {_NOT_HELD} "
                    "  ORDER BY s.next_attempt_at, s.document_id "
                    "  LIMIT :n FOR UPDATE OF s SKIP LOCKED) "
                    "SELECT s.tenant_id, s.document_id, s.desired_seq, s.desired_version, "
                    "s.desired_deleted, s.desired_labels, s.applied_version, s.applied_deleted, "
                    "s.applied_r2r_id, s.applied_labels, s.applied_collections, "
                    "s.pending_r2r_ids, s.attempts, p.version AS payload_version, "
                    "p.text_content, p.chunks, p.r2r_metadata "
                    f"FROM picked JOIN {SCHEMA}.document_state s "
                    "  ON s.tenant_id = picked.tenant_id AND s.document_id = picked.document_id "
                    f"LEFT JOIN {SCHEMA}.document_payload p "
                    "  ON p.tenant_id = s.tenant_id AND p.document_id = s.document_id "
                    "ORDER BY s.next_attempt_at, s.document_id"
                ),
                {"t": tenant_id, "n": limit, "cls": LOCK_CLASS},
            ).all()
            claims: list[Claim] = []
            for row in rows:
                got = conn.execute(
                    text(
                        "SELECT pg_try_advisory_lock(:cls, "
                        "hashtext(CAST(:t AS text) || chr(31) || CAST(:d AS text)))"
                    ),
                    {"cls": LOCK_CLASS, "t": row.tenant_id, "d": row.document_id},
                ).scalar()
                if not got:
                    continue
                payload_ok = row.payload_version == row.desired_version
                claim = Claim(
                    tenant_id=row.tenant_id,
                    document_id=row.document_id,
                    seq=row.desired_seq,
                    desired_version=row.desired_version,
                    desired_deleted=row.desired_deleted,
                    desired_labels=list(row.desired_labels or []),
                    applied_version=row.applied_version,
                    applied_deleted=row.applied_deleted,
                    applied_r2r_id=row.applied_r2r_id,
                    applied_labels=list(row.applied_labels or []),
                    applied_collections=list(row.applied_collections or []),
                    pending_r2r_ids=list(row.pending_r2r_ids or []),
                    attempts=row.attempts,
                    text=row.text_content if payload_ok else None,
                    chunks=row.chunks if payload_ok else None,
                    r2r_metadata=row.r2r_metadata if payload_ok else None,
                )
                target = claim.target_r2r_id
                if (
                    claim.content_changed
                    and target is not None
                    and target not in claim.pending_r2r_ids
                ):
                    conn.execute(
                        text(
                            f"UPDATE {SCHEMA}.document_state "
                            "SET pending_r2r_ids = array_append(pending_r2r_ids, :id), "
                            "last_attempt_at = now() "
                            "WHERE tenant_id = :t AND document_id = :d"
                        ).bindparams(bindparam("id", type_=UUID(as_uuid=True))),
                        {"id": target, "t": claim.tenant_id, "d": claim.document_id},
                    )
                    claim = Claim(
                        **{**claim.__dict__, "pending_r2r_ids": [*claim.pending_r2r_ids, target]}
                    )
                claims.append(claim)
        return claims

    def finalize_success(self, locks: LockSession, claim: Claim, outcome: Outcome) -> bool:
        """Write the applied state; return True when the row is now synced.

        The row stays pending (and due now) when the desired state moved on
        during the apply (fencing by ``desired_seq``).
        """
        conn = locks.connection
        with conn.begin():
            status = conn.execute(
                text(
                    f"UPDATE {SCHEMA}.document_state SET applied_seq = :seq, "
                    "applied_version = :v, applied_deleted = :deleted, applied_r2r_id = :rid, "
                    "applied_labels = :labels, applied_collections = :cols, applied_at = now(), "
                    "pending_r2r_ids = '{}', "
                    "status = CASE WHEN desired_seq = :seq THEN 'synced' ELSE 'pending' END, "
                    "attempts = 0, next_attempt_at = now(), last_error_class = NULL, "
                    "last_error = NULL, last_attempt_at = now(), updated_at = now() "
                    "WHERE tenant_id = :t AND document_id = :d RETURNING status"
                ).bindparams(
                    bindparam("labels", type_=ARRAY(Text)),
                    bindparam("cols", type_=ARRAY(UUID(as_uuid=True))),
                    bindparam("rid", type_=UUID(as_uuid=True)),
                ),
                {
                    "seq": claim.seq,
                    "v": outcome.version,
                    "deleted": outcome.deleted,
                    "rid": outcome.r2r_id,
                    "labels": outcome.labels,
                    "cols": outcome.collections,
                    "t": claim.tenant_id,
                    "d": claim.document_id,
                },
            ).scalar()
            if outcome.deleted and status == DocStatus.SYNCED:
                conn.execute(
                    text(
                        f"DELETE FROM {SCHEMA}.document_payload "
                        "WHERE tenant_id = :t AND document_id = :d"
                    ),
                    {"t": claim.tenant_id, "d": claim.document_id},
                )
        return status == DocStatus.SYNCED

    def retry_delay(self, attempts: int, retry_after: float | None) -> float:
        """Exponential backoff with jitter for the *attempts*-th failure, ≥ retry_after."""
        base = min(
            self.settings.retry_cap_seconds,
            self.settings.retry_base_seconds * 2 ** min(attempts, 30),
        )
        delay = base * random.uniform(0.5, 1.0)
        if retry_after:
            delay = max(delay, min(retry_after, self.settings.retry_cap_seconds))
        return delay

    def finalize_failure(
        self,
        locks: LockSession,
        claim: Claim,
        *,
        error_class: str,
        message: str,
        retryable: bool,
        retry_after: float | None = None,
        delay: float | None = None,
    ) -> str:
        """Record a failed apply; return the new status (``pending`` or ``dead``).

        Retryable failures are rescheduled with backoff until ``max_attempts``;
        others are dead-lettered at once.  If the desired state changed during
        the apply, the row is simply due again (the failure was about an old
        version).
        """
        attempts = claim.attempts + 1
        dead = (not retryable) or attempts >= self.settings.max_attempts
        wait = delay if delay is not None else self.retry_delay(attempts, retry_after)
        conn = locks.connection
        with conn.begin():
            status = conn.execute(
                text(
                    f"UPDATE {SCHEMA}.document_state SET "
                    "status = CASE WHEN desired_seq <> :seq THEN 'pending' "
                    "  WHEN :dead THEN 'dead' ELSE 'pending' END, "
                    "attempts = CASE WHEN desired_seq <> :seq THEN 0 ELSE :attempts END, "
                    "next_attempt_at = CASE WHEN desired_seq <> :seq THEN now() "
                    "  ELSE now() + make_interval(secs => :wait) END, "
                    "last_error_class = :cls, last_error = :msg, last_attempt_at = now(), "
                    "updated_at = now() "
                    "WHERE tenant_id = :t AND document_id = :d RETURNING status"
                ),
                {
                    "seq": claim.seq,
                    "dead": dead,
                    "attempts": attempts,
                    "wait": wait,
                    "cls": error_class,
                    "msg": message[:_ERROR_TEXT_LIMIT],
                    "t": claim.tenant_id,
                    "d": claim.document_id,
                },
            ).scalar()
        return str(status)

    def postpone(self, locks: LockSession, claim: Claim, seconds: float) -> None:
        """Make a claimed row due again after *seconds* without counting an attempt."""
        conn = locks.connection
        with conn.begin():
            conn.execute(
                text(
                    f"UPDATE {SCHEMA}.document_state SET "
                    "next_attempt_at = now() + make_interval(secs => :wait) "
                    "WHERE tenant_id = :t AND document_id = :d"
                ),
                {"wait": seconds, "t": claim.tenant_id, "d": claim.document_id},
            )

    def expedite_retries(self, error_class: str) -> int:
        """Make rows waiting out a backoff after *error_class* due now; return how many.

        Called when R2R is reachable again after an outage: the backoff had no reason to
        last longer.  Dead letters and rows that are due anyway are left alone.
        """
        with self._tx() as conn:
            return int(
                conn.execute(
                    text(
                        f"UPDATE {SCHEMA}.document_state SET next_attempt_at = now() "
                        "WHERE status = 'pending' AND last_error_class = :c "
                        "AND next_attempt_at > now()"
                    ),
                    {"c": error_class},
                ).rowcount
                or 0
            )

    def due_tenants(self, limit: int = 1000) -> list[str]:
        """Tenants that have documents due now (for the sweep's doorbells)."""
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    text(
                        f"SELECT DISTINCT tenant_id FROM {SCHEMA}.document_state "
                        "WHERE status = 'pending' AND next_attempt_at <= now() LIMIT :n"
                    ),
                    {"n": limit},
                ).scalars()
            )

    def has_due(self, tenant_id: str) -> bool:
        """True when *tenant_id* has at least one due row not being applied right now."""
        with self.engine.connect() as conn:
            return bool(
                conn.execute(
                    text(
                        f"WITH {_HELD_LOCKS_CTE} "
                        f"SELECT EXISTS (SELECT 1 FROM {SCHEMA}.document_state s "
                        "WHERE s.tenant_id = :t AND s.status = 'pending' AND s.next_attempt_at <= now() "
                        f"AND {_NOT_HELD})"
                    ),
                    {"t": tenant_id, "cls": LOCK_CLASS},
                ).scalar()
            )

    # -------------------------------------------------------------- operators
    def counts(self, tenant_id: str | None = None) -> list[dict[str, Any]]:
        """Per tenant: counts per status, retrying rows, oldest pending age, dead letters."""
        where = "WHERE tenant_id = :t" if tenant_id is not None else ""
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    text(
                        "SELECT tenant_id, "
                        "count(*) FILTER (WHERE status = 'pending') AS pending, "
                        "count(*) FILTER (WHERE status = 'pending' AND attempts > 0) AS retrying, "
                        "count(*) FILTER (WHERE status = 'synced' AND NOT applied_deleted) AS synced, "
                        "count(*) FILTER (WHERE status = 'synced' AND applied_deleted) AS deleted, "
                        "count(*) FILTER (WHERE status = 'dead') AS dead, "
                        "EXTRACT(EPOCH FROM now() - min(desired_at) FILTER (WHERE status = 'pending')) "
                        "  AS oldest_pending_seconds "
                        f"FROM {SCHEMA}.document_state {where} GROUP BY tenant_id ORDER BY tenant_id"
                    ),
                    {"t": tenant_id},
                )
                .mappings()
                .all()
            )
        return [
            {
                **dict(r),
                "oldest_pending_seconds": (
                    float(r["oldest_pending_seconds"])
                    if r["oldest_pending_seconds"] is not None
                    else None
                ),
            }
            for r in rows
        ]

    def dead_letter_classes(self) -> list[tuple[str, str, int]]:
        """``(tenant_id, error_class, count)`` of every tenant's dead letters (for metrics)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT tenant_id, coalesce(last_error_class, 'internal') AS cls, "
                    f"count(*) AS n FROM {SCHEMA}.document_state WHERE status = 'dead' "
                    "GROUP BY 1, 2 ORDER BY 1, 2"
                )
            ).all()
        return [(r.tenant_id, r.cls, int(r.n)) for r in rows]

    def dead_letters(
        self, tenant_id: str | None = None, *, offset: int = 0, limit: int = 100
    ) -> list[DeadLetter]:
        """Dead-lettered documents, most recent failure first."""
        where = "AND tenant_id = :t" if tenant_id is not None else ""
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT tenant_id, document_id, last_error_class, last_error, attempts, "
                    f"last_attempt_at, desired_deleted FROM {SCHEMA}.document_state "
                    f"WHERE status = 'dead' {where} "
                    "ORDER BY last_attempt_at DESC NULLS LAST, document_id "
                    "OFFSET :o LIMIT :n"
                ),
                {"t": tenant_id, "o": offset, "n": limit},
            ).all()
        return [
            DeadLetter(
                tenant_id=r.tenant_id,
                document_id=r.document_id,
                error_class=r.last_error_class,
                error=r.last_error,
                attempts=r.attempts,
                last_attempt_at=r.last_attempt_at,
                desired_deleted=r.desired_deleted,
            )
            for r in rows
        ]

    def replay(
        self, tenant_id: str | None = None, document_ids: Sequence[str] | None = None
    ) -> list[tuple[str, str]]:
        """Re-queue dead letters (all, one tenant's, or the given ids); return (tenant, id) pairs.

        Rows rejected as invalid input without any valid desired version stay
        dead: replaying them cannot succeed until the host sends a valid one.
        """
        conditions = ["status = 'dead'", "(desired_version IS NOT NULL OR desired_deleted)"]
        params: dict[str, Any] = {}
        if tenant_id is not None:
            conditions.append("tenant_id = :t")
            params["t"] = tenant_id
        if document_ids is not None:
            conditions.append("document_id = ANY(:ids)")
            params["ids"] = list(document_ids)
        with self._tx() as conn:
            rows = conn.execute(
                text(
                    f"UPDATE {SCHEMA}.document_state SET status = 'pending', attempts = 0, "
                    "next_attempt_at = now(), updated_at = now() "
                    f"WHERE {' AND '.join(conditions)} RETURNING tenant_id, document_id"
                ),
                params,
            ).all()
        return [(r.tenant_id, r.document_id) for r in rows]

    def throughput(
        self, tenant_id: str | None = None, minutes: int = 15
    ) -> list[tuple[datetime, int]]:
        """Documents applied per minute over the last *minutes* minutes (oldest first)."""
        where = "AND tenant_id = :t" if tenant_id is not None else ""
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT date_trunc('minute', applied_at) AS minute, count(*) AS n "
                    f"FROM {SCHEMA}.document_state "
                    f"WHERE applied_at >= now() - make_interval(mins => :m) {where} "
                    "GROUP BY 1 ORDER BY 1"
                ),
                {"m": minutes, "t": tenant_id},
            ).all()
        return [(r.minute, int(r.n)) for r in rows]

    def get_state(self, tenant_id: str, document_id: str) -> dict[str, Any] | None:
        """The full ledger row of one document (for status APIs and tests)."""
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    text(
                        f"SELECT * FROM {SCHEMA}.document_state "
                        "WHERE tenant_id = :t AND document_id = :d"
                    ),
                    {"t": tenant_id, "d": document_id},
                )
                .mappings()
                .first()
            )
        return dict(row) if row is not None else None

    def iter_states(self, tenant_id: str, *, page_size: int = 1000) -> Iterator[dict[str, Any]]:
        """Every ledger row of *tenant_id*, paged by document id."""
        after = ""
        while True:
            with self.engine.connect() as conn:
                rows = (
                    conn.execute(
                        text(
                            f"SELECT * FROM {SCHEMA}.document_state WHERE tenant_id = :t "
                            "AND document_id > :after ORDER BY document_id LIMIT :n"
                        ),
                        {"t": tenant_id, "after": after, "n": page_size},
                    )
                    .mappings()
                    .all()
                )
            if not rows:
                return
            for row in rows:
                yield dict(row)
            after = rows[-1]["document_id"]

    # ------------------------------------------------------------ collections
    def collection_ids(self, tenant_id: str, principals: Sequence[str]) -> dict[str, uuid.UUID]:
        """Known R2R collection ids of *principals* (labels); unknown ones are absent."""
        if not principals:
            return {}
        with self.engine.connect() as conn:
            return {
                row.principal: row.r2r_collection_id
                for row in conn.execute(
                    text(
                        f"SELECT principal, r2r_collection_id FROM {SCHEMA}.collection_map "
                        "WHERE tenant_id = :t AND principal = ANY(:p)"
                    ),
                    {"t": tenant_id, "p": list(principals)},
                )
            }

    def save_collection(
        self, tenant_id: str, principal: str, collection_id: uuid.UUID, name: str
    ) -> None:
        """Remember principal → collection (replacing a stale mapping)."""
        with self._tx() as conn:
            conn.execute(
                text(
                    f"INSERT INTO {SCHEMA}.collection_map (tenant_id, principal, r2r_collection_id, name) "
                    "VALUES (:t, :p, :c, :n) ON CONFLICT (tenant_id, principal) DO UPDATE SET "
                    "r2r_collection_id = EXCLUDED.r2r_collection_id, name = EXCLUDED.name"
                ),
                {"t": tenant_id, "p": principal, "c": collection_id, "n": name},
            )

    def save_collections(
        self, tenant_id: str, entries: Sequence[tuple[str, uuid.UUID, str]]
    ) -> None:
        """Remember many label → collection mappings in one statement."""
        if not entries:
            return
        with self._tx() as conn:
            conn.execute(
                text(
                    f"INSERT INTO {SCHEMA}.collection_map (tenant_id, principal, r2r_collection_id, name) "
                    "SELECT :t, u.p, u.c, u.n FROM unnest(CAST(:ps AS text[]), CAST(:cs AS uuid[]), "
                    "CAST(:ns AS text[])) AS u(p, c, n) "
                    "ON CONFLICT (tenant_id, principal) DO UPDATE SET "
                    "r2r_collection_id = EXCLUDED.r2r_collection_id, name = EXCLUDED.name"
                ),
                {
                    "t": tenant_id,
                    "ps": [e[0] for e in entries],
                    "cs": [str(e[1]) for e in entries],
                    "ns": [e[2] for e in entries],
                },
            )

    def forget_collection(self, tenant_id: str, principal: str) -> None:
        """Drop a mapping whose R2R collection disappeared."""
        with self._tx() as conn:
            conn.execute(
                text(
                    f"DELETE FROM {SCHEMA}.collection_map WHERE tenant_id = :t AND principal = :p"
                ),
                {"t": tenant_id, "p": principal},
            )
