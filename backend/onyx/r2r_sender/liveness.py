"""Is any worker consuming the mirror's queue?  A ping task's round trip says so.

A worker can report ready and still take no task (issue 17: a stalled consumer on a
shared broker database).  :func:`probe_consumer` sends :data:`PING_TASK` on the
mirror's queue with a fresh token and waits until a worker has run it (the task writes
the token's key in Redis).  No answer within the timeout means every worker of the queue
is down, busy past the timeout, or stalled; the probe says how many messages wait.

Contract: never raises; a broker failure is reported as not alive with its class name
(no URL, no secret).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from celery import Celery
from redis import Redis

from onyx.r2r_sender.celery_app import queue_key
from onyx.r2r_sender.config import BridgeSettings

PING_TASK = "onyx_r2r.ping"
_PONG_PREFIX = "onyx_r2r:pong:"
_PONG_TTL_SECONDS = 300


def pong_key(token: str) -> str:
    """The Redis key a worker's ping task writes for *token*."""
    return f"{_PONG_PREFIX}{token}"


def answer_ping(redis: Redis, token: str) -> None:
    """The ping task's body: record that a worker ran the ping *token*."""
    redis.set(pong_key(token), repr(time.time()), ex=_PONG_TTL_SECONDS)


@dataclass(frozen=True)
class ConsumerProbe:
    """The result of one ping round trip on a queue."""

    alive: bool
    queue: str
    seconds: float | None  # the round trip, when answered
    queued: int | None  # messages waiting on the queue when the probe ended
    detail: str

    def as_dict(self) -> dict[str, object]:
        """The probe as JSON-ready values."""
        return {
            "alive": self.alive,
            "queue": self.queue,
            "round_trip_seconds": self.seconds,
            "queued": self.queued,
            "detail": self.detail,
        }


def probe_consumer(
    app: Celery, redis: Redis, settings: BridgeSettings, *, timeout: float = 10.0
) -> ConsumerProbe:
    """Send a ping on ``settings.queue`` and wait up to *timeout* s for a worker to run it."""
    token = uuid.uuid4().hex
    started = time.monotonic()
    try:
        app.send_task(
            PING_TASK,
            kwargs={"token": token},
            queue=settings.queue,
            expires=max(1.0, timeout),
        )
        while True:
            if redis.get(pong_key(token)) is not None:
                seconds = time.monotonic() - started
                redis.delete(pong_key(token))
                return ConsumerProbe(
                    True,
                    settings.queue,
                    round(seconds, 3),
                    _queued(redis, settings),
                    f"a worker ran a ping in {seconds:.2f}s",
                )
            if time.monotonic() - started > timeout:
                break
            time.sleep(0.1)
    except Exception as exc:  # noqa: BLE001 - a probe reports, it does not crash
        return ConsumerProbe(False, settings.queue, None, None, f"broker: {type(exc).__name__}")
    queued = _queued(redis, settings)
    return ConsumerProbe(
        False,
        settings.queue,
        None,
        queued,
        f"no worker ran a ping on queue {settings.queue!r} within {timeout:.0f}s "
        f"({'?' if queued is None else queued} messages waiting): the mirror's workers are "
        "down, busy past the timeout, or their consumer is stalled (check their logs)",
    )


def _queued(redis: Redis, settings: BridgeSettings) -> int | None:
    try:
        return int(redis.llen(queue_key(settings.queue)))
    except Exception:  # noqa: BLE001
        return None
