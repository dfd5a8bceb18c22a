"""The long jobs run by the worker: reconciliation and backfill (bodies of the Celery tasks).

:mod:`onyx.r2r_sender.tasks` registers them as ``onyx_r2r.reconcile`` and
``onyx_r2r.backfill`` (kwargs ``tenant_id``; sent with ``expires=``).  One run
per tenant and job at a time (a Redis lock with a timeout); each run has an
explicit time budget (worker pools are threads, Celery's time limits do
nothing).

Settings (environment):

=========================================  =======  =====================================
``ONYX_R2R_RECONCILE_INTERVAL_SECONDS``    3600     beat period of reconciliation (0: off)
``ONYX_R2R_RECONCILE_MAX_DELETE_SHARE``    0.2      circuit breaker: max share deleted
``ONYX_R2R_RECONCILE_DELETE_FLOOR``        10       deletes always allowed up to this
``ONYX_R2R_BACKFILL_SOURCE``               (none)   ``module:factory``; factory(tenant_id)
                                                    returns a ``BackfillSource``; the module
                                                    may define ``tenants()``
``ONYX_R2R_BACKFILL_INTERVAL_SECONDS``     120      beat period of backfill slices (0: off)
``ONYX_R2R_BACKFILL_SLICE_SECONDS``        20       work per slice
``ONYX_R2R_BACKFILL_BATCH``                200      ids per batch
``ONYX_R2R_BACKFILL_THROTTLE_SECONDS``     0.5      pause between batches
``ONYX_R2R_BACKFILL_MAX_PENDING``          5000     backpressure threshold
=========================================  =======  =====================================
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from onyx.r2r_sender.backfill import BackfillSource, run_backfill_slice
from onyx.r2r_sender.ledger import ops as ledger_ops
from onyx.r2r_sender.reconcile import reconcile_tenant
from onyx.r2r_sender.sender import DEFAULT_TENANT, MirrorSender

logger = logging.getLogger(__name__)

SOURCE_ENV = "ONYX_R2R_BACKFILL_SOURCE"


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        return float(raw) if raw else default
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None


@dataclass(frozen=True)
class JobSettings:
    reconcile_interval: float = 3600.0
    max_delete_share: float = 0.2
    delete_floor: int = 10
    backfill_source: str = ""
    backfill_interval: float = 120.0
    backfill_slice_seconds: float = 20.0
    backfill_batch: int = 200
    backfill_throttle: float = 0.5
    backfill_max_pending: int = 5000

    @classmethod
    def from_env(cls) -> JobSettings:
        return cls(
            reconcile_interval=_float(
                "ONYX_R2R_RECONCILE_INTERVAL_SECONDS", cls.reconcile_interval
            ),
            max_delete_share=_float("ONYX_R2R_RECONCILE_MAX_DELETE_SHARE", cls.max_delete_share),
            delete_floor=int(_float("ONYX_R2R_RECONCILE_DELETE_FLOOR", cls.delete_floor)),
            backfill_source=os.environ.get(SOURCE_ENV, "").strip(),
            backfill_interval=_float("ONYX_R2R_BACKFILL_INTERVAL_SECONDS", cls.backfill_interval),
            backfill_slice_seconds=_float(
                "ONYX_R2R_BACKFILL_SLICE_SECONDS", cls.backfill_slice_seconds
            ),
            backfill_batch=int(_float("ONYX_R2R_BACKFILL_BATCH", cls.backfill_batch)),
            backfill_throttle=_float("ONYX_R2R_BACKFILL_THROTTLE_SECONDS", cls.backfill_throttle),
            backfill_max_pending=int(
                _float("ONYX_R2R_BACKFILL_MAX_PENDING", cls.backfill_max_pending)
            ),
        )


def _source_module(spec: str) -> tuple[Any, Callable[[str], BackfillSource]]:
    module_name, _, attr = spec.partition(":")
    module = importlib.import_module(module_name)
    factory = getattr(module, attr or "build_source")
    return module, factory


def backfill_source(tenant_id: str, spec: str) -> BackfillSource:
    """The configured :class:`BackfillSource` for *tenant_id* (``module:factory``)."""
    _, factory = _source_module(spec)
    return factory(tenant_id)


def backfill_tenants(spec: str, fallback: Callable[[], list[str]]) -> list[str]:
    """The tenants to backfill: the source module's ``tenants()``, else *fallback*."""
    module, _ = _source_module(spec)
    lister = getattr(module, "tenants", None)
    return list(lister()) if callable(lister) else fallback()


def _locked(
    redis: Any, name: str, ttl: float, body: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    lock = redis.lock(f"onyx_r2r:lock:{name}", timeout=max(60, int(ttl)), blocking=False)
    if not lock.acquire(blocking=False):
        return {"skipped": f"{name} is already running"}
    try:
        return body()
    finally:
        try:
            lock.release()
        except Exception:  # noqa: BLE001 - an expired lock is fine
            logger.debug("lock %s expired before release", name)


def run_reconcile(runtime: Any, tenant_id: str, *, dry_run: bool = False) -> dict[str, Any]:
    """Reconcile one tenant with the worker's client (the tenant's credential) and ledger."""
    job = JobSettings.from_env()

    def body() -> dict[str, Any]:
        target = runtime.target_for(tenant_id)
        result = reconcile_tenant(
            tenant_id,
            ledger=runtime.ledger,
            client=target.client,
            max_delete_share=job.max_delete_share,
            delete_floor=job.delete_floor,
            dry_run=dry_run,
            ring=runtime.doorbell.ring,
        )
        return result.summary()

    return _locked(runtime.redis, f"reconcile:{tenant_id}", 3600, body)


def run_backfill(
    runtime: Any,
    tenant_id: str,
    *,
    restart: bool,
    source: BackfillSource | None = None,
) -> dict[str, Any]:
    """One backfill slice for *tenant_id* (a new pass when *restart*)."""
    job = JobSettings.from_env()
    if source is None:
        if not job.backfill_source:
            logger.error("backfill requested for %s but %s is not set", tenant_id, SOURCE_ENV)
            return {"skipped": f"no backfill source configured ({SOURCE_ENV})"}
        source = backfill_source(tenant_id, job.backfill_source)

    def body() -> dict[str, Any]:
        sender = MirrorSender(
            tenant_id=tenant_id,
            default_acl=None,
            settings=runtime.settings,
            ledger=runtime.ledger,
            doorbell=runtime.doorbell,
        )
        return run_backfill_slice(
            tenant_id,
            source,
            sender=sender,
            batch_size=job.backfill_batch,
            max_seconds=job.backfill_slice_seconds,
            throttle_seconds=job.backfill_throttle,
            max_pending=job.backfill_max_pending,
            restart=restart,
        ).as_dict()

    return _locked(runtime.redis, f"backfill:{tenant_id}", job.backfill_slice_seconds * 3, body)


def tenants_to_backfill(runtime: Any) -> list[str]:
    """Tenants whose backfill pass is not done (for the beat's fan-out)."""
    job = JobSettings.from_env()
    if not job.backfill_source:
        return []
    tenants = backfill_tenants(
        job.backfill_source, lambda: ledger_ops.tenants(runtime.ledger) or [DEFAULT_TENANT]
    )
    return [
        t for t in tenants if ledger_ops.get_cursor(runtime.ledger, t, "backfill").state != "done"
    ]
