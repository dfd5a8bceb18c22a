"""Ledger queries of the engine's long jobs: reconciliation and backfill.

:class:`~onyx.r2r_sender.ledger.Ledger` owns the host/worker protocol on
``document_state``; this module adds what the jobs need, on the same engine and
schema (engine-internal: hosts never call it):

* the tenants the ledger holds;
* compare-and-set *repair marks* on ``document_state`` used by reconciliation:
  each only touches a row that is ``synced`` with the R2R id reconciliation
  saw, so it never races a worker (workers only apply ``pending`` rows, and
  finalising bumps the row);
* the jobs' own tables: ``sync_cursor`` (resumable cursors) and
  ``reconcile_run`` (results).

Every function opens and commits its own short transaction and raises
SQLAlchemy errors only for database failures.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from onyx.r2r_sender.errors import DeadLetterClass
from onyx.r2r_sender.ledger.models import SCHEMA
from onyx.r2r_sender.ledger.store import Ledger

# dead letters a reconciliation re-queues (the failure may have been transient);
# invalid input, rejected payloads and impossible states stay dead
RETRYABLE_DEAD_CLASSES = tuple(c.value for c in DeadLetterClass if c.transient)


# ----------------------------------------------------------------- lookups
def tenants(ledger: Ledger) -> list[str]:
    """Every tenant the ledger holds documents of."""
    with ledger.engine.connect() as conn:
        return list(
            conn.execute(
                text(f"SELECT DISTINCT tenant_id FROM {SCHEMA}.document_state ORDER BY 1")
            ).scalars()
        )


# ------------------------------------------------------------ repair marks
_REQUEUE = (
    "status = 'pending', attempts = 0, next_attempt_at = now(), "
    "last_error_class = NULL, last_error = NULL, updated_at = now()"
)


def mark_missing(ledger: Ledger, tenant_id: str, document_id: str, r2r_id: uuid.UUID) -> bool:
    """R2R lost the applied version *r2r_id*: re-create it from the stored payload.

    Forgets the applied version so the next apply creates the content again
    (with its collections).  Only a ``synced`` row still pointing at *r2r_id*
    is touched; returns whether it was.
    """
    with ledger.engine.begin() as conn:
        return bool(
            conn.execute(
                text(
                    f"UPDATE {SCHEMA}.document_state SET applied_r2r_id = NULL, "
                    "applied_version = NULL, applied_collections = '{}', "
                    f"{_REQUEUE} "
                    "WHERE tenant_id = :t AND document_id = :d AND status = 'synced' "
                    "AND applied_r2r_id = :rid AND NOT desired_deleted RETURNING 1"
                ).bindparams(bindparam("rid", type_=UUID(as_uuid=True))),
                {"t": tenant_id, "d": document_id, "rid": r2r_id},
            ).first()
        )


def mark_drift(
    ledger: Ledger,
    tenant_id: str,
    document_id: str,
    r2r_id: uuid.UUID,
    actual_collections: Iterable[uuid.UUID],
) -> bool:
    """R2R's memberships of *r2r_id* differ from the recorded ones: re-apply the labels.

    Records what R2R really holds as the applied collections, so the next
    apply's membership diff revokes and grants against reality.
    """
    with ledger.engine.begin() as conn:
        return bool(
            conn.execute(
                text(
                    f"UPDATE {SCHEMA}.document_state SET applied_collections = :cols, "
                    f"{_REQUEUE} "
                    "WHERE tenant_id = :t AND document_id = :d AND status = 'synced' "
                    "AND applied_r2r_id = :rid AND NOT desired_deleted RETURNING 1"
                ).bindparams(
                    bindparam("rid", type_=UUID(as_uuid=True)),
                    bindparam("cols", type_=ARRAY(UUID(as_uuid=True))),
                ),
                {
                    "t": tenant_id,
                    "d": document_id,
                    "rid": r2r_id,
                    "cols": sorted(set(actual_collections)),
                },
            ).first()
        )


def requeue_dead(
    ledger: Ledger, tenant_id: str, classes: Sequence[str] = RETRYABLE_DEAD_CLASSES
) -> list[str]:
    """Re-queue the tenant's dead letters of *classes* that have something to apply."""
    with ledger.engine.begin() as conn:
        return sorted(
            conn.execute(
                text(
                    f"UPDATE {SCHEMA}.document_state SET {_REQUEUE} "
                    "WHERE tenant_id = :t AND status = 'dead' AND last_error_class = ANY(:c) "
                    "AND (desired_version IS NOT NULL OR desired_deleted) RETURNING document_id"
                ),
                {"t": tenant_id, "c": list(classes)},
            ).scalars()
        )


# --------------------------------------------------------------- cursors
@dataclass(frozen=True)
class Cursor:
    """A job's resumable position and state (``idle``, ``running``, ``done``)."""

    cursor: dict[str, Any]
    state: str
    updated_at: datetime | None


def get_cursor(ledger: Ledger, tenant_id: str, job: str) -> Cursor:
    with ledger.engine.connect() as conn:
        row = conn.execute(
            text(
                f"SELECT cursor, state, updated_at FROM {SCHEMA}.sync_cursor "
                "WHERE tenant_id = :t AND job = :j"
            ),
            {"t": tenant_id, "j": job},
        ).first()
    if row is None:
        return Cursor(cursor={}, state="idle", updated_at=None)
    return Cursor(cursor=dict(row.cursor or {}), state=row.state, updated_at=row.updated_at)


def save_cursor(
    ledger: Ledger, tenant_id: str, job: str, cursor: dict[str, Any], state: str
) -> None:
    with ledger.engine.begin() as conn:
        conn.execute(
            text(
                f"INSERT INTO {SCHEMA}.sync_cursor (tenant_id, job, cursor, state, updated_at) "
                "VALUES (:t, :j, :c, :s, now()) ON CONFLICT (tenant_id, job) DO UPDATE SET "
                "cursor = EXCLUDED.cursor, state = EXCLUDED.state, updated_at = now()"
            ).bindparams(bindparam("c", type_=JSONB)),
            {"t": tenant_id, "j": job, "c": cursor, "s": state},
        )


# ------------------------------------------------------- reconcile runs
def start_run(ledger: Ledger, tenant_id: str) -> int:
    with ledger.engine.begin() as conn:
        return int(
            conn.execute(
                text(
                    f"INSERT INTO {SCHEMA}.reconcile_run (tenant_id, outcome, result) "
                    "VALUES (:t, 'running', '{}') RETURNING id"
                ),
                {"t": tenant_id},
            ).scalar_one()
        )


def finish_run(ledger: Ledger, run_id: int, outcome: str, result: dict[str, Any]) -> None:
    with ledger.engine.begin() as conn:
        conn.execute(
            text(
                f"UPDATE {SCHEMA}.reconcile_run SET outcome = :o, result = :r, "
                "finished_at = now() WHERE id = :id"
            ).bindparams(bindparam("r", type_=JSONB)),
            {"o": outcome, "r": result, "id": run_id},
        )


def last_runs(ledger: Ledger, tenant_id: str, limit: int = 10) -> list[dict[str, Any]]:
    """The tenant's most recent reconciliation runs, newest first."""
    with ledger.engine.connect() as conn:
        return [
            dict(row)
            for row in conn.execute(
                text(
                    f"SELECT id, tenant_id, started_at, finished_at, outcome, result "
                    f"FROM {SCHEMA}.reconcile_run WHERE tenant_id = :t "
                    "ORDER BY started_at DESC, id DESC LIMIT :n"
                ),
                {"t": tenant_id, "n": limit},
            ).mappings()
        ]
