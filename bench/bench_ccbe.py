"""CCBE's R2R backend vs upstream's pgvector backend, side by side in one run.

    STACK_DIR=… .venv/bin/python bench/bench_ccbe.py CCBE_SOURCE_DIR [--docs 1000]
        [--users 50] [--queries 200] [--count-docs 10000] [--shared]

The same corpus (``--docs`` sources, ``--users`` users, 3 providers; 1–3 users and two
CCBE-sized chunks per source, seeded) goes through both backends as CCBE calls them
(``add_indocuments`` in batches of 32, ``doc_search`` with k=10, ``count_documents_by_provider``),
each operation on a **freshly constructed backend** (CCBE builds one per operation, in a
fresh process). Both embed with one embedding stub: pgvector through CCBE's own client
(``CC_EM_BASE_URL``), R2R through its server configuration. pgvector runs on a scratch
database of the stack's PostgreSQL, R2R on a private R2R (``bench/private_stack.py``: its own
port, database and stub, so other people's tests neither disturb nor are disturbed; the
shared one with ``--shared``) under a fresh instance; both are removed afterwards.

Reported: indexing throughput (sources/s) and its ratio R2R/pgvector (target ≥ 1.0×),
``doc_search`` p50/p95 and their ratios (target p50 ≤ 1.2×), ``count_documents_by_provider``
(median of 5) at ``--docs`` and, with ``--count-docs``, after filling R2R's instance to
that many sources (target < 1 s), and the R2R login cost (first operation of a fresh token
store vs the next).

Without CCBE's package importable, the script prepares what it needs and runs itself again:
a copy of the checkout with overlay and engine installed (``patches/apply --host ccbe``) and
CCBE's virtualenv (``scripts/ccbe_venv``, shared with the contract and e2e tests).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PROVIDERS = ("files__default", "notes__default", "deck__cards")
BATCH = 32
K = 10
WORDS = (
    "radiator boiler invoice harbour crane pelican heron budget rota holiday vault combination "
    "meeting minutes quarterly revenue costs garden lighthouse otter kingfisher puffin project "
    "deadline contract review release schedule backup server network printer office kitchen "
    "parking badge travel expense report training policy security password laptop monitor"
).split()


# ------------------------------------------------------------------ preparation (project venv)
def prepare_and_rerun(args: argparse.Namespace, argv: list[str]) -> int:
    """Copy the checkout, install overlay + engine, get CCBE's venv, run again inside it
    (on a private R2R and embedding stub unless ``--shared``)."""
    if not args.shared:
        sys.path.insert(0, str(REPO / "bench"))
        from private_stack import private_stack

        with private_stack("ccbe", port=args.port) as stack:
            return _rerun(args, argv, str(stack.directory))
    return _rerun(args, argv, os.environ.get("STACK_DIR", str(REPO / ".stack")))


def _rerun(args: argparse.Namespace, argv: list[str], stack_dir: str) -> int:
    work = Path(tempfile.mkdtemp(prefix="bench-ccbe-"))
    try:
        copy = work / "ccbe"
        shutil.copytree(args.source, copy, ignore=shutil.ignore_patterns(".git"))
        subprocess.run(
            [str(REPO / "patches" / "apply"), "--host", "ccbe", str(copy)],
            check=True,
            capture_output=True,
        )
        venv = subprocess.run(
            [str(REPO / "scripts" / "ccbe_venv"), str(copy)],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "STACK_DIR": stack_dir},
        ).stdout.splitlines()[-1]
        env = {
            **os.environ,
            "STACK_DIR": stack_dir,
            "BENCH_CCBE_SRC": str(copy),
            "PYTHONPATH": f"{copy}:{REPO / 'backend' / 'tests'}:{REPO / 'backend'}",
            "HF_HUB_OFFLINE": "1",
            "CC_DOWNLOAD_MODELS_FROM_HF": "false",
        }
        return subprocess.run([f"{venv}/bin/python", __file__, *argv], env=env).returncode
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ------------------------------------------------------------------ the benchmark (CCBE venv)
def stack_values() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in (Path(os.environ["STACK_DIR"]) / "stack.env").read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not name.startswith("#"):
            values[name.strip()] = value.strip()
    return values


def corpus(n: int, users: int, seed: int, offset: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    names = [f"user{u:02d}" for u in range(users)]
    docs = []
    for i in range(offset, offset + n):
        provider = PROVIDERS[i % len(PROVIDERS)]
        chunks = [
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(120, 280))) for _ in range(2)
        ]
        docs.append(
            {
                "ref": f"{provider}: {i}",
                "provider": provider,
                "users": rng.sample(names, rng.randint(1, 3)),
                "chunks": chunks,
                "modified": 1_700_000_000 + i,
            }
        )
    return docs


def indocuments(docs: list[dict[str, Any]], first_key: int) -> dict[int, Any]:
    from context_chat_backend.chain.types import InDocument
    from langchain_core.documents import Document

    return {
        first_key + i: InDocument(
            documents=[
                Document(
                    page_content=c,
                    metadata={"source": d["ref"], "title": f"{d['ref']}.txt", "type": "text/plain"},
                )
                for c in d["chunks"]
            ],
            userIds=d["users"],
            source_id=d["ref"],
            provider=d["provider"],
            modified=d["modified"],
        )
        for i, d in enumerate(docs)
    }


@contextlib.contextmanager
def fresh(make: Any) -> Iterator[Any]:
    """A freshly constructed backend whose connections are closed after use, as the end of
    CCBE's per-operation process closes them (both backends pay the closing alike)."""
    backend = make()
    try:
        yield backend
    finally:
        close = getattr(backend, "close", None)
        if close is not None:
            close()  # r2r: the httpx pool
        engine = getattr(getattr(backend, "client", None), "_engine", None)
        if engine is not None:
            engine.dispose()  # pgvector: langchain-postgres' SQLAlchemy engine


