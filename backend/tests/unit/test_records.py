"""The engine's record format (records.py), and that it keeps every existing version."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from onyx.r2r_integration.onyx_shapes import source_document_from_onyx
from onyx.r2r_sender import schema
from onyx.r2r_sender.config import BridgeSettings
from onyx.r2r_sender.payload import InvalidDocumentError, SourceDocument, prepare
from onyx.r2r_sender.records import source_document_from_record

SAMPLES = Path(__file__).resolve().parents[3] / "samples"


def _sample_records() -> list[dict]:
    out = []
    for name in ("initial.jsonl", "changes.jsonl"):
        for line in (SAMPLES / name).read_text().splitlines():
            record = json.loads(line)
            if record.get("op", "upsert") == "upsert":
                out.append(record)
    return out


def test_sample_versions_are_those_of_earlier_releases() -> None:
    """Golden: the versions of the 230 sample documents, computed by the release before the
    record format existed, then once more when the update time left the version (issue 17;
    the ledger recognises rows of the earlier formula by their stored payload).  Any other
    change here would re-embed every mirrored document."""
    settings = BridgeSettings()
    for convert in (source_document_from_record, source_document_from_onyx):
        versions = [prepare(convert(r), settings, "demo").version for r in _sample_records()]
        assert len(versions) == 230
        assert versions[0] == "d8b2cd353f90b2c1f73321aef2606ada"
        digest = hashlib.sha256("\n".join(versions).encode()).hexdigest()
        assert digest == "b7d9d56e2eaf7b485dbb98c3abbc0b105f53421a281671d74b13b0466e53774e"


def test_text_wins_over_sections_and_aliases_are_read() -> None:
    doc = source_document_from_record(
        {
            "id": "d1",
            "text": "plain text",
            "sections": [{"text": "ignored", "link": "https://x/s0"}],
            "updated_at": "2026-01-02T03:04:05Z",
            "sets": ["a"],
            "flags": ["hidden"],
            "modified": 1700000000,
            "acl": ["alice"],
        }
    )
    assert doc.text == "plain text"
    assert doc.link == "https://x/s0"
    assert doc.updated_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert (doc.sets, doc.flags, doc.modified, doc.acl) == (
        ["a"],
        ["hidden"],
        1700000000,
        ["alice"],
    )


def test_sections_join_one_per_line_and_title_falls_back() -> None:
    doc = source_document_from_record(
        {
            "id": "d",
            "semantic_identifier": "Name",
            "sections": [{"text": "a"}, {"image": 1}, {"text": "b"}],
        }
    )
    assert (doc.text, doc.title, doc.acl, doc.sets) == ("a\nb", "Name", [], None)


def test_modified_is_chunk_metadata_only_when_set() -> None:
    settings = BridgeSettings()
    plain = prepare(SourceDocument(document_id="d", text="t"), settings, "t1")
    stamped = prepare(SourceDocument(document_id="d", text="t", modified=5), settings, "t1")
    assert schema.MODIFIED not in plain.r2r_metadata
    assert stamped.r2r_metadata[schema.MODIFIED] == 5
    assert plain.version != stamped.version
    digits = prepare(SourceDocument(document_id="d", text="t", modified="5"), settings, "t1")
    assert digits.version == stamped.version


@pytest.mark.parametrize(
    ("record", "fragment"),
    [
        ({"id": ""}, "document id"),
        ({"id": "d", "sections": "text"}, "sections must be a list"),
        ({"id": "d", "text": "t", "acl": "alice"}, "acl must be a list"),
        ({"id": "d", "text": "t", "doc_updated_at": "yesterday"}, "is not ISO 8601"),
        ({"id": "d", "text": "t", "flags": 3}, "flags must be a list"),
    ],
)
def test_bad_records_name_the_document_and_the_field(record: dict, fragment: str) -> None:
    with pytest.raises(InvalidDocumentError, match=fragment):
        source_document_from_record(record)


def test_bad_modified_is_refused_by_prepare() -> None:
    with pytest.raises(InvalidDocumentError, match="modified must be epoch seconds"):
        prepare(SourceDocument(document_id="d", text="t", modified=-1), BridgeSettings(), "t")


def test_field_of_reads_pydantic_models_like_getattr() -> None:
    """The fast path for pydantic models gives exactly what ``getattr`` gives."""
    from pydantic import BaseModel, ConfigDict, PrivateAttr

    from onyx.r2r_sender.records import field_of

    class Doc(BaseModel):
        model_config = ConfigDict(extra="allow")
        id: str
        text: str | None = None
        sections: list[str] = []
        _secret: str = PrivateAttr(default="p")

        @property
        def title(self) -> str:
            return f"T {self.id}"

    class Strict(BaseModel):
        id: str

    doc = Doc(id="d1", text="body", extra_field=7)
    for name in ("id", "text", "sections", "title", "extra_field", "_secret", "missing"):
        assert field_of(doc, name, "dflt") == getattr(doc, name, "dflt"), name
    partial = Doc.model_construct(id="d2")  # unset fields fall back to getattr
    assert field_of(partial, "text", "dflt") == getattr(partial, "text", "dflt")
    strict = Strict(id="s")
    assert field_of(strict, "acl") is None
    assert field_of(strict, "id") == "s"
    assert field_of({"id": "x"}, "id") == "x"
    assert field_of(object(), "id", 3) == 3
