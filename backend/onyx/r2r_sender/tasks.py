"""Celery wiring of the worker: the ``onyx_r2r`` app, its tasks and beat schedule.

Start a worker with ``onyx-r2r worker`` (or ``celery -A onyx.r2r_sender.tasks
worker -Q r2r_mirror --pool threads``).  Tasks carry ``tenant_id`` and are
always sent with ``expires=``; with thread pools Celery's time limits do
nothing, so every R2R call has its own explicit timeout.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery.signals import worker_ready
from redis import Redis

from onyx.r2r_sender.celery_app import build_app
from onyx.r2r_sender.config import BridgeSettings
from onyx.r2r_sender.doorbell import (
    BACKFILL_TASK,
    DRAIN_TASK,
    RECONCILE_TASK,
    SWEEP_TASK,
    Doorbell,
)
from onyx.r2r_sender.ledger import Ledger
from onyx.r2r_sender.worker import WorkerRuntime

logger = logging.getLogger(__name__)


settings = BridgeSettings.from_env()
app = build_app(settings)
_runtime: WorkerRuntime | None = None
_runtime_lock = threading.Lock()


def runtime() -> WorkerRuntime:
    """This process's worker runtime (built on first use)."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            from onyx.r2r_sender.credentials import TenantCredentialLookup

            redis = Redis.from_url(settings.broker_url)
            _runtime = WorkerRuntime(
                settings,
                ledger=Ledger.from_settings(settings),
                redis=redis,
                doorbell=Doorbell(app, redis, settings),
                # the tenant's stored credential (admin page), else R2R_* from the env
                credentials=TenantCredentialLookup.from_settings(settings),
            )
        return _runtime


@app.task(name=DRAIN_TASK, ignore_result=True)
def drain(tenant_id: str) -> dict[str, Any]:
    """Apply due documents of *tenant_id* for one time slice."""
    report = runtime().drain(tenant_id)
    if report.applied or report.failed:
        logger.info(
            "drain %s: applied=%d failed=%d dead=%d r2r_writes=%d%s",
            tenant_id,
            report.applied,
            report.failed,
            report.dead,
            report.r2r_writes,
            " (breaker open)" if report.breaker_open else "",
        )
    return {"applied": report.applied, "failed": report.failed, "dead": report.dead}


@app.task(name=SWEEP_TASK, ignore_result=True)
def sweep(tenant_id: str | None = None) -> int:
    """Ring doorbells for due rows (all tenants, or one): retries and lost rings."""
    if tenant_id is not None:
        return int(runtime().doorbell.ring(tenant_id))
    return runtime().sweep()


# [issue-4] long jobs: reconciliation and backfill (bodies in onyx.r2r_sender.jobs)
def _send_job(task: str, tenant_id: str, **kwargs: Any) -> None:
    app.send_task(
        task,
        kwargs={"tenant_id": tenant_id, **kwargs},
        queue=settings.queue,
        expires=settings.task_expires_seconds,
    )


@app.task(name=RECONCILE_TASK, ignore_result=True)
def reconcile(tenant_id: str | None = None, dry_run: bool = False) -> dict[str, Any]:
    """Reconcile one tenant's R2R documents with the ledger (None: fan out to every tenant)."""
    from onyx.r2r_sender import jobs
    from onyx.r2r_sender.ledger import ops as ledger_ops

    if tenant_id is None:
        tenants = ledger_ops.tenants(runtime().ledger)
        for tenant in tenants:
            _send_job(RECONCILE_TASK, tenant, dry_run=dry_run)
        return {"fanned_out": len(tenants)}
    return jobs.run_reconcile(runtime(), tenant_id, dry_run=dry_run)


@app.task(name=BACKFILL_TASK, ignore_result=True)
def backfill(tenant_id: str | None = None, restart: bool = True) -> dict[str, Any]:
    """One backfill slice for a tenant (an explicit request starts a new pass); the beat
    sends ``tenant_id=None``: a continuing slice for every tenant whose pass is not done."""
    from onyx.r2r_sender import jobs

    if tenant_id is None:
        tenants = jobs.tenants_to_backfill(runtime())
        for tenant in tenants:
            _send_job(BACKFILL_TASK, tenant, restart=False)
        return {"fanned_out": len(tenants)}
    return jobs.run_backfill(runtime(), tenant_id, restart=restart)


def _job_beat() -> None:
    from onyx.r2r_sender.jobs import JobSettings

    job = JobSettings.from_env()
    schedule = dict(app.conf.beat_schedule or {})
    if job.reconcile_interval > 0:
        schedule["onyx-r2r-reconcile"] = {
            "task": RECONCILE_TASK,
            "schedule": job.reconcile_interval,
            "kwargs": {"tenant_id": None},
            "options": {"queue": settings.queue, "expires": job.reconcile_interval},
        }
    if job.backfill_source and job.backfill_interval > 0:
        schedule["onyx-r2r-backfill"] = {
            "task": BACKFILL_TASK,
            "schedule": job.backfill_interval,
            "kwargs": {"tenant_id": None},
            "options": {"queue": settings.queue, "expires": job.backfill_interval},
        }
    app.conf.beat_schedule = schedule


_job_beat()


@worker_ready.connect
def _check_r2r_at_start(**_: Any) -> None:
    """Warn loudly at start-up when R2R is unreachable or misconfigured (never crash)."""
    try:
        client = runtime().target_for("").client
        client.health(retry=False)
        client.check_settings(retry=False)
        logger.info("r2r at %s is reachable and its settings fit the bridge", client.base_url)
    except Exception as exc:  # noqa: BLE001 - a start-up check never crashes the worker
        logger.error("r2r start-up check failed: %s", exc)
