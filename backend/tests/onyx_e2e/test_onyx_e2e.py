"""End to end: a real Onyx (API server + its Celery workers) with R2R as its only index.

Run by ``scripts/onyx_e2e ONYX_SOURCE_DIR`` (see the script for what it prepares); the
tests run in file order against one running Onyx (session fixture ``onyx``) and check
through Onyx's HTTP API and R2R's:

1. Onyx is up in replace mode; nothing but R2R serves as its index.
2. A file connector's documents land in R2R with their ACL collections and are found by
   Onyx's keyword search (admin search) and hybrid search (the search page's API).
3. A document set becomes an R2R collection and Onyx's document-set filter uses it.
4. The ingestion API: a document posted to Onyx is searchable; deleted, it leaves R2R.
5. A poll connector (BookStack, against ``tests/fake_bookstack.py``) picks up an edit, and
   pruning removes a document deleted at the source.
6. ``kill -9`` of the mirror worker while a connector indexes loses nothing.
7. A full re-run of an unchanged connector makes zero R2R writes.
8. Deleting a connector empties R2R of its documents.
9. With the export switched off, Onyx behaves as upstream: the patched factory hands Onyx
   exactly what the pristine factory does, and Onyx makes no further R2R writes.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fake_bookstack import FakeBookStack

from .conftest import ENV_FILE, SKIP_REASON, OnyxE2E
from .onyx_api import unique_word, wait_for

if not ENV_FILE:
    pytest.skip(SKIP_REASON, allow_module_level=True)

pytestmark = [pytest.mark.onyx_e2e, pytest.mark.integration]

SEARCH_TIMEOUT = 180.0  # connector created → its documents searchable


def _found(results: list[dict[str, Any]]) -> set[str]:
    return {doc["document_id"] for doc in results}


def _file_connector(onyx: OnyxE2E, name: str, files: dict[str, str]) -> dict[str, Any]:
    """Upload *files* and create a file connector; returns ids, document ids, start time."""
    upload = onyx.api.upload_files({fname: text.encode() for fname, text in files.items()})
    created = datetime.now(UTC)
    ids = onyx.api.create_cc_pair(
        name=name,
        source="file",
        input_type="load_state",
        connector_config={
            "file_locations": upload["file_paths"],
            "file_names": upload["file_names"],
            "zip_metadata_file_id": upload.get("zip_metadata_file_id"),
        },
        credential_json={},
    )
    doc_ids = [f"FILE_CONNECTOR__{path}" for path in upload["file_paths"]]
    return {"ids": ids, "doc_ids": doc_ids, "created": created, "t0": time.monotonic()}


# --------------------------------------------------------------------------- 1. up
def test_onyx_runs_with_r2r_as_its_only_index(onyx: OnyxE2E) -> None:
    for name, process in onyx.procs.procs.items():
        assert process.alive(), f"{name} died:\n{process.log()[-2000:]}"
    assert onyx.api.me()["email"].startswith("admin-")
    # replace mode through the environment; no Vespa, OpenSearch or model server here
    assert onyx.env["ONYX_EXPORT_R2R"] == "true" and onyx.env["R2R_EXPORT_MODE"] == "replace"
    assert onyx.env["ONYX_DISABLE_VESPA"] == "true"
    assert onyx.env["ENABLE_OPENSEARCH_INDEXING_FOR_ONYX"] == "false"
    assert onyx.env["DISABLE_MODEL_SERVER"] == "true"
    api_log = onyx.procs.procs["api"].log()
    # Onyx's own start-up set the index up through the patched factory: R2RIndex only
    assert "Document index R2RIndex setup complete" in api_log
    assert "Vespa" not in api_log.split("Application startup complete")[0].replace(
        "ONYX_DISABLE_VESPA", ""
    )


# ------------------------------------------------------------------ 2. file connector
def test_file_connector_lands_in_r2r_with_acl_and_is_searchable(onyx: OnyxE2E) -> None:
    word, shared = unique_word(), unique_word()
    onyx.state["shared_word"] = shared
    files = {
        f"lighthouse-{word}.txt": f"The {word} lighthouse keeper logs {shared} storms nightly.",
        f"windmill-{word}.txt": f"A {word} windmill grinds grain; {shared} wind powers it.",
        f"harbour-{word}.txt": f"The {word} harbour master counts {shared} ships at dawn.",
    }
    conn = _file_connector(onyx, f"files-a-{word}", files)
    onyx.state["files_a"] = conn
    doc_ids = conn["doc_ids"]

    indexed = onyx.api.wait_for_index_success(conn["ids"]["cc_pair_id"], conn["created"])
    onyx.timings.record("file connector: Onyx index attempt succeeded", indexed)
    wait_for(lambda: onyx.synced(doc_ids), timeout=SEARCH_TIMEOUT, what="ledger synced")
    wait_for(
        lambda: _found(onyx.api.keyword_search(word)) >= set(doc_ids),
        timeout=SEARCH_TIMEOUT,
        what="keyword search finds the file connector's documents",
    )
    onyx.timings.record(
        "file connector: created → found by Onyx keyword search", time.monotonic() - conn["t0"]
    )
    hybrid = _found(onyx.api.hybrid_search(word))
    assert hybrid >= set(doc_ids), f"hybrid search found {hybrid}, wanted {doc_ids}"

    # in R2R: one live document each, with the public ACL collection and the owner's
    in_r2r = onyx.r2r_documents(doc_ids)
    assert set(in_r2r) == set(doc_ids)
    for doc_id, doc in in_r2r.items():
        assert doc.ingestion_status == "success", (doc_id, doc.ingestion_status)
        labels = onyx.collection_labels(doc.id)
        assert "acl:PUBLIC" in labels, (doc_id, labels)
        assert onyx.ledger_rows([doc_id])[doc_id]["applied_labels"] is not None
        assert set(onyx.ledger_rows([doc_id])[doc_id]["applied_labels"]) <= labels


# ------------------------------------------------------------------ 3. document set
def test_document_set_becomes_a_collection_and_filters(onyx: OnyxE2E) -> None:
    shared = onyx.state["shared_word"]
    word = unique_word()
    other = _file_connector(
        onyx,
        f"files-b-{word}",
        {
            f"orchard-{word}.txt": f"The {word} orchard grows apples near {shared} hills.",
            f"bakery-{word}.txt": f"A {word} bakery sells bread to {shared} travellers.",
        },
    )
    onyx.state["files_b"] = other
    onyx.api.wait_for_index_success(other["ids"]["cc_pair_id"], other["created"])
    a_docs = onyx.state["files_a"]["doc_ids"]
    wait_for(
        lambda: _found(onyx.api.keyword_search(shared)) >= set(a_docs) | set(other["doc_ids"]),
        timeout=SEARCH_TIMEOUT,
        what="both connectors searchable",
    )

    set_name = f"e2e-set-{word}"
    t0 = time.monotonic()
    onyx.api.create_document_set(set_name, [onyx.state["files_a"]["ids"]["cc_pair_id"]])
    label = f"set:{set_name}"

    def in_collection() -> bool:
        docs = onyx.r2r_documents(a_docs)
        return len(docs) == len(a_docs) and all(
            label in onyx.collection_labels(doc.id) for doc in docs.values()
        )

    wait_for(in_collection, timeout=SEARCH_TIMEOUT, interval=2.0, what="document set in R2R")
    onyx.timings.record(
        "document set: created → R2R collection holds its documents", time.monotonic() - t0
    )
    # Onyx's document-set sync finishes (the set is up to date) …
    wait_for(
        lambda: any(s["name"] == set_name and s["is_up_to_date"] for s in onyx.api.document_sets()),
        timeout=SEARCH_TIMEOUT,
        what="Onyx marks the document set up to date",
    )
    # … and its filter narrows both searches to the set's documents
    for search in (onyx.api.hybrid_search, onyx.api.keyword_search):
        unfiltered = _found(search(shared))
        assert set(other["doc_ids"]) <= unfiltered
        if search is onyx.api.hybrid_search:
            filtered = _found(search(shared, document_set=[set_name]))
        else:
            filtered = _found(search(shared, document_set=[set_name]))
        assert filtered == set(a_docs), f"{search.__name__}: {filtered} != {set(a_docs)}"
    for doc in onyx.r2r_documents(other["doc_ids"]).values():
        assert label not in onyx.collection_labels(doc.id)


# ------------------------------------------------------------------ 4. ingestion API
def test_ingestion_api_document_is_searchable_and_deleted(onyx: OnyxE2E) -> None:
    word = unique_word()
    doc_id = f"e2e-ingest-{word}"
    t0 = time.monotonic()
    onyx.api.ingest(
        {
            "id": doc_id,
            "semantic_identifier": f"Ingested {word}",
            "sections": [
                {"text": f"The {word} report arrived through the ingestion API.", "link": None}
            ],
            "source": "ingestion_api",
            "metadata": {},
            "from_ingestion_api": True,
        }
    )
    wait_for(
        lambda: doc_id in _found(onyx.api.keyword_search(word)),
        timeout=SEARCH_TIMEOUT,
        what="ingested doc searchable",
    )
    onyx.timings.record("ingestion API: posted → found by keyword search", time.monotonic() - t0)
    assert doc_id in _found(onyx.api.hybrid_search(word))
    assert set(onyx.r2r_documents([doc_id])) == {doc_id}

    onyx.api.delete_ingested(doc_id)
    wait_for(
        lambda: (
            (row := onyx.ledger_rows([doc_id]).get(doc_id)) is not None and row["applied_deleted"]
        ),
        timeout=SEARCH_TIMEOUT,
        what="ingested doc deleted in R2R",
    )
    assert onyx.r2r_documents_of(doc_id) == []
    assert doc_id not in _found(onyx.api.keyword_search(word))


# ------------------------------------------------------------------ 5. poll connector
def test_poll_connector_picks_up_an_edit_and_a_deletion(onyx: OnyxE2E) -> None:
    word, edited, gone = unique_word(), unique_word(), unique_word()
    base = int(time.time() * 1000) % 10_000_000 + 10_000_000  # ids unique to this run
    book_keep, book_drop, page = base, base + 1, base + 2
    with FakeBookStack() as fake:
        fake.add_book(book_keep, f"Keeper {word}", f"The {word} book that stays.")
        fake.add_book(book_drop, f"Dropped {word}", f"The {word} book that goes {gone}.")
        fake.add_page(page, book_keep, f"Page {word}", f"<p>The {word} page, first draft.</p>")
        created = datetime.now(UTC)
        t0 = time.monotonic()
        ids = onyx.api.create_cc_pair(
            name=f"bookstack-{word}",
            source="bookstack",
            input_type="poll",
            connector_config={},
            credential_json={
                "bookstack_base_url": fake.url,
                "bookstack_api_token_id": "e2e",
                "bookstack_api_token_secret": "e2e-secret",
            },
            refresh_freq=3600,
        )
        onyx.state["bookstack"] = ids
        doc_ids = [f"book__{book_keep}", f"book__{book_drop}", f"page:{page}"]
        onyx.api.wait_for_index_success(ids["cc_pair_id"], created)
        wait_for(
            lambda: _found(onyx.api.keyword_search(word)) >= set(doc_ids),
            timeout=SEARCH_TIMEOUT,
            what="bookstack searchable",
        )
        onyx.timings.record(
            "poll connector: created → found by keyword search", time.monotonic() - t0
        )

        # an edit at the source: the next poll (not from the beginning) picks it up
        time.sleep(1.5)
        fake.edit_page(page, f"<p>The {word} page, revised with {edited} notes.</p>")
        polled = datetime.now(UTC)
        t0 = time.monotonic()
        onyx.api.run_once(ids, from_beginning=False)
        onyx.api.wait_for_index_success(ids["cc_pair_id"], polled)
        wait_for(
            lambda: _found(onyx.api.keyword_search(edited)) == {f"page:{page}"},
            timeout=SEARCH_TIMEOUT,
            what="edit searchable",
        )
        onyx.timings.record(
            "poll connector: edit polled → found by keyword search", time.monotonic() - t0
        )
        assert f"page:{page}" in _found(onyx.api.hybrid_search(edited))
        assert len(onyx.r2r_documents_of(f"page:{page}")) == 1, "the old version is still in R2R"

        # a deletion at the source: pruning removes the document from Onyx and R2R
        fake.delete_book(book_drop)
        t0 = time.monotonic()
        onyx.api.prune(ids["cc_pair_id"])
        wait_for(
            lambda: (
                (row := onyx.ledger_rows([f"book__{book_drop}"]).get(f"book__{book_drop}"))
                is not None
                and row["applied_deleted"]
            ),
            timeout=SEARCH_TIMEOUT,
            interval=2.0,
            what="pruned book deleted in R2R",
        )
        onyx.timings.record(
            "poll connector: source deletion pruned → gone from R2R", time.monotonic() - t0
        )
        assert onyx.r2r_documents_of(f"book__{book_drop}") == []
        assert f"book__{book_drop}" not in _found(onyx.api.keyword_search(gone))
        assert set(onyx.r2r_documents([f"book__{book_keep}", f"page:{page}"])) == {
            f"book__{book_keep}",
            f"page:{page}",
        }


# ------------------------------------------------------------------ 6. kill -9 mirror
def test_kill9_of_the_mirror_worker_mid_index_loses_nothing(onyx: OnyxE2E) -> None:
    word = unique_word()
    files = {
        f"note-{i:02d}-{word}.txt": f"Note {i} of {word}: "
        + " ".join(f"w{i}x{j}" for j in range(60))
        for i in range(24)
    }
    conn = _file_connector(onyx, f"files-k9-{word}", files)
    doc_ids = conn["doc_ids"]
    # kill the mirror as soon as Onyx has recorded the first of them, before all are applied
    wait_for(
        lambda: onyx.ledger_rows(doc_ids),
        timeout=SEARCH_TIMEOUT,
        interval=0.2,
        what="first recorded",
    )
    rows = onyx.ledger_rows(doc_ids)
    applied_before = sum(1 for r in rows.values() if r["status"] == "synced")
    onyx.procs.kill9("mirror")
    killed_at = time.monotonic()
    assert applied_before < len(doc_ids), "the mirror had applied everything before the kill"
    onyx.api.wait_for_index_success(conn["ids"]["cc_pair_id"], conn["created"])
    onyx.procs.start("mirror")
    onyx.procs.wait_ready("mirror")
    wait_for(
        lambda: onyx.synced(doc_ids),
        timeout=SEARCH_TIMEOUT,
        interval=2.0,
        what="all synced after restart",
    )
    onyx.timings.record(
        "kill -9 mirror: restart → every document applied", time.monotonic() - killed_at
    )
    assert set(onyx.r2r_documents(doc_ids)) == set(doc_ids)
    found = _found(onyx.api.keyword_search(word))
    assert found >= set(doc_ids), f"missing after kill -9: {set(doc_ids) - found}"
    for doc_id in doc_ids:
        assert len(onyx.r2r_documents_of(doc_id)) == 1, f"{doc_id}: duplicate or missing in R2R"
    onyx.state["files_k9"] = conn


# ------------------------------------------------------------------ 7. unchanged re-run
def test_full_rerun_of_an_unchanged_connector_makes_zero_r2r_writes(onyx: OnyxE2E) -> None:
    conn = onyx.state["files_a"]
    doc_ids = conn["doc_ids"]
    wait_for(lambda: onyx.synced(doc_ids), timeout=SEARCH_TIMEOUT, what="synced before the re-run")
    before = onyx.ledger_rows(doc_ids)
    writes_before = onyx.r2r_writes()
    started = datetime.now(UTC)
    t0 = time.monotonic()
    onyx.api.run_once(conn["ids"], from_beginning=True)
    onyx.api.wait_for_index_success(conn["ids"]["cc_pair_id"], started)
    onyx.timings.record(
        "full re-run of an unchanged file connector (3 documents)", time.monotonic() - t0
    )
    # let the mirror drain whatever the re-run recorded
    wait_for(lambda: onyx.synced(doc_ids), timeout=SEARCH_TIMEOUT, what="synced after the re-run")
    time.sleep(5)
    after = onyx.ledger_rows(doc_ids)
    writes = onyx.r2r_writes() - writes_before
    changed = {
        doc_id: (before[doc_id]["desired_version"], after[doc_id]["desired_version"])
        for doc_id in doc_ids
        if after[doc_id]["desired_version"] != before[doc_id]["desired_version"]
        or after[doc_id]["applied_r2r_id"] != before[doc_id]["applied_r2r_id"]
    }
    onyx.timings.note(f"full re-run of an unchanged connector: {writes} R2R writes")
    assert writes == 0 and not changed, (
        f"a full re-run of an unchanged connector made {writes} R2R writes; "
        f"new versions: {json.dumps(changed, default=str)}"
    )


# ------------------------------------------------------------------ 8. connector deletion
def test_connector_deletion_empties_r2r_of_its_documents(onyx: OnyxE2E) -> None:
    conn = onyx.state["files_b"]
    doc_ids = conn["doc_ids"]
    assert set(onyx.r2r_documents(doc_ids)) == set(doc_ids)
    t0 = time.monotonic()
    onyx.api.delete_cc_pair(conn["ids"])
    wait_for(
        lambda: onyx.api.indexing_status(conn["ids"]["cc_pair_id"]) is None,
        timeout=SEARCH_TIMEOUT,
        interval=2.0,
        what="Onyx deleted the cc-pair",
    )
    wait_for(
        lambda: all(r["applied_deleted"] for r in onyx.ledger_rows(doc_ids).values()),
        timeout=SEARCH_TIMEOUT,
        interval=2.0,
        what="R2R deletes applied",
    )
    onyx.timings.record("connector deletion → R2R empty of its documents", time.monotonic() - t0)
    for doc_id in doc_ids:
        assert onyx.r2r_documents_of(doc_id) == [], f"{doc_id} still in R2R"
    assert not set(doc_ids) & _found(onyx.api.keyword_search(onyx.state["shared_word"]))


# ------------------------------------------------------------------ 9. export off
FACTORY_PROBE = r"""
import json, os, sys
from onyx.db.engine.sql_engine import SqlEngine, get_session_with_current_tenant
from onyx.db.search_settings import get_current_search_settings
from onyx.document_index.factory import get_all_document_indices, get_default_document_index

