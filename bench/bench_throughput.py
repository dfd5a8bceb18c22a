"""Benchmark 1 of the sync engine (issue 3): mirroring throughput, side by side in one run.

Same corpus (N Onyx-shaped documents with ACLs), four ways, each into its own tenant:

* naive:  the original plan's loop, sequential and inline: for every document make the
          R2R id idempotent by hand (DELETE, 404 = fine), POST it, then add the ACL
          collections R2R's raw-text create did not assign;
* direct: exactly the same R2R calls from a pool of C threads (the best a hand-written
          concurrent caller gets, with no durability, retries or skip-unchanged);
* bridge: the full path: R2RDocumentSender.send_batch (batches of 100) → ledger →
          a real Celery worker process (C threads) → R2R, until every row is synced;
* ceiling: C threads doing only the creates, each R2R's cheapest: pre-chunked, into
          one collection (no deletes, no memberships, nothing recorded): what R2R
          itself sustains here, the upper bound of every client.

Target (issue 13): the bridge reaches ≥ 0.95× R2R's own ceiling measured in the same run
(naive and direct are reported for context).  All four authenticate the same way (login
JWT), so the comparison is about the architecture, not about R2R's per-request bcrypt cost
for API keys (reported separately as "naive with API key").

Profile of the bridge run: its worker serves its Prometheus metrics on a free port and the
benchmark reads them afterwards (R2R request time by route, claims, drains), next to the
ceiling's own client-side create latency, the time to the first applied document and the
tail after the last create.

    .venv/bin/python bench/bench_throughput.py [--docs 200] [--concurrency 8]

With ``--private`` it runs against an empty private R2R; with ``--fill-chunks N`` against a
private R2R (its own port and databases, see
private_stack.py; the shared stack is not used) that first holds N chunks owned by the
service account (r2r_fill.py, as the growth benchmark fills it); ``--server stock`` runs
that R2R without deployment/r2r/patches.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
from benchlib import bench_settings, onyx_documents, stack_env, wait_synced, worker_process
from private_stack import private_stack
from prometheus_client.parser import text_string_to_metric_families
from r2r_fill import GrowthFill

from onyx.r2r_integration.onyx_shapes import source_document_from_onyx
from onyx.r2r_integration.sender import R2RDocumentSender
from onyx.r2r_sender.chunking import split_text
from onyx.r2r_sender.client import R2RClient
from onyx.r2r_sender.ids import r2r_document_id


class DirectMirror:
    """The hand-written mirror of the original plan: one document = a few inline calls."""

    def __init__(self, client: R2RClient, tenant: str) -> None:
        self.client = client
        self.tenant = tenant
        self.collections: dict[str, str] = {}

    def collection(self, principal: str) -> str:
        cid = self.collections.get(principal)
        if cid is None:
            cid = str(self.client.ensure_collection(f"naive:{self.tenant}:{principal}").id)
            self.collections[principal] = cid
        return cid

    def mirror(self, doc) -> None:
        source = source_document_from_onyx(doc)
        doc_id = r2r_document_id(self.tenant, source.document_id)
        cids = [self.collection(p) for p in sorted(source.acl or [])] or [self.collection("none")]
        self.client.delete_document(doc_id)
        self.client.create_document(
            document_id=doc_id,
            raw_text=source.text or source.title or source.document_id,
            metadata={"title": source.title, "source_document_id": source.document_id},
            collection_ids=cids[:1],
        )
        for cid in cids[1:]:
            self.client.add_document_to_collection(cid, doc_id)

    def cleanup(self, docs) -> None:
        for doc in docs:
            self.client.delete_document(r2r_document_id(self.tenant, doc.id))


def run(args: argparse.Namespace) -> None:
    if not args.fill_chunks and not args.private:
        measure(stack_env(), args)
        return
    stack_env()  # the shared PostgreSQL and Redis are up (the private R2R uses them)
    with private_stack(
        "throughput", port=args.port, patched=args.server == "patched", keep=args.keep
    ) as private:
        if args.fill_chunks:
            fill = GrowthFill(private, bench_settings(private.env))
            try:
                result = fill.grow_to(args.fill_chunks)
            finally:
                fill.close()
            print(
                f"[1] private R2R ({args.server}) filled to {result.owner_chunks:,} chunks "
                f"({result.owner_documents:,} documents, {len(fill.pool)} collections) in "
                f"{time.monotonic() - fill.started:.0f}s"
            )
        else:
            print(f"[1] on an empty private R2R ({args.server}) at port {args.port}")
        measure(private.env, args)


def measure(stack: dict[str, str], args: argparse.Namespace) -> None:
    settings = bench_settings(stack)
    login = {"email": stack["R2R_ADMIN_EMAIL"], "password": stack["R2R_ADMIN_PASSWORD"]}
    results: dict[str, float] = {}

    def corpus(tag: str):
        return onyx_documents(args.docs, prefix=f"{tag}_{uuid.uuid4().hex[:6]}", seed=11)

    # warm R2R up (first ingestion after a start is slow) with a few throwaway documents
    with R2RClient(stack["R2R_BASE_URL"], **login) as client:
        warm = DirectMirror(client, f"warm_{uuid.uuid4().hex[:6]}")
        warm_docs = corpus("warm")[:5]
        for doc in warm_docs:
            warm.mirror(doc)
        warm.cleanup(warm_docs)

    # naive: sequential inline calls
    with R2RClient(stack["R2R_BASE_URL"], **login) as client:
        docs = corpus("naive")
        naive = DirectMirror(client, f"naive_{uuid.uuid4().hex[:6]}")
        started = time.monotonic()
        for doc in docs:
            naive.mirror(doc)
        results["naive"] = time.monotonic() - started
        naive.cleanup(docs)

    # direct: the same calls, C threads
    with R2RClient(stack["R2R_BASE_URL"], max_connections=args.concurrency * 2, **login) as client:
        docs = corpus("direct")
        direct = DirectMirror(client, f"direct_{uuid.uuid4().hex[:6]}")
        for doc in docs:  # resolve collections first, as a long-running caller would have them
            for principal in sorted(source_document_from_onyx(doc).acl or []) or ["none"]:
                direct.collection(principal)
        started = time.monotonic()
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(direct.mirror, docs))
        results["direct"] = time.monotonic() - started
        direct.cleanup(docs)

    # ceiling: what R2R alone sustains here: C threads doing nothing but the cheapest creates
    create_seconds: list[float] = []

    def ceiling(threads: int, tag: str) -> float:
        with R2RClient(stack["R2R_BASE_URL"], max_connections=threads * 2, **login) as client:
            docs = corpus(tag)
            bare = DirectMirror(client, f"{tag}_{uuid.uuid4().hex[:6]}")
            target = bare.collection("none")

            def create_only(doc) -> None:
                source = source_document_from_onyx(doc)
                begun = time.perf_counter()
                client.create_document(
                    document_id=r2r_document_id(bare.tenant, source.document_id),
                    chunks=split_text(
                        source.text or source.title or source.document_id,
                        chunk_size=settings.chunk_size,
                        chunk_overlap=settings.chunk_overlap,
                    ),
                    metadata={"title": source.title, "source_document_id": source.document_id},
                    collection_ids=[target],
                )
                if tag == "ceiling":
                    create_seconds.append(time.perf_counter() - begun)

            started = time.monotonic()
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(create_only, docs))
            elapsed = time.monotonic() - started
            bare.cleanup(docs)
            return elapsed

    results["ceiling"] = ceiling(args.concurrency, "ceiling")

    # bridge: the full path through the ledger and a real worker process
    tenant = f"bench_bridge_{uuid.uuid4().hex[:6]}"
    docs = corpus("bridge")
    port = _free_port()
    sender = R2RDocumentSender(tenant_id=tenant, settings=settings)
    workers = args.worker_concurrency or args.concurrency
    with worker_process(settings.with_overrides(metrics_port=port), concurrency=workers):
        before = _scrape(port)
        # benchlib's readiness ping may be answered by another worker on the broker: wait
        # for this worker's own start-up check (login, health) to be over
        deadline = time.monotonic() + 60
        while not any(k[0].endswith("_count") and ("route", "/v3/health") in k[1] for k in before):
            if time.monotonic() > deadline:
                raise RuntimeError("the bridge worker did not finish its start-up check")
            time.sleep(0.2)
            before = _scrape(port)
        watch = _FirstApplied(sender.ledger, tenant)
        started = time.monotonic()
        for i in range(0, len(docs), 100):
            sender.send_batch(docs[i : i + 100])
        sent = time.monotonic() - started
        wait_synced(sender.ledger, tenant)
        results["bridge"] = time.monotonic() - started
        first_applied = watch.stop(started)
        after = _scrape(port)
        dead = sender.ledger.dead_letters(tenant)
        sender.delete_documents([d.id for d in docs])
        wait_synced(sender.ledger, tenant)
        # the same tenant again, its collections known (the steady state: the ceiling's
        # one collection, too, exists before its clock starts)
        warm_docs = corpus("bridge_warm")
        warm_before = _scrape(port)
        started = time.monotonic()
        for i in range(0, len(warm_docs), 100):
            sender.send_batch(warm_docs[i : i + 100])
        wait_synced(sender.ledger, tenant)
        results["bridge, collections known"] = time.monotonic() - started
        warm_after = _scrape(port)
        dead += sender.ledger.dead_letters(tenant)
        sender.delete_documents([d.id for d in warm_docs])
        wait_synced(sender.ledger, tenant)
    # the ceiling again after the bridge (the machine's load drifts), and at the bridge's
    # own number of documents in flight (worker threads x claim_batch)
    results["ceiling (again, after)"] = ceiling(args.concurrency, "ceiling2")
    in_flight = workers * settings.claim_batch
    results[f"ceiling, {in_flight} threads"] = ceiling(in_flight, "ceiling3")
    ceiling_mean = (results["ceiling"] + results["ceiling (again, after)"]) / 2

    n = args.docs
    print(f"[1] mirroring {n} Onyx-shaped documents with ACLs, concurrency {args.concurrency}:")
    for name, elapsed in results.items():
        print(f"    {name:25} {elapsed:7.1f}s  {n / elapsed:6.1f} docs/s")
    warm = results["bridge, collections known"]
    wide = results[f"ceiling, {in_flight} threads"]
    print(
        f"    bridge / R2R's ceiling ({args.concurrency} threads, mean of before and after) = "
        f"{ceiling_mean / results['bridge']:.2f}x (target >= 0.95x); with the tenant's "
        f"collections known {ceiling_mean / warm:.2f}x\n"
        f"    against the ceiling at the bridge's {in_flight} documents in flight: "
        f"{wide / results['bridge']:.2f}x, collections known {wide / warm:.2f}x\n"
        f"    for context: bridge / naive = {results['naive'] / results['bridge']:.2f}x, "
        f"bridge / direct = {results['direct'] / results['bridge']:.2f}x, "
        f"ceiling / naive = {results['naive'] / results['ceiling']:.2f}x\n"
        f"    dead letters in the bridge runs: {len(dead)} "
        f"{sorted(Counter(d.error_class for d in dead).items())}"
        + (f"; e.g. {dead[0].error[:300]}" if dead else "")
    )
    _profile(before, after, results, n, sent, first_applied, create_seconds, workers)
    print("    the run with the collections known:")
    _routes(warm_before, warm_after)
    if args.api_key_sample:
        with R2RClient(stack["R2R_BASE_URL"], stack["R2R_API_KEY"]) as client:
            docs = corpus("apikey")[: args.api_key_sample]
            keyed = DirectMirror(client, f"apikey_{uuid.uuid4().hex[:6]}")
            started = time.monotonic()
            for doc in docs:
                keyed.mirror(doc)
            elapsed = time.monotonic() - started
            keyed.cleanup(docs)
        print(
            f"    naive with an API key instead of a login: {len(docs) / elapsed:.1f} docs/s "
            f"({elapsed / len(docs):.2f}s per document: R2R bcrypt-checks the key on every request)"
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _scrape(port: int) -> dict[tuple[str, tuple], float]:
    """The worker's metrics; waits up to 60 s for its port (benchlib's readiness check is a
    broadcast ping that other workers on the same broker may answer first)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
            break
        except httpx.ConnectError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


