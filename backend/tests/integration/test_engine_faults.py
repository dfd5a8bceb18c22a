"""Fault injection against the real stack: kill -9'd workers, an R2R outage, competing workers.

Real PostgreSQL, Redis, Celery worker *processes* (``onyx-r2r worker``) and a real R2R
3.6.6; nothing is mocked.  Every scenario ends with :func:`fault_checks.check_mirror`,
which reads back the ledger and R2R and fails on any missing, duplicated, stale or
wrongly-shared document.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid

import pytest
from fault_checks import (
    Expected,
    WorkerTree,
    check_mirror,
    counters,
    drain_counts,
    expected_from_onyx,
    forget_backlog,
    make_corpus,
    send_in_batches,
    verify_client,
    wait_for_state,
    wait_synced,
)
from redis import Redis
from stack_helpers import run_stack

from onyx.r2r_sender.breaker import CircuitBreaker
from onyx.r2r_sender.doorbell import doorbell_key
from onyx.r2r_sender.ledger import Ledger

pytestmark = pytest.mark.integration

EDIT_MARK = "Updated: the owner revised this note."
EDIT_WORDS = frozenset({"updated", "owner", "revised"})  # none of them is in the corpus


@pytest.fixture
def tree(workers, settings, tenant_id):
    """Kills the beat child of every worker too; after the test reaps leftovers and
    drops the tenant's unsynced rows (other tests' workers would drain them)."""
    procs = WorkerTree()
    yield procs
    workers.stop_all()
    procs.reap()
    forget_backlog(settings, tenant_id)


def _start(workers, tree: WorkerTree, **kwargs):
    worker = workers.start(**kwargs)
    tree.remember(worker)
    return worker


def _synced(ledger: Ledger, tenant_id: str) -> int:
    rows = ledger.counts(tenant_id)
    return int(rows[0]["synced"]) if rows else 0


def _pending(ledger: Ledger, tenant_id: str) -> int:
    rows = ledger.counts(tenant_id)
    return int(rows[0]["pending"]) if rows else 0


def _wait_for(predicate, timeout: float, what: str, alive=None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if alive is not None and not alive():
            raise AssertionError(f"the worker died while waiting for {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)


def _edit(doc: dict, *, change_acl: bool) -> dict:
    edited = json.loads(json.dumps(doc))
    edited["sections"][-1]["text"] += " " + EDIT_MARK
    edited["doc_updated_at"] = "2026-11-20T12:00:00+00:00"
    if change_acl:
        # revoke everything it had, grant something else (exercises revoke-before-grant)
        edited["acl"] = ["user_email:erin@example.com"] if "PUBLIC" in doc["acl"] else ["PUBLIC"]
        edited["document_sets"] = [] if doc["document_sets"] else ["edited"]
    return edited


# ----------------------------------------------------------------------------- kill -9


@pytest.mark.slow
@pytest.mark.timeout(1500)  # the stack is shared: leave room for other sessions' load
@pytest.mark.parametrize("seed", [11, 23])
def test_kill9_workers_during_sync_lose_and_duplicate_nothing(
    seed, settings, workers, tree, make_sender, tenant_id
):
    """500 documents, 4 kill -9s mid-sync, then 50 edits with one more kill -9 mid-way."""
    rng = random.Random(seed)
    prefix = f"kill9-{seed}-{uuid.uuid4().hex[:8]}"
    corpus = make_corpus(500, seed=seed, prefix=prefix)
    sender = make_sender(tenant_id)
    ledger = sender.ledger
    assert len(send_in_batches(sender, corpus)) == 500

    worker = _start(workers, tree, concurrency=8)
    # Kill at random points of progress: after each (re)start, wait until the new worker
    # has applied a random 5-60 more documents (so it recovered and is mid-sync, with
    # applies in flight), then kill -9 it.  Progress-based rather than time-based, so a
    # faster machine cannot finish the 500 documents before the kills land.
    kills = 0
    for _ in range(4):
        target = _synced(ledger, tenant_id) + rng.randint(5, 60)
        wait_for_state(
            ledger,
            tenant_id,
            lambda c, t=target: c.get("synced", 0) >= t,
            alive=worker.alive,
            what=f" for {target} synced before kill #{kills + 1}",
        )
        if _pending(ledger, tenant_id) == 0:
            break
        tree.kill9(worker)
        kills += 1
        worker = _start(workers, tree, concurrency=8)
    synced_at_last_kill = _synced(ledger, tenant_id)
    assert kills == 4, f"only {kills} kills landed mid-sync"
    wait_synced(ledger, tenant_id, 500, alive=worker.alive, what=" (initial sync)")
    print(f"seed {seed}: {kills} kills, {synced_at_last_kill}/500 synced at the last kill")

    first = expected_from_onyx(corpus, settings, tenant_id)
    with verify_client(settings) as client:
        check_mirror(
            settings,
            tenant_id,
            {
                d: Expected(e.prepared, e.text, must_not_contain=EDIT_WORDS)
                for d, e in first.items()
            },
            client,
        )

    # ---- edits of 50 documents (half of them with new ACLs), one kill -9 mid-way
    edited_idx = rng.sample(range(500), 50)
    edits = [_edit(corpus[i], change_acl=(n % 2 == 0)) for n, i in enumerate(edited_idx)]
    edited_ids = {e["id"] for e in edits}
    assert len(send_in_batches(sender, edits, size=25)) == 50
    new_versions = {
        d: e.prepared.version for d, e in expected_from_onyx(edits, settings, tenant_id).items()
    }

    def edits_applied() -> int:
        return sum(
            1
            for d in edited_ids
            if (ledger.get_state(tenant_id, d) or {}).get("applied_version") == new_versions[d]
        )

    _wait_for(lambda: edits_applied() >= 3, 300, "the first edits", worker.alive)
    pending_at_kill = _pending(ledger, tenant_id)
    assert pending_at_kill > 0, "all edits were applied before the kill"
    tree.kill9(worker)
    worker = _start(workers, tree, concurrency=8)
    wait_synced(ledger, tenant_id, 500, alive=worker.alive, what=" (edits)")
    print(f"seed {seed}: {pending_at_kill} edits pending at the edit kill")

    final_docs = list(corpus)
    for edit in edits:
        final_docs[next(i for i, d in enumerate(corpus) if d["id"] == edit["id"])] = edit
    expected = {
        d: Expected(
            e.prepared,
            e.text,
            must_contain=EDIT_WORDS if d in edited_ids else frozenset(),
            must_not_contain=frozenset() if d in edited_ids else EDIT_WORDS,
        )
        for d, e in expected_from_onyx(final_docs, settings, tenant_id).items()
    }
    with verify_client(settings) as client:
        report = check_mirror(
            settings,
            tenant_id,
            expected,
            client,
            stale_versions={d: [first[d].prepared.version] for d in edited_ids},
        )
    assert all(n > 0 for n in report.chunk_counts.values())
    assert counters(settings, tenant_id).get("applied", 0) >= 550


# ------------------------------------------------------------------------- R2R outage


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_r2r_outage_opens_breaker_and_everything_arrives(
    settings, workers, tree, make_sender, tenant_id
):
    """R2R stopped for 30 s a third of the way through a 150-document sync."""
    corpus = make_corpus(150, seed=5, prefix=f"outage-{uuid.uuid4().hex[:8]}")
    sender = make_sender(tenant_id)
    ledger = sender.ledger
    breaker = CircuitBreaker(
        Redis.from_url(settings.broker_url),
        settings.r2r_base_url,
        threshold=settings.breaker_threshold,
        cooldown_seconds=settings.breaker_cooldown_seconds,
        max_cooldown_seconds=settings.breaker_max_cooldown_seconds,
    )
    worker = _start(workers, tree, concurrency=8)
    send_in_batches(sender, corpus, size=50)
    wait_for_state(
        ledger,
        tenant_id,
        lambda c: c.get("synced", 0) >= 50,
        alive=worker.alive,
        what=" for a third of the sync",
    )

    states: list[str] = []
    error_classes: set[str] = set()
    stop_polling = threading.Event()

    def poll_breaker() -> None:
        polls = 0
        while not stop_polling.is_set():
            states.append(breaker.state().state)
            if polls % 10 == 0:  # and how the failures were classified, once a second
                error_classes.update(
                    row["last_error_class"]
                    for row in ledger.iter_states(tenant_id)
                    if row["last_error_class"]
                )
            polls += 1
            time.sleep(0.1)

    poller = threading.Thread(target=poll_breaker, daemon=True)
    poller.start()
    down_at = time.monotonic()
    try:
        run_stack("stop-r2r")
        synced_at_stop = _synced(ledger, tenant_id)
        time.sleep(max(0.0, 30.0 - (time.monotonic() - down_at)))
        synced_during = _synced(ledger, tenant_id) - synced_at_stop
    finally:
        run_stack("up", "--quiet")
    up_after = time.monotonic() - down_at
    assert synced_at_stop < 150, "the sync finished before R2R went down"
    # a document whose create was in flight at the stop may finish; nothing more can
    assert synced_during <= 8, f"{synced_during} documents synced while R2R was down"

    # the breaker is shared by every worker of this R2R server and may stay open for its
    # longest cooldown (300 s with default settings) after R2R is back: allow for that
    wait_synced(ledger, tenant_id, 150, stall=360, alive=worker.alive, what=" after R2R returned")
    stop_polling.set()
    poller.join(timeout=5)
    print(f"R2R back after {up_after:.0f}s; breaker states seen: {sorted(set(states))}")
    assert "open" in states, f"the breaker never opened: {sorted(set(states))}"
    _wait_for(lambda: breaker.state().state == "closed", 30, "the breaker to close")

    assert ledger.dead_letters(tenant_id) == []
    tally = counters(settings, tenant_id)
    assert tally.get("failed", 0) > 0, "no apply failed: the outage was not observed"
    # every failure was classified as transient (retried), none as a rejection
    assert "r2r_unavailable" in error_classes, error_classes
    assert error_classes <= {"r2r_unavailable", "r2r_busy"}, error_classes
    with verify_client(settings) as client:
        check_mirror(settings, tenant_id, expected_from_onyx(corpus, settings, tenant_id), client)


# ------------------------------------------------------------------ concurrent workers


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_three_worker_processes_share_one_backlog(settings, workers, tree, make_sender, tenant_id):
    """3 worker processes x 4 threads on 300 documents: all arrive, each exactly once."""
    procs = [
        workers.start(concurrency=4, beat=(i == 0), name=f"share{i}", wait=False) for i in range(3)
    ]
    for proc in procs:
        _wait_for(lambda p=proc: " ready." in p.log(), 60, "worker ready", proc.alive)
        tree.remember(proc)
    corpus = make_corpus(300, seed=3, prefix=f"share-{uuid.uuid4().hex[:8]}")
    sender = make_sender(tenant_id)
    send_in_batches(sender, corpus)
    wait_synced(sender.ledger, tenant_id, 300, alive=lambda: all(p.alive() for p in procs))

    tally = counters(settings, tenant_id)
    assert tally.get("applied") == 300, f"applied counter {tally} (a document applied twice?)"
    per_worker = [sum(drain_counts(p.log(), tenant_id)) for p in procs]
    print(f"applied per worker process: {per_worker}; counters {tally}")
    assert all(n > 0 for n in per_worker), f"work was not shared: {per_worker}"
    assert sum(per_worker) <= 300, per_worker
    expected = expected_from_onyx(corpus, settings, tenant_id)
    if not tally.get("failed"):
        # one create per document, nothing twice: the bridge's chunks go up together with
        # every collection (a grant per collection with chunking="server")
        writes = len(expected)
        assert tally.get("r2r_writes") == writes, (tally, writes)
    with verify_client(settings) as client:
        check_mirror(settings, tenant_id, expected, client)


# ------------------------------------------------------------------------ a lost drain


@pytest.mark.timeout(1200)
def test_drain_lost_with_a_killed_worker_is_rung_again(settings, workers, tree, tenant_id):
    """A kill -9 loses the drain the worker had reserved; its doorbell key stays behind.

    The state is made exactly as a killed worker leaves it: due rows, and a doorbell key
    saying a drain was queued 30 s ago (and never started) that blocks rings for 15
    minutes.  The sweep must notice the stale ring and queue a new drain, so the rows
    arrive long before the key would have expired.
    """
    corpus = make_corpus(8, seed=8, prefix=f"lost-{uuid.uuid4().hex[:8]}")
    ledger = Ledger.from_settings(settings)
    expected = expected_from_onyx(corpus, settings, tenant_id)
    redis = Redis.from_url(settings.broker_url)
    key = doorbell_key(settings.queue, tenant_id)
    redis.set(key, repr(time.time() - 30), ex=900)  # a ring whose drain died with a worker
    ledger.record_documents(tenant_id, [e.prepared for e in expected.values()])  # no ring
    started = time.monotonic()
    worker = _start(workers, tree, concurrency=4)
    wait_synced(ledger, tenant_id, len(corpus), timeout=800, stall=400, alive=worker.alive)
    took = time.monotonic() - started
    print(f"the lost drain was replaced after {took:.0f}s (the key had {redis.ttl(key)}s left)")
    assert took < 850  # the key alone would have blocked every ring for 900 s
    with verify_client(settings) as client:
        check_mirror(settings, tenant_id, expected, client)