SqlEngine.init_engine(pool_size=2, max_overflow=0)
out = {}
with get_session_with_current_tenant() as session:
    settings = get_current_search_settings(session)
    for name, call in (
        ("get_all_document_indices", lambda: get_all_document_indices(settings, None)),
        ("get_default_document_index", lambda: get_default_document_index(settings, None, session)),
    ):
        try:
            result = call()
            items = result if isinstance(result, list) else [result]
            out[name] = [type(item).__name__ for item in items]
        except Exception as exc:
            out[name] = f"{type(exc).__name__}: {exc}"
try:
    from onyx.background.indexing import r2r_export
    out["docfetching exporter"] = repr(r2r_export.exporter_for_attempt("public", is_primary=True))
except ImportError:
    out["docfetching exporter"] = "None"  # pristine Onyx: no exporter at all
print("PROBE " + json.dumps(out, sort_keys=True))
"""


def _factory_probe(onyx: OnyxE2E, backend: Path, env: dict[str, str]) -> dict[str, Any]:
    full_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        **onyx.env,
        **env,
        "PYTHONPATH": f"{backend}:{onyx.env['PYTHONPATH'].split(':', 1)[1]}",
        "LOG_LEVEL": "error",
    }
    full_env = {k: v for k, v in full_env.items() if v is not None}
    done = subprocess.run(
        [str(onyx.procs.venv / "bin" / "python"), "-c", FACTORY_PROBE],
        cwd=backend,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("PROBE ")]
    assert lines, f"factory probe failed ({done.returncode}):\n{done.stderr[-3000:]}"
    return json.loads(lines[-1][len("PROBE ") :])


def test_export_off_onyx_behaves_as_upstream(onyx: OnyxE2E) -> None:
    pristine = Path(os.environ["ONYX_E2E_PRISTINE"]) / "backend"
    patched = Path(os.environ["ONYX_E2E_SRC"]) / "backend"
    off = {"ONYX_EXPORT_R2R": "false", "R2R_EXPORT_MODE": "", "ONYX_INDEX_BACKEND": ""}
    t0 = time.monotonic()
    # 1. what the factory hands Onyx: the same as the pristine factory, for this install's
    #    settings (no Vespa, no OpenSearch) and for a Vespa install
    for variant in ({}, {"ONYX_DISABLE_VESPA": "false"}):
        upstream = _factory_probe(onyx, pristine, {**off, **variant})
        ours = _factory_probe(onyx, patched, {**off, **variant})
        onyx.timings.note(f"export off {variant or 'as installed'}: factory hands Onyx {ours}")
        assert ours == upstream, f"{variant}: patched {ours} != pristine {upstream}"
        assert "R2R" not in json.dumps(ours)
        assert ours["docfetching exporter"] == "None"
    onyx.timings.record(
        "export off: factory probes (pristine vs patched, 2 settings)", time.monotonic() - t0
    )

    # 2. Onyx itself with the export off: the patched API server, restarted without the
    #    switch, stops at start-up exactly as the pristine Onyx does with these settings
    #    (no Vespa, no OpenSearch: upstream refuses to run without an index), and nothing
    #    reaches the ledger or R2R meanwhile
    # earlier checks' documents all applied first, so any later write would be new
    wait_for(
        lambda: onyx.ledger_unsettled() == 0,
        timeout=SEARCH_TIMEOUT,
        interval=2.0,
        what="the mirror idle",
    )
    writes_before, ledger_before = onyx.r2r_writes(), onyx.ledger_count()
    onyx.procs.stop("api")
    runs = (("api-export-off", patched), ("api-pristine", pristine))
    for name, backend in runs:  # side by side: each stops during its start-up
        path = f"{backend}:{onyx.env['PYTHONPATH'].split(':', 1)[1]}"
        onyx.procs.start(
            name, kind="api", extra_env={**off, "PYTHONPATH": path}, backend_dir=backend
        )
    outcomes = {}
    for name, _ in runs:
        code = onyx.procs.wait_exit(name)
        errors = [
            line.strip()
            for line in onyx.procs.procs[name].log().splitlines()
            if line.startswith(("ValueError", "RuntimeError", "Exception"))
        ]
        outcomes[name] = (code, errors[-1] if errors else "(no error line)")
    onyx.timings.note(f"export off: API server start-up, patched vs pristine: {outcomes}")
    assert outcomes["api-export-off"] == outcomes["api-pristine"], outcomes
    assert outcomes["api-pristine"][0] != 0
    assert "ONYX_DISABLE_VESPA" in outcomes["api-pristine"][1], outcomes
    time.sleep(3)
    assert onyx.r2r_writes() == writes_before, "R2R writes with the export off"
    assert onyx.ledger_count() == ledger_before, "the bridge recorded documents with the export off"
    onyx.timings.record("export off: factory probes + API start-up compared", time.monotonic() - t0)