class _FirstApplied:
    """Polls the ledger from a thread: when the first document of the tenant was synced."""

    def __init__(self, ledger, tenant: str) -> None:
        self.at: float | None = None
        self._stop = threading.Event()
        self._ledger, self._tenant = ledger, tenant
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set() and self.at is None:
            rows = self._ledger.counts(self._tenant)
            if rows and int(rows[0]["synced"]) > 0:
                self.at = time.monotonic()
            time.sleep(0.02)

    def stop(self, started: float) -> float:
        self._stop.set()
        self._thread.join(timeout=5)
        return (self.at - started) if self.at is not None else float("nan")


def _by_route(before, after) -> dict[tuple[str, str], tuple[float, float]]:
    """``{(method, route): (requests, seconds)}`` of the R2R requests between two scrapes."""
    out: dict[tuple[str, str], tuple[float, float]] = {}
    for (name, labels), value in after.items():
        if name not in (
            "onyx_r2r_r2r_request_duration_seconds_count",
            "onyx_r2r_r2r_request_duration_seconds_sum",
        ):
            continue
        lab = dict(labels)
        key = (lab["method"], lab["route"])
        count, total = out.get(key, (0.0, 0.0))
        moved = value - before.get((name, labels), 0.0)
        if name.endswith("_count"):
            count += moved
        else:
            total += moved
        out[key] = (count, total)
    return out


