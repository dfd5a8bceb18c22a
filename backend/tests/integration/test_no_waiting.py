"""No document waits behind another (issue 15), against the real stack.

What is checked here is behaviour (who is applied while what is still in flight, how many
requests a document costs, what becomes due when R2R is back); the time ratios of the
issue's targets are measured side by side in ``bench/bench_fairness.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from engine_checks import onyx_doc, states
from redis import Redis
from stack_helpers import REPO_ROOT, wait_until

from onyx.r2r_integration.sender import R2RDocumentSender
from onyx.r2r_sender.applier import Applier
from onyx.r2r_sender.breaker import CircuitBreaker
from onyx.r2r_sender.collections import CollectionResolver
from onyx.r2r_sender.connect import make_client
from onyx.r2r_sender.errors import R2RRetryableError
from onyx.r2r_sender.ledger import Ledger, LockSession
from onyx.r2r_sender.metrics import Counters
from onyx.r2r_sender.worker import WorkerRuntime

pytestmark = pytest.mark.integration

ONE_MIB = 1024 * 1024


def _big_text(size: int) -> str:
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()
    parts: list[str] = []
    total = 0
    i = 0
    while total < size:
        line = " ".join(words[(i + k) % len(words)] for k in range(16)) + f" line {i}.\n"
        parts.append(line)
        total += len(line)
        i += 1
    return "".join(parts)


@pytest.fixture
def runtime(settings, ledger, make_sender) -> Iterator[WorkerRuntime]:
    sender = make_sender("unused")
    runtime = WorkerRuntime(
        settings.with_overrides(claim_batch=4, drain_slice_seconds=900),
        ledger=ledger,
        redis=Redis.from_url(settings.broker_url),
        doorbell=sender.doorbell,
    )
    yield runtime
    runtime.close()


def test_batch_mates_are_applied_while_a_slow_document_is_in_flight(
    runtime, purge, ledger, tenant_id, make_sender
) -> None:
    """The slow document sorts first in the claimed batch; its three batch-mates are synced
    (and their locks released) while it is still being applied."""
    purge.append(tenant_id)
    big = onyx_doc("00-big", _big_text(ONE_MIB // 2), acl=["PUBLIC"])
    small = [onyx_doc(f"small-{i}", f"a short note number {i}", acl=["PUBLIC"]) for i in range(3)]
    report = make_sender(tenant_id).send_batch([big, *small])
    assert len(report.changed) == 4
    drain = threading.Thread(target=runtime.drain, args=(tenant_id,))
    drain.start()
    try:

        def mates_synced() -> dict | None:
            rows = states(ledger, tenant_id)
            done = all(rows[f"small-{i}"]["status"] == "synced" for i in range(3))
            return rows if done else None

        rows = wait_until(mates_synced, 300, interval=0.1, what="batch-mates synced")
        assert rows["00-big"]["status"] == "pending", "the slow document was not in flight"
    finally:
        drain.join(timeout=900)

    def big_synced() -> bool:
        if states(ledger, tenant_id)["00-big"]["status"] == "synced":
            return True
        runtime.drain(tenant_id)  # a busy R2R may have timed the first create out
        return False

    wait_until(big_synced, 900, interval=1.0, what="the slow document synced")


def test_a_heavy_document_yields_to_its_light_batch_mates(
    settings, ledger, purge, tenant_id, make_sender
) -> None:
    """A heavy document claimed first in its batch starts its apply only after its light
    batch-mates are applied (R2R shares its CPU: a create beside it would be slower), and is
    then applied as usual."""
    purge.append(tenant_id)
    runtime = WorkerRuntime(
        settings.with_overrides(
            claim_batch=4, drain_slice_seconds=900, heavy_chunks=50, heavy_yield_seconds=120
        ),
        ledger=ledger,
        redis=Redis.from_url(settings.broker_url),
        doorbell=make_sender("unused").doorbell,
    )
    applier = runtime.target_for(tenant_id).applier
    apply = applier.apply
    started: dict[str, float] = {}
    finished: dict[str, float] = {}

    def timed_apply(claim):  # the real apply, with its start and end noted
        started[claim.document_id] = time.monotonic()
        try:
            return apply(claim)
        finally:
            finished[claim.document_id] = time.monotonic()

    applier.apply = timed_apply  # type: ignore[method-assign]
    try:
        big = onyx_doc("00-big", _big_text(ONE_MIB // 8), acl=["PUBLIC"])  # ~170 chunks
        small = [
            onyx_doc(f"small-{i}", f"a short note number {i}", acl=["PUBLIC"]) for i in range(3)
        ]
        make_sender(tenant_id).send_batch([big, *small])
        report = runtime.drain(tenant_id)
        assert report.applied == 4, report
    finally:
        runtime.close()
    assert {r["status"] for r in states(ledger, tenant_id).values()} == {"synced"}
    assert set(started) == {"00-big", "small-0", "small-1", "small-2"}
    last_light = max(finished[f"small-{i}"] for i in range(3))
    assert started["00-big"] >= last_light, (started, finished)


PRINCIPALS = 1000  # the bench runs the 6,000; the request count does not depend on it


@pytest.mark.timeout(1800)
def test_thousands_of_principals_cost_about_one_request_each(
    settings, ledger, purge, tenant_id
) -> None:
    """Many new principals: one listing per 1,000 collections, one create each, one create
    of the document with all of them; with the collections known, a handful of requests."""
    purge.append(tenant_id)
    principals = [f"user_email:u{i:05d}@bulk.example.com" for i in range(PRINCIPALS)]
    requests: list[str] = []

    def count(request: httpx.Request) -> None:
        requests.append(f"{request.method} {request.url.path}")

    client = make_client(settings.credentials, settings, event_hooks={"request": [count]})
    try:
        resolver = CollectionResolver(client, ledger)
        applier = Applier(client, resolver, settings)
        sender_docs = [
            onyx_doc("acl-a", "a document everyone in the bulk list may read", acl=principals),
            onyx_doc("acl-b", "another document for the same readers", acl=principals),
        ]
        sender = R2RDocumentSender(tenant_id=tenant_id, settings=settings, ledger=ledger)
        assert sender.send_batch(sender_docs[:1]).changed == ["acl-a"]
        _apply_all(ledger, applier, tenant_id)
        requests_first = len(requests)
        assert requests_first <= 1.1 * len(principals), requests_first
        requests.clear()
        assert sender.send_batch(sender_docs[1:]).changed == ["acl-b"]
        _apply_all(ledger, applier, tenant_id)
        assert len(requests) <= 5, requests  # the principals are cached: the create only
        for doc_id, r2r_id in ledger.applied_r2r_ids(tenant_id, ["acl-a", "acl-b"]).items():
            # one create carried every collection
            assert len(client.get_document(r2r_id).collection_ids) == len(principals), doc_id
    finally:
        client.close()


def _apply_all(ledger: Ledger, applier: Applier, tenant_id: str) -> dict:
    outcomes = {}
    with LockSession(ledger.engine) as locks:
        for claim in ledger.claim(locks, tenant_id, 100):
            outcome = applier.apply(claim)
            assert ledger.finalize_success(locks, claim, outcome)
            outcomes[claim.document_id] = outcome
    return outcomes


def test_documents_backing_off_after_an_outage_are_due_once_r2r_answers(
    settings, ledger, purge, tenant_id, make_sender
) -> None:
    """Rows waiting out a long backoff for "R2R unavailable" are applied by the first drain
    after R2R answers a health probe again, not after their backoff."""
    purge.append(tenant_id)
    # the same server under another name: this breaker is the test's own (breakers are
    # per base URL and shared through Redis with every other process)
    own = settings.with_overrides(
        r2r_base_url=settings.r2r_base_url.replace("127.0.0.1", "localhost")
    )
    assert own.r2r_base_url != settings.r2r_base_url
    runtime = WorkerRuntime(
        own,
        ledger=ledger,
        redis=Redis.from_url(settings.broker_url),
        doorbell=make_sender("unused").doorbell,
    )
    make_sender(tenant_id).send_batch(
        [onyx_doc(f"out-{i}", f"written during an outage {i}", acl=["PUBLIC"]) for i in range(3)]
    )
    with LockSession(ledger.engine) as locks:
        for claim in ledger.claim(locks, tenant_id, 10):
            status = ledger.finalize_failure(
                locks,
                claim,
                error_class="r2r_unavailable",
                message="could not reach R2R",
                retryable=True,
                retry_after=None,
                delay=600.0,
            )
            assert status == "pending"
    # the breaker of this server is open (a trip), as after an outage
    breaker = CircuitBreaker(
        Redis.from_url(settings.broker_url),
        runtime.target_for(tenant_id).client.base_url,
        threshold=settings.breaker_threshold,
        cooldown_seconds=600,
        max_cooldown_seconds=600,
    )
    try:
        for _ in range(settings.breaker_threshold):
            breaker.record_failure()
        assert breaker.wait_seconds() > 500
        report = runtime.drain(tenant_id)
        assert not report.breaker_open
        assert report.applied == 3
        assert breaker.state().state == "closed"
        assert all(row["status"] == "synced" for row in states(ledger, tenant_id).values())
    finally:
        breaker.record_success()
        runtime.close()


def test_writes_are_counted_when_r2r_accepts_them_even_if_the_apply_fails(
    settings, ledger, purge, tenant_id, make_sender
) -> None:
    """On R2R's raw-text path the create is followed by grants: the create is counted
    although the apply fails before it finishes (as when a worker is killed)."""
    purge.append(tenant_id)
    server = settings.with_overrides(
        chunking="server", retry_base_seconds=600.0, retry_cap_seconds=600.0
    )
    runtime = WorkerRuntime(
        server,
        ledger=ledger,
        redis=Redis.from_url(settings.broker_url),
        doorbell=make_sender("unused").doorbell,
    )
    try:
        make_sender(tenant_id).send_batch(
            [onyx_doc("w", "counted when written", acl=["PUBLIC", "group:a", "group:b"])]
        )
        target = runtime.target_for(tenant_id)
        real_grant = target.client.add_document_to_collection

        def failing_grant(*args, **kwargs):
            raise R2RRetryableError("injected: the worker dies here", operation="grant")

        target.client.add_document_to_collection = failing_grant  # our code path, not R2R's
        try:
            report = runtime.drain(tenant_id)
        finally:
            target.client.add_document_to_collection = real_grant
        assert report.failed == 1 and report.applied == 0  # the retry waits 600 s
        counters = Counters(Redis.from_url(settings.broker_url)).get(tenant_id)
        assert counters.get("r2r_writes") == 1  # the create R2R accepted
    finally:
        runtime.close()


def test_dead_letter_reasons_name_the_document_and_status_json_lists_them(
    settings, ledger, purge, tenant_id, make_sender
) -> None:
    purge.append(tenant_id)
    bad = onyx_doc("bad-date", "text")
    bad["doc_updated_at"] = "not-a-date"
    report = make_sender(tenant_id).send_batch([bad])
    assert [r.document_id for r in report.rejected] == ["bad-date"]
    (dead,) = ledger.dead_letters(tenant_id)
    assert dead.error is not None
    assert dead.error.startswith("document 'bad-date': ")
    assert "not ISO 8601" in dead.error
    proc = subprocess.run(
        [sys.executable, "-m", "onyx.r2r_sender.cli", "status", "--tenant", tenant_id, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**settings.to_env(), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    body = json.loads(proc.stdout)
    assert [(d["document_id"], d["error_class"]) for d in body["dead_letters"]] == [
        ("bad-date", "invalid_document")
    ]


def test_stack_env_exports_the_service_login_without_printing_the_password(stack) -> None:
    proc = subprocess.run(
        [str(REPO_ROOT / "scripts" / "stack"), "env"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    exports = dict(
        line.removeprefix("export ").split("=", 1)
        for line in proc.stdout.splitlines()
        if line.startswith("export ")
    )
    assert exports["R2R_EMAIL"] == stack["R2R_ADMIN_EMAIL"]
    assert stack["R2R_ADMIN_PASSWORD"] not in proc.stdout
    with open(exports["R2R_PASSWORD_FILE"], encoding="utf-8") as fh:
        assert fh.read().strip() == stack["R2R_ADMIN_PASSWORD"]


def test_a_worker_on_an_api_key_warns(settings, workers) -> None:
    keyed = settings.with_overrides(r2r_email="", r2r_password="")
    workers.settings = keyed
    worker = workers.start(concurrency=1, beat=False)
    wait_until(lambda: "authenticates to R2R with an API key" in worker.log(), 60, what="warning")
    assert keyed.r2r_api_key.get() not in worker.log()


def test_a_worker_on_a_non_superuser_account_warns_what_it_could_not_check(
    settings, workers, make_user
) -> None:
    """Issue 17: R2R answers 403 to a non-superuser's ``GET /v3/system/settings``; the
    start-up check logged that as an ERROR although the worker then works normally.  It is
    a WARNING naming what was not checked and what a superuser account would add."""
    user = make_user(superuser=False, max_chunks=100_000)
    plain = settings.with_overrides(
        r2r_api_key="", r2r_email=user.email, r2r_password=user.password
    )
    workers.settings = plain
    worker = workers.start(concurrency=1, beat=False)
    wait_until(lambda: "start-up check" in worker.log(), 60, what="the start-up check's line")
    log = worker.log()
    lines = [line for line in log.splitlines() if "start-up check" in line]
    assert not any("ERROR" in line for line in lines), lines
    warning = next(line for line in lines if "WARNING" in line)
    assert "not a superuser" in warning and "GET /v3/system/settings" in warning, warning
    assert "embedding" in warning and "skip_document_summary" in warning, warning
    assert user.password not in log
