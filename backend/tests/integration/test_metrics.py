"""Prometheus metrics against the real stack (issue 13).

A real ``onyx-r2r worker`` process serves ``/metrics`` on ``ONYX_R2R_METRICS_PORT``; the
tests scrape it over HTTP and parse every answer with prometheus_client's own parser.
Counters start at zero in a fresh worker process, so after each step of a sync they must
equal exactly what that step did (documents applied and R2R writes by kind, dead
letters by class).  The breaker test stops a PRIVATE R2R (``bench/private_stack.py``),
never the shared one.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from engine_checks import counters, onyx_doc, states
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from stack_helpers import wait_until

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[3]
ALICE = "user_email:alice@example.com"
TIMEOUT = 300.0


# ------------------------------------------------------------------ helpers
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(exposition: str) -> Samples:
    """Every sample of *exposition* as ``{(sample name, sorted labels): value}``."""
    samples: Samples = {}
    for family in text_string_to_metric_families(exposition):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def scrape(port: int) -> Samples:
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    response.raise_for_status()
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when the series does not exist yet)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every series of *name* whose labels include *labels*."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def wait_metrics(port: int, check: Callable[[Samples], bool], what: str) -> Samples:
    """Scrape until *check* holds (the ledger gauges are cached for 5 s)."""
    last: dict[str, Samples] = {}

    def ok() -> Samples | None:
        last["s"] = scrape(port)
        return last["s"] if check(last["s"]) else None

    try:
        return wait_until(ok, TIMEOUT, interval=0.5, what=what)  # type: ignore[return-value]
    except AssertionError:
        shown = {k: v for k, v in last.get("s", {}).items() if "bucket" not in k[0]}
        raise AssertionError(f"{what}: last scrape {shown}") from None


def wait_rows(ledger, tenant_id: str, done: Callable[[dict[str, dict]], bool], what: str):
    return wait_until(
        lambda: (rows := states(ledger, tenant_id)) and done(rows) and rows,
        TIMEOUT,
        interval=0.3,
        what=what,
    )


def kinds(samples: Samples, name: str, tenant_id: str) -> dict[str, float]:
    """``{kind: value}`` of a by-kind counter of one tenant (zeros left out)."""
    out: dict[str, float] = {}
    for (n, ls), v in samples.items():
        labels = dict(ls)
        if n == name and labels.get("tenant") == tenant_id and v:
            out[labels["kind"]] = v
    return out


# ------------------------------------------------------------------ a sync, step by step
@pytest.mark.timeout(900)
def test_worker_metrics_count_a_sync_exactly(
    settings, purge, ledger, tenant_id, workers, make_sender
):
    purge.append(tenant_id)
    port = free_port()
    workers.settings = settings.with_overrides(metrics_port=port)
    sender = make_sender(tenant_id)
    ids = [f"m-{i}" for i in range(6)]
    report = sender.send_batch([onyx_doc(d, f"metrics body of {d}", acl=["PUBLIC"]) for d in ids])
    assert sorted(report.changed) == ids
    # an invalid document (dead-lettered by the sender) and one the worker must dead-letter:
    # its payload is gone from the ledger, an invalid_state the worker cannot apply
    bad = onyx_doc("m-invalid", "x")
    bad["sections"] = "a string, not a list of sections"
    assert [r.document_id for r in sender.send_batch([bad]).rejected] == ["m-invalid"]
    assert sender.send_batch([onyx_doc("m-lost", "lost payload", acl=["PUBLIC"])]).changed
    with ledger.engine.begin() as conn:
        gone = conn.execute(
            text(
                "DELETE FROM r2r_bridge.document_payload WHERE tenant_id = :t "
                "AND document_id = 'm-lost'"
            ),
            {"t": tenant_id},
        ).rowcount
    assert gone == 1

    worker = workers.start(concurrency=4)
    wait_rows(
        ledger,
        tenant_id,
        lambda rows: (
            all(rows[d]["status"] == "synced" for d in ids) and rows["m-lost"]["status"] == "dead"
        ),
        "first sync",
    )
    s = wait_metrics(
        port,
        lambda s: value(s, "onyx_r2r_documents", tenant=tenant_id, state="synced") == 6,
        "documents gauge after the first sync",
    )
    assert kinds(s, "onyx_r2r_applied_documents_total", tenant_id) == {"create": 6}
    # one pre-chunked create per new document puts it in all its collections: no grant
    assert kinds(s, "onyx_r2r_r2r_writes_total", tenant_id) == {"create": 6}
    assert (
        value(s, "onyx_r2r_dead_letters_total", tenant=tenant_id, **{"class": "invalid_state"}) == 1
    )
    assert value(s, "onyx_r2r_errors_total", tenant=tenant_id, **{"class": "invalid_state"}) == 1
    assert total(s, "onyx_r2r_dead_letters_total", tenant=tenant_id) == 1
    # the ledger's dead letters by class: the sender's and the worker's
    for cls in ("invalid_document", "invalid_state"):
        assert (
            value(s, "onyx_r2r_dead_letter_documents", tenant=tenant_id, **{"class": cls}) == 1
        ), cls
    assert value(s, "onyx_r2r_documents", tenant=tenant_id, state="dead") == 2
    assert value(s, "onyx_r2r_documents", tenant=tenant_id, state="pending") == 0
    assert value(s, "onyx_r2r_oldest_pending_age_seconds", tenant=tenant_id) == 0
    assert value(s, "onyx_r2r_ledger_up") == 1
    # the Redis counter of writes and the Prometheus one count the same requests
    assert counters(settings, tenant_id)["r2r_writes"] == 6

    # replace two documents: each is one create of the new version and one delete of the old
    sender.send_batch([onyx_doc(d, f"second version of {d}", acl=["PUBLIC"]) for d in ids[:2]])
    # an ACL-only change of two others: one revoke and one grant each, no re-embedding
    sender.update_access({d: [ALICE] for d in ids[2:4]})
    # and one delete
    sender.delete_documents([ids[5]])
    wait_rows(
        ledger,
        tenant_id,
        lambda rows: (
            all(rows[d]["status"] == "synced" for d in ids) and rows[ids[5]]["applied_deleted"]
        ),
        "the second round",
    )
    s = wait_metrics(
        port,
        lambda s: value(s, "onyx_r2r_documents", tenant=tenant_id, state="deleted") == 1,
        "documents gauge after the second round",
    )
    assert kinds(s, "onyx_r2r_applied_documents_total", tenant_id) == {
        "create": 6,
        "replace": 2,
        "labels": 2,
        "delete": 1,
    }
    assert kinds(s, "onyx_r2r_r2r_writes_total", tenant_id) == {
        "create": 6,
        "replace": 2,
        "delete": 3,
        "grant": 2,
        "revoke": 2,
    }
    assert counters(settings, tenant_id)["r2r_writes"] == 15
    assert value(s, "onyx_r2r_documents", tenant=tenant_id, state="synced") == 5

    # request durations: by route template and status class, never an id
    creates = value(
        s,
        "onyx_r2r_r2r_request_duration_seconds_count",
        method="POST",
        route="/v3/documents",
        status_class="2xx",
    )
    assert creates >= 8, creates
    routes = {
        dict(ls)["route"]
        for (n, ls), _ in s.items()
        if n == "onyx_r2r_r2r_request_duration_seconds_count"
    }
    assert "/v3/collections/{id}/documents/{id}" in routes, routes
    assert all("-" not in r.replace("/v3/users/login", "") for r in routes), routes
    for name, labels in s:
        for key, label in labels:
            assert not any(d in label for d in ids), (name, key, label)  # no document ids
    assert total(s, "onyx_r2r_claim_duration_seconds_count") >= 3
    assert total(s, "onyx_r2r_drain_duration_seconds_count") >= 2
    assert total(s, "onyx_r2r_sweeps_total") >= 1  # beat runs in this worker, every second
    assert total(s, "onyx_r2r_doorbell_rings_total") >= 1
    assert worker.alive()


@pytest.mark.timeout(300)
def test_admin_api_metrics_are_deployment_wide(settings, purge, ledger, tenant_id, make_sender):
    """``GET /admin/r2r/metrics`` (admin only) answers the state gauges without tenants."""
    purge.append(tenant_id)
    from fastapi.testclient import TestClient

    from onyx.server.r2r.standalone import create_app

    sender = make_sender(tenant_id)
    bad = onyx_doc("a-invalid", "x")
    bad["sections"] = "not a list"
    sender.send_batch([onyx_doc("a-1", "admin metrics", acl=["PUBLIC"]), bad])
    token = "metrics-admin-token-0123456789"
    client = TestClient(create_app(settings=settings, admin_token=token))
    assert client.get("/admin/r2r/metrics").status_code in (401, 403)
    response = client.get("/admin/r2r/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    s = parse(response.text)
    assert value(s, "onyx_r2r_ledger_up") == 1
    everything = ledger.counts(None)
    for state in ("pending", "synced", "dead"):
        want = sum(int(r[state]) for r in everything)
        assert value(s, "onyx_r2r_documents", state=state) == want, state
    assert value(s, "onyx_r2r_documents", state="pending") >= 1
    assert value(s, "onyx_r2r_dead_letter_documents", **{"class": "invalid_document"}) >= 1
    assert value(s, "onyx_r2r_oldest_pending_age_seconds") > 0
    assert not any(k == "tenant" for _, labels in s for k, _ in labels)
    from onyx.r2r_sender.prometheus_metrics import server_label

    assert value(s, "onyx_r2r_breaker_open", server=server_label(settings.r2r_base_url)) == 0
    assert (
        "onyx_r2r_breaker_open",
        (("server", server_label(settings.r2r_base_url)),),
    ) in s


# ------------------------------------------------------------------ breaker, private R2R
@pytest.fixture
def private_r2r() -> Iterator[Any]:
    """A private R2R instance (its own STACK_DIR, port, databases, stub): stopping it
    touches nobody else's tests."""
    bench = str(REPO_ROOT / "bench")
    if bench not in sys.path:
        sys.path.insert(0, bench)
    from private_stack import private_stack

    port = _free_pair()
    with private_stack(f"metrics_{uuid.uuid4().hex[:6]}", port=port) as stack:
        yield stack


