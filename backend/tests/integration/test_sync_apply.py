"""The synchronous apply path against the real R2R: R2R itself is the record.

No ledger, no Celery, no Redis: ``SyncApplier`` makes R2R match a batch and reports one
outcome per document.  Scopes here are Nextcloud-namespaced (and Onyx for the isolation
test), so these tests also prove that two hosts share one R2R without meeting.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest

from onyx.r2r_sender import schema
from onyx.r2r_sender.client import R2RClient
from onyx.r2r_sender.connect import make_client
from onyx.r2r_sender.hosts import NEXTCLOUD, ONYX, TenantScope
from onyx.r2r_sender.payload import SourceDocument
from onyx.r2r_sender.read_model import newest_versions, raw_version
from onyx.r2r_sender.sync import LabelChange, SyncApplier

pytestmark = pytest.mark.integration


@pytest.fixture
def scope(r2r: R2RClient) -> Iterator[TenantScope]:
    """A fresh Nextcloud instance scope; its R2R documents are deleted afterwards."""
    scope = NEXTCLOUD.scope(f"sync-{uuid.uuid4().hex[:10]}")
    yield scope
    purge_scope(r2r, scope)


def purge_scope(client: R2RClient, scope: TenantScope) -> None:
    for document in list(client.iter_all_documents()):
        if document.metadata.get(schema.TENANT) == scope.key:
            client.delete_document(document.id)


@pytest.fixture
def applier(r2r: R2RClient, settings) -> SyncApplier:
    return SyncApplier(r2r, settings)


def doc(doc_id: str, text: str, *, users=("alice",), provider="files__default", modified=1):
    return SourceDocument(
        document_id=doc_id,
        text=text,
        title=doc_id,
        source_type=provider,
        modified=modified,
        acl=list(users),
        sets=[provider],
    )


def held(client: R2RClient, scope: TenantScope, doc_id: str) -> list:
    """Every R2R copy of *doc_id* in *scope* (both slots)."""
    return client.list_documents([scope.slot_id(doc_id, 0), scope.slot_id(doc_id, 1)])


def search_sources(client: R2RClient, scope: TenantScope, query: str, **extra) -> list[str]:
    filters = {"$and": [{"metadata.tenant_id": {"$eq": scope.key}}, *extra.get("clauses", [])]}
    hits = client.search(query, filters=filters, limit=50)
    return [str(h.metadata[schema.SOURCE_DOCUMENT_ID]) for h in newest_versions(hits, raw_version)]


def test_apply_then_reapply_is_unchanged_with_zero_writes(applier, r2r, scope) -> None:
    docs = [doc(f"files__default: {i}", f"passage number {i} about apples") for i in range(3)]
    first = applier.apply_documents(scope, docs)
    assert [o.status for o in first.values()] == ["applied"] * 3
    assert all(o.writes == 1 for o in first.values())  # one pre-chunked create each
    known = applier.lookup(scope, [d.document_id for d in docs])
    assert set(known) == {d.document_id for d in docs}
    for item in known.values():
        assert item.r2r_id == scope.slot_id(item.document_id, 0)
        assert item.modified == 1
        assert len(item.collection_ids) == 2  # the user's and the provider's collection
    again = applier.apply_documents(scope, docs)
    assert [(o.status, o.writes) for o in again.values()] == [("unchanged", 0)] * 3


def test_a_new_version_replaces_without_a_gap(applier, r2r, scope) -> None:
    doc_id = "files__default: 77"
    applier.apply_documents(scope, [doc(doc_id, "the first text about pears", modified=1)])
    seen: list[list[str]] = []
    versions: list[set[str]] = []
    stop = threading.Event()

    def poll() -> None:
        filters = {
            "$and": [
                {"metadata.tenant_id": {"$eq": scope.key}},
                {"metadata.source_document_id": {"$eq": doc_id}},
            ]
        }
        while not stop.is_set():
            hits = newest_versions(r2r.search("pears text", filters=filters, limit=20), raw_version)
            seen.append([str(h.metadata[schema.SOURCE_DOCUMENT_ID]) for h in hits])
            versions.append({str(h.metadata[schema.VERSION]) for h in hits})

    thread = threading.Thread(target=poll)
    thread.start()
    try:
        for n in range(2, 5):
            outcome = applier.apply_documents(
                scope, [doc(doc_id, f"text number {n} about pears", modified=n)]
            )[doc_id]
            assert outcome.status == "applied", outcome
    finally:
        stop.set()
        thread.join()
    assert len(seen) >= 3
    assert all(sources == [doc_id] * len(sources) and sources for sources in seen), seen
    assert all(len(v) == 1 for v in versions), versions  # never two versions at once
    copies = held(r2r, scope, doc_id)
    assert len(copies) == 1
    assert copies[0].metadata[schema.MODIFIED] == 4
    # slots alternate: versions 1 and 3 in slot 0, 2 and 4 in slot 1
    assert copies[0].id == scope.slot_id(doc_id, 1)


def test_same_modified_and_text_makes_no_write_but_new_labels_do(applier, r2r, scope) -> None:
    doc_id = "files__default: 5"
    applier.apply_documents(scope, [doc(doc_id, "shared text", users=["alice"])])
    outcome = applier.apply_documents(scope, [doc(doc_id, "shared text", users=["alice", "bob"])])
    assert (outcome[doc_id].status, outcome[doc_id].writes) == ("applied", 1)  # one grant
    (copy,) = held(r2r, scope, doc_id)
    assert copy.id == scope.slot_id(doc_id, 0)  # not re-created
    assert len(copy.collection_ids) == 3


def test_labels_grant_revoke_replace_and_orphans(applier, r2r, scope) -> None:
    a, b = "files__default: 1", "files__default: 2"
    applier.apply_documents(scope, [doc(a, "alpha text"), doc(b, "beta text", users=["bob"])])
    res = applier.update_labels(scope, {a: LabelChange(grant=["bob", "carol"])})
    assert res[a].status == "applied" and res[a].writes == 2
    labels = set(
        applier.resolver.labels_of(scope.key, applier.lookup(scope, [a])[a].collection_ids).values()
    )
    assert labels == {"acl:alice", "acl:bob", "acl:carol", "set:files__default"}
    res = applier.update_labels(scope, {a: LabelChange(acl=["dave"])})
    assert res[a].status == "applied"
    labels = set(
        applier.resolver.labels_of(scope.key, applier.lookup(scope, [a])[a].collection_ids).values()
    )
    assert labels == {"acl:dave", "set:files__default"}  # the provider part was kept
    res = applier.update_labels(scope, {a: LabelChange(revoke=["dave"])}, delete_unlabelled=True)
    assert res[a].status == "deleted"
    assert held(r2r, scope, a) == []
    res = applier.update_labels(scope, {a: LabelChange(grant=["x"]), b: LabelChange(grant=["bob"])})
    assert res[a].status == "not_found"
    assert (res[b].status, res[b].writes) == ("unchanged", 0)


def test_a_fresh_process_reads_labels_back_from_r2r(applier, r2r, scope, settings) -> None:
    doc_id = "files__default: 9"
    applier.apply_documents(scope, [doc(doc_id, "gamma text", users=["ünï cödé, user"])])
    fresh = SyncApplier(r2r, settings)  # empty caches, as in a new CCBE subprocess
    res = fresh.update_labels(scope, {doc_id: LabelChange(grant=["bob"])})
    assert res[doc_id].status == "applied"
    labels = set(
        fresh.resolver.labels_of(
            scope.key, fresh.lookup(scope, [doc_id])[doc_id].collection_ids
        ).values()
    )
    assert labels == {"acl:ünï cödé, user", "acl:bob", "set:files__default"}


def test_bad_documents_fail_alone_and_name_themselves(applier, r2r, scope) -> None:
    good = doc("files__default: 10", "a good passage")
    empty = SourceDocument(document_id="files__default: 11", text="", acl=["alice"])
    bad_modified = doc("files__default: 12", "text", modified=-5)
    out = applier.apply_documents(scope, [empty, good, bad_modified])
    assert out[good.document_id].status == "applied"
    assert out[empty.document_id].status == "permanent"
    assert "files__default: 11" in (out[empty.document_id].reason or "")
    assert "no text" in (out[empty.document_id].reason or "")
    assert out[bad_modified.document_id].status == "permanent"
    assert "modified" in (out[bad_modified.document_id].reason or "")
    assert set(applier.lookup(scope, [d.document_id for d in (good, empty, bad_modified)])) == {
        good.document_id
    }


def test_delete_removes_every_copy(applier, r2r, scope) -> None:
    doc_id = "files__default: 20"
    applier.apply_documents(scope, [doc(doc_id, "delete me")])
    assert applier.delete_documents(scope, [doc_id])[doc_id].status == "deleted"
    assert held(r2r, scope, doc_id) == []
    assert applier.delete_documents(scope, [doc_id])[doc_id].status == "not_found"


def test_an_interrupted_replace_is_completed(applier, r2r, scope) -> None:
    """A stale complete copy in the free slot (a crash after create, before delete) is
    retired, never adopted as the new version."""
    doc_id = "files__default: 30"
    applier.apply_documents(scope, [doc(doc_id, "current text", modified=2)])
    r2r.ingest_document(
        document_id=scope.slot_id(doc_id, 1),
        chunks=["an older leftover text"],
        metadata={
            schema.TENANT: scope.key,
            schema.SOURCE_DOCUMENT_ID: doc_id,
            schema.VERSION: "leftover",
            schema.SEQ: 0,
        },
        collection_ids=list(
            applier.resolver.resolve(scope.key, ["set:files__default"], create=True).values()
        ),
    )
    out = applier.apply_documents(scope, [doc(doc_id, "the newest text", modified=3)])
    assert out[doc_id].status == "applied"
    (copy,) = held(r2r, scope, doc_id)
    assert copy.id == scope.slot_id(doc_id, 1)
    assert copy.metadata[schema.MODIFIED] == 3
    chunks = r2r.list_document_chunks(copy.id)
    assert [c.text for c in chunks] == ["the newest text"]


def test_two_hosts_with_equal_ids_never_meet(applier, r2r, settings) -> None:
    tenant = f"iso-{uuid.uuid4().hex[:8]}"
    onyx, nextcloud = ONYX.scope(tenant), NEXTCLOUD.scope(tenant)
    doc_id = "shared-id-1"
    try:
        for scope, text in ((onyx, "onyx owns this kiwi"), (nextcloud, "nextcloud owns this kiwi")):
            out = applier.apply_documents(scope, [doc(doc_id, text, users=["alice"])])
            assert out[doc_id].status == "applied"
        ids = {scope.key: held(r2r, scope, doc_id) for scope in (onyx, nextcloud)}
        assert len(ids[onyx.key]) == len(ids[nextcloud.key]) == 1
        assert ids[onyx.key][0].id != ids[nextcloud.key][0].id
        assert not set(ids[onyx.key][0].collection_ids) & set(ids[nextcloud.key][0].collection_ids)
        for scope, word in ((onyx, "onyx"), (nextcloud, "nextcloud")):
            filters = {"metadata.tenant_id": {"$eq": scope.key}}
            hits = r2r.search("kiwi", filters=filters, limit=10)
            assert hits and all(word in h.text for h in hits)
    finally:
        purge_scope(r2r, onyx)
        purge_scope(r2r, nextcloud)


def test_r2r_unreachable_is_retryable_for_every_document(settings, scope) -> None:
    dead = settings.with_overrides(r2r_base_url="http://127.0.0.1:9", client_retry_max_time=0.5)
    client = make_client(dead.credentials, dead)
    try:
        out = SyncApplier(client, dead).apply_documents(scope, [doc("files__default: 1", "x")])
    finally:
        client.close()
    outcome = out["files__default: 1"]
    assert outcome.status == "retryable"
    assert outcome.error_class == "r2r_unavailable"
    assert "files__default: 1" in (outcome.reason or "")
