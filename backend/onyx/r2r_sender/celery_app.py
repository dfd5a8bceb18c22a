"""The bridge's Celery app factory (no tasks, no globals: hosts import this to send).

The app keeps to itself on a Redis database it may share with a host's own Celery
(Onyx's broker, ``sep=":"`` in its transport options): every kombu key it uses (queues,
exchange bindings, the unacked index, the fan-out channels) carries
:data:`BROKER_KEY_PREFIX`, and its remote control and events use exchanges of its own.
Without that, a host worker's hello reached the mirror's worker, whose control reply
failed to parse the host's bindings, and its consumer stalled while it still reported
ready (issue 17).
"""

from __future__ import annotations

from celery import Celery

from onyx.r2r_sender.config import BridgeSettings
from onyx.r2r_sender.doorbell import SWEEP_TASK

# every kombu key and channel of the mirror's app starts with this (global_keyprefix)
BROKER_KEY_PREFIX = "onyx_r2r:celery:"
# the remote-control (pidbox) and event exchanges: never the default "celery" a host uses
CONTROL_EXCHANGE = "onyx_r2r"
EVENT_EXCHANGE = "onyx_r2r.ev"


def queue_key(queue: str) -> str:
    """The Redis list that holds *queue*'s messages (for lengths and test clean-up)."""
    return f"{BROKER_KEY_PREFIX}{queue}"


def build_app(settings: BridgeSettings) -> Celery:
    """Return the bridge's Celery app for *settings* (broker, queue, beat schedule)."""
    app = Celery("onyx_r2r", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_default_queue=settings.queue,
        task_ignore_result=True,
        # a killed worker loses nothing: rows stay pending and the sweep rings again
        task_acks_late=False,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        broker_transport_options={"global_keyprefix": BROKER_KEY_PREFIX},
        control_exchange=CONTROL_EXCHANGE,
        event_exchange=EVENT_EXCHANGE,
        beat_schedule={
            "onyx-r2r-sweep": {
                "task": SWEEP_TASK,
                "schedule": settings.sweep_interval_seconds,
                "kwargs": {"tenant_id": None},
                "options": {
                    "queue": settings.queue,
                    "expires": max(1.0, settings.sweep_interval_seconds),
                },
            }
        },
    )
    return app
