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

Targets: bridge ≥ 3× naive and ≥ 0.9× direct.  All four authenticate the same way
(login JWT), so the comparison is about the architecture, not about R2R's per-request
bcrypt cost for API keys (reported separately as "naive with API key").

    .venv/bin/python bench/bench_throughput.py [--docs 200] [--concurrency 8]

With ``--fill-chunks N`` it runs against a private R2R (its own port and databases, see
private_stack.py; the shared stack is not used) that first holds N chunks owned by the
service account (r2r_fill.py, as the growth benchmark fills it); ``--server stock`` runs
that R2R without deployment/r2r/patches.
"""

from __future__ import annotations

import argparse
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from benchlib import bench_settings, onyx_documents, stack_env, wait_synced, worker_process
from private_stack import private_stack
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
    if not args.fill_chunks:
        measure(stack_env(), args)
        return
    with private_stack(
        "throughput", port=args.port, patched=args.server == "patched", keep=args.keep
    ) as private:
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
    with R2RClient(stack["R2R_BASE_URL"], max_connections=args.concurrency * 2, **login) as client:
        docs = corpus("ceiling")
        bare = DirectMirror(client, f"ceiling_{uuid.uuid4().hex[:6]}")
        target = bare.collection("none")

        def create_only(doc) -> None:
            source = source_document_from_onyx(doc)
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

        started = time.monotonic()
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(create_only, docs))
        results["ceiling"] = time.monotonic() - started
        bare.cleanup(docs)

    # bridge: the full path through the ledger and a real worker process
    tenant = f"bench_bridge_{uuid.uuid4().hex[:6]}"
    docs = corpus("bridge")
    sender = R2RDocumentSender(tenant_id=tenant, settings=settings)
    with worker_process(settings, concurrency=args.concurrency):
        started = time.monotonic()
        for i in range(0, len(docs), 100):
            sender.send_batch(docs[i : i + 100])
        wait_synced(sender.ledger, tenant)
        results["bridge"] = time.monotonic() - started
        dead = sender.ledger.dead_letters(tenant)
        sender.delete_documents([d.id for d in docs])
        wait_synced(sender.ledger, tenant)

    n = args.docs
    print(f"[1] mirroring {n} Onyx-shaped documents with ACLs, concurrency {args.concurrency}:")
    for name in ("naive", "direct", "bridge", "ceiling"):
        print(f"    {name:7} {results[name]:7.1f}s  {n / results[name]:6.1f} docs/s")
    print(
        f"    bridge / naive  = {results['naive'] / results['bridge']:.2f}x (target >= 3x)\n"
        f"    bridge / direct = {results['direct'] / results['bridge']:.2f}x (target >= 0.9x)\n"
        f"    R2R's ceiling / naive = {results['naive'] / results['ceiling']:.2f}x: no client "
        "that creates every document can beat this ratio on this server\n"
        f"    dead letters in the bridge run: {len(dead)}"
    )
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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--api-key-sample", type=int, default=10, help="0 skips it")
    parser.add_argument(
        "--fill-chunks",
        type=int,
        default=0,
        help="run on a private R2R first filled to this many chunks (0: the shared stack)",
    )
    parser.add_argument("--server", choices=("patched", "stock"), default="patched")
    parser.add_argument("--port", type=int, default=7381, help="the private R2R's port")
    parser.add_argument("--keep", action="store_true", help="leave the private R2R's data")
    run(parser.parse_args())
