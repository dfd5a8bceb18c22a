"""The status of one tenant's mirror, and the dead-letter classes, for the admin API/page and
the CLI.

Everything here reads: the ledger (counts per state, oldest pending age, documents
applied per minute), the last reconciliation run, the circuit breaker of the tenant's
R2R server and the Redis counters.  The backlog has no history in the ledger, so
:class:`BacklogSampler` keeps a short one in Redis: each status read records at most
one sample every ``interval`` seconds, kept for ``keep_minutes``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import Engine, text

from onyx.r2r_sender.breaker import CircuitBreaker
from onyx.r2r_sender.config import BridgeSettings
from onyx.r2r_sender.errors import DeadLetterClass
from onyx.r2r_sender.ledger import Ledger
from onyx.r2r_sender.ledger.models import SCHEMA
from onyx.r2r_sender.metrics import Counters

logger = logging.getLogger(__name__)

_SAMPLES = "onyx_r2r:backlog:"
_SAMPLE_GUARD = "onyx_r2r:backlog_guard:"

EMPTY_COUNTS = {"pending": 0, "retrying": 0, "synced": 0, "deleted": 0, "dead": 0}


@dataclass(frozen=True)
class BacklogPoint:
    at: datetime
    pending: int
    dead: int


class BacklogSampler:
    """A short Redis-backed history of a tenant's backlog (pending, dead)."""

    def __init__(self, redis: Redis, *, interval: float = 5.0, keep_minutes: int = 60) -> None:
        self._redis = redis
        self._interval = interval
        self._keep = keep_minutes * 60

    def record(self, tenant_id: str, pending: int, dead: int, *, force: bool = False) -> None:
        now = time.time()
        try:
            if not force and not self._redis.set(
                _SAMPLE_GUARD + tenant_id, "1", nx=True, px=int(self._interval * 1000)
            ):
                return
            key = _SAMPLES + tenant_id
            pipe = self._redis.pipeline()
            pipe.zadd(key, {f"{now:.3f}:{pending}:{dead}": now})
            pipe.zremrangebyscore(key, "-inf", now - self._keep)
            pipe.expire(key, self._keep + 60)
            pipe.execute()
        except RedisError:
            logger.warning("could not record a backlog sample of tenant %s", tenant_id)

    def series(self, tenant_id: str, minutes: int) -> list[BacklogPoint]:
        try:
            raw = self._redis.zrangebyscore(
                _SAMPLES + tenant_id, time.time() - minutes * 60, "+inf"
            )
        except RedisError:
            return []
        points: list[BacklogPoint] = []
        for member in raw:
            at, pending, dead = member.decode().split(":")
            points.append(
                BacklogPoint(datetime.fromtimestamp(float(at), UTC), int(pending), int(dead))
            )
        return points


def last_reconcile(engine: Engine, tenant_id: str) -> dict[str, Any] | None:
    """The newest ``reconcile_run`` of *tenant_id* (or ``None``)."""
    with engine.connect() as conn:
        row = (
            conn.execute(
                text(
                    "SELECT id, started_at, finished_at, outcome, result "  # noqa: S608
                    f"FROM {SCHEMA}.reconcile_run WHERE tenant_id = :t "
                    "ORDER BY started_at DESC, id DESC LIMIT 1"
                ),
                {"t": tenant_id},
            )
            .mappings()
            .first()
        )
    return dict(row) if row is not None else None


def throughput_series(
    ledger: Ledger, tenant_id: str, minutes: int, *, now: datetime | None = None
) -> list[tuple[datetime, int]]:
    """Documents applied per minute over the last *minutes*, one entry per minute (zeros kept)."""
    counts = {
        minute.astimezone(UTC).replace(second=0, microsecond=0): n
        for minute, n in ledger.throughput(tenant_id, minutes)
    }
    end = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
    return [
        (end - timedelta(minutes=i), counts.get(end - timedelta(minutes=i), 0))
        for i in range(minutes - 1, -1, -1)
    ]


def tenant_status(
    tenant_id: str,
    *,
    settings: BridgeSettings,
    ledger: Ledger,
    redis: Redis,
    base_url: str,
    minutes: int = 15,
    sampler: BacklogSampler | None = None,
) -> dict[str, Any]:
    """A JSON-ready status snapshot of *tenant_id* (see the admin API's ``GET /status``)."""
    rows = ledger.counts(tenant_id)
    row = rows[0] if rows else {}
    counts = {k: int(row.get(k) or 0) for k in EMPTY_COUNTS}
    sampler = sampler or BacklogSampler(redis)
    sampler.record(tenant_id, counts["pending"], counts["dead"])
    try:
        breaker = CircuitBreaker(
            redis,
            base_url,
            threshold=settings.breaker_threshold,
            cooldown_seconds=settings.breaker_cooldown_seconds,
            max_cooldown_seconds=settings.breaker_max_cooldown_seconds,
        ).state()
        breaker_view: dict[str, Any] = {
            "state": breaker.state,
            "consecutive_failures": breaker.consecutive_failures,
            "trips": breaker.trips,
            "open_for_seconds": round(breaker.open_for_seconds, 1),
        }
    except RedisError:
        breaker_view = {"state": "unknown", "consecutive_failures": 0, "trips": 0}
    try:
        counters = Counters(redis).get(tenant_id)
    except RedisError:
        counters = {}
    reconcile = last_reconcile(ledger.engine, tenant_id)
    return {
        "tenant_id": tenant_id,
        "r2r_base_url": base_url,
        "counts": counts,
        "total": counts["pending"] + counts["synced"] + counts["deleted"] + counts["dead"],
        "backlog": counts["pending"],
        "oldest_pending_seconds": row.get("oldest_pending_seconds"),
        "throughput": [
            {"minute": minute, "applied": n}
            for minute, n in throughput_series(ledger, tenant_id, minutes)
        ],
        "backlog_history": [
            {"at": p.at, "pending": p.pending, "dead": p.dead}
            for p in sampler.series(tenant_id, minutes)
        ],
        "breaker": breaker_view,
        "counters": counters,
        "last_reconcile": reconcile,
        "generated_at": datetime.now(UTC),
    }


def dead_letter_classes() -> list[dict[str, Any]]:
    """Every :class:`~onyx.r2r_sender.errors.DeadLetterClass`, JSON-ready and in its order.

    Each entry: ``name`` (the value stored as a dead letter's class), ``label``,
    ``description`` (one sentence for people) and ``retried_by_reconcile``.
    """
    return [
        {
            "name": cls.value,
            "label": cls.label,
            "description": cls.description,
            "retried_by_reconcile": cls.transient,
        }
        for cls in DeadLetterClass
    ]
