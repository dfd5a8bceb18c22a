"""Every Prometheus metric of the engine, defined once (issue 13).

Nothing is built at import time: :func:`engine_metrics` builds this process's
:class:`EngineMetrics` (one private :class:`~prometheus_client.CollectorRegistry`, so the
names never collide with a host's own metrics on the global registry) on first use.

Two kinds of metrics:

* **Process counters and histograms** (``…_total``, ``…_seconds``): what this process did
  (documents applied, R2R writes and requests, errors, dead letters, breaker openings,
  claims, drains, doorbell rings, sweeps).  Each worker process counts its own; Prometheus
  sums them across processes (``sum by (…) (rate(…))``).
* **State gauges** read at scrape time from the ledger and Redis
  (:class:`LedgerCollector`, :class:`BreakerCollector`): documents by state, the oldest
  pending document's age, dead letters by class, the breaker of each R2R server.  Every
  process that exposes them reports the same value; dashboards take ``max``.

Labels are bounded: ``tenant`` (one value per tenant), ``kind``, ``class`` (a
:class:`~onyx.r2r_sender.errors.DeadLetterClass`), ``server`` (an R2R base URL without
credentials), ``route`` (a path template such as ``/v3/documents/{id}``).  A document id
is never a label.

Exposition: the worker serves :func:`start_metrics_server` on ``ONYX_R2R_METRICS_PORT``
(one port per worker process, see the README); the admin API renders
:func:`render_gauges` at ``GET /admin/r2r/metrics``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - typing only
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import Metric

logger = logging.getLogger(__name__)

NAMESPACE = "onyx_r2r"
DOCUMENT_STATES = ("pending", "retrying", "synced", "deleted", "dead")
APPLY_KINDS = ("create", "replace", "labels", "delete")
WRITE_KINDS = ("create", "replace", "grant", "revoke", "delete")
RING_OUTCOMES = ("sent", "coalesced", "failed")
# request latencies of R2R: pre-chunked creates take 0.05-2 s, reads milliseconds
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
CLAIM_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
DRAIN_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)

_WORD = re.compile(r"^[a-z_]{1,32}$")


def route_template(path: str) -> str:
    """The route of an R2R request path, with ids replaced: ``/v3/documents/{id}``.

    UUIDs and any segment that is not a lower-case word become ``{id}``; the segment after
    ``/collections/name/`` becomes ``{name}``.  The result has a bounded set of values.
    """
    parts = urllib.parse.urlsplit(path).path.split("/")
    out: list[str] = []
    for index, part in enumerate(parts):
        if index >= 2 and parts[index - 1] == "name" and parts[index - 2] == "collections":
            out.append("{name}")
        elif not part or _WORD.match(part) or (index == 1 and part == "v3"):
            out.append(part)
        else:  # a UUID or any other id-like segment
            out.append("{id}")
    return "/".join(out) or "/"


def status_class(status_code: int | None) -> str:
    """``2xx`` … ``5xx`` for an answer, ``none`` when R2R did not answer."""
    if status_code is None or not 100 <= status_code <= 599:
        return "none"
    return f"{status_code // 100}xx"


def server_label(base_url: str) -> str:
    """*base_url* without user info, query or fragment (a label must hold no secret)."""
    parts = urllib.parse.urlsplit(base_url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


class EngineMetrics:
    """The engine's collectors on one registry; thread-safe (prometheus_client is)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.applied_documents = Counter(
            "applied_documents",
            "Documents applied to R2R, by tenant and kind (create, replace, labels, delete).",
            ["tenant", "kind"],
            namespace=NAMESPACE,
            registry=r,
        )
        self.writes = Counter(
            "r2r_writes",
            "R2R writes accepted by R2R, by tenant and kind (create, replace, grant, revoke, "
            "delete); counted the moment R2R answers 2xx.",
            ["tenant", "kind"],
            namespace=NAMESPACE,
            registry=r,
        )
        self.request_duration = Histogram(
            "r2r_request_duration_seconds",
            "Duration of one R2R HTTP request (until the answer's headers), by method, route "
            "template and status class.",
            ["method", "route", "status_class"],
            namespace=NAMESPACE,
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "errors",
            "Failed applies of a document, by tenant and error class (retried or dead-lettered).",
            ["tenant", "class"],
            namespace=NAMESPACE,
            registry=r,
        )
        self.dead_letters = Counter(
            "dead_letters",
            "Documents dead-lettered by this process, by tenant and class.",
            ["tenant", "class"],
            namespace=NAMESPACE,
            registry=r,
        )
        self.breaker_openings = Counter(
            "breaker_openings",
            "Times this process opened the circuit breaker of an R2R server.",
            ["server"],
            namespace=NAMESPACE,
            registry=r,
        )
        self.claim_duration = Histogram(
            "claim_duration_seconds",
            "Duration of one ledger claim (SKIP LOCKED + advisory locks), empty claims included.",
            namespace=NAMESPACE,
            buckets=CLAIM_BUCKETS,
            registry=r,
        )
        self.drain_duration = Histogram(
            "drain_duration_seconds",
            "Duration of one drain task (one tenant's time slice).",
            namespace=NAMESPACE,
            buckets=DRAIN_BUCKETS,
            registry=r,
        )
        self.doorbell_rings = Counter(
            "doorbell_rings",
            "Doorbell rings by outcome: sent (a drain was queued), coalesced (one was queued "
            "already), failed (the broker refused; the sweep repairs it).",
            ["outcome"],
            namespace=NAMESPACE,
            registry=r,
        )
        self.sweeps = Counter(
            "sweeps",
            "Sweeps run (beat's periodic re-ring of every tenant with due documents).",
            namespace=NAMESPACE,
            registry=r,
        )
        self.sweep_rings = Counter(
            "sweep_rings",
            "Drains queued by sweeps (tenants with due documents and no queued drain).",
            namespace=NAMESPACE,
            registry=r,
        )
        self._collectors: dict[str, Any] = {}
        self._lock = threading.Lock()

    def add_collector(self, key: str, collector: Any) -> None:
        """Register a state collector once per *key* (e.g. one ledger per process)."""
        with self._lock:
            if key in self._collectors:
                return
            self.registry.register(collector)
            self._collectors[key] = collector

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


