"""payload.prepare: validation, normalisation and the content version (pure, no services)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from onyx.r2r_sender.config import BridgeSettings
from onyx.r2r_sender.payload import (
    ACL_PREFIX,
    SET_PREFIX,
    InvalidDocumentError,
    PreparedDocument,
    SourceDocument,
    clean_text,
    prepare,
)

SETTINGS = BridgeSettings()
TENANT = "public"

# A fixed document and the version hash it must always have.  If this changes,
# every mirrored document is re-embedded on the next sync: change it only on purpose.
GOLDEN_DOC = SourceDocument(
    document_id="doc-1",
    text="Hello world",
    title="Greeting",
    semantic_identifier="Greeting",
    link="https://x/1",
    source_type="web",
    updated_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    metadata={"topic": "x", "tags": ["a", "b"]},
    acl=["PUBLIC"],
    sets=["s1"],
)
# issue 17: the update time left the version (was e116b4d7273ddf05168687e0351650d0); the
# ledger recognises rows of the earlier formula by their payload (tests/integration/
# test_versions.py), so unchanged documents are not re-embedded
GOLDEN_VERSION = "47e22dbebe2cce0c265fa16da8708568"


def _prep(doc: SourceDocument, settings: BridgeSettings = SETTINGS) -> PreparedDocument:
    return prepare(doc, settings, TENANT)


def _doc(**kwargs: object) -> SourceDocument:
    base: dict[str, object] = {"document_id": "d1", "text": "some text"}
    base.update(kwargs)
    return SourceDocument(**base)  # type: ignore[arg-type]


def _reject(doc: SourceDocument, settings: BridgeSettings = SETTINGS) -> InvalidDocumentError:
    with pytest.raises(InvalidDocumentError) as info:
        _prep(doc, settings)
    return info.value


# ------------------------------------------------------------------ version


def test_golden_version() -> None:
    prepared = _prep(GOLDEN_DOC)
    assert prepared.version == GOLDEN_VERSION
    assert prepared.text == "Hello world"
    assert prepared.chunks is None
    assert prepared.labels == ["acl:PUBLIC", "set:s1"]
    assert prepared.r2r_metadata == {
        "source_document_id": "doc-1",
        "tenant_id": "public",
        "title": "Greeting",
        "semantic_identifier": "Greeting",
        "link": "https://x/1",
        "source_type": "web",
        "updated_at": "2026-01-02T03:04:05+00:00",
        "source_metadata": {"topic": "x", "tags": ["a", "b"]},
    }


def test_version_is_stable_across_processes() -> None:
    """Same input → same version in a fresh interpreter with another hash seed."""
    code = (
        "from datetime import datetime, timezone\n"
        "from onyx.r2r_sender.config import BridgeSettings\n"
        "from onyx.r2r_sender.payload import SourceDocument, prepare\n"
        "d = SourceDocument(document_id='doc-1', text='Hello world', title='Greeting',"
        " semantic_identifier='Greeting', link='https://x/1', source_type='web',"
        " updated_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),"
        " metadata={'tags': ['a', 'b'], 'topic': 'x'}, acl={'PUBLIC'}, sets={'s1'})\n"
        "print(prepare(d, BridgeSettings(), 'public').version)\n"
    )
    backend = str(Path(__file__).resolve().parents[2])
    for seed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        env["PYTHONPATH"] = backend + os.pathsep + env.get("PYTHONPATH", "")
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
        ).stdout.strip()
        assert out == GOLDEN_VERSION


def test_version_ignores_metadata_key_order() -> None:
    a = _prep(_doc(metadata={"a": "1", "b": "2"}))
    b = _prep(_doc(metadata={"b": "2", "a": "1"}))
    assert a.version == b.version


@pytest.mark.parametrize(
    "change",
    [
        {"text": "other text"},
        {"title": "A title"},
        {"semantic_identifier": "Another"},
        {"link": "https://elsewhere"},
        {"source_type": "confluence"},
        {"metadata": {"k": "v"}},
        {"metadata": {"k": ["v"]}},
        {"chunks": ["some text"]},  # chunks hash differently from the same raw text
    ],
)
def test_version_changes_with_content_and_metadata(change: dict[str, object]) -> None:
    assert _prep(_doc(**change)).version != _prep(_doc()).version


def test_version_does_not_change_with_the_update_time() -> None:
    """Onyx's file connector stamps the fetch time into ``doc_updated_at`` (issue 17): the
    update time is chunk metadata written with a new version, never a reason for one."""
    plain = _prep(_doc())
    stamped = [_prep(_doc(updated_at=datetime(2026, m, 2, tzinfo=UTC))) for m in (1, 2)]
    assert plain.version == stamped[0].version == stamped[1].version
    assert stamped[0].r2r_metadata["updated_at"] != stamped[1].r2r_metadata["updated_at"]


def test_a_document_without_an_update_time_keeps_its_earlier_version() -> None:
    """The earlier formula hashed the metadata JSON with ``updated_at: null`` in it."""
    prepared = _prep(_doc())
    hasher = hashlib.blake2b(digest_size=16)
    hasher.update(prepared.r2r_metadata_json.encode("utf-8"))
    hasher.update(b"\x00t" + b"some text")
    assert prepared.r2r_metadata["updated_at"] is None
    assert prepared.version == hasher.hexdigest()


def test_version_changes_with_tenant() -> None:
    assert prepare(_doc(), SETTINGS, "a").version != prepare(_doc(), SETTINGS, "b").version


def test_version_does_not_change_with_acl_or_sets() -> None:
    plain = _prep(_doc())
    with_labels = _prep(_doc(acl=["PUBLIC", "user_email:a@b.c"], sets=["s1", "s2"]))
    assert plain.version == with_labels.version
    assert plain.labels == []
    assert with_labels.labels == ["acl:PUBLIC", "acl:user_email:a@b.c", "set:s1", "set:s2"]


def test_chunk_boundaries_matter() -> None:
    assert _prep(_doc(chunks=["ab", "c"])).version != _prep(_doc(chunks=["a", "bc"])).version


# ------------------------------------------------------------- normalisation


def test_nul_bytes_are_removed_everywhere() -> None:
    prepared = _prep(
        _doc(
            text="a\x00b",
            title="t\x00i",
            semantic_identifier="s\x00",
            metadata={"k\x00": "v\x00", "l": ["x\x00y"]},
            acl=["user_email:a\x00@b.c"],
            sets=["s\x00et"],
        )
    )
    assert prepared.text == "ab"
    assert prepared.r2r_metadata["title"] == "ti"
    assert prepared.r2r_metadata["semantic_identifier"] == "s"
    assert prepared.r2r_metadata["source_metadata"] == {"k": "v", "l": ["xy"]}
    assert prepared.labels == ["acl:user_email:a@b.c", "set:set"]
    assert (
        prepared.version
        == _prep(
            _doc(
                text="ab",
                title="ti",
                semantic_identifier="s",
                metadata={"k": "v", "l": ["xy"]},
            )
        ).version
    )


def test_invalid_utf8_bytes_become_replacement_characters() -> None:
    prepared = _prep(_doc(text=b"caf\xc3\xa9 \xff\xfe end", title=b"T\xffitle"))
    assert prepared.text == "café \ufffd\ufffd end"
    assert prepared.r2r_metadata["title"] == "T\ufffditle"


def test_surrogate_escaped_text_becomes_replacement_characters() -> None:
    # what open(..., errors="surrogateescape") yields for invalid UTF-8 (the CLI reads so)
    raw = b"ok \xff\xfe done".decode("utf-8", "surrogateescape")
    prepared = _prep(_doc(text=raw, metadata={"k": raw}, chunks=None))
    assert prepared.text == "ok \ufffd\ufffd done"
    assert prepared.r2r_metadata["source_metadata"]["k"] == "ok \ufffd\ufffd done"
    prepared.text.encode("utf-8")  # encodable: PostgreSQL and R2R accept it


def test_clean_text() -> None:
    assert clean_text("plain") == "plain"
    assert clean_text("a\x00b\x00") == "ab"
    assert clean_text("x\ud800y") == "x\ufffdy"
    assert clean_text("") == ""


def test_empty_chunks_are_dropped() -> None:
    prepared = _prep(_doc(text=None, chunks=["first", "", "   ", "\x00", "second"]))
    assert prepared.chunks == ["first", "second"]
    assert prepared.text is None
    assert prepared.version == _prep(_doc(text=None, chunks=["first", "second"])).version


def test_all_empty_chunks_fall_back_to_text() -> None:
    prepared = _prep(_doc(text="the text", chunks=["", " "]))
    assert prepared.chunks is None
    assert prepared.text == "the text"


def test_chunks_win_over_text() -> None:
    prepared = _prep(_doc(text="ignored", chunks=["c1"]))
    assert prepared.chunks == ["c1"]
    assert prepared.text is None


@pytest.mark.parametrize("text", [None, "", "   \n\t"])
def test_title_is_used_as_text_when_there_is_no_text(text: str | None) -> None:
    prepared = _prep(_doc(text=text, title="Only a title"))
    assert prepared.text == "Only a title"
    assert prepared.r2r_metadata["title"] == "Only a title"


def test_title_defaults_to_document_id() -> None:
    assert _prep(_doc(title=None)).r2r_metadata["title"] == "d1"


def test_labels_are_prefixed_sorted_and_deduplicated() -> None:
    prepared = _prep(
        _doc(
            acl=["user_email:z@x.io", "PUBLIC", "group:eng", "PUBLIC"],
            sets=("zeta", "alpha", "alpha"),
        )
    )
    assert prepared.labels == [
        ACL_PREFIX + "PUBLIC",
        ACL_PREFIX + "group:eng",
        ACL_PREFIX + "user_email:z@x.io",
        SET_PREFIX + "alpha",
        SET_PREFIX + "zeta",
    ]
    assert prepared.labels == sorted(prepared.labels)


def test_none_acl_and_sets_mean_keep_what_the_ledger_has() -> None:
    prepared = _prep(_doc(acl=None, sets=None))
    assert prepared.acl_labels is None and prepared.set_labels is None
    assert prepared.labels == []
    assert prepared.version == _prep(_doc()).version
    recorded = ["acl:PUBLIC", "set:old"]
    assert prepared.merged_labels(recorded) == recorded
    # a part that is given replaces the recorded part, the other part is kept
    only_acl = _prep(_doc(acl=["group:eng"], sets=None))
    assert only_acl.merged_labels(recorded) == ["acl:group:eng", "set:old"]
    # an empty collection is not None: it revokes everything of that part
    none_at_all = _prep(_doc(acl=[], sets=[]))
    assert none_at_all.merged_labels(recorded) == []


def test_acl_and_sets_with_same_name_stay_apart() -> None:
    assert _prep(_doc(acl=["x"], sets=["x"])).labels == ["acl:x", "set:x"]


def test_naive_updated_at_is_utc_and_aware_is_converted() -> None:
    naive = _prep(_doc(updated_at=datetime(2026, 3, 4, 5, 6, 7)))
    aware = _prep(
        _doc(updated_at=datetime(2026, 3, 4, 7, 6, 7, tzinfo=timezone(timedelta(hours=2))))
    )
    assert naive.r2r_metadata["updated_at"] == "2026-03-04T05:06:07+00:00"
    assert aware.r2r_metadata["updated_at"] == "2026-03-04T05:06:07+00:00"
    assert naive.version == aware.version


def test_metadata_value_types_kept() -> None:
    md = {"s": "x", "i": 3, "f": 1.5, "b": True, "l": ["a", "b"], "t": ("c",)}
    prepared = _prep(_doc(metadata=md))
    assert prepared.r2r_metadata["source_metadata"] == {
        "s": "x",
        "i": 3,
        "f": 1.5,
        "b": True,
        "l": ["a", "b"],
        "t": ["c"],
    }


def test_metadata_is_nested_not_spliced() -> None:
    """Host keys cannot overwrite the bridge's own keys (they live under source_metadata)."""
    prepared = _prep(_doc(metadata={"source_document_id": "evil", "tenant_id": "other"}))
    assert prepared.r2r_metadata["source_document_id"] == "d1"
    assert prepared.r2r_metadata["tenant_id"] == TENANT


