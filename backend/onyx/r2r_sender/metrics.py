"""Counters of R2R writes and applied documents, per tenant, in Redis.

Used by ``status``, the demo ("the second run made 0 R2R writes") and the
admin page.  Counting never fails an apply: Redis errors are logged.
"""

from __future__ import annotations

import logging

from redis import Redis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)
_PREFIX = "onyx_r2r:count:"


class Counters:
    """Monotonic per-tenant counters (``r2r_writes``, ``applied``, ``failed``)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    def add(self, tenant_id: str, name: str, amount: int = 1) -> None:
        if amount <= 0:
            return
        try:
            self._redis.hincrby(_PREFIX + tenant_id, name, amount)
        except RedisError:
            logger.warning("could not count %s for tenant %s", name, tenant_id, exc_info=True)

    def get(self, tenant_id: str) -> dict[str, int]:
        """All counters of *tenant_id* (missing ones are absent)."""
        raw = self._redis.hgetall(_PREFIX + tenant_id)
        return {k.decode(): int(v) for k, v in raw.items()}
