"""A circuit breaker per R2R server, shared by every worker through Redis.

After ``threshold`` consecutive transient failures the breaker opens for a
cooldown that doubles on each trip (up to a cap); while open, drains claim
nothing and reschedule themselves for when it closes.  After the cooldown one
drain probes (half-open): a success closes the breaker, a failure re-opens it.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from redis import Redis

_PREFIX = "onyx_r2r:breaker:"


@dataclass(frozen=True)
class BreakerState:
    """A snapshot for status pages: ``closed``, ``open`` or ``half_open``."""

    state: str
    consecutive_failures: int
    trips: int
    open_for_seconds: float


class CircuitBreaker:
    """Redis-backed breaker for one R2R base URL.  Methods never raise on Redis errors
    other than connection failures of Redis itself."""

    def __init__(
        self,
        redis: Redis,
        base_url: str,
        *,
        threshold: int,
        cooldown_seconds: float,
        max_cooldown_seconds: float,
    ) -> None:
        self._redis = redis
        self._key = _PREFIX + hashlib.sha256(base_url.encode()).hexdigest()[:16]
        self._threshold = max(1, threshold)
        self._cooldown = cooldown_seconds
        self._max_cooldown = max_cooldown_seconds

    def wait_seconds(self) -> float:
        """0 when calls may go through; otherwise how long the breaker stays open."""
        open_until = self._redis.hget(self._key, "open_until")
        if not open_until:
            return 0.0
        return max(0.0, float(open_until) - time.time())

    def record_success(self) -> bool:
        """A call went through: close the breaker.  True when it had tripped (a recovery)."""
        if not self._redis.exists(self._key):
            return False
        pipe = self._redis.pipeline()
        pipe.hget(self._key, "trips")
        pipe.delete(self._key)
        trips, _ = pipe.execute()
        return int(trips or 0) > 0

    def record_failure(self) -> bool:
        """A transient failure; return True when this one opened the breaker."""
        pipe = self._redis.pipeline()
        pipe.hincrby(self._key, "failures", 1)
        pipe.hget(self._key, "trips")
        failures, trips_raw = pipe.execute()
        if int(failures) < self._threshold:
            return False
        trips = int(trips_raw or 0)
        cooldown = min(self._max_cooldown, self._cooldown * 2**trips)
        pipe = self._redis.pipeline()
        pipe.hset(
            self._key,
            mapping={"failures": 0, "trips": trips + 1, "open_until": time.time() + cooldown},
        )
        pipe.expire(self._key, int(self._max_cooldown * 4) + 60)
        pipe.execute()
        return True

    def state(self) -> BreakerState:
        """Current state, for status pages."""
        raw = self._redis.hgetall(self._key)
        failures = int(raw.get(b"failures", 0) or 0)
        trips = int(raw.get(b"trips", 0) or 0)
        wait = self.wait_seconds()
        if wait > 0:
            name = "open"
        elif trips > 0:
            name = "half_open"
        else:
            name = "closed"
        return BreakerState(name, failures, trips, wait)