# ----------------------------------------------------------------- rejections


@pytest.mark.parametrize(
    ("doc", "doc_name", "fragment"),
    [
        (_doc(text=None, title=None), "d1", "no text, chunks or title"),
        (_doc(text="", title="  ", chunks=["", " "]), "d1", "no text, chunks or title"),
        (_doc(text=123), "d1", "text must be a string, got int"),
        (_doc(title=["x"]), "d1", "title must be a string, got list"),
        (_doc(link=5), "d1", "link must be a string"),
        (_doc(semantic_identifier=1.0), "d1", "semantic_identifier must be a string"),
        (_doc(source_type=object()), "d1", "source_type must be a string"),
        (_doc(chunks="abc"), "d1", "chunks must be a list of strings"),
        (_doc(chunks=["ok", 3]), "d1", "chunk must be a string, got int"),
        (_doc(metadata=["k"]), "d1", "metadata must be a mapping"),
        (_doc(metadata={"": "v"}), "d1", "metadata key"),
        (_doc(metadata={"k" * 257: "v"}), "d1", "metadata key"),
        (_doc(metadata={3: "v"}), "d1", "metadata key"),
        (_doc(metadata={"k": {"nested": 1}}), "d1", "metadata value for 'k'"),
        (_doc(metadata={"k": ["a", 1]}), "d1", "list containing int"),
        (_doc(metadata={"k": None}), "d1", "got NoneType"),
        (_doc(metadata={"k": float("nan")}), "d1", "metadata value for 'k' is nan"),
        (_doc(metadata={"k": float("inf")}), "d1", "metadata value for 'k' is inf"),
        (_doc(acl="PUBLIC"), "d1", "acl must be a collection of strings"),
        (_doc(sets=7), "d1", "sets must be a collection of strings"),
        (_doc(flags="hidden"), "d1", "flags must be a collection of strings"),
        (_doc(chunks=5), "d1", "chunks must be a list of strings"),
        (_doc(updated_at="2026-01-01"), "d1", "updated_at must be a datetime, got str"),
        (_doc(sets="s1"), "d1", "sets must be a collection of strings"),
        (_doc(acl=["PUBLIC", ""]), "d1", "acl entries must be non-empty strings"),
        (_doc(acl=[None]), "d1", "acl entries must be non-empty strings"),
        (_doc(sets=["  "]), "d1", "sets entries must be non-empty strings"),
        (_doc(document_id=""), "", "document id must be a non-empty string"),
        (_doc(document_id="   "), "   ", "document id must be a non-empty string"),
        (_doc(document_id=None), "None", "document id must be a non-empty string"),
        (_doc(document_id="a\x00b"), "a\\0b", "document id contains NUL"),
        (
            _doc(document_id=b"bad\xff".decode("utf-8", "surrogateescape")),
            "bad\ufffd",
            "document id is not valid UTF-8",
        ),
    ],
)
def test_rejections_name_the_document_and_the_problem(
    doc: SourceDocument, doc_name: str, fragment: str
) -> None:
    error = _reject(doc)
    assert error.document_id == doc_name
    assert fragment in error.reason
    assert f"document {doc_name!r}" in str(error)
    assert fragment in str(error)


