"""Growth benchmark (issue 16): does a create cost the same when R2R holds 10k, 100k, 1M chunks?

Runs its own R2R (``private_stack``: own port, own databases, the shared stack is never
touched), fills it with rows R2R treats as its own (``r2r_fill``: templates mirrored by
the bridge, collections through the API, clones in bulk, all owned by the service
account), and at each size measures, for each server (stock R2R 3.6.6 and R2R with
``deployment/r2r/patches`` applied, restarted between the two on the same data):

* bridge:  the full path, R2RDocumentSender.send_batch → ledger → a real Celery worker
           process (C threads) → R2R, until every row is synced (as benchmark 1);
           per-document time = C × elapsed / N (each worker thread busy throughout);
* ceiling: C threads doing nothing but R2R's cheapest create (pre-chunked, into one
           collection), client-timed per create (as benchmark 1's ceiling column);
* single:  sequential creates of the same kind, one at a time: the cost of one create
           without queueing.

Target: throughput at 1M chunks ≥ 0.8× the throughput at 10k, for the bridge and the
ceiling.  Ratios are printed per server; timings are never asserted.

    .venv/bin/python bench/bench_growth.py [--sizes 10000,100000,1000000]
        [--servers stock,patched] [--docs 200] [--concurrency 8] [--keep]

Cleans up (R2R stopped, its databases dropped, its directory removed) unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from benchlib import bench_settings, onyx_documents, wait_synced, worker_process
from private_stack import PrivateStack, private_stack
from r2r_fill import GrowthFill

from onyx.r2r_integration.onyx_shapes import source_document_from_onyx
from onyx.r2r_integration.sender import R2RDocumentSender
from onyx.r2r_sender.chunking import split_text
from onyx.r2r_sender.client import R2RClient
from onyx.r2r_sender.collections import collection_name
from onyx.r2r_sender.config import BridgeSettings
from onyx.r2r_sender.ids import r2r_document_id

# generous: the stock server's creates take seconds each at 1M chunks; a client timeout
# would turn the measurement into one of retries
READ_TIMEOUT = 900.0
WARM = 10  # creates before measuring, after each (re)start


@dataclass
class Measurement:
    """One server at one size."""

    server: str
    size: int
    owner_chunks: int
    collections: int
    bridge_docs_per_s: float
    bridge_doc_ms: float
    bridge_dead: int
    ceiling_docs_per_s: float
    ceiling_p50_ms: float
    ceiling_p95_ms: float
    single_p50_ms: float
    load_1min: float  # the machine's load average after the measurement (2 shared cores)


def login(env: dict[str, str]) -> dict[str, str]:
    return {"email": env["R2R_ADMIN_EMAIL"], "password": env["R2R_ADMIN_PASSWORD"]}


def corpus(n: int, tag: str) -> list:
    return onyx_documents(n, prefix=f"{tag}_{uuid.uuid4().hex[:6]}", seed=11)


def ceiling_and_single(
    env: dict[str, str], settings: BridgeSettings, docs: list, concurrency: int, single: int
) -> tuple[float, list[float], list[float]]:
    """(ceiling docs/s, ceiling per-create seconds, sequential per-create seconds)."""
    tenant = f"growth_ceiling_{uuid.uuid4().hex[:6]}"
    with R2RClient(
        env["R2R_BASE_URL"],
        **login(env),
        max_connections=concurrency * 2,
        read_timeout=READ_TIMEOUT,
        retry_max_tries=1,
    ) as client:
        target = client.ensure_collection(collection_name(tenant, "none")).id

        def create(doc) -> float:
            source = source_document_from_onyx(doc)
            started = time.monotonic()
            client.create_document(
                document_id=r2r_document_id(tenant, source.document_id),
                chunks=split_text(
                    source.text or source.title or source.document_id,
                    chunk_size=settings.chunk_size,
                    chunk_overlap=settings.chunk_overlap,
                ),
                metadata={
                    "title": source.title,
                    "source_document_id": source.document_id,
                    "tenant_id": tenant,
                },
                collection_ids=[target],
                retry=False,
            )
            return time.monotonic() - started

        for doc in docs[:WARM]:  # warm-up (the first creates after a start are slow)
            create(doc)
        sequential = [create(doc) for doc in docs[WARM : WARM + single]]
        rest = docs[WARM + single :]
        started = time.monotonic()
        with ThreadPoolExecutor(concurrency) as pool:
            latencies = list(pool.map(create, rest))
        elapsed = time.monotonic() - started
    return len(rest) / elapsed, latencies, sequential


def bridge(settings: BridgeSettings, docs: list, concurrency: int) -> tuple[float, float, int]:
    """(docs/s, per-document seconds = C × elapsed / N, dead letters) of the full path."""
    tenant = f"growth_bridge_{uuid.uuid4().hex[:6]}"
    sender = R2RDocumentSender(tenant_id=tenant, settings=settings)
    with worker_process(settings, concurrency=concurrency):
        started = time.monotonic()
        for i in range(0, len(docs), 100):
            sender.send_batch(docs[i : i + 100])
        wait_synced(sender.ledger, tenant, timeout=7200)
        elapsed = time.monotonic() - started
    return (
        len(docs) / elapsed,
        concurrency * elapsed / len(docs),
        len(sender.ledger.dead_letters(tenant)),
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def measure(
    stack: PrivateStack, server: str, size: int, fill: GrowthFill, args: argparse.Namespace
) -> Measurement:
    """Restart R2R as *server* (same data) and measure ceiling, single and bridge."""
    env = stack.up(patched=server == "patched")
    settings = bench_settings(env, read_timeout=READ_TIMEOUT)
    owner_chunks, _ = fill.filler.owner_counts()
    ceiling_docs = corpus(args.docs + WARM + args.single, "ceiling")
    ceiling_rate, latencies, sequential = ceiling_and_single(
        env, settings, ceiling_docs, args.concurrency, args.single
    )
    bridge_rate, bridge_doc, dead = bridge(settings, corpus(args.docs, "bridge"), args.concurrency)
    m = Measurement(
        server=server,
        size=size,
        owner_chunks=owner_chunks,
        collections=len(fill.pool),
        bridge_docs_per_s=round(bridge_rate, 2),
        bridge_doc_ms=round(bridge_doc * 1000, 1),
        bridge_dead=dead,
        ceiling_docs_per_s=round(ceiling_rate, 2),
        ceiling_p50_ms=round(pct(latencies, 0.5), 1),
        ceiling_p95_ms=round(pct(latencies, 0.95), 1),
        single_p50_ms=round(statistics.median(sequential) * 1000, 1),
        load_1min=round(os.getloadavg()[0], 2),
    )
    print(
        f"  {server:7} at {owner_chunks:>9,} chunks: bridge {m.bridge_docs_per_s:6.2f} docs/s "
        f"({m.bridge_doc_ms:7.0f} ms/doc, {dead} dead)  ceiling {m.ceiling_docs_per_s:6.2f} docs/s "
        f"(p50 {m.ceiling_p50_ms:7.0f} ms, p95 {m.ceiling_p95_ms:7.0f} ms)  "
        f"single p50 {m.single_p50_ms:6.0f} ms  (load {m.load_1min:.1f})",
        flush=True,
    )
    return m


def report(results: list[Measurement], fills: list[dict], servers: list[str]) -> None:
    sizes = sorted({m.size for m in results})
    print("\n[growth] create throughput as R2R grows (docs/s; per-create ms)")
    header = f"  {'server':8}{'chunks':>11}  {'bridge':>8} {'ms/doc':>8}  {'ceiling':>8} {'p50':>7} {'p95':>7}  {'single':>7}"
    print(header)
    for server in servers:
        for m in (r for r in results if r.server == server):
            print(
                f"  {server:8}{m.owner_chunks:>11,}  {m.bridge_docs_per_s:8.2f} {m.bridge_doc_ms:8.0f}  "
                f"{m.ceiling_docs_per_s:8.2f} {m.ceiling_p50_ms:7.0f} {m.ceiling_p95_ms:7.0f}  "
                f"{m.single_p50_ms:7.0f}"
            )
    for server in servers:
        mine = {m.size: m for m in results if m.server == server}
        if len(sizes) < 2 or sizes[0] not in mine or sizes[-1] not in mine:
            continue
        lo, hi = mine[sizes[0]], mine[sizes[-1]]
        print(
            f"  {server}: at {hi.owner_chunks:,} vs {lo.owner_chunks:,} chunks: bridge "
            f"{hi.bridge_docs_per_s / lo.bridge_docs_per_s:.2f}x, ceiling "
            f"{hi.ceiling_docs_per_s / lo.ceiling_docs_per_s:.2f}x (target >= 0.8x)"
        )
    for fill in fills:
        print(
            f"  fill to {fill['owner_chunks']:,} chunks: +{fill['chunks']:,} chunks in "
            f"{fill['seconds']:.0f}s (+ VACUUM ANALYZE {fill['vacuum_seconds']:.0f}s, "
            f"{fill['collections']} collections)"
        )


def run(args: argparse.Namespace) -> None:
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    if not servers or set(servers) - {"stock", "patched"}:
        sys.exit("--servers takes stock, patched or both (comma-separated)")
    sizes = sorted(int(s) for s in args.sizes.split(","))
    results: list[Measurement] = []
    fills: list[dict] = []
    with private_stack(
        args.name, port=args.port, patched=servers[0] == "patched", keep=args.keep
    ) as stack:
        settings = bench_settings(stack.env, read_timeout=READ_TIMEOUT)
        fill = GrowthFill(
            stack, settings, templates=args.templates, fixed_collections=args.fixed_collections
        )
        try:
            print(
                f"[growth] {fill.templates} template documents, {len(fill.pool)} collections "
                f"({time.monotonic() - fill.started:.0f}s)",
                flush=True,
            )
            for size in sizes:
                result = fill.grow_to(size)
                fills.append({**asdict(result), "collections": len(fill.pool)})
                print(
                    f"[growth] {result.owner_chunks:,} chunks ({result.owner_documents:,} "
                    f"documents, {len(fill.pool)} collections): +{result.chunks:,} in "
                    f"{result.seconds:.0f}s, vacuum {result.vacuum_seconds:.0f}s",
                    flush=True,
                )
                for server in servers:
                    results.append(measure(stack, server, size, fill, args))
        finally:
            fill.close()
    report(results, fills, servers)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(
                {"results": [asdict(m) for m in results], "fills": fills, "args": vars(args)},
                out,
                indent=2,
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="chunks, comma-separated")
    parser.add_argument("--servers", default="stock,patched", help="stock, patched or both")
    parser.add_argument("--docs", type=int, default=200, help="documents per measurement")
    parser.add_argument("--single", type=int, default=15, help="sequential creates per measurement")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--templates", type=int, default=400)
    parser.add_argument(
        "--fixed-collections",
        type=int,
        default=0,
        help="keep the service account's collections at this number (default: ~1 per 100 documents)",
    )
    parser.add_argument("--port", type=int, default=7380)
    parser.add_argument("--name", default="growth")
    parser.add_argument("--keep", action="store_true", help="leave R2R's databases and directory")
    parser.add_argument("--json", help="also write the results to this file")
    run(parser.parse_args())
