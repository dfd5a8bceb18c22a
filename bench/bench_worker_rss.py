"""Benchmark 4 of the sync engine (issue 3): worker memory while mirroring many documents.

A real worker process mirrors N small documents (default 20,000); its RSS is sampled
after the first 1,000 and at the end.  Target: growth ≤ 50 MB from 1,000 to N.

    .venv/bin/python bench/bench_worker_rss.py [--docs 20000]
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid

from benchlib import bench_settings, onyx_documents, stack_env, wait_synced, worker_process

from onyx.r2r_integration.sender import R2RDocumentSender


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def run(args: argparse.Namespace) -> None:
    stack = stack_env()
    settings = bench_settings(stack)
    tenant = f"bench_rss_{uuid.uuid4().hex[:6]}"
    docs = onyx_documents(args.docs, prefix=tenant, seed=5)
    for doc in docs:
        doc.sections = doc.sections[:1]
        doc.sections[0].text = doc.sections[0].text[:400]
    sender = R2RDocumentSender(tenant_id=tenant, settings=settings)
    with worker_process(settings, concurrency=args.concurrency) as proc:
        samples: list[tuple[int, float]] = []
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                synced = args.docs - sender.ledger.pending_count(tenant)
                samples.append((synced, rss_mb(proc.pid)))
                time.sleep(2)

        for i in range(0, len(docs), 500):
            sender.send_batch(docs[i : i + 500])
        sampler = threading.Thread(target=sample, daemon=True)
        started = time.monotonic()
        sampler.start()
        wait_synced(sender.ledger, tenant, timeout=6 * 3600)
        done.set()
        sampler.join()
        elapsed = time.monotonic() - started
        at_1k = next(r for n, r in samples if n >= 1000)
        end = rss_mb(proc.pid)
        print(f"[4] worker RSS while mirroring {args.docs} documents ({elapsed:.0f}s):")
        print(
            f"    after 1,000: {at_1k:.1f} MB   after {args.docs:,}: {end:.1f} MB   growth {end - at_1k:+.1f} MB (target <= 50 MB)"
        )
        sender.delete_documents([d.id for d in docs])
        wait_synced(sender.ledger, tenant, timeout=6 * 3600)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=8)
    run(parser.parse_args())
