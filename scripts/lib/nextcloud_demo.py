#!/usr/bin/env python3
"""The Nextcloud part of ``scripts/demo``: Context Chat's backend on a pluggable RAG store.

    .venv/bin/python scripts/lib/nextcloud_demo.py          (PYTHONPATH=backend/tests)

Always (a fresh machine): the patch sets and what they change, then the ExApp's AppAPI
lifecycle from the overlay (``ccbe/context_chat_backend/exapp``) against the fake Nextcloud
of the tests: ``/init``'s background job reporting progress for the default backend
(``r2r``), for the pinecone scaffold, and for supabase on a scratch database of the local
PostgreSQL, and the worker threads' gate answer for each.

With ``CCBE_SOURCE_DIR`` (a CCBE v5.3.x or v5.4.x checkout) and ``CCBE_VENV``: the real
thing. CCBE's own ``main.py`` is patched (``patches/apply --host ccbe``) and started against
the fake Nextcloud; AppAPI's lifecycle (heartbeat, init, enable), then 60 documents of 3
users are indexed (v5.4: from Nextcloud's queue; v5.3: through ``/loadSources``) into the
R2R of the stack once the R2R backend is real, upstream's pgvector until then, and each user
asks Context Chat for "the vault combination": the answer shows the retrieved context,
which holds that user's code and no other user's.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "backend" / "tests"))

from ccbe_pg import scratch_vector_database  # noqa: E402
from ccbe_shaped import load_generation, r2r_placeholder_reason  # noqa: E402
from fake_nextcloud import FakeNextcloud  # noqa: E402
from stack_helpers import read_stack_env, wait_until  # noqa: E402

APP_VERSION = "5.4.0"


def say(text: str) -> None:
    print(text, flush=True)


def patch_sets() -> None:
    say("== the CCBE patch sets (patches/ccbe; installed with patches/apply --host ccbe CHECKOUT)")
    for generation in sorted((REPO / "patches" / "ccbe").glob("v*")):
        rows = []
        for patch in sorted(generation.glob("*.patch")):
            lines = patch.read_text().splitlines()
            added = sum(1 for line in lines if line.startswith("+") and not line.startswith("+++"))
            removed = sum(
                1 for line in lines if line.startswith("-") and not line.startswith("---")
            )
            target = next(line[6:] for line in lines if line.startswith("+++ b/"))
            rows.append(f"   {patch.name:<22} {target:<45} +{added} -{removed}")
        say(f" {generation.name}:")
        say("\n".join(rows))


def lifecycle(stack: dict[str, str]) -> None:
    """The overlay's /init job and gate for three backends, against the fake Nextcloud."""
    import importlib

    from nc_py_api import NextcloudApp

    say("== the ExApp's /init job and worker-thread gate (overlay code, fake Nextcloud)")
    logging.getLogger("ccb").setLevel(logging.CRITICAL)  # what they log is printed below
    fake = FakeNextcloud(app_secret="demo-secret")
    with fake.serve() as url, tempfile.TemporaryDirectory() as storage:
        os.environ.update(fake.exapp_env(url, APP_VERSION))
        os.environ["APP_PERSISTENT_STORAGE"] = storage
        with scratch_vector_database(stack, "nextcloud_demo") as db:
            cases = [
                (
                    "r2r",
                    "the stack's R2R",
                    {
                        "R2R_BASE_URL": stack["R2R_BASE_URL"],
                        "R2R_EMAIL": stack["R2R_ADMIN_EMAIL"],
                        "R2R_PASSWORD": stack["R2R_ADMIN_PASSWORD"],
                    },
                ),
                (
                    "pinecone",
                    "a scaffold",
                    {"PINECONE_API_KEY": "demo-key", "PINECONE_INDEX": "demo"},
                ),
                ("supabase", "a scratch pgvector database", {"SUPABASE_DB_URL": db}),
                (
                    "supabase",
                    "a closed port",
                    {"SUPABASE_DB_URL": "postgresql://postgres:demo@127.0.0.1:1/postgres"},
                ),
            ]
            for backend, what, env in cases:
                package = load_generation("5.4")
                os.environ.update(env)
                types = importlib.import_module(f"{package.__name__}.types")
                init_job = importlib.import_module(f"{package.__name__}.exapp.init_job")
                readiness = importlib.import_module(f"{package.__name__}.exapp.readiness")
                # CCBE's embedding client (supabase embeds with it): the stack's stub
                embedding = {"base_url": f"{stack['EMBED_STUB_URL']}/v1"}
                config: Any = types.TConfig(vectordb=(backend, {}), embedding=embedding)
                fake.init_reports.clear()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    init_job.InitJob(config, models={}).run(NextcloudApp())
                gate = readiness.ConnectionGate(config).check_connection("files_indexing")
                last = fake.init_reports[-1]
                shown = ", ".join(str(r["progress"]) for r in fake.init_reports)
                say(f" RAG_BACKEND={backend:<9} ({what}: {', '.join(env)})")
                say(f"   /init progress {shown}; error: {last['error'] or '(none)'}")
                say(f"   worker threads may take work: {gate}")
                for key in env:
                    os.environ.pop(key, None)


