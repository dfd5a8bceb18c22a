"""search.newest_versions: during a gap-free replace only the newest version is shown (pure)."""

from __future__ import annotations

import uuid
from typing import Any

from onyx.r2r_sender.applier import SEQ_KEY
from onyx.r2r_sender.ids import r2r_version_id
from onyx.r2r_sender.r2r_types import SearchHit
from onyx.r2r_sender.search import newest_versions


def _hit(doc: str | None, version: str, seq: Any, score: float, **extra: Any) -> SearchHit:
    metadata: dict[str, Any] = dict(extra)
    if doc is not None:
        metadata["source_document_id"] = doc
    if seq is not None:
        metadata[SEQ_KEY] = seq
    return SearchHit(
        chunk_id=uuid.uuid4(),
        document_id=r2r_version_id("t", doc or "anon", version),
        score=score,
        text=f"{doc} {version}",
        metadata=metadata,
    )


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
    assert v1.document_id != v2.document_id
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
