"""Benchmark 6: no document waits behind another (issue 15), ratios measured in one run.

1. **Head of line.** 24 normal documents alone, then the same 24 (new ids) pushed in one
   batch with a 5 MiB document and a 6,000-principal document: the time until the 24 are
   synced, with and without the slow pair.  Target: ≤ 2×.
2. **Many principals.** A document with 6,000 new principals applied by a real worker:
   wall time (target ≤ 2 min) and R2R requests per principal (target ≤ 1.1); a second
   document with the same, now known, principals (target ≤ 30 s).
3. **Recovery** (``--outage``): a backlog of 300 documents with R2R stopped for 60 s after
   the sync started, against the same backlog with R2R up: the time from R2R's return until everything is synced, divided by
   the time the whole backlog takes with R2R up.  Target: ≤ 1.5×.

    .venv/bin/python bench/bench_fairness.py [--outage] [--principals 6000] [--big-mib 5]

Real worker processes, the real ledger, Redis and an R2R of its own (``private_stack.py``:
the shared one is never touched); prints numbers, asserts nothing.
"""

from __future__ import annotations

import argparse
import subprocess
import time
import uuid

import httpx
from benchlib import bench_settings, stack_env, wait_synced, worker_process
from redis import Redis

from onyx.r2r_integration.sender import R2RDocumentSender
from onyx.r2r_sender.applier import Applier
from onyx.r2r_sender.collections import CollectionResolver
from onyx.r2r_sender.connect import make_client
from onyx.r2r_sender.ledger import Ledger, LockSession


def _doc(doc_id: str, text: str, acl: list[str]) -> dict:
    return {
        "id": doc_id,
        "sections": [{"text": text, "link": f"https://bench.example.com/{doc_id}"}],
        "semantic_identifier": doc_id,
        "source": "web",
        "metadata": {},
        "acl": acl,
    }


def _normal(prefix: str, n: int) -> list[dict]:
    return [
        _doc(f"{prefix}-{i:02d}", f"normal document {i} about release notes " * 40, ["PUBLIC"])
        for i in range(n)
    ]


def _big_text(mib: float) -> str:
    line = "the quick brown fox jumps over the lazy dog while the bench measures it\n"
    return line * int(mib * 1024 * 1024 / len(line))


def _wait_ids_synced(ledger: Ledger, tenant: str, ids: list[str], timeout: float = 3600) -> float:
    started = time.monotonic()
    while True:
        states = ledger.desired_of(tenant, ids)
        if len(states) == len(ids) and all(s.status == "synced" for s in states.values()):
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{tenant}: not synced after {timeout:.0f}s")
        time.sleep(0.1)


def head_of_line(settings, ledger: Ledger, principals: int, big_mib: float) -> None:
    alone_tenant = f"bench_hol_alone_{uuid.uuid4().hex[:6]}"
    mixed_tenant = f"bench_hol_mixed_{uuid.uuid4().hex[:6]}"
    with worker_process(settings):
        sender = R2RDocumentSender(tenant_id=alone_tenant, settings=settings, ledger=ledger)
        docs = _normal("n", 24)
        sender.send_batch(docs)
        alone = _wait_ids_synced(ledger, alone_tenant, [d["id"] for d in docs])
        sender = R2RDocumentSender(tenant_id=mixed_tenant, settings=settings, ledger=ledger)
        slow = [
            _doc("00-big", _big_text(big_mib), ["PUBLIC"]),
            _doc(
                "00-acl", "many readers", [f"user_email:r{i}@b.example" for i in range(principals)]
            ),
        ]
        sender.send_batch([*slow, *docs])  # the slow pair sorts first in the claim order
        mixed = _wait_ids_synced(ledger, mixed_tenant, [d["id"] for d in docs])
        print(
            f"1. head of line: 24 normal documents alone {alone:.1f}s; with a {big_mib} MiB "
            f"and a {principals}-principal document in the batch {mixed:.1f}s: "
            f"{mixed / alone:.2f}x (target <= 2x)"
        )
        wait_synced(ledger, mixed_tenant)


