"""The engine's Prometheus metrics without a stack: names, labels, templates, collectors."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from onyx.r2r_sender.config import BridgeSettings, SettingsError
from onyx.r2r_sender.prometheus_metrics import (
    BreakerCollector,
    EngineMetrics,
    LedgerCollector,
    count,
    engine_metrics,
    route_template,
    server_label,
    status_class,
)
from onyx.r2r_sender.worker import apply_kind, write_kind


def _families(raw: bytes | str) -> dict[str, Any]:
    text = raw.decode() if isinstance(raw, bytes) else raw
    return {f.name: f for f in text_string_to_metric_families(text)}


def _samples(family: Any, name: str | None = None) -> dict[tuple, float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for s in family.samples
        if name is None or s.name == name
    }


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/v3/documents", "/v3/documents"),
        ("/v3/documents/", "/v3/documents/"),
        (f"/v3/documents/{uuid.uuid4()}", "/v3/documents/{id}"),
        (f"/v3/documents/{uuid.uuid4()}/chunks", "/v3/documents/{id}/chunks"),
        (
            f"/v3/collections/{uuid.uuid4()}/documents/{uuid.uuid4()}",
            "/v3/collections/{id}/documents/{id}",
        ),
        ("/v3/collections/name/onyx-r2r%3At%3APUBLIC", "/v3/collections/name/{name}"),
        ("/v3/documents/some-odd-id-42?x=1", "/v3/documents/{id}"),
        ("/v3/users/login", "/v3/users/login"),
    ],
)
def test_route_templates_hold_no_ids(path: str, template: str) -> None:
    assert route_template(path) == template


def test_status_classes() -> None:
    assert [status_class(c) for c in (200, 201, 302, 404, 409, 503, None, 0)] == [
        "2xx",
        "2xx",
        "3xx",
        "4xx",
        "4xx",
        "5xx",
        "none",
        "none",
    ]


def test_server_label_drops_credentials_and_query() -> None:
    assert server_label("http://user:s3cret@r2r.internal:7272/?token=abc") == (
        "http://r2r.internal:7272"
    )
    assert server_label("https://r2r.example.com/api/") == "https://r2r.example.com/api"


def test_write_and_apply_kinds() -> None:
    doc, col = uuid.uuid4(), uuid.uuid4()
    assert write_kind("POST", "/v3/documents") == "create"
    assert write_kind("DELETE", f"/v3/documents/{doc}") == "delete"
    assert write_kind("POST", f"/v3/collections/{col}/documents/{doc}") == "grant"
    assert write_kind("DELETE", f"/v3/collections/{col}/documents/{doc}") == "revoke"
    assert write_kind("GET", f"/v3/documents/{doc}") is None
    assert write_kind("POST", "/v3/collections") is None  # creating a collection is no write

    @dataclass
    class FakeClaim:
        desired_deleted: bool = False
        content_changed: bool = True
        applied_r2r_id: uuid.UUID | None = None
        applied_deleted: bool = False

    assert apply_kind(FakeClaim(desired_deleted=True)) == "delete"  # type: ignore[arg-type]
    assert apply_kind(FakeClaim()) == "create"  # type: ignore[arg-type]
    assert apply_kind(FakeClaim(applied_r2r_id=doc)) == "replace"  # type: ignore[arg-type]
    assert apply_kind(FakeClaim(applied_r2r_id=doc, applied_deleted=True)) == "create"  # type: ignore[arg-type]
    assert apply_kind(FakeClaim(content_changed=False, applied_r2r_id=doc)) == "labels"  # type: ignore[arg-type]


def test_process_metrics_follow_prometheus_conventions() -> None:
    metrics = EngineMetrics()
    metrics.applied_documents.labels("t1", "create").inc(3)
    metrics.writes.labels("t1", "grant").inc()
    metrics.request_duration.labels("POST", "/v3/documents", "2xx").observe(0.2)
    metrics.errors.labels("t1", "r2r_unavailable").inc()
    metrics.dead_letters.labels("t1", "r2r_rejected").inc()
    metrics.breaker_openings.labels("http://r2r:7272").inc()
    metrics.claim_duration.observe(0.003)
    metrics.drain_duration.observe(1.5)
    metrics.doorbell_rings.labels("sent").inc()
    metrics.sweeps.inc()
    metrics.sweep_rings.inc(2)
    families = _families(metrics.exposition())
    # counters are exposed as <name>_total, histograms in seconds
    assert _samples(families["onyx_r2r_applied_documents"], "onyx_r2r_applied_documents_total") == {
        (("kind", "create"), ("tenant", "t1")): 3.0
    }
    assert families["onyx_r2r_r2r_writes"].type == "counter"
    assert families["onyx_r2r_r2r_request_duration_seconds"].type == "histogram"
    assert families["onyx_r2r_claim_duration_seconds"].type == "histogram"
    assert families["onyx_r2r_drain_duration_seconds"].type == "histogram"
    for name in (
        "onyx_r2r_errors",
        "onyx_r2r_dead_letters",
        "onyx_r2r_breaker_openings",
        "onyx_r2r_doorbell_rings",
        "onyx_r2r_sweeps",
        "onyx_r2r_sweep_rings",
    ):
        assert families[name].type == "counter", name
    label_names = {key for family in families.values() for s in family.samples for key in s.labels}
    assert label_names <= {
        "tenant",
        "kind",
        "method",
        "route",
        "status_class",
        "class",
        "server",
        "outcome",
        "le",
    }


def test_count_never_raises_and_uses_one_process_registry() -> None:
    assert engine_metrics() is engine_metrics()
    count(lambda m: m.sweeps.labels("no-such-label").inc())  # a wrong use is swallowed
    before = engine_metrics().sweeps._value.get()
    count(lambda m: m.sweeps.inc())
    assert engine_metrics().sweeps._value.get() == before + 1


ROWS = [
    {
        "tenant_id": "a",
        "pending": 3,
        "retrying": 1,
        "synced": 10,
        "deleted": 2,
        "dead": 1,
        "oldest_pending_seconds": 42.5,
    },
    {
        "tenant_id": "b",
        "pending": 0,
        "retrying": 0,
        "synced": 5,
        "deleted": 0,
        "dead": 2,
        "oldest_pending_seconds": None,
    },
]
DEAD = [("a", "r2r_rejected", 1), ("b", "invalid_document", 1), ("b", "r2r_rejected", 1)]


def _render(collector: Any) -> dict[str, Any]:
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    registry.register(collector)
    return _families(generate_latest(registry))


def test_ledger_gauges_per_tenant() -> None:
    families = _render(LedgerCollector(lambda: ROWS, lambda: DEAD))
    docs = _samples(families["onyx_r2r_documents"])
    assert docs[(("state", "pending"), ("tenant", "a"))] == 3
    assert docs[(("state", "retrying"), ("tenant", "a"))] == 1
    assert docs[(("state", "dead"), ("tenant", "b"))] == 2
    assert len(docs) == 10  # 5 states x 2 tenants
    ages = _samples(families["onyx_r2r_oldest_pending_age_seconds"])
    assert ages == {(("tenant", "a"),): 42.5, (("tenant", "b"),): 0.0}
    dead = _samples(families["onyx_r2r_dead_letter_documents"])
    assert dead[(("class", "invalid_document"), ("tenant", "b"))] == 1
    assert _samples(families["onyx_r2r_ledger_up"]) == {(): 1.0}


def test_ledger_gauges_deployment_wide_have_no_tenant() -> None:
    families = _render(LedgerCollector(lambda: ROWS, lambda: DEAD, per_tenant=False))
    assert _samples(families["onyx_r2r_documents"])[(("state", "synced"),)] == 15
    assert _samples(families["onyx_r2r_oldest_pending_age_seconds"]) == {(): 42.5}
    assert _samples(families["onyx_r2r_dead_letter_documents"]) == {
        (("class", "invalid_document"),): 1.0,
        (("class", "r2r_rejected"),): 2.0,
    }


def test_ledger_failure_is_reported_not_raised_and_reads_are_cached() -> None:
    calls = {"n": 0}

    def broken() -> list[dict[str, Any]]:
        calls["n"] += 1
        raise RuntimeError("database is down")

    collector = LedgerCollector(broken, lambda: [], cache_seconds=60)
    families = _render(collector)
    assert _samples(families["onyx_r2r_ledger_up"]) == {(): 0.0}
    assert "onyx_r2r_documents" not in families
    list(collector.collect())
    assert calls["n"] == 1  # the second scrape within cache_seconds reused the first read


def test_breaker_gauges() -> None:
    @dataclass
    class State:
        state: str
        consecutive_failures: int

    class FakeBreaker:
        def __init__(self, state: str, failures: int) -> None:
            self._state = State(state, failures)

        def state(self) -> State:
            return self._state

    class Broken:
        def state(self) -> State:
            raise ConnectionError("redis down")

    families = _render(
        BreakerCollector(
            lambda: [
                ("http://a:7272", FakeBreaker("open", 0)),
                ("http://b:7272", FakeBreaker("half_open", 2)),
                ("http://c:7272", Broken()),
            ]
        )
    )
    assert _samples(families["onyx_r2r_breaker_open"]) == {
        (("server", "http://a:7272"),): 1.0,
        (("server", "http://b:7272"),): 0.0,
    }
    assert (
        _samples(families["onyx_r2r_breaker_consecutive_failures"])[(("server", "http://b:7272"),)]
        == 2.0
    )


def test_metrics_port_setting() -> None:
    assert BridgeSettings().metrics_port == 0  # off by default
    assert BridgeSettings().metrics_address == "127.0.0.1"
    assert BridgeSettings(metrics_port=9464).to_env()["ONYX_R2R_METRICS_PORT"] == "9464"
    with pytest.raises(SettingsError, match="ONYX_R2R_METRICS_PORT"):
        BridgeSettings(metrics_port=70000)
