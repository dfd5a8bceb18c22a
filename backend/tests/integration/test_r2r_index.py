"""R2RIndex end to end: Onyx-shaped objects → R2RIndexCore → ledger → real worker → real R2R.

Everything is real except Onyx itself (its objects are small look-alikes from
``tests/onyx_shaped.py``; the real classes are exercised by ``tests/onyx_contract``):
the ledger in PostgreSQL, the Celery worker process, Redis and R2R 3.6.6.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from engine_checks import document_text, make_r2r
from onyx_shaped import (
    DocumentSectionRequest,
    DocumentSource,
    ExternalAccess,
    IndexFilters,
    MetadataUpdateRequest,
    Tag,
    TimeRange,
    access,
    chunks_of,
)
from r2r_index_checks import (
    DOC_ACLS,
    UPDATED,
    USERS,
    hit_ids,
    index_documents,
    make_core,
    onyx_document,
    search_as,
    settle,
    visible,
)
from stack_helpers import run_stack

from onyx.background.indexing.r2r_export import DocfetchingExporter, exporter_for_attempt
from onyx.r2r_integration.flags import forget_tenant_cache
from onyx.r2r_integration.host import host_sender

pytestmark = pytest.mark.integration

SYNC = 180.0


def _all_docs(marker: str):
    return [
        (onyx_document(d, f"zebulon {marker} report about {d} matters"), acl, [])
        for d, acl in DOC_ACLS.items()
    ]


# ---------------------------------------------------------------- ACL
def test_acl_filtering_cannot_leak(settings, ledger, purge, workers, tenant_id) -> None:
    purge.append(tenant_id)
    workers.start(concurrency=4, beat=False)
    core = make_core(settings, tenant_id, export=False)
    records = index_documents(core, _all_docs("aclcheck"), tenant_id=tenant_id)
    # exactly one insertion record per document seen (the multipass chunks add none)
    assert sorted(r.document_id for r in records) == sorted(DOC_ACLS)
    settle(ledger, settings, tenant_id, SYNC, list(DOC_ACLS))

    for user in [*USERS, None]:
        user_acl = None if user is None else USERS[user]
        expected = visible(user_acl, DOC_ACLS)
        filters = IndexFilters(access_control_list=user_acl)
        hybrid = hit_ids(core.hybrid_retrieval("zebulon", [0.0], None, "semantic", filters, 100))
        keyword = hit_ids(core.keyword_retrieval("zebulon", filters, 100))
        assert hybrid == expected, f"{user}: hybrid {sorted(hybrid)} != {sorted(expected)}"
        assert keyword == expected, f"{user}: keyword {sorted(keyword)} != {sorted(expected)}"
        for doc_id in DOC_ACLS:
            chunks = core.id_based_retrieval([DocumentSectionRequest(doc_id)], filters)
            assert bool(chunks) == (doc_id in expected), f"{user} id-based {doc_id}"
            assert hit_ids(chunks) <= {doc_id}
        randoms = hit_ids(core.random_retrieval(filters, 20))
        assert randoms <= expected, f"{user}: random leaked {sorted(randoms - expected)}"
    # the document with an empty ACL is visible to nobody but an unrestricted search
    assert "nobody" not in set().union(*(visible(a, DOC_ACLS) for a in USERS.values()))
    # another tenant's filters never reach this tenant's documents
    other = IndexFilters(access_control_list=None, tenant_id=tenant_id + "x")
    assert core.keyword_retrieval("zebulon", other, 100) == []


def test_chunks_map_back_to_onyx_fields(settings, ledger, purge, workers, tenant_id) -> None:
    purge.append(tenant_id)
    workers.start(concurrency=2, beat=False)
    core = make_core(settings, tenant_id, export=False)
    doc = onyx_document(
        "https://wiki.example.com/page/1",
        "ignored: the content comes from the chunks",
        metadata={"space": "ENG", "labels": ["a", "b"]},
    )
    parts = ["Quokka migration guide. First part.", "Second part about quokkas."]
    chunks = chunks_of(doc, parts, acl=access("PUBLIC"), tenant_id=tenant_id, large=True)
    core.index(chunks, None)
    settle(ledger, settings, tenant_id, SYNC, [doc.id])

    hits = core.hybrid_retrieval(
        "quokka migration", [0.0], ["quokka"], "keyword", IndexFilters(access_control_list=[]), 5
    )
    assert hits, "no hit"
    hit = hits[0]
    assert hit.document_id == doc.id
    assert hit.semantic_identifier == f"Doc {doc.id}" and hit.title == f"Title {doc.id}"
    assert hit.source_type == "confluence"
    assert hit.source_links == {0: "https://wiki.example.com/https://wiki.example.com/page/1"}
    assert hit.metadata == {"space": "ENG", "labels": ["a", "b"]}
    assert hit.updated_at == UPDATED
    assert isinstance(hit.score, float) and hit.hidden is False
    assert "quokka" in hit.content.lower() and hit.blurb
    # the whole document by id, in chunk order; the multipass chunk was not mirrored
    whole = core.id_based_retrieval(
        [DocumentSectionRequest(doc.id)], IndexFilters(access_control_list=None)
    )
    assert [c.chunk_id for c in whole] == sorted(c.chunk_id for c in whole)
    text = " ".join(c.content for c in whole)
    assert "First part" in text and "Second part" in text and "LARGECHUNKONLY" not in text
    assert all(c.score is None for c in whole)
    first = core.id_based_retrieval(
        [DocumentSectionRequest(doc.id, min_chunk_ind=0, max_chunk_ind=0)],
        IndexFilters(access_control_list=None),
    )
    assert [c.chunk_id for c in first] == [0]


# ------------------------------------------------------- hidden, updates, deletes
def test_hidden_documents_disappear_and_come_back(
    settings, ledger, purge, workers, tenant_id
) -> None:
    purge.append(tenant_id)
    workers.start(concurrency=4, beat=False)
    core = make_core(settings, tenant_id, export=False)
    index_documents(core, _all_docs("hidecheck"), tenant_id=tenant_id)
    settle(ledger, settings, tenant_id, SYNC, list(DOC_ACLS))
    before = ledger.get_state(tenant_id, "eng")

    core.update([MetadataUpdateRequest(["eng"], {"eng": 1}, hidden=True)])
    settle(ledger, settings, tenant_id, SYNC)
    assert "eng" not in search_as(core, "alice", "zebulon")
    assert "eng" not in search_as(core, None, "zebulon")
    admin = core.keyword_retrieval(
        "zebulon", IndexFilters(access_control_list=None), 100, include_hidden=True
    )
    assert {c.document_id: c.hidden for c in admin}.get("eng") is True
    assert (
        core.id_based_retrieval(
            [DocumentSectionRequest("eng")], IndexFilters(access_control_list=None)
        )
        == []
    )
    # hiding is a membership change: same R2R version, nothing re-embedded
    hidden_state = ledger.get_state(tenant_id, "eng")
    assert hidden_state["applied_r2r_id"] == before["applied_r2r_id"]
    assert hidden_state["applied_version"] == before["applied_version"]

    core.update([MetadataUpdateRequest(["eng"], {"eng": 1}, hidden=False)])
    settle(ledger, settings, tenant_id, SYNC)
    assert "eng" in search_as(core, "alice", "zebulon")
    assert "eng" not in search_as(core, "bob", "zebulon")  # the ACL survived hiding
    assert ledger.get_state(tenant_id, "eng")["applied_r2r_id"] == before["applied_r2r_id"]


def test_access_sets_and_deletes(settings, ledger, purge, workers, tenant_id) -> None:
    purge.append(tenant_id)
    workers.start(concurrency=4, beat=False)
    core = make_core(settings, tenant_id, export=False)
    index_documents(core, _all_docs("updcheck"), tenant_id=tenant_id)
    settle(ledger, settings, tenant_id, SYNC, list(DOC_ACLS))
    assert "bob" in search_as(core, "bob", "zebulon")

    # permission sync: "bob" now belongs to group eng only; "pub" joins a document set
    core.update(
        [
            MetadataUpdateRequest(["bob"], {"bob": 1}, access=access("group:eng")),
            MetadataUpdateRequest(["pub", "eng"], {"pub": 1, "eng": 1}, document_sets={"handbook"}),
        ]
    )
    settle(ledger, settings, tenant_id, SYNC)
    assert "bob" not in search_as(core, "bob", "zebulon")
    assert "bob" in search_as(core, "alice", "zebulon")
    assert search_as(core, "alice", "zebulon", document_set=["handbook"]) == {"pub", "eng"}
    assert search_as(core, "bob", "zebulon", document_set=["handbook"]) == {"pub"}
    assert search_as(core, "alice", "zebulon", forced_document_set=["handbook"]) == {"pub", "eng"}

    # deletion (connector deletion / pruning)
    assert core.delete("sales", chunk_count=2) == 0
    settle(ledger, settings, tenant_id, SYNC)
    assert "sales" not in search_as(core, "bob", "zebulon")
    assert ledger.get_state(tenant_id, "sales")["applied_deleted"] is True


def test_filters_on_real_r2r(settings, ledger, purge, workers, tenant_id) -> None:
    purge.append(tenant_id)
    workers.start(concurrency=4, beat=False)
    core = make_core(settings, tenant_id, export=False)
    now = datetime.now(UTC)
    docs = [
        (
            onyx_document(
                "conf-new",
                "yarrow notes",
                source=DocumentSource.CONFLUENCE,
                metadata={"space": "ENG", "labels": ["x", "y"]},
                updated=now - timedelta(days=1),
            ),
            ["PUBLIC"],
            ["handbook"],
        ),
        (
            onyx_document(
                "conf-old",
                "yarrow archive",
                source=DocumentSource.CONFLUENCE,
                metadata={"space": "OPS"},
                updated=now - timedelta(days=400),
            ),
            ["PUBLIC"],
            [],
        ),
        (
            onyx_document("slack", "yarrow chat", source=DocumentSource.SLACK, metadata={}),
            ["PUBLIC"],
            ["legal"],
        ),
        (
            onyx_document("undated", "yarrow undated", source=DocumentSource.WEB, updated=None),
            ["PUBLIC"],
            [],
        ),
    ]
    index_documents(core, docs, tenant_id=tenant_id)
    settle(ledger, settings, tenant_id, SYNC, [d.id for d, _, _ in docs])

    def ids(**filters) -> set[str]:
        return hit_ids(
            core.keyword_retrieval("yarrow", IndexFilters(access_control_list=[], **filters), 50)
        )

    assert ids() == {"conf-new", "conf-old", "slack", "undated"}
    assert ids(source_type=[DocumentSource.CONFLUENCE]) == {"conf-new", "conf-old"}
    assert ids(source_type=[DocumentSource.SLACK, DocumentSource.WEB]) == {"slack", "undated"}
    assert ids(tags=[Tag("space", "OPS")]) == {"conf-old"}
    assert ids(tags=[Tag("labels", "y"), Tag("space", "OPS")]) == {"conf-new", "conf-old"}
    recent = TimeRange(start=now - timedelta(days=30))
    assert ids(updated_at_range=recent) == {"conf-new"}  # "slack" is dated UPDATED (older)
    old_open = TimeRange(start=now - timedelta(days=3650))
    assert ids(updated_at_range=old_open) == {"conf-new", "conf-old", "slack", "undated"}
    window = TimeRange(start=now - timedelta(days=500), end=now - timedelta(days=300))
    assert ids(updated_at_range=window) == {"conf-old"}
    assert ids(document_set=["handbook"], attached_document_ids=["undated"]) == {
        "conf-new",
        "undated",
    }
    assert ids(document_set=["handbook", "legal"]) == {"conf-new", "slack"}
    assert ids(forced_document_set=["legal"]) == {"slack"}
    assert ids(project_id_filter=3) == set()  # not mirrored: fails closed


# ------------------------------------------------- division of labour
def test_docfetching_owns_content_index_owns_access(
    settings, ledger, purge, workers, tenant_id
) -> None:
    purge.append(tenant_id)
    workers.start(concurrency=4, beat=False)
    exporter = DocfetchingExporter(host_sender(tenant_id, settings, default_acl=None), tenant_id)
    plain = onyx_document("c-plain", "walrus sections text of the plain page")
    synced = onyx_document(
        "c-synced",
        "walrus sections text of the permission-synced page",
        external_access=ExternalAccess({"dave@partner.io"}, set(), is_public=False),
    )
    exporter.export_batch([plain, synced])
    assert exporter.stats.changed == 2 and exporter.stats.failed_batches == 0
    settle(ledger, settings, tenant_id, SYNC, ["c-plain", "c-synced"])
    version = ledger.get_state(tenant_id, "c-plain")["desired_version"]
    # a new document: no ACL yet (fail closed) unless the connector synced permissions
    core = make_core(settings, tenant_id, export=True)
    assert search_as(core, "alice", "walrus") == set()
    assert search_as(core, "dave", "walrus") == {"c-synced"}

    # docprocessing: R2RIndex records Onyx's full ACL; the content stays docfetching's
    chunked = [
        (plain, ["group:eng"], ["handbook"]),
        (synced, ["group:eng", "user_email:dave@partner.io"], []),
    ]
    records = index_documents(
        core, chunked, tenant_id=tenant_id, parts_of=lambda d: [f"CHUNKTEXT of {d.id}"]
    )
    assert {r.document_id for r in records} == {"c-plain", "c-synced"}
    settle(ledger, settings, tenant_id, SYNC)
    assert search_as(core, "alice", "walrus") == {"c-plain", "c-synced"}
    state = ledger.get_state(tenant_id, "c-plain")
    assert state["desired_version"] == version  # not re-embedded
    with make_r2r(settings) as client:
        text = document_text(client, state["applied_r2r_id"])
    assert "sections text" in text and "CHUNKTEXT" not in text

    # a later fetch of the same documents never revokes Onyx's grants
    exporter.export_batch([plain, synced])
    settle(ledger, settings, tenant_id, SYNC)
    assert search_as(core, "alice", "walrus") == {"c-plain", "c-synced"}
    assert search_as(core, "dave", "walrus") == {"c-synced"}

    # ingestion API documents and user files never pass docfetching: content from chunks;
    # a connector document whose docfetching send was lost: content from chunks too
    api = onyx_document(
        "api-doc", "unused", source=DocumentSource.INGESTION_API, from_ingestion_api=True
    )
    user_file = onyx_document("file-doc", "unused", source=DocumentSource.USER_FILE)
    lost = onyx_document("c-lost", "unused")
    index_documents(
        core,
        [
            (api, ["PUBLIC"], []),
            (user_file, ["user_email:carol@x.io"], []),
            (lost, ["group:eng"], []),
        ],
        tenant_id=tenant_id,
        parts_of=lambda d: [f"walrus CHUNKTEXT of {d.id}"],
    )
    settle(ledger, settings, tenant_id, SYNC, ["api-doc", "file-doc", "c-lost"])
    assert search_as(core, "carol", "walrus") == {"api-doc", "file-doc"}
    assert core.stats.content_fallback == 1
    with make_r2r(settings) as client:
        text = document_text(client, ledger.get_state(tenant_id, "api-doc")["applied_r2r_id"])
    assert "CHUNKTEXT of api-doc" in text


def test_exporter_switch(settings, monkeypatch, tenant_id) -> None:
    forget_tenant_cache()
    monkeypatch.delenv("ONYX_EXPORT_R2R", raising=False)
    assert exporter_for_attempt(tenant_id, is_primary=True, settings=settings) is None
    monkeypatch.setenv("ONYX_EXPORT_R2R", "true")
    assert exporter_for_attempt(tenant_id, is_primary=False, settings=settings) is None
    assert exporter_for_attempt(tenant_id, is_primary=True, settings=settings) is not None


# -------------------------------------------------------- never raise
def _calls(core, tenant_id: str, prefix: str) -> tuple[list, float]:
    started = time.monotonic()
    doc = onyx_document(f"{prefix}-doc", "never raise")
    chunks = chunks_of(doc, ["a", "b"], acl=access("PUBLIC"), tenant_id=tenant_id)
    records = core.index(chunks, None)
    assert core.delete(f"{prefix}-doc", chunk_count=2) == 0
    core.update(
        [MetadataUpdateRequest([f"{prefix}-doc"], {}, access=access("group:x"), hidden=True)]
    )
    core.verify_and_create_index_if_necessary(512, "float")
    return records, time.monotonic() - started


def test_writes_never_raise_with_r2r_down(settings, ledger, purge, workers, tenant_id) -> None:
    purge.append(tenant_id)
    core = make_core(settings, tenant_id, export=False)
    try:
        run_stack("stop-r2r")
        records, seconds = _calls(core, tenant_id, "down")
    finally:
        run_stack("up", "--quiet")
    assert [r.document_id for r in records] == ["down-doc"]
    assert seconds < 5, f"writes took {seconds:.1f}s with R2R down (they must not call R2R)"
    assert core.stats.errors == 0  # recorded fine: R2R is the worker's business
    # and once R2R is back the worker converges (here: the document is deleted)
    workers.start(concurrency=2, beat=False)
    # the circuit breaker is per R2R server (shared by every worker): it may wait out its
    # cooldown after the outage before letting drains through
    settle(ledger, settings, tenant_id, 2 * SYNC + 120)
    assert ledger.get_state(tenant_id, "down-doc")["desired_deleted"] is True


def test_writes_never_raise_with_db_and_redis_unreachable(settings, monkeypatch, tenant_id) -> None:
    bad = settings.with_overrides(
        database_url="postgresql+psycopg2://postgres@127.0.0.1:9/onyx_r2r",
        broker_url="redis://127.0.0.1:9/0",
    )
    core = make_core(bad, tenant_id, export=True)
    records, seconds = _calls(core, tenant_id, "nodb")
    assert [r.document_id for r in records] == ["nodb-doc"]
    assert core.stats.errors >= 3
    assert seconds < 30, f"{seconds:.1f}s: the host plumbing is not time-bounded"
    # the docfetching exporter likewise (built from the env; the tenant store is unreachable)
    forget_tenant_cache()
    monkeypatch.setenv("ONYX_EXPORT_R2R", "true")
    exporter = exporter_for_attempt(tenant_id, is_primary=True, settings=bad)
    assert exporter is not None
    exporter.export_batch([onyx_document("nodb-2", "text")])
    assert exporter.stats.failed_batches == 1 and exporter.stats.failed_documents == 1
    forget_tenant_cache()
