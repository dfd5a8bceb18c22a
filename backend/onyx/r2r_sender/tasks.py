"""Celery wiring of the worker: the ``onyx_r2r`` tasks and beat schedule on an app.

Importing this module builds nothing.  :func:`worker_app` builds this process's worker
app on first use (settings from the environment unless given); ``celery -A
onyx.r2r_sender.tasks`` finds it as the module attribute ``app``, resolved on access.
Start a worker with ``onyx-r2r worker`` (or ``celery -A onyx.r2r_sender.tasks worker -Q
r2r_mirror --pool threads``).  Tasks carry ``tenant_id`` and are always sent with
``expires=``; with thread pools Celery's time limits do nothing, so every R2R call has
its own explicit timeout.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_ready
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
from onyx.r2r_sender.errors import R2RAuthError
from onyx.r2r_sender.ledger import Ledger
from onyx.r2r_sender.liveness import PING_TASK, answer_ping
from onyx.r2r_sender.worker import WorkerRuntime

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Bound:
    settings: BridgeSettings
    app: Celery


_bound: _Bound | None = None
_bound_lock = threading.Lock()
_runtime: WorkerRuntime | None = None
_runtime_lock = threading.Lock()


def worker_app(settings: BridgeSettings | None = None) -> Celery:
    """This process's worker app: :func:`build_app` plus the bridge's tasks and beat jobs.

    Built on the first call from *settings* (default: :meth:`BridgeSettings.from_env`);
    later calls return the same app, since a process runs one worker.  Raises
    ``ValueError`` when *settings* differ from those it was built with.
    """
    global _bound
    with _bound_lock:
        if _bound is None:
            chosen = settings if settings is not None else BridgeSettings.from_env()
            _bound = _Bound(chosen, _build_worker_app(chosen))
        elif settings is not None and settings != _bound.settings:
            raise ValueError("this process's worker app was built with other settings")
        return _bound.app


def _process() -> _Bound:
    worker_app()
    assert _bound is not None
    return _bound


def __getattr__(name: str) -> Any:
    """``app``: the worker app, built on first access (``celery -A`` looks it up)."""
    if name == "app":
        return worker_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def runtime() -> WorkerRuntime:
    """This process's worker runtime (built on first use)."""
    global _runtime
    bound = _process()
    with _runtime_lock:
        if _runtime is None:
            from onyx.r2r_sender.credentials import TenantCredentialLookup

            settings = bound.settings
            redis = Redis.from_url(settings.broker_url)
            _runtime = WorkerRuntime(
                settings,
                ledger=Ledger.from_settings(settings),
                redis=redis,
                doorbell=Doorbell(bound.app, redis, settings),
                # the tenant's stored credential (admin page), else R2R_* from the env
                credentials=TenantCredentialLookup.from_settings(settings),
            )
            _register_state_metrics(_runtime)
        return _runtime


def _register_state_metrics(worker: WorkerRuntime) -> None:
    """This process's /metrics also reports the ledger's documents per tenant and state and
    the breaker of every R2R server the worker uses (read at scrape time)."""
    from onyx.r2r_sender.prometheus_metrics import (
        BreakerCollector,
        engine_metrics,
        ledger_collector,
    )

    metrics = engine_metrics()
    metrics.add_collector("ledger", ledger_collector(worker.ledger))
    metrics.add_collector("breakers", BreakerCollector(worker.breakers))


def _start_metrics(sender: Any = None, **_: Any) -> None:
    """Serve /metrics on ONYX_R2R_METRICS_PORT when set (one port per worker process)."""
    if _bound is None or getattr(sender, "app", None) is not _bound.app:
        return  # another app's worker in this process
    settings = _bound.settings
    if not settings.metrics_port:
        return
    from onyx.r2r_sender.prometheus_metrics import start_metrics_server

    try:
        runtime()  # the state gauges need the runtime's ledger and breakers
    except Exception as exc:  # noqa: BLE001 - metrics never stop a worker from starting
        logger.error("metrics: could not build the worker runtime: %s", exc)
    start_metrics_server(settings.metrics_port, settings.metrics_address)


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


