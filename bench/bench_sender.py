"""Benchmarks 2 and 3 of the sync engine (issue 3), measured side by side in one run.

2. ``send_batch`` cost per 100-document batch vs what Onyx's docfetching pays to hand the
   same batch on: ``FileStoreDocumentBatchStorage.store_batch`` on its PostgreSQL file store
   (JSON + a Large Object + a file record, committed; emulated in ``onyx_file_store.py``).
   Target ≤ 1.0×.
3. Re-sync of N (default 10,000) unchanged documents that are mirrored in R2R:
   documents/s through the gate, R2R writes and embedding calls during the re-sync
   (targets: ≥ 2,000 docs/s, 0 writes).

    .venv/bin/python bench/bench_sender.py [--batches 30] [--resync 10000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid

import httpx
from benchlib import bench_settings, onyx_documents, stack_env, wait_synced, worker_process
from onyx_file_store import OnyxFileStoreEmulation
from redis import Redis
from sqlalchemy import text

from onyx.r2r_integration.onyx_shapes import source_document_from_onyx
from onyx.r2r_integration.sender import R2RDocumentSender
from onyx.r2r_sender.metrics import Counters
from onyx.r2r_sender.payload import prepare


def bench_send_batch(settings, batches: int) -> None:
    """Benchmark 2: ``send_batch`` of 100 new documents vs Onyx's ``store_batch`` of the same
    batch on its PostgreSQL file store (``onyx_file_store``), alternating which goes first."""
    tenant = f"bench_send_{uuid.uuid4().hex[:8]}"
    sender = R2RDocumentSender(tenant_id=tenant, settings=settings)
    store = OnyxFileStoreEmulation(settings.database_url)
    docs = onyx_documents(100 * (batches + 2), prefix=tenant)
    groups = [docs[i : i + 100] for i in range(0, len(docs), 100)]
    # warm-up of both: connections, the first doorbell, first-use caches
    sender.send_batch(groups[0])
    store.store_batch(0, groups[1])
    times: dict[str, list[float]] = {"send": [], "store": [], "json": [], "prep": []}
    payload = ""
    try:
        for n, group in enumerate(groups[2:], start=2):
            started = time.perf_counter()
            payload = json.dumps([d.model_dump(mode="json") for d in group], indent=2)
            times["json"].append(time.perf_counter() - started)

            def send(group=group) -> None:
                started = time.perf_counter()
                report = sender.send_batch(group)
                times["send"].append(time.perf_counter() - started)
                assert len(report.changed) == 100, report

            def persist(group=group, n=n) -> None:
                started = time.perf_counter()
                store.store_batch(n, group)
                times["store"].append(time.perf_counter() - started)

            for step in (send, persist) if n % 2 else (persist, send):
                step()
            started = time.perf_counter()
            for doc in group:  # what send_batch computes before it writes (no I/O)
                prepare(source_document_from_onyx(doc), settings, tenant)
            times["prep"].append(time.perf_counter() - started)
    finally:
        store.close()
    ms = {name: statistics.median(values) * 1000 for name, values in times.items()}
    # each pair ran back to back under the same load (the machine may be shared)
    pair_ratio = statistics.median(
        a / b for a, b in zip(times["send"], times["store"], strict=True)
    )
    print(
        f"[2] send_batch, 100 new documents ({len(payload) / 1024:.0f} KiB as Onyx's batch "
        f"JSON), median of {batches}, alternating order:"
    )
    print(
        f"    send_batch {ms['send']:.2f} ms   Onyx store_batch (JSON + PostgreSQL file store, "
        f"committed) {ms['store']:.2f} ms   ratio {ms['send'] / ms['store']:.2f}x of the "
        f"medians, {pair_ratio:.2f}x median of the pairs (target <= 1.0x)"
    )
    print(
        f"    of which: send_batch's validate+convert+hash {ms['prep']:.2f} ms, its ledger "
        f"write + doorbell {ms['send'] - ms['prep']:.2f} ms; Onyx's JSON alone "
        f"{ms['json']:.2f} ms, its file-store write {ms['store'] - ms['json']:.2f} ms"
    )
    unchanged = []
    for group in groups[2:]:
        started = time.perf_counter()
        sender.send_batch(group)
        unchanged.append(time.perf_counter() - started)
    gate_ms = statistics.median(unchanged) * 1000
    print(
        f"    same batches again (unchanged): {gate_ms:.2f} ms, ratio "
        f"{gate_ms / ms['store']:.2f}x store_batch"
    )
    # nothing of this tenant was applied (no worker ran): drop its rows, or the next
    # bench worker on the queue would mirror them
    with sender.ledger.engine.begin() as conn:
        for table in ("document_payload", "document_state"):
            conn.execute(
                text(f"DELETE FROM r2r_bridge.{table} WHERE tenant_id = :t"), {"t": tenant}
            )
    sender.ledger.engine.dispose()


def bench_resync(settings, count: int) -> None:
    tenant = f"bench_resync_{uuid.uuid4().hex[:8]}"
    sender = R2RDocumentSender(tenant_id=tenant, settings=settings)
    docs = onyx_documents(count, prefix=tenant, seed=3)
    for doc in docs:  # small documents: the point is the gate, not embedding
        doc.sections = doc.sections[:1]
        doc.sections[0].text = doc.sections[0].text[:300]
    counters = Counters(Redis.from_url(settings.broker_url))
    with worker_process(settings, concurrency=8):
        started = time.monotonic()
        for i in range(0, count, 500):
            sender.send_batch(docs[i : i + 500])
        wait_synced(sender.ledger, tenant, timeout=3 * 3600)
        first = time.monotonic() - started
        print(
            f"[3] first sync of {count} small documents into R2R: {first:.0f}s ({count / first:.1f} docs/s)"
        )
        writes_before = counters.get(tenant).get("r2r_writes", 0)
        stub = httpx.get(f"{stack['EMBED_STUB_URL']}/control").json()
        started = time.perf_counter()
        changed = 0
        for i in range(0, count, 500):
            changed += len(sender.send_batch(docs[i : i + 500]).changed)
        gate = time.perf_counter() - started
        time.sleep(3)  # let a worker pick up anything that (wrongly) became due
        writes = counters.get(tenant).get("r2r_writes", 0) - writes_before
        stub_after = httpx.get(f"{stack['EMBED_STUB_URL']}/control").json()
        embeds = stub_after["embedding_requests"] - stub["embedding_requests"]
        print(
            f"    re-sync of {count} unchanged documents: {gate:.2f}s = {count / gate:,.0f} docs/s through the gate "
            f"(target >= 2,000); changed={changed}, R2R writes={writes}, embedding calls={embeds} (target 0)"
        )
        # leave R2R as we found it
        sender.delete_documents([d.id for d in docs])
        wait_synced(sender.ledger, tenant, timeout=3600)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--resync", type=int, default=10_000, help="0 skips benchmark 3")
    args = parser.parse_args()
    stack = stack_env()
    settings = bench_settings(stack)
    bench_send_batch(settings, args.batches)
    if args.resync:
        bench_resync(settings, args.resync)