def test_text_limit_counts_bytes() -> None:
    settings = BridgeSettings(max_text_bytes=10)
    assert _prep(_doc(text="a" * 10), settings).text == "a" * 10
    assert "above the limit" in _reject(_doc(text="a" * 11), settings).reason
    # 6 characters but 12 bytes in UTF-8: over a 10-byte limit
    assert "above the limit" in _reject(_doc(text="é" * 6), settings).reason
    assert _prep(_doc(text="é" * 5), settings).text == "é" * 5


def test_text_limit_applies_to_chunks() -> None:
    settings = BridgeSettings(max_text_bytes=10)
    assert _prep(_doc(text=None, chunks=["aaaaa", "bbbbb"]), settings).chunks
    error = _reject(_doc(text=None, chunks=["aaaaa", "bbbbbb"]), settings)
    assert error.document_id == "d1"
    assert "above the limit" in error.reason


def test_text_limit_applies_to_title_used_as_text() -> None:
    settings = BridgeSettings(max_text_bytes=10)
    assert "above the limit" in _reject(_doc(text=None, title="t" * 11), settings).reason


def test_text_limit_message_is_in_mib() -> None:
    settings = BridgeSettings(max_text_bytes=1_048_576)
    error = _reject(_doc(text="x" * (2 * 1_048_576)), settings)
    assert "text is 2.0 MiB, above the limit of 1.0 MiB" in error.reason