_metrics: EngineMetrics | None = None
_metrics_lock = threading.Lock()


def engine_metrics() -> EngineMetrics:
    """This process's :class:`EngineMetrics`, built on first use."""
    global _metrics
    if _metrics is None:
        with _metrics_lock:
            if _metrics is None:
                _metrics = EngineMetrics()
    return _metrics


def count(action: Callable[[EngineMetrics], object]) -> None:
    """Run *action* on this process's metrics; never raises (counting never fails work)."""
    try:
        action(engine_metrics())
    except Exception:
        logger.debug("could not update a metric", exc_info=True)


# ------------------------------------------------------------------ state gauges
class LedgerCollector:
    """Gauges read from the ledger at scrape time (cached for ``cache_seconds``).

    ``counts`` returns rows like :meth:`Ledger.counts` (``tenant_id``, one count per state,
    ``oldest_pending_seconds``); ``dead_classes`` returns ``(tenant_id, class, n)``.  With
    ``per_tenant=False`` the gauges are summed over tenants (no ``tenant`` label; the oldest
    pending age is the maximum).  A ledger error is logged and yields
    ``onyx_r2r_ledger_up 0`` instead of failing the scrape.
    """

    def __init__(
        self,
        counts: Callable[[], Sequence[Mapping[str, Any]]],
        dead_classes: Callable[[], Iterable[tuple[str, str, int]]],
        *,
        per_tenant: bool = True,
        cache_seconds: float = 5.0,
    ) -> None:
        self._counts = counts
        self._dead_classes = dead_classes
        self._per_tenant = per_tenant
        self._cache_seconds = cache_seconds
        self._cached: tuple[float, list[Metric]] | None = None
        self._lock = threading.Lock()

    def describe(self) -> list[Metric]:
        return []  # read at scrape time only (registering must not query the ledger)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] >= self._cache_seconds:
                self._cached = (now, self._read())
            metrics = self._cached[1]
        yield from metrics

    def _read(self) -> list[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        labels = ["tenant"] if self._per_tenant else []
        up = GaugeMetricFamily(
            f"{NAMESPACE}_ledger_up", "1 when the last read of the ledger succeeded, else 0."
        )
        try:
            rows = list(self._counts())
            dead = list(self._dead_classes())
        except Exception as exc:  # noqa: BLE001 - a scrape reports, it does not fail
            logger.warning("metrics: could not read the ledger: %s", type(exc).__name__)
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        documents = GaugeMetricFamily(
            f"{NAMESPACE}_documents",
            "Documents in the ledger by state: pending (incl. retrying), retrying (pending "
            "after a failure), synced, deleted, dead.",
            labels=[*labels, "state"],
        )
        oldest = GaugeMetricFamily(
            f"{NAMESPACE}_oldest_pending_age_seconds",
            "Age of the oldest pending desired change (0 when nothing is pending): the lag.",
            labels=labels,
        )
        dead_letters = GaugeMetricFamily(
            f"{NAMESPACE}_dead_letter_documents",
            "Dead-lettered documents in the ledger, by class.",
            labels=[*labels, "class"],
        )
        if self._per_tenant:
            for row in rows:
                tenant = str(row["tenant_id"])
                for state in DOCUMENT_STATES:
                    documents.add_metric([tenant, state], float(row.get(state) or 0))
                oldest.add_metric([tenant], float(row.get("oldest_pending_seconds") or 0.0))
            for tenant, cls, n in dead:
                dead_letters.add_metric([tenant, cls], float(n))
        else:
            for state in DOCUMENT_STATES:
                documents.add_metric([state], float(sum(int(r.get(state) or 0) for r in rows)))
            ages = [float(r.get("oldest_pending_seconds") or 0.0) for r in rows]
            oldest.add_metric([], max(ages, default=0.0))
            by_class: dict[str, int] = {}
            for _, cls, n in dead:
                by_class[cls] = by_class.get(cls, 0) + int(n)
            for cls, n in sorted(by_class.items()):
                dead_letters.add_metric([cls], float(n))
        return [up, documents, oldest, dead_letters]


class BreakerCollector:
    """``onyx_r2r_breaker_open{server}`` (1 open, 0 closed or half-open) and
    ``onyx_r2r_breaker_consecutive_failures{server}``, read from Redis at scrape time.

    ``breakers`` returns ``(server_label, CircuitBreaker)`` pairs (the servers this process
    knows).  Redis errors are logged and leave the server out.
    """

    def __init__(self, breakers: Callable[[], Iterable[tuple[str, Any]]]) -> None:
        self._breakers = breakers

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        is_open = GaugeMetricFamily(
            f"{NAMESPACE}_breaker_open",
            "Circuit breaker of an R2R server: 1 open (drains claim nothing), 0 closed or "
            "half-open.",
            labels=["server"],
        )
        failures = GaugeMetricFamily(
            f"{NAMESPACE}_breaker_consecutive_failures",
            "Consecutive transient failures counted by an R2R server's breaker.",
            labels=["server"],
        )
        seen: set[str] = set()
        for server, breaker in self._breakers():
            if server in seen:
                continue
            seen.add(server)
            try:
                state = breaker.state()
            except Exception as exc:  # noqa: BLE001 - a scrape reports, it does not fail
                logger.warning("metrics: could not read a breaker: %s", type(exc).__name__)
                continue
            is_open.add_metric([server], 1.0 if state.state == "open" else 0.0)
            failures.add_metric([server], float(state.consecutive_failures))
        yield is_open
        yield failures


def ledger_collector(ledger: Any, *, per_tenant: bool = True) -> LedgerCollector:
    """A :class:`LedgerCollector` over a PostgreSQL :class:`~onyx.r2r_sender.ledger.Ledger`."""
    return LedgerCollector(
        lambda: ledger.counts(None), ledger.dead_letter_classes, per_tenant=per_tenant
    )


def render_gauges(ledger: Any, breakers: Callable[[], Iterable[tuple[str, Any]]]) -> bytes:
    """The deployment-wide state gauges (no tenant label) in Prometheus' text format: what
    ``GET /admin/r2r/metrics`` answers.  A fresh registry per call: nothing is cached."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    registry.register(ledger_collector(ledger, per_tenant=False))
    registry.register(BreakerCollector(breakers))
    return generate_latest(registry)


# ------------------------------------------------------------------ the worker's port
def start_metrics_server(port: int, address: str) -> bool:
    """Serve this process's metrics on ``address:port`` (a daemon thread); True if serving.

    A port already in use is logged as an error and the worker runs on without metrics
    (one port per worker process: give each process on a host its own).
    """
    from prometheus_client import start_http_server

    try:
        start_http_server(port, addr=address, registry=engine_metrics().registry)
    except OSError as exc:
        logger.error(
            "metrics: cannot listen on %s:%d (%s); this worker exposes no metrics "
            "(each worker process on a host needs its own ONYX_R2R_METRICS_PORT)",
            address,
            port,
            exc.strerror or exc,
        )
        return False
    logger.info("metrics: serving /metrics on %s:%d", address, port)
    return True