def index(make: Any, docs: list[dict[str, Any]], threads: int = 1) -> float:
    """Seconds to index *docs* in batches of 32 (a fresh backend per batch)."""
    batches = [docs[i : i + BATCH] for i in range(0, len(docs), BATCH)]

    def one(numbered: tuple[int, list[dict[str, Any]]]) -> None:
        number, batch = numbered
        with fresh(make) as backend:
            result = backend.add_indocuments(indocuments(batch, number * BATCH))
        failed = {k: v for k, v in result.items() if v is not None}
        assert not failed, failed

    started = time.perf_counter()
    if threads == 1:
        for numbered in enumerate(batches):
            one(numbered)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, enumerate(batches)))
    return time.perf_counter() - started


def searches(make: Any, users: int, queries: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    timings = []
    for _ in range(queries):
        user = f"user{rng.randrange(users):02d}"
        query = " ".join(rng.choice(WORDS) for _ in range(4))
        started = time.perf_counter()
        with fresh(make) as backend:
            hits = backend.doc_search(user, query, K)
        timings.append(time.perf_counter() - started)
        assert len(hits) <= K
    return timings


def count_time(make: Any) -> tuple[float, dict[str, int]]:
    times, counts = [], {}
    for _ in range(5):
        started = time.perf_counter()
        with fresh(make) as backend:
            counts = backend.count_documents_by_provider()
        times.append(time.perf_counter() - started)
    return statistics.median(times), counts


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(args: argparse.Namespace) -> dict[str, Any]:
    import uuid

    from ccbe_pg import drop_database, fresh_vector_database, scratch_name, stack_server_url

    stack = stack_values()
    storage = tempfile.mkdtemp(prefix="bench-ccbe-storage-")
    instance = f"bench-{uuid.uuid4().hex[:8]}"
    os.environ.update(
        {
            "CC_EM_BASE_URL": stack["EMBED_STUB_URL"] + "/v1",
            "R2R_BASE_URL": stack["R2R_BASE_URL"],
            "R2R_EMAIL": stack["R2R_ADMIN_EMAIL"],
            "R2R_PASSWORD": stack["R2R_ADMIN_PASSWORD"],
            "CCBE_R2R_INSTANCE": instance,
            "APP_PERSISTENT_STORAGE": storage,
        }
    )
    os.environ.pop("R2R_API_KEY", None)
    from context_chat_backend import backends, config_parser

    app_config = config_parser.get_config(
        str(Path(os.environ["BENCH_CCBE_SRC"]) / "config.cpu.yaml")
    )

    def config_for(name: str, section: dict[str, Any] | None = None) -> Any:
        vectordb = backends.select_backend({name: section}, {"RAG_BACKEND": name})
        return app_config.model_copy(update={"vectordb": vectordb})

    server = stack_server_url()
    database = scratch_name("bench_ccbe_pgvector")
    url = fresh_vector_database(server, database).replace("postgresql://", "postgresql+psycopg://")
    pg_config = config_for("pgvector", {"connection": url})
    r2r_config = config_for("r2r")

    def pgvector() -> Any:
        return backends.load_backend(pg_config)

    def r2r() -> Any:
        return backends.load_backend(r2r_config)

    docs = corpus(args.docs, args.users, seed=7)
    results: dict[str, Any] = {"docs": args.docs, "users": args.users, "providers": 3}
    try:
        # the login: first operation of a fresh token store, then one with the stored token
        for label in ("first_op_with_login", "next_op_stored_token"):
            with fresh(r2r) as backend:
                started = time.perf_counter()
                backend.count_documents_by_provider()
                results[f"r2r_{label}_s"] = time.perf_counter() - started
                results[f"r2r_{label}_logins"] = backend.logins
        with fresh(pgvector):
            pass  # upstream creates its tables at construction: not part of the timing

        for name, make in (("pgvector", pgvector), ("r2r", r2r)):
            seconds = index(make, docs)
            results[f"{name}_index_docs_per_s"] = args.docs / seconds
            timings = searches(make, args.users, args.queries, seed=11)
            results[f"{name}_search_p50_ms"] = 1000 * pct(timings, 0.5)
            results[f"{name}_search_p95_ms"] = 1000 * pct(timings, 0.95)
            median, counts = count_time(make)
            results[f"{name}_count_ms"] = 1000 * median
            results[f"{name}_counts"] = counts
        results["index_ratio_r2r_over_pgvector"] = (
            results["r2r_index_docs_per_s"] / results["pgvector_index_docs_per_s"]
        )
        for q in ("p50", "p95"):
            results[f"search_{q}_ratio_r2r_over_pgvector"] = (
                results[f"r2r_search_{q}_ms"] / results[f"pgvector_search_{q}_ms"]
            )
        if args.count_docs > args.docs:
            extra = corpus(args.count_docs - args.docs, args.users, seed=13, offset=args.docs)
            for chunk in extra:
                chunk["chunks"] = chunk["chunks"][:1]
            results["r2r_fill_s"] = index(r2r, extra, threads=4)
            median, counts = count_time(r2r)
            results[f"r2r_count_ms_at_{args.count_docs}"] = 1000 * median
            results[f"r2r_counts_at_{args.count_docs}"] = counts
    finally:
        drop_database(server, database)
        from r2r_purge import purge_scope

        from onyx.r2r_sender import NEXTCLOUD, R2RClient

        with R2RClient(
            stack["R2R_BASE_URL"],
            email=stack["R2R_ADMIN_EMAIL"],
            password=stack["R2R_ADMIN_PASSWORD"],
        ) as client:
            purge_scope(client, NEXTCLOUD.scope(instance))
        shutil.rmtree(storage, ignore_errors=True)
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="a CCBE checkout (v5.4.x)")
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--count-docs", type=int, default=0)
    parser.add_argument(
        "--shared", action="store_true", help="use the shared stack's R2R (default: a private one)"
    )
    parser.add_argument("--port", type=int, default=7382, help="the private R2R's port")
    args = parser.parse_args(argv)
    if "BENCH_CCBE_SRC" not in os.environ:
        return prepare_and_rerun(args, argv)
    results = run(args)
    print(
        json.dumps(
            {k: round(v, 3) if isinstance(v, float) else v for k, v in results.items()}, indent=1
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
