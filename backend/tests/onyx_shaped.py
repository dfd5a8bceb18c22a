"""Small stand-ins shaped like Onyx's objects (a7d66a8), for tests without Onyx.

Field names and semantics follow ``onyx/connectors/models.py`` (``Document``,
``TextSection``), ``onyx/access/models.py`` (``ExternalAccess``,
``DocumentAccess.to_acl``), ``onyx/indexing/models.py``
(``DocMetadataAwareIndexChunk``), ``onyx/context/search/models.py``
(``IndexFilters``, ``InferenceChunk``, ``TimeRange``, ``Tag``) and
``onyx/document_index/interfaces_new.py`` (``MetadataUpdateRequest``,
``IndexingMetadata``, ``DocumentInsertionRecord``, ``DocumentSectionRequest``).
The real classes are exercised by ``backend/tests/onyx_contract``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any


class DocumentSource(str, Enum):  # noqa: UP042 - Onyx's own declaration
    WEB = "web"
    CONFLUENCE = "confluence"
    SLACK = "slack"
    INGESTION_API = "ingestion_api"
    USER_FILE = "user_file"
    NOT_APPLICABLE = "not_applicable"


@dataclass
class TextSection:
    text: str
    link: str | None = None


@dataclass(frozen=True)
class ExternalAccess:
    external_user_emails: set[str]
    external_user_group_ids: set[str]
    is_public: bool


@dataclass(frozen=True)
class DocumentAccess:
    user_emails: set[str | None] = field(default_factory=set)
    user_groups: set[str] = field(default_factory=set)
    external_user_emails: set[str] = field(default_factory=set)
    external_user_group_ids: set[str] = field(default_factory=set)
    is_public: bool = False

    def to_acl(self) -> set[str]:
        acl = {f"user_email:{e}" for e in self.user_emails if e}
        acl |= {f"group:{g}" for g in self.user_groups}
        acl |= {f"user_email:{e}" for e in self.external_user_emails}
        acl |= {f"external_group:{g}" for g in self.external_user_group_ids}
        if self.is_public:
            acl.add("PUBLIC")
        return acl


def access(*principals: str) -> DocumentAccess:
    """A ``DocumentAccess`` from ACL strings (``PUBLIC``, ``user_email:…``, ``group:…``,
    ``external_group:…``)."""
    users = {p.removeprefix("user_email:") for p in principals if p.startswith("user_email:")}
    groups = {p.removeprefix("group:") for p in principals if p.startswith("group:")}
    ext = {p.removeprefix("external_group:") for p in principals if p.startswith("external_group:")}
    return DocumentAccess(
        user_emails=set(users),
        user_groups=groups,
        external_user_group_ids=ext,
        is_public="PUBLIC" in principals,
    )


@dataclass
class Document:
    id: str
    sections: list[TextSection]
    source: DocumentSource = DocumentSource.WEB
    semantic_identifier: str = ""
    metadata: dict[str, str | list[str]] = field(default_factory=dict)
    doc_updated_at: datetime | None = None
    title: str | None = None
    from_ingestion_api: bool = False
    external_access: ExternalAccess | None = None
    chunk_count: int | None = None


@dataclass
class DocMetadataAwareIndexChunk:
    chunk_id: int
    blurb: str
    content: str
    source_links: dict[int, str] | None
    source_document: Document
    access: DocumentAccess
    document_sets: set[str]
    tenant_id: str
    image_file_id: str | None = None
    section_continuation: bool = False
    title_prefix: str = ""
    metadata_suffix_semantic: str = ""
    metadata_suffix_keyword: str = ""
    large_chunk_id: int | None = None
    large_chunk_reference_ids: list[int] = field(default_factory=list)
    boost: int = 0
    user_project: list[int] = field(default_factory=list)
    personas: list[int] = field(default_factory=list)

    def get_link(self) -> str | None:
        return self.source_document.sections[0].link if self.source_document.sections else None


def chunks_of(
    doc: Document,
    parts: Sequence[str],
    *,
    acl: DocumentAccess,
    sets: Sequence[str] = (),
    tenant_id: str = "public",
    large: bool = False,
) -> list[DocMetadataAwareIndexChunk]:
    """Onyx's chunks of *doc*: one regular chunk per part, plus a multipass "large"
    chunk spanning them all when *large* (it must be skipped when rebuilding text)."""
    link = doc.sections[0].link if doc.sections else None
    chunks = [
        DocMetadataAwareIndexChunk(
            chunk_id=i,
            blurb=part[:50],
            content=part,
            source_links={0: link} if link else None,
            source_document=doc,
            access=acl,
            document_sets=set(sets),
            tenant_id=tenant_id,
        )
        for i, part in enumerate(parts)
    ]
    if large:
        chunks.append(
            DocMetadataAwareIndexChunk(
                chunk_id=len(parts),
                blurb="",
                content=" ".join(parts) + " LARGECHUNKONLY",
                source_links=None,
                source_document=doc,
                access=acl,
                document_sets=set(sets),
                tenant_id=tenant_id,
                large_chunk_id=0,
                large_chunk_reference_ids=list(range(len(parts))),
            )
        )
    return chunks


@dataclass(frozen=True)
class ChunkCounts:
    old_chunk_cnt: int
    new_chunk_cnt: int


@dataclass(frozen=True)
class IndexingMetadata:
    doc_id_to_chunk_cnt_diff: dict[str, ChunkCounts]


def indexing_metadata(
    chunks: Sequence[DocMetadataAwareIndexChunk], old: int = 0
) -> IndexingMetadata:
    counts: dict[str, int] = {}
    for chunk in chunks:
        counts[chunk.source_document.id] = counts.get(chunk.source_document.id, 0) + 1
    return IndexingMetadata({d: ChunkCounts(old, n) for d, n in counts.items()})


@dataclass(frozen=True)
class DocumentInsertionRecord:
    document_id: str
    already_existed: bool


def insertion_record(document_id: str, already_existed: bool) -> DocumentInsertionRecord:
    return DocumentInsertionRecord(document_id, already_existed)


@dataclass(frozen=True)
class MetadataUpdateRequest:
    document_ids: list[str]
    doc_id_to_chunk_cnt: dict[str, int]
    access: DocumentAccess | None = None
    document_sets: set[str] | None = None
    boost: float | None = None
    hidden: bool | None = None
    secondary_index_updated: bool | None = None
    project_ids: set[int] | None = None
    persona_ids: set[int] | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class DocumentSectionRequest:
    document_id: str
    min_chunk_ind: int | None = None
    max_chunk_ind: int | None = None


@dataclass(frozen=True)
class TimeRange:
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class Tag:
    tag_key: str
    tag_value: str


@dataclass
class IndexFilters:
    access_control_list: list[str] | None
    tenant_id: str | None = None
    source_type: list[DocumentSource] | None = None
    document_set: list[str] | None = None
    created_at_range: TimeRange | None = None
    updated_at_range: TimeRange | None = None
    tags: list[Tag] | None = None
    forced_document_set: list[str] | None = None
    attached_document_ids: list[str] | None = None
    hierarchy_node_ids: list[int] | None = None
    persona_id_filter: int | None = None
    project_id_filter: int | None = None


@dataclass
class InferenceChunk:
    """Onyx's ``InferenceChunk`` fields (the chunk factory of CI)."""

    chunk_id: int
    blurb: str
    content: str
    source_links: dict[int, str] | None
    image_file_id: str | None
    section_continuation: bool
    document_id: str
    source_type: str
    semantic_identifier: str
    title: str | None
    boost: int
    score: float | None
    hidden: bool
    metadata: dict[str, Any]
    match_highlights: list[str]
    doc_summary: str
    chunk_context: str
    updated_at: datetime | None
    primary_owners: list[str] | None = None
    secondary_owners: list[str] | None = None
    large_chunk_reference_ids: list[int] = field(default_factory=list)
