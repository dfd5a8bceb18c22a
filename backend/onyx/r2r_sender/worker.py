"""What a worker does when a doorbell rings: drain one tenant's due documents.

:class:`WorkerRuntime` is the per-process state (ledger, Redis, one pooled
R2R client, applier and breaker per R2R server).  It knows nothing about
Celery; :mod:`onyx.r2r_sender.tasks` wires it to tasks.

Guarantees of :meth:`WorkerRuntime.drain`
-----------------------------------------
* Never raises because of a document: every failure is recorded on its row
  (retry with backoff, or dead letter with class and reason).
* Works for at most ``drain_slice_seconds``, then re-rings the tenant's
  doorbell so the drain goes to the back of the queue: tenants are served
  round-robin and one tenant's backfill cannot starve another.
* Fans out: while more due rows remain than it claimed, it rings once more,
  so idle worker threads (in any process) join in.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from redis import Redis

from onyx.r2r_sender.applier import Applier, classify_failure
from onyx.r2r_sender.breaker import CircuitBreaker
from onyx.r2r_sender.client import R2RClient
from onyx.r2r_sender.collections import CollectionResolver
from onyx.r2r_sender.config import BridgeSettings, R2RCredentials
from onyx.r2r_sender.connect import make_client
from onyx.r2r_sender.doorbell import Doorbell
from onyx.r2r_sender.errors import (
    DeadLetterClass,
    R2RBusyError,
)
from onyx.r2r_sender.ledger import Claim, Ledger, LockSession
from onyx.r2r_sender.metrics import Counters

logger = logging.getLogger(__name__)

# the R2R server and credentials of a tenant; the default reads the settings
CredentialLookup = Callable[[str], R2RCredentials]


@dataclass
class DrainReport:
    """What one drain did (for logs and tests)."""

    tenant_id: str
    applied: int = 0
    failed: int = 0
    dead: int = 0
    r2r_writes: int = 0
    breaker_open: bool = False
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Target:
    client: R2RClient
    applier: Applier
    breaker: CircuitBreaker


class WorkerRuntime:
    """Per-process worker state; thread-safe (Celery thread pools share it)."""

    def __init__(
        self,
        settings: BridgeSettings,
        *,
        ledger: Ledger,
        redis: Redis,
        doorbell: Doorbell,
        credentials: CredentialLookup | None = None,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.redis = redis
        self.doorbell = doorbell
        self.counters = Counters(redis)
        self._credentials = credentials or self._settings_credentials
        self._targets: dict[R2RCredentials, _Target] = {}
        self._lock = threading.Lock()

    def _settings_credentials(self, tenant_id: str) -> R2RCredentials:
        return self.settings.credentials

    def target_for(self, tenant_id: str) -> _Target:
        """The client/applier/breaker for *tenant_id*'s R2R server (built once per server)."""
        key = self._credentials(tenant_id)
        with self._lock:
            target = self._targets.get(key)
            if target is None:
                client = make_client(key, self.settings)
                resolver = CollectionResolver(client, self.ledger)
                target = _Target(
                    client=client,
                    applier=Applier(client, resolver, self.settings),
                    breaker=CircuitBreaker(
                        self.redis,
                        key.base_url,
                        threshold=self.settings.breaker_threshold,
                        cooldown_seconds=self.settings.breaker_cooldown_seconds,
                        max_cooldown_seconds=self.settings.breaker_max_cooldown_seconds,
                    ),
                )
                self._targets[key] = target
        return target

    def close(self) -> None:
        with self._lock:
            for target in self._targets.values():
                target.client.close()
            self._targets.clear()

    # ----------------------------------------------------------------- drain
    def drain(self, tenant_id: str) -> DrainReport:
        """Apply due documents of *tenant_id* for one time slice (see module doc)."""
        report = DrainReport(tenant_id=tenant_id)
        self.doorbell.answered(tenant_id)
        target = self.target_for(tenant_id)
        wait = target.breaker.wait_seconds()
        if wait > 0:
            report.breaker_open = True
            self.doorbell.ring(tenant_id, countdown=wait)
            return report
        deadline = time.monotonic() + self.settings.drain_slice_seconds
        with LockSession(self.ledger.engine) as locks:
            while time.monotonic() < deadline:
                claims = self.ledger.claim(locks, tenant_id, self.settings.claim_batch)
                if not claims:
                    break
                if self.ledger.has_due(tenant_id):
                    self.doorbell.ring(tenant_id)  # fan out to idle workers
                for claim in claims:
                    try:
                        self._apply_one(locks, target, claim, report)
                    finally:
                        locks.unlock(claim.tenant_id, claim.document_id)
                if target.breaker.wait_seconds() > 0:
                    report.breaker_open = True
                    break
        if report.breaker_open:
            self.doorbell.ring(tenant_id, countdown=max(1.0, target.breaker.wait_seconds()))
        elif self.ledger.has_due(tenant_id):
            self.doorbell.ring(tenant_id)  # next slice, behind other tenants' drains
        return report

    def _apply_one(
        self, locks: LockSession, target: _Target, claim: Claim, report: DrainReport
    ) -> None:
        try:
            outcome = target.applier.apply(claim)
        except Exception as exc:
            error_class, retryable, breaker_failure = classify_failure(exc)
            if breaker_failure and target.breaker.record_failure():
                logger.warning("r2r circuit breaker opened for %s", target.client.base_url)
            message = str(exc)
            if error_class is DeadLetterClass.INTERNAL:
                logger.exception(
                    "internal error applying %s/%s", claim.tenant_id, claim.document_id
                )
                message = f"{type(exc).__name__}: {exc}"
            retry_after = getattr(exc, "retry_after", None)
            delay = self.settings.busy_retry_seconds if isinstance(exc, R2RBusyError) else None
            counted = claim
            if isinstance(exc, R2RBusyError):
                # [fault-tests fix] "busy" is not an attempt: counting it dead-lettered a
                # document whose ingestion an R2R crash left stuck after max_attempts x
                # busy_retry_seconds (~2 min), long before stuck_ingestion_seconds (15 min)
                # let the applier delete and re-create it.
                counted = dataclasses.replace(claim, attempts=max(0, claim.attempts - 1))
            status = self.ledger.finalize_failure(
                locks,
                counted,
                error_class=error_class,
                message=message,
                retryable=retryable,
                retry_after=retry_after,
                delay=delay,
            )
            report.failed += 1
            self.counters.add(claim.tenant_id, "failed")
            if status == "dead":
                report.dead += 1
                logger.error(
                    "dead letter %s/%s (%s): %s",
                    claim.tenant_id,
                    claim.document_id,
                    error_class,
                    message,
                )
            report.errors.append(f"{claim.document_id}: {error_class}: {message}")
            return
        target.breaker.record_success()
        # count before finalising: whoever sees the row synced sees its writes counted
        self.counters.add(claim.tenant_id, "applied")
        self.counters.add(claim.tenant_id, "r2r_writes", outcome.writes)
        self.ledger.finalize_success(locks, claim, outcome)
        report.applied += 1
        report.r2r_writes += outcome.writes

    # ----------------------------------------------------------------- sweep
    def sweep(self) -> int:
        """Ring the doorbell of every tenant with due rows; return how many were rung."""
        rung = 0
        # [fault-tests fix] stale_after: re-ring a drain lost with a kill -9'd worker
        stale_after = max(5.0, 2 * self.settings.sweep_interval_seconds)
        for tenant_id in self.ledger.due_tenants():
            if self.doorbell.ring(tenant_id, stale_after=stale_after):
                rung += 1
        return rung