def many_principals(settings, ledger: Ledger, principals: int) -> None:
    tenant = f"bench_acl_{uuid.uuid4().hex[:6]}"
    requests: list[str] = []
    client = make_client(
        settings.credentials,
        settings,
        event_hooks={"request": [lambda r: requests.append(f"{r.method} {r.url.path}")]},
    )
    applier = Applier(client, CollectionResolver(client, ledger), settings)
    sender = R2RDocumentSender(tenant_id=tenant, settings=settings, ledger=ledger)
    acl = [f"user_email:p{i:05d}@bulk.example" for i in range(principals)]
    timings = []
    for name in ("first", "second"):
        sender.send_batch([_doc(f"acl-{name}", f"{name} document for many readers", acl)])
        requests.clear()
        started = time.monotonic()
        with LockSession(ledger.engine) as locks:
            for claim in ledger.claim(locks, tenant, 10):
                ledger.finalize_success(locks, claim, applier.apply(claim))
        timings.append((time.monotonic() - started, len(requests)))
    (t1, r1), (t2, r2) = timings
    print(
        f"2. {principals} new principals: {t1:.1f}s, {r1} requests = "
        f"{r1 / principals:.3f} per principal (targets <= 120 s, <= 1.1); "
        f"known principals: {t2:.1f}s, {r2} requests (target <= 30 s)"
    )
    client.close()


def outage(settings, ledger: Ledger, instance, count: int = 300) -> None:
    from benchlib import onyx_documents
    from private_stack import STACK

    environ = instance.stack_environ(patched=True)

    def run(down_for: float) -> tuple[float, float]:
        tenant = f"bench_out_{uuid.uuid4().hex[:6]}"
        docs = onyx_documents(count, prefix=tenant)
        sender = R2RDocumentSender(tenant_id=tenant, settings=settings, ledger=ledger)
        with worker_process(settings):
            started = time.monotonic()
            sender.send_batch(docs)
            back = started
            if down_for:
                time.sleep(3)
                subprocess.run([str(STACK), "stop-r2r"], check=True, env=environ)
                time.sleep(down_for)
                subprocess.run([str(STACK), "up", "--quiet"], check=True, env=environ)
                back = time.monotonic()
            wait_synced(ledger, tenant)
            ended = time.monotonic()
        return ended - started, ended - back

    up_total, _ = run(0)
    _, after = run(60)
    print(
        f"3. recovery: backlog of {count} with R2R up {up_total:.1f}s; after a 60 s outage, "
        f"synced {after:.1f}s after R2R returned: {after / up_total:.2f}x (target <= 1.5x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--principals", type=int, default=6000)
    parser.add_argument("--big-mib", type=float, default=5.0)
    parser.add_argument(
        "--outage", action="store_true", help="also measure recovery (on a private R2R)"
    )
    parser.add_argument("--only", choices=["hol", "principals", "outage"])
    args = parser.parse_args()
    stack_env()  # the shared stack's R2R virtualenv seeds the private one
    from private_stack import private_stack

    # everything on a private R2R of its own: numbers unaffected by other tests' restarts of
    # the shared one, and the outage part can stop it
    with private_stack("fairness", port=7373) as instance:
        settings = bench_settings(instance.env)
        ledger = Ledger.from_settings(settings)
        Redis.from_url(settings.broker_url).ping()
        httpx.get(f"{settings.r2r_base_url}/v3/health", timeout=10).raise_for_status()
        if args.only in (None, "hol"):
            head_of_line(settings, ledger, args.principals, args.big_mib)
        if args.only in (None, "principals"):
            many_principals(settings, ledger, args.principals)
        if args.outage or args.only == "outage":
            outage(settings, ledger, instance)


if __name__ == "__main__":
    main()