def sweep(tenant_id: str | None = None) -> int:
    """Ring doorbells for due rows (all tenants, or one): retries and lost rings."""
    if tenant_id is not None:
        return int(runtime().doorbell.ring(tenant_id))
    return runtime().sweep()


def ping(token: str) -> None:
    """Liveness: record that this worker's consumer ran a ping (``liveness.probe_consumer``)."""
    answer_ping(runtime().redis, token)


# [issue-4] long jobs: reconciliation and backfill (bodies in onyx.r2r_sender.jobs)
def _send_job(task: str, tenant_id: str, **kwargs: Any) -> None:
    bound = _process()
    bound.app.send_task(
        task,
        kwargs={"tenant_id": tenant_id, **kwargs},
        queue=bound.settings.queue,
        expires=bound.settings.task_expires_seconds,
    )


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


def _add_job_beat(app: Celery, settings: BridgeSettings) -> None:
    """Add reconciliation and backfill to *app*'s beat schedule (see JobSettings)."""
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


def _check_r2r_at_start(sender: Any = None, **_: Any) -> None:
    """Warn loudly at start-up when R2R is unreachable or misconfigured (never crash)."""
    if _bound is None or getattr(sender, "app", None) is not _bound.app:
        return  # another app's worker in this process
    credentials = _bound.settings.credentials
    if credentials.api_key and not credentials.uses_login:
        logger.warning(
            "this worker authenticates to R2R with an API key: R2R 3.6.6 bcrypt-checks a key "
            "on every request (~0.45 s of its CPU each, about two requests a second in all); "
            "set R2R_EMAIL and R2R_PASSWORD (or R2R_PASSWORD_FILE) to a superuser login"
        )
    try:
        client = runtime().target_for("").client
        client.health(retry=False)
    except Exception as exc:  # noqa: BLE001 - a start-up check never crashes the worker
        logger.error("r2r start-up check failed: %s", exc)
        return
    try:
        client.check_settings(retry=False)
        logger.info("r2r at %s is reachable and its settings fit the bridge", client.base_url)
    except R2RAuthError as exc:
        if exc.status_code != 403:
            logger.error("r2r start-up check failed: %s", exc)
            return
        # a working account that is not a superuser: R2R keeps its settings from it
        logger.warning(
            "r2r start-up check: R2R at %s is reachable, but this worker's account is not a "
            "superuser, so R2R refused GET /v3/system/settings (HTTP 403) and the worker "
            "could not check that [embedding] and [completion_embedding] use the same "
            "provider, model and dimension, nor that [ingestion] skip_document_summary is "
            "true. Mirroring works without it; check those two in r2r.toml yourself, or "
            "give the worker a superuser account (R2R_EMAIL/R2R_PASSWORD) to have them "
            "checked at every start.",
            client.base_url,
        )
    except Exception as exc:  # noqa: BLE001
        logger.error("r2r start-up check failed: %s", exc)


def _build_worker_app(settings: BridgeSettings) -> Celery:
    app = build_app(settings)
    for name, body in (
        (DRAIN_TASK, drain),
        (SWEEP_TASK, sweep),
        (RECONCILE_TASK, reconcile),
        (BACKFILL_TASK, backfill),
        (PING_TASK, ping),
    ):
        # shared=False: the tasks belong to this app only, not to every app in the process
        app.task(name=name, ignore_result=True, shared=False)(body)
    _add_job_beat(app, settings)
    worker_ready.connect(_check_r2r_at_start, weak=False, dispatch_uid="onyx_r2r.start_check")
    worker_init.connect(_start_metrics, weak=False, dispatch_uid="onyx_r2r.metrics")
    return app
