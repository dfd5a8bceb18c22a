"""The read model's chunks: R2R metadata → MirroredChunk, and newest_versions (pure).

During a gap-free replace only the newest version of a document is shown.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from onyx.r2r_sender import schema
from onyx.r2r_sender.hosts import NEXTCLOUD
from onyx.r2r_sender.ids import r2r_version_id
from onyx.r2r_sender.r2r_types import R2RChunk, SearchHit
from onyx.r2r_sender.read_model import MirroredChunk, newest_versions, raw_version

SEQ_KEY = schema.SEQ


def _hit(doc: str | None, version: str, seq: Any, score: float, **extra: Any) -> MirroredChunk:
    metadata: dict[str, Any] = dict(extra)
    if doc is not None:
        metadata["source_document_id"] = doc
    if seq is not None:
        metadata[SEQ_KEY] = seq
    hit = SearchHit(
        chunk_id=uuid.uuid4(),
        document_id=r2r_version_id("t", doc or "anon", version),
        score=score,
        text=f"{doc} {version}",
        metadata=metadata,
    )
    return MirroredChunk.from_r2r(hit, hidden_collection=None)


def test_keeps_only_newest_version_and_order() -> None:
    a_old = _hit("a", "v1", 1, 0.9)
    b = _hit("b", "v1", 4, 0.8)
    a_new = _hit("a", "v2", 2, 0.7)
    a_new_2 = _hit("a", "v2", 2, 0.6)  # a second chunk of the newest version
    c = _hit("c", "v1", 1, 0.5)
    assert newest_versions([a_old, b, a_new, a_new_2, c]) == [b, a_new, a_new_2, c]


def test_newest_first_in_list_also_works() -> None:
    new = _hit("a", "v3", 7, 0.9)
    old = _hit("a", "v2", 3, 0.95)
    assert newest_versions([old, new]) == [new]
    assert newest_versions([new, old]) == [new]


def test_documents_are_grouped_by_source_document_id_not_r2r_id() -> None:
    # two R2R ids (two versions) of one source document: one group
    v1 = _hit("doc", "v1", 1, 0.9)
    v2 = _hit("doc", "v2", 2, 0.8)
    assert v1.r2r_document_id != v2.r2r_document_id
    assert newest_versions([v1, v2]) == [v2]
    # the same version number in different documents is not compared
    other = _hit("other", "v1", 1, 0.7)
    assert newest_versions([v1, other]) == [v1, other]


def test_hits_without_bridge_metadata_are_kept() -> None:
    """Foreign documents (no bridge keys) group by their R2R id and are never dropped."""
    x = _hit(None, "x", None, 0.9)
    y = _hit(None, "y", None, 0.8)
    assert newest_versions([x, y]) == [x, y]


def test_seq_given_as_string_or_none() -> None:
    old = _hit("a", "v1", "3", 0.9)
    new = _hit("a", "v2", "10", 0.8)  # numeric, not lexicographic: 10 > 3
    assert newest_versions([old, new]) == [new]
    missing = _hit("b", "v1", None, 0.5)
    zero = _hit("b", "v0", 0, 0.4)
    assert newest_versions([missing, zero]) == [missing, zero]  # both seq 0


def test_equal_seq_keeps_both() -> None:
    first = _hit("a", "v1", 5, 0.9)
    second = _hit("a", "v1", 5, 0.8)
    assert newest_versions([first, second]) == [first, second]


def test_empty() -> None:
    assert newest_versions([]) == []


def test_raw_hits_dedupe_like_their_mapped_chunks() -> None:
    """The Retriever dedupes R2R's hits before mapping them: same groups, same seqs."""
    chunks = [
        _hit("a", "v1", 1, 0.9),
        _hit("b", "v1", "4", 0.8),
        _hit("a", "v2", 2, 0.7),
        _hit(None, "x", None, 0.6),
        _hit(None, "y", "bad", 0.5),
    ]
    raw = [
        SearchHit(
            chunk_id=uuid.uuid4(),
            document_id=c.r2r_document_id,
            score=c.score,
            text=c.text,
            metadata={
                SEQ_KEY: c.seq,
                **({"source_document_id": c.document_id} if c.document_id else {}),
            },
        )
        for c in chunks
    ]
    kept = [c.text for c in newest_versions(chunks)]
    assert kept == ["b v1", "a v2", "None x", "None y"]
    assert [h.text for h in newest_versions(raw, raw_version)] == kept


# ------------------------------------------------------------------ mapping
def test_a_search_hit_maps_every_schema_key() -> None:
    hidden, other = uuid.uuid4(), uuid.uuid4()
    r2r_id = uuid.uuid4()
    hit = SearchHit(
        chunk_id=uuid.uuid4(),
        document_id=r2r_id,
        collection_ids=[other, hidden],
        score=0.25,
        text="body",
        metadata={
            schema.SOURCE_DOCUMENT_ID: "files__default: 12",
            schema.TENANT: NEXTCLOUD.scope("cloud1").key,
            schema.TITLE: "Report.md",
            schema.SEMANTIC_IDENTIFIER: None,
            schema.LINK: "https://cloud/f/12",
            schema.SOURCE_TYPE: "files__default",
            schema.UPDATED_AT: "2026-05-06T07:08:09Z",
            schema.SOURCE_METADATA: {"k": 1, "l": ["a", 2], "none": None},
            schema.MODIFIED: "1767225600",
            schema.VERSION: "abc",
            schema.SEQ: "7",
            schema.CHUNK_ORDER: 3,
        },
    )
    chunk = MirroredChunk.from_r2r(hit, hidden_collection=str(hidden))
    assert chunk.document_id == "files__default: 12" and chunk.r2r_document_id == r2r_id
    assert chunk.scope_key == "nextcloud:cloud1" and chunk.text == "body"
    assert chunk.title == "Report.md" and chunk.semantic_identifier == "Report.md"
    assert chunk.link == "https://cloud/f/12" and chunk.source_type == "files__default"
    assert chunk.updated_at == datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert chunk.source_metadata == {"k": "1", "l": ["a", "2"]}
    assert chunk.modified == 1767225600 and chunk.version == "abc" and chunk.seq == 7
    assert chunk.chunk_order == 3 and chunk.score == 0.25 and chunk.hidden
    assert chunk.collection_ids == (other, hidden)


def test_a_stored_chunk_reads_leniently() -> None:
    """Missing or malformed values become the documented defaults, never an exception."""
    stored = R2RChunk(
        id=uuid.uuid4(),
        document_id=uuid.uuid4(),
        text="t",
        metadata={
            schema.CHUNK_ORDER: "x",
            schema.SEQ: "newest",
            schema.UPDATED_AT: "yesterday",
            schema.SOURCE_METADATA: ["not", "a", "mapping"],
            schema.MODIFIED: "soon",
        },
    )
    chunk = MirroredChunk.from_r2r(stored, hidden_collection=None, fallback_order=5)
    assert chunk.document_id == "" and chunk.semantic_identifier == ""
    assert chunk.title is None and chunk.link is None and chunk.source_type is None
    assert chunk.chunk_order == 5 and chunk.seq == 0 and chunk.version is None
    assert chunk.updated_at is None and chunk.source_metadata == {} and chunk.modified is None
    assert chunk.score is None and not chunk.hidden and chunk.scope_key is None
