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
* Light documents first: claimed documents are applied side by side, and one
  predicted to be heavy (many chunks or principals) waits, at most
  ``heavy_yield_seconds``, while lighter applies of the process are in flight
  (:mod:`onyx.r2r_sender.light_first`).
"""

from __future__ import annotations

import contextvars
import dataclasses
import logging
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

import httpx
from redis import Redis

from onyx.r2r_sender.applier import Applier, Outcome, classify_failure
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
from onyx.r2r_sender.light_first import LightFirst, is_heavy
from onyx.r2r_sender.metrics import Counters
from onyx.r2r_sender.prometheus_metrics import count, route_template, server_label, status_class

logger = logging.getLogger(__name__)

# the tenant whose document the current thread is applying, and the apply's kind (for
# counting writes)
_APPLYING_FOR: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "onyx_r2r_applying_for", default=None
)
_WRITES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^POST /v3/documents/?$"), "create"),
    (re.compile(r"^DELETE /v3/documents/[0-9a-f-]{36}$"), "delete"),
    (re.compile(r"^POST /v3/collections/[0-9a-f-]{36}/documents/[0-9a-f-]{36}$"), "grant"),
    (re.compile(r"^DELETE /v3/collections/[0-9a-f-]{36}/documents/[0-9a-f-]{36}$"), "revoke"),
)
_STARTED = "onyx_r2r_started"  # request.extensions key: perf_counter() when it was sent


def write_kind(method: str, path: str) -> str | None:
    """The kind of R2R write a request is (create, delete, grant, revoke), else None."""
    line = f"{method} {path}"
    for pattern, kind in _WRITES:
        if pattern.match(line):
            return kind
    return None


def apply_kind(claim: Claim) -> str:
    """What applying *claim* does: ``delete``, ``labels`` (memberships only), ``replace``
    (a new version of a document R2R holds) or ``create``."""
    if claim.desired_deleted:
        return "delete"
    if not claim.content_changed and claim.applied_r2r_id is not None:
        return "labels"
    if claim.applied_r2r_id is not None and not claim.applied_deleted:
        return "replace"
    return "create"


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
        self._light_first = LightFirst()

    def _settings_credentials(self, tenant_id: str) -> R2RCredentials:
        return self.settings.credentials

    def target_for(self, tenant_id: str) -> _Target:
        """The client/applier/breaker for *tenant_id*'s R2R server (built once per server)."""
        key = self._credentials(tenant_id)
        with self._lock:
            target = self._targets.get(key)
            if target is None:
                client = make_client(
                    key,
                    self.settings,
                    event_hooks={
                        "request": [_mark_started],
                        "response": [self._count_write, _observe_request],
                    },
                )
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
        started = time.perf_counter()
        try:
            return self._drain(tenant_id)
        finally:
            elapsed = time.perf_counter() - started
            count(lambda m: m.drain_duration.observe(elapsed))

    def breakers(self) -> list[tuple[str, CircuitBreaker]]:
        """``(server label, breaker)`` of every R2R server this process has used."""
        with self._lock:
            targets = list(self._targets.values())
        return [(server_label(t.client.base_url), t.breaker) for t in targets]

    def _claim(self, locks: LockSession, tenant_id: str) -> list[Claim]:
        started = time.perf_counter()
        try:
            return self.ledger.claim(locks, tenant_id, self.settings.claim_batch)
        finally:
            elapsed = time.perf_counter() - started
            count(lambda m: m.claim_duration.observe(elapsed))

    def _drain(self, tenant_id: str) -> DrainReport:
        report = DrainReport(tenant_id=tenant_id)
        self.doorbell.answered(tenant_id)
        target = self.target_for(tenant_id)
        wait = target.breaker.wait_seconds()
        if wait > 0 and not self._probe(target):
            report.breaker_open = True
            self.doorbell.ring(tenant_id, countdown=min(wait, self.settings.breaker_probe_seconds))
            return report
        deadline = time.monotonic() + self.settings.drain_slice_seconds
        with (
            LockSession(self.ledger.engine) as locks,
            ThreadPoolExecutor(
                max_workers=self.settings.claim_batch, thread_name_prefix="r2r-apply"
            ) as pool,
        ):
            while time.monotonic() < deadline:
                claims = self._claim(locks, tenant_id)
                if not claims:
                    break
                if self.ledger.has_due(tenant_id):
                    self.doorbell.ring(tenant_id)  # fan out to idle workers
                # Claimed documents are applied side by side and each is finalised (and its
                # lock released) as soon as it is done, so a slow document (thousands of
                # chunks or principals) never keeps its batch-mates pending.  Only this
                # thread touches the lock session's connection.
                futures = self._submit(pool, target, claims)
                for future in as_completed(futures):
                    claim = futures[future]
                    try:
                        self._finalize(locks, target, claim, future.result(), report)
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

    def _submit(
        self, pool: ThreadPoolExecutor, target: _Target, claims: list[Claim]
    ) -> dict[Future[Outcome | BaseException], Claim]:
        """Schedule the applies of *claims*, light ones first; each light one counts as in
        flight from now on, so a heavy one scheduled beside it waits for it."""
        ranked = sorted(((is_heavy(c, self.settings), c) for c in claims), key=lambda p: p[0])
        futures: dict[Future[Outcome | BaseException], Claim] = {}
        for heavy, claim in ranked:
            if heavy:
                futures[pool.submit(self._apply_heavy, target, claim)] = claim
                continue
            self._light_first.light_started()
            try:
                futures[pool.submit(self._apply_light, target, claim)] = claim
            except BaseException:
                self._light_first.light_done()
                raise
        return futures

    def _apply_light(self, target: _Target, claim: Claim) -> Outcome | BaseException:
        try:
            return self._apply(target, claim)
        finally:
            self._light_first.light_done()

    def _apply_heavy(self, target: _Target, claim: Claim) -> Outcome | BaseException:
        waited = self._light_first.wait_turn(self.settings.heavy_yield_seconds)
        if waited >= 0.1:
            logger.info(
                "document %r (heavy) waited %.1fs for lighter documents",
                claim.document_id,
                waited,
            )
        return self._apply(target, claim)

    def _apply(self, target: _Target, claim: Claim) -> Outcome | BaseException:
        """Apply one claim (R2R work only, no ledger write); the outcome or the failure."""
        token = _APPLYING_FOR.set((claim.tenant_id, apply_kind(claim)))
        try:
            return target.applier.apply(claim)
        except Exception as exc:  # noqa: BLE001 - finalised as a failure of this document
            return exc
        finally:
            _APPLYING_FOR.reset(token)

    def _count_write(self, response: httpx.Response) -> None:
        """Count an R2R write the moment R2R accepts it (a killed apply's writes count too).

        A write is a 2xx ``POST /v3/documents`` (create), ``DELETE /v3/documents/{id}`` or
        ``POST|DELETE /v3/collections/{id}/documents/{id}`` (grant, revoke) made while
        applying a document; collection creation and reads are not writes.
        """
        applying = _APPLYING_FOR.get()
        if applying is None or not 200 <= response.status_code < 300:
            return
        tenant, applying_kind = applying
        request = response.request
        kind = write_kind(request.method, request.url.path)
        if kind is None:
            return
        # the create of a replace's new version is the replace
        if kind == "create" and applying_kind == "replace":
            kind = "replace"
        try:
            self.counters.add(tenant, "r2r_writes", 1)
        except Exception:
            logger.debug("could not count an R2R write", exc_info=True)
        count(lambda m: m.writes.labels(tenant, kind).inc())

    def _finalize(
        self,
        locks: LockSession,
        target: _Target,
        claim: Claim,
        result: Outcome | BaseException,
        report: DrainReport,
    ) -> None:
        if isinstance(result, BaseException):
            self._finalize_failure(locks, target, claim, result, report)
            return
        if target.breaker.record_success():
            logger.warning(
                "r2r at %s answers again: circuit breaker closed", target.client.base_url
            )
            self._expedite_after_outage()
        # count before finalising: whoever sees the row synced sees its writes counted
        self.counters.add(claim.tenant_id, "applied")
        kind = apply_kind(claim)
        count(lambda m: m.applied_documents.labels(claim.tenant_id, kind).inc())
        self.ledger.finalize_success(locks, claim, result)
        report.applied += 1
        report.r2r_writes += result.writes

    def _finalize_failure(
        self,
        locks: LockSession,
        target: _Target,
        claim: Claim,
        exc: BaseException,
        report: DrainReport,
    ) -> None:
        error_class, retryable, breaker_failure = classify_failure(exc)
        if breaker_failure and target.breaker.record_failure():
            server = server_label(target.client.base_url)
            count(lambda m: m.breaker_openings.labels(server).inc())
            logger.warning("r2r circuit breaker opened for %s", target.client.base_url)
        count(lambda m: m.errors.labels(claim.tenant_id, error_class.value).inc())
        message = str(exc)
        if error_class is DeadLetterClass.INTERNAL:
            logger.error(
                "internal error applying %s/%s",
                claim.tenant_id,
                claim.document_id,
                exc_info=exc,
            )
            message = f"{type(exc).__name__}: {exc}"
        if claim.document_id not in message:
            message = f"document {claim.document_id!r}: {message}"
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
            count(lambda m: m.dead_letters.labels(claim.tenant_id, error_class.value).inc())
            logger.error(
                "dead letter %s/%s (%s): %s",
                claim.tenant_id,
                claim.document_id,
                error_class,
                message,
            )
        report.errors.append(f"{claim.document_id}: {error_class}: {message}")

    # -------------------------------------------------------------- recovery
    def _probe(self, target: _Target) -> bool:
        """While the breaker is open, let one drain per interval ask R2R's health directly.

        Returns True (and closes the breaker) when R2R answers: documents then flow again
        at once instead of after the breaker's full cool-down.
        """
        interval = self.settings.breaker_probe_seconds
        key = f"onyx_r2r:probe:{target.client.base_url}"
        try:
            if not self.redis.set(key, "1", nx=True, px=max(1, int(interval * 1000))):
                return False
            target.client.health(retry=False)
        except Exception:  # noqa: BLE001 - still down (or Redis trouble): keep waiting
            return False
        if target.breaker.record_success():
            logger.warning(
                "r2r at %s is healthy again: circuit breaker closed", target.client.base_url
            )
            self._expedite_after_outage()
        return True

    def _expedite_after_outage(self) -> None:
        """Make documents waiting out a backoff for R2R being unreachable due now.

        The claims pace them (each drain takes ``claim_batch`` at a time), so R2R is not
        flooded; the sweep rings their tenants.
        """
        try:
            moved = self.ledger.expedite_retries(DeadLetterClass.R2R_UNAVAILABLE.value)
        except Exception:
            logger.warning("could not expedite retries after an outage", exc_info=True)
            return
        if moved:
            logger.warning("r2r recovered: %d documents waiting on a backoff are due now", moved)
            self.sweep()

    # ----------------------------------------------------------------- sweep
    def sweep(self) -> int:
        """Ring the doorbell of every tenant with due rows; return how many were rung."""
        rung = 0
        count(lambda m: m.sweeps.inc())
        # [fault-tests fix] stale_after: re-ring a drain lost with a kill -9'd worker
        stale_after = max(5.0, 2 * self.settings.sweep_interval_seconds)
        for tenant_id in self.ledger.due_tenants():
            if self.doorbell.ring(tenant_id, stale_after=stale_after):
                rung += 1
        if rung:
            count(lambda m: m.sweep_rings.inc(rung))
        return rung


def _mark_started(request: httpx.Request) -> None:
    """httpx request hook: remember when the request was sent."""
    request.extensions[_STARTED] = time.perf_counter()


def _observe_request(response: httpx.Response) -> None:
    """httpx response hook: observe the request's duration by route and status class."""
    request = response.request
    started = request.extensions.get(_STARTED)
    if started is None:
        return
    elapsed = time.perf_counter() - started
    route = route_template(request.url.path)
    cls = status_class(response.status_code)
    count(lambda m: m.request_duration.labels(request.method, route, cls).observe(elapsed))