def real_ccbe(source: Path, venv: Path, stack: dict[str, str]) -> None:
    from ccbe_e2e.corpus import CODES, USERS, build_corpus
    from ccbe_exapp_harness import (
        CcbeProcess,
        EmbedStub,
        ExAppClient,
        TcpGate,
        checkout_version,
        prepared_checkout,
        running,
    )

    reason = r2r_placeholder_reason()
    backend = "pgvector" if reason else "r2r"
    corpus = build_corpus()
    fake = FakeNextcloud(app_secret="demo-secret")
    with (
        tempfile.TemporaryDirectory() as tmp,
        scratch_vector_database(stack, "nextcloud_demo_ccbe") as db,
    ):
        checkout = prepared_checkout(source, Path(tmp) / "ccbe")
        version = checkout_version(checkout)
        pull = version.startswith("5.4")
        say(
            f"== real CCBE {version} ({'pull: queues + TaskProcessing' if pull else 'push: /loadSources, /query'}), RAG_BACKEND={backend}"
        )
        say(
            f"   patched a copy of {source} with patches/apply --host ccbe (patches/ccbe/v{version[:3]})"
        )
        if reason:
            say(f"   ({reason}; upstream's pgvector on a scratch database instead)")
        if pull:
            for doc in corpus.docs.values():
                fake.enqueue_document(doc.queue_item(), doc.text.encode() if doc.is_file else None)
        stub = EmbedStub().start()
        gate = TcpGate(("127.0.0.1", stub.port)).open()
        if backend == "r2r":
            store = {
                "R2R_BASE_URL": stack["R2R_BASE_URL"],
                "R2R_EMAIL": stack["R2R_ADMIN_EMAIL"],
                "R2R_PASSWORD": stack["R2R_ADMIN_PASSWORD"],
                "CCBE_R2R_INSTANCE": f"demo-{int(time.time())}",
            }
        else:
            store = {
                "CCB_DB_URL": db.replace("postgresql://", "postgresql+psycopg://"),
                "CC_EM_BASE_URL": f"{gate.url}/v1",
            }
        with running(stub, gate), fake.serve() as url:
            env = {**fake.exapp_env(url, version), "RAG_BACKEND": backend, **store}
            env.pop("APP_PORT")
            ccbe = CcbeProcess(checkout, venv, Path(tmp) / "storage", env)
            started = time.monotonic()
            with running(ccbe.start()):
                client = ExAppClient(ccbe.url, fake.app_id, version, fake.app_secret)
                say(
                    f"   main.py up in {time.monotonic() - started:.1f} s; GET /heartbeat → {client.request('GET', '/heartbeat').json()}"
                )
                client.request("POST", "/init")
                wait_until(
                    lambda: any(r["progress"] == 100 or r["error"] for r in fake.init_reports),
                    60,
                    0.2,
                    "/init",
                )
                say(f"   POST /init → progress {[r['progress'] for r in fake.init_reports]}")
                say(
                    f"   PUT /enabled?enabled=1 → {client.request('PUT', '/enabled', params={'enabled': 1}).json()}; providers: {sorted(fake.providers) or '(v5.3 registers none)'}"
                )
                started = time.monotonic()
                if pull:
                    wait_until(lambda: fake.pending_documents() == 0, 300, 1, "the documents queue")
                else:
                    docs = list(corpus.docs.values())
                    for i in range(0, len(docs), 15):
                        client.request(
                            "PUT", "/loadSources", files=[d.push_part() for d in docs[i : i + 15]]
                        )
                say(
                    f"   60 documents of {', '.join(USERS)} indexed in {time.monotonic() - started:.1f} s; counts: {client.request('POST', '/countIndexedDocuments').json()}"
                )
                for user in USERS:
                    if pull:
                        task = fake.schedule_task(
                            "context_chat:context_chat",
                            user,
                            {
                                "prompt": "What is the vault combination?",
                                "scopeType": "none",
                                "scopeList": [],
                                "scopeListMeta": "",
                            },
                        )
                        client.request(
                            "POST", "/trigger", params={"providerId": "context_chat-context_chat"}
                        )
                        wait_until(lambda t=task: t in fake.task_results, 180, 0.5, "the chat task")
                        output = fake.task_results[task]["output"]["output"]
                    else:
                        output = client.request(
                            "POST",
                            "/query",
                            json={"userId": user, "query": "What is the vault combination?"},
                        ).json()["output"]
                    own = CODES[user] in output
                    others = [code for u, code in CODES.items() if u != user and code in output]
                    line = next(
                        (ln.strip() for ln in output.splitlines() if "vault combination is" in ln),
                        "",
                    )
                    say(
                        f"   {user} asks → context holds {line!r}; own code: {own}; other users' codes: {others or 'none'}"
                    )


def main() -> int:
    stack = read_stack_env()
    patch_sets()
    lifecycle(stack)
    source = os.environ.get("CCBE_SOURCE_DIR", "")
    venv = os.environ.get("CCBE_VENV", "")
    if not (source and venv):
        say(
            "== real CCBE: set CCBE_SOURCE_DIR to a Context Chat Backend checkout (v5.3.x or v5.4.x) to run it here"
        )
        return 0
    real_ccbe(Path(source), Path(venv), stack)
    return 0


if __name__ == "__main__":
    sys.exit(main())
