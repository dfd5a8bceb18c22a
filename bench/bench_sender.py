"""Benchmarks 2 and 3 of the sync engine (issue 3), measured side by side in one run.

2. ``send_batch`` cost per 100-document batch vs JSON-serialising that batch the way
   Onyx's docfetching stores it (``json.dumps([d.model_dump(mode="json") …], indent=2)``,
   file_store/document_batch_storage.py).  Target ≤ 0.5×.
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
from redis import Redis
from sqlalchemy import create_engine, text

from onyx.r2r_integration.onyx_shapes import source_document_from_onyx
from onyx.r2r_integration.sender import R2RDocumentSender
from onyx.r2r_sender.metrics import Counters
from onyx.r2r_sender.payload import prepare


def _durable_floor(settings, group) -> float:
    """Seconds to durably store *group*'s text the cheapest way: one INSERT + COMMIT.

    The bare minimum any design that records the content synchronously pays (same
    PostgreSQL, same bytes, a scratch table without indexes besides its key).
    """
    texts = [source_document_from_onyx(d).text for d in group]
    ids = [f"{uuid.uuid4()}" for _ in group]
    engine = create_engine(settings.database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "CREATE TABLE IF NOT EXISTS public.bench_floor (id text PRIMARY KEY, body text)"
                )
            )
        with engine.connect() as conn:
            started = time.perf_counter()
            with conn.begin():
                conn.execute(
                    text(
                        "INSERT INTO public.bench_floor "
                        "SELECT * FROM unnest(CAST(:i AS text[]), CAST(:b AS text[]))"
                    ),
                    {"i": ids, "b": texts},
                )
            return time.perf_counter() - started
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS public.bench_floor"))
        engine.dispose()


def bench_send_batch(settings, batches: int) -> None:
    tenant = f"bench_send_{uuid.uuid4().hex[:8]}"
    sender = R2RDocumentSender(tenant_id=tenant, settings=settings)
    docs = onyx_documents(100 * (batches + 2), prefix=tenant)
    groups = [docs[i : i + 100] for i in range(0, len(docs), 100)]
    sender.send_batch(groups[0])  # warm-up: connections, first doorbell
    json.dumps([d.model_dump(mode="json") for d in groups[1]], indent=2)
    send_times, json_times, floor_times, prep_times = [], [], [], []
    for group in groups[2:]:
        started = time.perf_counter()
        payload = json.dumps([d.model_dump(mode="json") for d in group], indent=2)
        json_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        report = sender.send_batch(group)
        send_times.append(time.perf_counter() - started)
        assert len(report.changed) == 100, report
        floor_times.append(_durable_floor(settings, group))
        started = time.perf_counter()
        for doc in group:  # what send_batch computes before it writes (no I/O)
            prepare(source_document_from_onyx(doc), settings, tenant)
        prep_times.append(time.perf_counter() - started)
    size = len(payload) / 1024
    ms = {
        name: statistics.median(values) * 1000
        for name, values in (
            ("send", send_times),
            ("json", json_times),
            ("floor", floor_times),
            ("prep", prep_times),
        )
    }
    print(
        f"[2] send_batch, 100 new documents ({size:.0f} KiB as Onyx's batch JSON), median of {batches}:"
    )
    print(
        f"    send_batch {ms['send']:.2f} ms   Onyx batch JSON {ms['json']:.2f} ms   "
        f"ratio {ms['send'] / ms['json']:.2f}x (target <= 0.5x)"
    )
    print(
        f"    of which: validate+hash {ms['prep']:.2f} ms; the ledger write "
        f"{ms['send'] - ms['prep']:.2f} ms against a bare durable INSERT+COMMIT of the same "
        f"text {ms['floor']:.2f} ms (floor ratio {ms['floor'] / ms['json']:.2f}x)"
    )
    unchanged = []
    for group in groups[2:]:
        started = time.perf_counter()
        sender.send_batch(group)
        unchanged.append(time.perf_counter() - started)
    gate_ms = statistics.median(unchanged) * 1000
    print(
        f"    same batches again (unchanged): {gate_ms:.2f} ms, ratio {gate_ms / ms['json']:.2f}x"
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