def test_acl_entry_limit() -> None:
    settings = BridgeSettings(max_acl_entries=3)
    assert _prep(_doc(acl=["a", "b"], sets=["c"]), settings).labels
    error = _reject(_doc(acl=["a", "b"], sets=["c", "d"]), settings)
    assert "4 ACL/set entries, above the limit of 3" in error.reason
    # duplicates count once
    assert _prep(_doc(acl=["a", "a", "a", "a"]), settings).labels == ["acl:a"]


def test_metadata_size_limit() -> None:
    settings = BridgeSettings(max_metadata_bytes=400)
    assert _prep(_doc(metadata={"k": "v" * 50}), settings)
    error = _reject(_doc(metadata={"k": "v" * 500}), settings)
    assert "metadata is" in error.reason
    assert "above the limit of 400" in error.reason
    assert error.document_id == "d1"


def test_prepare_never_raises_anything_else() -> None:
    """Garbage of every shape is an InvalidDocumentError, never a TypeError/KeyError."""
    garbage: list[object] = [None, 1, 1.5, b"\xff", [], {}, object(), {"a"}, ("x",), [None]]
    names = ("text", "title", "link", "semantic_identifier", "source_type")
    names += ("chunks", "metadata", "acl", "sets", "updated_at")
    for value in garbage:
        for name in names:
            try:
                _prep(_doc(**{name: value}))
            except InvalidDocumentError as exc:
                assert exc.document_id == "d1"
