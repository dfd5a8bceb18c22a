"""The bridge's Celery app factory (no tasks, no globals: hosts import this to send)."""

from __future__ import annotations

from celery import Celery

from onyx.r2r_sender.config import BridgeSettings
from onyx.r2r_sender.doorbell import SWEEP_TASK


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
