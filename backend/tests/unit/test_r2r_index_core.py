"""R2RIndexCore's write side and mapping, with a recording sender (no services).

The end-to-end behaviour (real ledger, worker and R2R) is in
``backend/tests/integration/test_r2r_index.py``; these pin the decisions:
one record per document, large chunks skipped, who owns content, never raising.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from onyx_shaped import (
    Document,
    DocumentSource,
    InferenceChunk,
    MetadataUpdateRequest,
    TextSection,
    access,
    chunks_of,
    indexing_metadata,
    insertion_record,
)

from onyx.document_index.r2r.chunk_mapping import inference_chunk_fields, make_blurb
from onyx.document_index.r2r.index_core import SEMANTIC_RETRIEVAL_UNSUPPORTED, R2RIndexCore
from onyx.r2r_sender.read_model import MirroredChunk
from onyx.r2r_sender.sender import BatchReport


class RecordingSender:
    """Records what the index asks the engine to record; ``known`` ids exist in the ledger."""

    def __init__(self, known: set[str] | None = None, fail: bool = False) -> None:
        self.known = known or set()
        self.fail = fail
        self.sent: list = []
        self.access: list = []
        self.deleted: list = []

    def _maybe_fail(self) -> None:
        if self.fail:
            raise RuntimeError("ledger unreachable")

    def send_batch(self, docs):
        self._maybe_fail()
        docs = list(docs)
        self.sent.extend(docs)
        return BatchReport(changed=[d.document_id for d in docs])

    def update_access(self, acl, *, sets_by_document=None, flags_by_document=None):
        self._maybe_fail()
        self.access.append((dict(acl), dict(sets_by_document or {}), dict(flags_by_document or {})))
        ids = set(acl) | set(sets_by_document or {}) | set(flags_by_document or {})
        return BatchReport(changed=sorted(ids & self.known), unknown=sorted(ids - self.known))

    def delete_documents(self, ids):
        self._maybe_fail()
        self.deleted.extend(ids)
        return BatchReport(changed=list(ids))


def make_index(sender, *, export: bool = True, writes: bool = True) -> R2RIndexCore:
    return R2RIndexCore(
        tenant_id="t1",
        chunk_factory=InferenceChunk,
        record_factory=insertion_record,
        docfetching_export=export,
        writes_enabled=writes,
        sender_factory=lambda: sender,
    )


def doc(doc_id: str, source=DocumentSource.CONFLUENCE, **kw) -> Document:
    return Document(
        id=doc_id,
        sections=[TextSection("section text", link=f"https://x/{doc_id}")],
        source=source,
        semantic_identifier=f"Doc {doc_id}",
        **kw,
    )


def test_one_record_per_document_and_large_chunks_skipped() -> None:
    sender = RecordingSender()
    index = make_index(sender, export=False)
    a = chunks_of(doc("a"), ["alpha one", "alpha two"], acl=access("PUBLIC"), large=True)
    b = chunks_of(doc("b"), ["beta"], acl=access("group:eng"), sets=["handbook"])
    chunks = a + b
    records = index.index(iter(chunks), indexing_metadata(chunks, old=0))
    assert [r.document_id for r in records] == ["a", "b"]
    assert not any(r.already_existed for r in records)
    by_id = {d.document_id: d for d in sender.sent}
    # text rebuilt from regular chunks in chunk order; the large chunk is skipped
    assert by_id["a"].text == "alpha one\nalpha two"
    assert "LARGECHUNKONLY" not in by_id["a"].text
    assert by_id["a"].acl == ["PUBLIC"] and by_id["a"].sets == []
    assert by_id["b"].acl == ["group:eng"] and by_id["b"].sets == ["handbook"]
    assert by_id["a"].link == "https://x/a" and by_id["a"].source_type == "confluence"
    assert by_id["a"].flags is None  # never touches hidden: keep


def test_already_existed_from_onyx_chunk_counts() -> None:
    index = make_index(RecordingSender(), export=False)
    chunks = chunks_of(doc("a"), ["x"], acl=access("PUBLIC"))
    assert index.index(chunks, indexing_metadata(chunks, old=3))[0].already_existed
    assert not index.index(chunks, None)[0].already_existed  # no metadata: still a record


def test_chunks_in_any_order_rebuild_in_chunk_id_order() -> None:
    sender = RecordingSender()
    chunks = chunks_of(doc("a"), ["one", "two", "three"], acl=access("PUBLIC"))
    make_index(sender, export=False).index(list(reversed(chunks)), None)
    assert sender.sent[0].text == "one\ntwo\nthree"


def test_docfetching_owns_connector_content_index_owns_access() -> None:
    sender = RecordingSender(known={"conn"})
    index = make_index(sender, export=True)
    chunks = (
        chunks_of(doc("conn"), ["c"], acl=access("user_email:a@x.io"), sets=["s"])
        + chunks_of(
            doc("api", DocumentSource.WEB, from_ingestion_api=True), ["i"], acl=access("PUBLIC")
        )
        + chunks_of(doc("file", DocumentSource.USER_FILE), ["f"], acl=access("user_email:o@x.io"))
    )
    records = index.index(chunks, None)
    assert {r.document_id for r in records} == {"conn", "api", "file"}
    # the connector document only gets its access and sets
    assert sender.access == [({"conn": ["user_email:a@x.io"]}, {"conn": ["s"]}, {})]
    # ingestion API and user files: content too
    assert {d.document_id for d in sender.sent} == {"api", "file"}


def test_unknown_connector_document_falls_back_to_content() -> None:
    # the docfetching send never reached the ledger: R2RIndex records the content itself
    sender = RecordingSender(known=set())
    index = make_index(sender, export=True)
    index.index(chunks_of(doc("conn"), ["c1", "c2"], acl=access("group:g")), None)
    assert [d.document_id for d in sender.sent] == ["conn"]
    assert sender.sent[0].text == "c1\nc2" and sender.sent[0].acl == ["group:g"]
    assert index.stats.content_fallback == 1


def test_writes_never_raise_and_records_are_still_returned() -> None:
    sender = RecordingSender(fail=True)
    index = make_index(sender, export=False)
    chunks = chunks_of(doc("a"), ["x"], acl=access("PUBLIC")) + chunks_of(
        doc("b"), ["y"], acl=access("PUBLIC")
    )
    assert [r.document_id for r in index.index(chunks, None)] == ["a", "b"]
    assert index.delete("a", chunk_count=3) == 0
    index.update([MetadataUpdateRequest(["a"], {"a": 1}, hidden=True)])
    assert index.stats.errors == 4


def test_sender_construction_failure_never_raises() -> None:
    def broken():
        raise RuntimeError("cannot build")

    index = R2RIndexCore(
        tenant_id="t1",
        chunk_factory=InferenceChunk,
        record_factory=insertion_record,
        docfetching_export=False,
        sender_factory=broken,
    )
    assert len(index.index(chunks_of(doc("a"), ["x"], acl=access("PUBLIC")), None)) == 1
    assert index.delete("a") == 0
    index.update([MetadataUpdateRequest(["a"], {"a": 1}, hidden=False)])


def test_future_settings_skip_writes_but_return_records() -> None:
    sender = RecordingSender()
    index = make_index(sender, writes=False)
    records = index.index(chunks_of(doc("a"), ["x"], acl=access("PUBLIC")), None)
    assert [r.document_id for r in records] == ["a"]
    index.delete("a")
    index.update([MetadataUpdateRequest(["a"], {"a": 1}, hidden=True)])
    assert not sender.sent and not sender.access and not sender.deleted


def test_update_maps_access_sets_and_hidden() -> None:
    sender = RecordingSender(known={"a", "b"})
    index = make_index(sender)
    index.update(
        [
            MetadataUpdateRequest(
                ["a", "b"], {"a": 1, "b": 1}, access=access("PUBLIC", "group:eng"), boost=2.0
            ),
            MetadataUpdateRequest(["a"], {"a": 1}, document_sets={"legal"}, hidden=True),
            MetadataUpdateRequest(["b"], {"b": 1}, hidden=False),
            MetadataUpdateRequest(["c"], {"c": 1}, boost=1.0, project_ids={1}),  # nothing to do
        ]
    )
    assert sender.access == [
        (
            {"a": ["PUBLIC", "group:eng"], "b": ["PUBLIC", "group:eng"]},
            {"a": ["legal"]},
            {"a": ["hidden"], "b": []},
        )
    ]


def test_update_with_nothing_mirrored_records_nothing() -> None:
    sender = RecordingSender()
    make_index(sender).update([MetadataUpdateRequest(["a"], {"a": 1}, boost=3.0)])
    assert sender.access == []


def test_delete_records_and_returns_zero() -> None:
    sender = RecordingSender()
    assert make_index(sender).delete("a", chunk_count=7) == 0
    assert sender.deleted == ["a"]


def test_verify_is_a_no_op_and_semantic_retrieval_is_explicit() -> None:
    index = make_index(RecordingSender())
    assert index.verify_and_create_index_if_necessary(384, "float") is None
    with pytest.raises(NotImplementedError, match="query embedding is unusable"):
        index.semantic_retrieval([0.1, 0.2], None, 5)
    assert "never calls it" in SEMANTIC_RETRIEVAL_UNSUPPORTED


def test_stream_errors_propagate() -> None:
    # errors of Onyx's own chunk stream are Onyx's (it retries per document)
    def stream():
        yield from chunks_of(doc("a"), ["x"], acl=access("PUBLIC"))
        raise OSError("chunk store read failed")

    with pytest.raises(OSError):
        make_index(RecordingSender()).index(stream(), None)


# -------------------------------------------------------------- mapping
def test_inference_chunk_fields() -> None:
    hidden = uuid.uuid4()
    fields = inference_chunk_fields(
        MirroredChunk.from_metadata(
            r2r_document_id=uuid.uuid4(),
            text="First sentence. Second one.",
            metadata={
                "source_document_id": "doc-1",
                "title": "The title",
                "semantic_identifier": "Doc one",
                "link": "https://x/1",
                "source_type": "confluence",
                "updated_at": "2026-05-06T07:08:09+00:00",
                "source_metadata": {"space": "ENG", "labels": ["a", "b"], "n": 3},
                "chunk_order": 4,
            },
            collection_ids=[hidden],
            score=0.5,
            hidden_collection=str(hidden),
        )
    )
    chunk = InferenceChunk(**fields)
    assert chunk.document_id == "doc-1" and chunk.chunk_id == 4
    assert chunk.semantic_identifier == "Doc one" and chunk.title == "The title"
    assert chunk.source_links == {0: "https://x/1"} and chunk.source_type == "confluence"
    assert chunk.metadata == {"space": "ENG", "labels": ["a", "b"], "n": "3"}
    assert chunk.updated_at == datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert chunk.hidden and chunk.score == 0.5 and chunk.boost == 0
    assert chunk.content == "First sentence. Second one." and chunk.blurb == chunk.content


def test_inference_chunk_fields_defaults() -> None:
    fields = inference_chunk_fields(
        MirroredChunk.from_metadata(
            r2r_document_id=uuid.uuid4(),
            text="x",
            metadata={"source_document_id": "d"},
            collection_ids=[],
            score=None,
            hidden_collection=None,
            fallback_order=2,
        )
    )
    assert fields["semantic_identifier"] == "d" and fields["title"] is None
    assert fields["source_type"] == "not_applicable" and fields["chunk_id"] == 2
    assert fields["source_links"] is None and fields["updated_at"] is None
    assert fields["hidden"] is False


def test_blurb_cuts_at_a_sentence_or_word() -> None:
    text = ("word " * 50) + "end. " + ("tail " * 100)
    blurb = make_blurb(text)
    assert len(blurb) <= 400 and blurb.endswith("end.")
    assert make_blurb("x" * 1000) == "x" * 400
    assert make_blurb("a  b\n c") == "a b c"