def _free_pair() -> int:
    """A port p with p and p + 1000 (the private stub) both free, p != 7272."""
    for _ in range(50):
        p = free_port()
        if p == 7272 or p + 1000 > 65535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", p + 1000))
            except OSError:
                continue
        return p
    raise RuntimeError("no free port pair")


def _restart(stack: Any) -> None:
    """Start the private R2R again; retried, since ``scripts/stack up`` fails while the
    shared PostgreSQL has no connection slot left (other sessions' tests)."""
    for attempt in range(6):
        try:
            stack.up(patched=True)
            return
        except subprocess.CalledProcessError:
            if attempt == 5:
                raise
            time.sleep(10)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_breaker_gauge_opens_and_closes_when_a_private_r2r_stops(
    settings, ledger, tenant_id, workers, private_r2r
):
    from onyx.r2r_integration.sender import R2RDocumentSender
    from onyx.r2r_sender.prometheus_metrics import server_label

    env = private_r2r.env
    port = free_port()
    private = settings.with_overrides(
        r2r_base_url=env["R2R_BASE_URL"],
        r2r_api_key=env["R2R_API_KEY"],
        r2r_email=env["R2R_ADMIN_EMAIL"],
        r2r_password=env["R2R_ADMIN_PASSWORD"],
        metrics_port=port,
        breaker_threshold=3,
        breaker_cooldown_seconds=2.0,
        breaker_max_cooldown_seconds=4.0,
        breaker_probe_seconds=1.0,
        client_retry_max_time=1.0,
        connect_timeout=1.0,
    )
    server = server_label(private.r2r_base_url)
    workers.settings = private
    sender = R2RDocumentSender(tenant_id=tenant_id, settings=private)
    first = [f"b-{i}" for i in range(4)]
    sender.send_batch([onyx_doc(d, f"breaker body {d}", acl=["PUBLIC"]) for d in first])
    worker = workers.start(concurrency=4)
    wait_rows(
        ledger, tenant_id, lambda rows: all(rows[d]["status"] == "synced" for d in first), "sync"
    )
    s = scrape(port)
    assert value(s, "onyx_r2r_breaker_open", server=server) == 0

    stack_env = private_r2r.stack_environ(patched=True)
    subprocess.run(
        [str(REPO_ROOT / "scripts" / "stack"), "stop-r2r"],
        check=True,
        env=stack_env,
        stdout=subprocess.DEVNULL,
    )
    try:
        more = [f"b-{i}" for i in range(4, 16)]
        sender.send_batch([onyx_doc(d, f"breaker body {d}", acl=["PUBLIC"]) for d in more])
        s = wait_metrics(
            port,
            # the gauge is Redis' state, the counter this process's: a scrape may fall
            # between the two writes, so wait for both
            lambda s: (
                value(s, "onyx_r2r_breaker_open", server=server) == 1
                and value(s, "onyx_r2r_breaker_openings_total", server=server) >= 1
                and value(s, "onyx_r2r_documents", tenant=tenant_id, state="pending") >= 1
            ),
            "the breaker gauge to open",
        )
        assert (
            value(s, "onyx_r2r_errors_total", tenant=tenant_id, **{"class": "r2r_unavailable"}) >= 3
        )
    finally:
        _restart(private_r2r)
    started = time.monotonic()
    wait_rows(
        ledger,
        tenant_id,
        lambda rows: len(rows) == 16 and all(r["status"] == "synced" for r in rows.values()),
        "everything after R2R returned",
    )
    s = wait_metrics(
        port,
        lambda s: (
            value(s, "onyx_r2r_breaker_open", server=server) == 0
            and value(s, "onyx_r2r_documents", tenant=tenant_id, state="synced") == 16
        ),
        "the breaker gauge to close",
    )
    print(f"recovered {time.monotonic() - started:.1f}s after R2R was restarted")
    assert kinds(s, "onyx_r2r_applied_documents_total", tenant_id) == {"create": 16}
    assert worker.alive()
