"""The doorbell: tell workers that a tenant has due documents.

A ring sends one ``drain`` task for the tenant unless one is already queued
(a Redis ``SET NX`` with a short TTL coalesces rings), always with ``expires=``
and ``tenant_id``.  Losing a ring loses nothing: the periodic sweep rings for
every tenant with due rows.
"""

from __future__ import annotations

import logging
import time

from celery import Celery
from redis import Redis
from redis.exceptions import RedisError

from onyx.r2r_sender.config import BridgeSettings
from onyx.r2r_sender.prometheus_metrics import count

logger = logging.getLogger(__name__)

DRAIN_TASK = "onyx_r2r.drain"
SWEEP_TASK = "onyx_r2r.sweep"
# long jobs, started by the admin API / CLI / beat (kwargs: tenant_id)
BACKFILL_TASK = "onyx_r2r.backfill"
RECONCILE_TASK = "onyx_r2r.reconcile"
_PREFIX = "onyx_r2r:doorbell:"
# a queued drain not started within this time no longer blocks new rings
_COALESCE_SECONDS = 60


def doorbell_key(queue: str, tenant_id: str) -> str:
    """The Redis key that coalesces rings of *tenant_id* on *queue*.

    Per queue: deployments (or test runs) on other queues never suppress each other.
    """
    return f"{_PREFIX}{queue}:{tenant_id}"


class Doorbell:
    """Rings drains for tenants.  ``ring`` never raises: failures are logged."""

    def __init__(self, app: Celery, redis: Redis, settings: BridgeSettings) -> None:
        self._app = app
        self._redis = redis
        self._settings = settings

    def _key(self, tenant_id: str) -> str:
        return doorbell_key(self._settings.queue, tenant_id)

    def ring(
        self, tenant_id: str, *, countdown: float = 0.0, stale_after: float | None = None
    ) -> bool:
        """Queue a drain of *tenant_id* unless one is queued; return True if sent.

        ``stale_after`` (the sweep's): also ring when the queued drain should have
        started more than that many seconds ago (it was lost with a killed worker).
        """
        try:
            # [fault-tests fix] the key's value is when the drain is due (was "1"): a
            # worker killed with a reserved drain left the key for up to 60 s, and the
            # sweep could not ring the tenant again, so a kill -9 stalled it that long.
            key = self._key(tenant_id)
            due = time.time() + countdown
            ttl = _COALESCE_SECONDS + int(countdown)
            if not self._redis.set(key, repr(due), nx=True, ex=ttl):
                if stale_after is None or not self._is_stale(key, stale_after):
                    count(lambda m: m.doorbell_rings.labels("coalesced").inc())
                    return False
                self._redis.set(key, repr(due), ex=ttl)
            self._app.send_task(
                DRAIN_TASK,
                kwargs={"tenant_id": tenant_id},
                queue=self._settings.queue,
                countdown=countdown or None,
                expires=self._settings.task_expires_seconds + countdown,
            )
            count(lambda m: m.doorbell_rings.labels("sent").inc())
            return True
        except Exception:  # a lost ring is repaired by the sweep
            logger.warning(
                "could not ring the r2r_mirror doorbell for tenant %s", tenant_id, exc_info=True
            )
            count(lambda m: m.doorbell_rings.labels("failed").inc())
            try:
                self._redis.delete(self._key(tenant_id))
            except RedisError:
                pass
            return False

    def _is_stale(self, key: str, stale_after: float) -> bool:
        raw = self._redis.get(key)
        if raw is None:  # expired meanwhile: nothing is queued
            return True
        try:
            due = float(raw)
        except ValueError:
            due = 0.0
        return time.time() - due > stale_after

    def answered(self, tenant_id: str) -> None:
        """Called by a starting drain: later rings must queue a new drain."""
        self._redis.delete(self._key(tenant_id))