def _routes(before, after) -> None:
    for (method, route), (count, total) in sorted(
        _by_route(before, after).items(), key=lambda x: -x[1][1]
    ):
        if count:
            print(
                f"      {method:6} {route:40} {int(count):5d} requests, {total:7.2f}s in all, "
                f"{total / count * 1000:7.1f} ms each"
            )


def _profile(before, after, results, n, sent, first_applied, create_seconds, concurrency) -> None:
    """Where the bridge's time goes, from its worker's metrics (deltas over the run)."""

    def delta(name: str, **labels: str) -> float:
        want = set(labels.items())
        return sum(
            v - before.get(k, 0.0) for k, v in after.items() if k[0] == name and want <= set(k[1])
        )

    by_route = _by_route(before, after)
    bridge = results["bridge"]
    print(f"    profile of the bridge run ({bridge:.1f}s, {concurrency} worker threads):")
    print(
        f"      first document applied {first_applied:.2f}s after the first send_batch "
        f"(all {n} recorded after {sent:.2f}s)"
    )
    _routes(before, after)
    creates = by_route.get(("POST", "/v3/documents"), (0.0, 0.0))
    if creates[0] and create_seconds:
        print(
            f"      create latency: bridge {creates[1] / creates[0] * 1000:.0f} ms mean, ceiling "
            f"{statistics.mean(create_seconds) * 1000:.0f} ms mean ("
            "R2R's time per create at each one's concurrency)"
        )
        print(
            f"      creates in flight on average: bridge {creates[1] / bridge:.1f}, ceiling "
            f"{sum(create_seconds) / results['ceiling']:.1f}"
        )
    claims = delta("onyx_r2r_claim_duration_seconds_count")
    claim_time = delta("onyx_r2r_claim_duration_seconds_sum")
    drains = delta("onyx_r2r_drain_duration_seconds_count")
    print(
        f"      ledger claims: {int(claims)} taking {claim_time:.2f}s in all; drains: "
        f"{int(drains)}; doorbell rings: {int(delta('onyx_r2r_doorbell_rings_total'))} "
        f"({int(delta('onyx_r2r_doorbell_rings_total', outcome='coalesced'))} coalesced)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--api-key-sample", type=int, default=10, help="0 skips it")
    parser.add_argument(
        "--worker-concurrency",
        type=int,
        default=0,
        help="the bridge worker's threads (default --concurrency); each has up to "
        "claim_batch documents in flight",
    )
    parser.add_argument(
        "--fill-chunks",
        type=int,
        default=0,
        help="run on a private R2R first filled to this many chunks (0: the shared stack)",
    )
    parser.add_argument(
        "--private",
        action="store_true",
        help="run on an empty private R2R (nobody else's tests stop or load it)",
    )
    parser.add_argument("--server", choices=("patched", "stock"), default="patched")
    parser.add_argument("--port", type=int, default=7381, help="the private R2R's port")
    parser.add_argument("--keep", action="store_true", help="leave the private R2R's data")
    run(parser.parse_args())
