"""A Celery app configured like Onyx's workers (a7d66a8 ``configs/base.py``), for tests.

Onyx's broker transport options use ``sep=":"`` and Redis priority queues; the app here
copies those settings (not Onyx's code) so a test can run an "Onyx" Celery worker on the
same Redis database as the mirror's worker.  The broker comes from ``ONYX_LIKE_BROKER_URL``.
"""

from __future__ import annotations

import os

from celery import Celery

QUEUE = os.environ.get("ONYX_LIKE_QUEUE", "onyx_like_primary")


def build() -> Celery:
    """The Onyx-like app: ``sep=":"``, priority steps, priority queue order, remote control."""
    app = Celery("onyx_like", broker=os.environ["ONYX_LIKE_BROKER_URL"], set_as_current=False)
    app.conf.update(
        broker_transport_options={
            "priority_steps": list(range(4)),
            "sep": ":",
            "queue_order_strategy": "priority",
            "retry_on_timeout": True,
        },
        task_default_queue=QUEUE,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
    )
    return app


app = build()
