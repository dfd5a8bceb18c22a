"""onyx_shapes: reading Onyx-shaped objects and dicts without importing Onyx (pure).

The classes below mimic Onyx's attribute names (``backend/onyx/connectors/models.py``,
``backend/onyx/access/models.py``): ``Document``, ``TextSection``/``ImageSection``,
``DocumentSource`` (a ``str`` enum, so ``str(member)`` is *not* its value),
``ExternalAccess`` and ``DocumentAccess`` with ``to_acl()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import pytest

from onyx.r2r_integration.onyx_shapes import (
    document_access_acl,
    enum_value,
    external_access_acl,
    field_of,
    source_document_from_onyx,
)
from onyx.r2r_sender.config import BridgeSettings
from onyx.r2r_sender.payload import InvalidDocumentError, SourceDocument, prepare
from onyx.r2r_sender.records import first_link, section_text


class DocumentSource(str, Enum):  # noqa: UP042 - Onyx declares it so
    CONFLUENCE = "confluence"
    GOOGLE_DRIVE = "google_drive"


@dataclass
class TextSection:
    text: str
    link: str | None = None


@dataclass
class ImageSection:
    image_file_id: str
    link: str | None = None


@dataclass
class ExternalAccess:
    external_user_emails: set[str]
    external_user_group_ids: set[str]
    is_public: bool


@dataclass
class DocumentAccess(ExternalAccess):
    user_emails: set[str | None]
    user_groups: set[str]

    def to_acl(self) -> set[str]:  # Onyx's implementation, verbatim in spirit
        acl: set[str] = set()
        for email in self.user_emails:
            if email:
                acl.add("user_email:" + email)
        for group in self.user_groups:
            acl.add("group:" + group)
        for email in self.external_user_emails:
            acl.add("user_email:" + email)
        for group in self.external_user_group_ids:
            acl.add("external_group:" + group)
        if self.is_public:
            acl.add("PUBLIC")
        return acl


@dataclass
class Document:
    id: str
    sections: list[Any]
    source: DocumentSource
    semantic_identifier: str
    metadata: dict[str, str | list[str]] = field(default_factory=dict)
    doc_updated_at: datetime | None = None
    title: str | None = None
    external_access: ExternalAccess | None = None
    primary_owners: list[Any] | None = None
    from_ingestion_api: bool = False


def _onyx_doc(**kwargs: Any) -> Document:
    base: dict[str, Any] = {
        "id": "https://wiki.example.com/page/1",
        "sections": [
            TextSection("First section.", "https://wiki.example.com/page/1#a"),
            ImageSection("img-1", "https://wiki.example.com/page/1#img"),
            TextSection("Second section.", "https://wiki.example.com/page/1#b"),
        ],
        "source": DocumentSource.CONFLUENCE,
        "semantic_identifier": "Page one",
        "metadata": {"space": "ENG", "labels": ["a", "b"]},
        "doc_updated_at": datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC),
    }
    base.update(kwargs)
    return Document(**base)


# --------------------------------------------------------------- primitives


def test_enum_value_uses_value_not_str() -> None:
    assert str(DocumentSource.CONFLUENCE) != "confluence"  # the trap enum_value avoids
    assert enum_value(DocumentSource.CONFLUENCE) == "confluence"
    assert enum_value("web") == "web"
    assert enum_value(None) is None


def test_field_of_reads_attributes_and_keys() -> None:
    assert field_of({"a": 1}, "a") == 1
    assert field_of({"a": 1}, "b", 5) == 5
    assert field_of(TextSection("t"), "text") == "t"
    assert field_of(TextSection("t"), "missing", "d") == "d"
    assert field_of(TextSection("t"), "link", "d") is None  # present, None: not the default


def test_section_text_keeps_order_and_skips_textless_sections() -> None:
    sections = [
        TextSection("one"),
        ImageSection("img"),
        {"text": "two"},
        {"text": ""},
        {"link": "x"},
        TextSection("three"),
        {"text": b"caf\xc3\xa9"},
    ]
    assert section_text(sections) == "one\ntwo\nthree\ncafé"
    assert section_text(None) == ""
    assert section_text([]) == ""


def test_first_link_is_the_first_section_with_a_link() -> None:
    assert first_link([TextSection("a"), TextSection("b", "L2"), TextSection("c", "L3")]) == "L2"
    assert first_link([ImageSection("i", "IL"), TextSection("b", "L2")]) == "IL"
    assert first_link([{"text": "a", "link": ""}, {"text": "b", "link": "L"}]) == "L"
    assert first_link([TextSection("a")]) is None
    assert first_link(None) is None


def test_external_access_acl() -> None:
    access = ExternalAccess(
        external_user_emails={"b@x.io", "a@x.io", ""},
        external_user_group_ids={"g1"},
        is_public=True,
    )
    assert external_access_acl(access) == [
        "PUBLIC",
        "external_group:g1",
        "user_email:a@x.io",
        "user_email:b@x.io",
    ]
    assert external_access_acl(None) is None
    private = ExternalAccess(set(), set(), is_public=False)
    assert external_access_acl(private) == []  # present but empty: visible to nobody
    as_dict = {"external_user_emails": ["c@x.io"], "is_public": False}
    assert external_access_acl(as_dict) == ["user_email:c@x.io"]


def test_document_access_acl_uses_to_acl() -> None:
    access = DocumentAccess(
        external_user_emails={"ext@x.io"},
        external_user_group_ids={"eg"},
        is_public=False,
        user_emails={"u@x.io", None},
        user_groups={"eng"},
    )
    assert document_access_acl(access) == sorted(access.to_acl())
    assert document_access_acl(access) == [
        "external_group:eg",
        "group:eng",
        "user_email:ext@x.io",
        "user_email:u@x.io",
    ]


def test_document_access_acl_without_to_acl_builds_the_same() -> None:
    as_dict = {
        "external_user_emails": ["ext@x.io"],
        "external_user_group_ids": ["eg"],
        "is_public": True,
        "user_emails": ["u@x.io", None, ""],
        "user_groups": ["eng"],
    }
    assert document_access_acl(as_dict) == [
        "PUBLIC",
        "external_group:eg",
        "group:eng",
        "user_email:ext@x.io",
        "user_email:u@x.io",
    ]


# -------------------------------------------------------- whole documents


def test_onyx_document_object() -> None:
    doc = _onyx_doc(
        external_access=ExternalAccess({"a@x.io"}, {"grp"}, is_public=False),
        title="Explicit title",
    )
    source = source_document_from_onyx(doc, default_acl=["PUBLIC"])
    assert isinstance(source, SourceDocument)
    assert source.document_id == "https://wiki.example.com/page/1"
    assert source.text == "First section.\nSecond section."
    assert source.link == "https://wiki.example.com/page/1#a"
    assert source.source_type == "confluence"
    assert source.title == "Explicit title"
    assert source.semantic_identifier == "Page one"
    assert source.updated_at == datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert source.metadata == {"space": "ENG", "labels": ["a", "b"]}
    # external_access wins over the default ACL
    assert sorted(source.acl) == ["external_group:grp", "user_email:a@x.io"]
    assert source.sets is None  # Onyx's Document has no document_sets: keep the recorded ones


def test_title_falls_back_to_semantic_identifier() -> None:
    source = source_document_from_onyx(_onyx_doc(title=None))
    assert source.title == "Page one"


def test_default_acl_when_no_external_access() -> None:
    assert list(source_document_from_onyx(_onyx_doc(), default_acl=("PUBLIC",)).acl) == ["PUBLIC"]
    assert list(source_document_from_onyx(_onyx_doc()).acl) == []  # fail closed
    # None: another host path owns access, keep what the ledger has
    assert source_document_from_onyx(_onyx_doc(), default_acl=None).acl is None
    # external_access always wins, even over default_acl=None
    with_access = _onyx_doc(external_access=ExternalAccess(set(), set(), is_public=True))
    assert list(source_document_from_onyx(with_access, default_acl=None).acl) == ["PUBLIC"]


def test_dict_input_matches_object_input() -> None:
    obj = _onyx_doc(external_access=ExternalAccess(set(), set(), is_public=True))
    as_dict = {
        "id": obj.id,
        "sections": [
            {"text": "First section.", "link": "https://wiki.example.com/page/1#a"},
            {"image_file_id": "img-1", "link": "https://wiki.example.com/page/1#img"},
            {"text": "Second section.", "link": "https://wiki.example.com/page/1#b"},
        ],
        "source": "confluence",
        "semantic_identifier": "Page one",
        "metadata": {"space": "ENG", "labels": ["a", "b"]},
        "doc_updated_at": "2026-05-06T07:08:09Z",
        "external_access": {
            "external_user_emails": [],
            "external_user_group_ids": [],
            "is_public": True,
        },
    }
    from_obj = source_document_from_onyx(obj)
    from_dict = source_document_from_onyx(as_dict)
    assert from_obj == SourceDocument(**{**from_obj.__dict__, "acl": from_dict.acl})
    assert list(from_obj.acl) == list(from_dict.acl) == ["PUBLIC"]
    settings = BridgeSettings()
    assert prepare(from_obj, settings, "t").version == prepare(from_dict, settings, "t").version


def test_dict_with_plain_acl_list_and_document_sets() -> None:
    source = source_document_from_onyx(
        {
            "id": "d",
            "sections": [{"text": "x"}],
            "acl": ["group:eng", "PUBLIC"],
            "document_sets": ["handbook"],
            "external_access": {"is_public": False},
        }
    )
    assert list(source.acl) == ["group:eng", "PUBLIC"]  # the explicit list wins
    assert list(source.sets) == ["handbook"]
    prepared = prepare(source, BridgeSettings(), "t")
    assert prepared.labels == ["acl:PUBLIC", "acl:group:eng", "set:handbook"]


def test_document_without_sections_uses_its_title() -> None:
    source = source_document_from_onyx({"id": "d", "sections": [], "semantic_identifier": "S"})
    prepared = prepare(source, BridgeSettings(), "t")
    assert prepared.text == "S"


@pytest.mark.parametrize(
    ("doc", "doc_name", "fragment"),
    [
        ({"sections": [{"text": "x"}]}, "None", "document id must be a non-empty string"),
        ({"id": "", "sections": []}, "", "document id must be a non-empty string"),
        ({"id": 7, "sections": []}, "7", "document id must be a non-empty string"),
        ({"id": "d", "sections": "text"}, "d", "sections must be a list"),
        ({"id": "d", "sections": 3}, "d", "sections must be a list"),
        ({"id": "d", "sections": [], "doc_updated_at": "yesterday"}, "d", "not ISO 8601"),
        ({"id": "d", "sections": [], "doc_updated_at": 17}, "d", "doc_updated_at has type int"),
        ({"id": "d", "sections": [], "acl": "PUBLIC"}, "d", "acl must be a list of strings"),
        ({"id": "d", "sections": [], "document_sets": "hr"}, "d", "document_sets must be a list"),
        ({"id": "d", "sections": [], "document_sets": 3}, "d", "document_sets must be a list"),
    ],
)
def test_bad_onyx_input_names_the_document(doc: dict, doc_name: str, fragment: str) -> None:
    with pytest.raises(InvalidDocumentError) as info:
        source_document_from_onyx(doc)
    assert info.value.document_id == doc_name
    assert fragment in str(info.value)
