"""Mirrored chunks as hosts read them: R2R hits and stored chunks → :class:`MirroredChunk`.

Every chunk of a mirrored document carries the document-level keys of
:mod:`onyx.r2r_sender.schema` (written by :func:`onyx.r2r_sender.payload.prepare`), the
version keys (written by the applier) and R2R's own ``chunk_order``.
:meth:`MirroredChunk.from_r2r` reads them back into typed fields, leniently: a missing
or malformed value becomes the field's documented default, never an exception (a chunk
written by an older release or by hand still reads).

:func:`newest_versions` hides the older version of a document while a gap-free replace
briefly leaves two in R2R.  Pure: no I/O.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from onyx.r2r_sender import schema
from onyx.r2r_sender.r2r_types import R2RChunk, SearchHit

T = TypeVar("T")


@dataclass(frozen=True)
class MirroredChunk:
    """One chunk of a mirrored document, typed.

    ``document_id`` is the host's document id (``""`` when the chunk has none: not
    written by the engine).  ``semantic_identifier`` falls back to the title, then to
    the document id.  ``source_metadata`` holds the host's tags with list values as
    lists of strings and every other non-null value as a string.  ``chunk_order`` is
    R2R's position of the chunk in its document.  ``score`` is R2R's score for the
    search mode (never compare across modes), ``None`` for chunks fetched by document.
    ``hidden`` is whether the chunk is in its scope's hidden collection.  ``seq`` is 0
    and ``version`` ``None`` when the chunk has no version keys.
    """

    document_id: str
    r2r_document_id: uuid.UUID
    text: str
    title: str | None
    semantic_identifier: str
    link: str | None
    source_type: str | None
    updated_at: datetime | None
    source_metadata: dict[str, str | list[str]]
    chunk_order: int
    score: float | None
    hidden: bool
    version: str | None
    seq: int
    collection_ids: tuple[uuid.UUID, ...] = field(default=())
    scope_key: str | None = None  # the chunk's metadata.tenant_id
    modified: int | None = None  # the host-side modification stamp, when the host sets one

    @classmethod
    def from_metadata(
        cls,
        *,
        r2r_document_id: uuid.UUID,
        text: str,
        metadata: Mapping[str, Any],
        collection_ids: Iterable[uuid.UUID | str],
        score: float | None,
        hidden_collection: uuid.UUID | str | None,
        fallback_order: int = 0,
    ) -> MirroredChunk:
        """Read one R2R chunk's metadata (*fallback_order* when it has no ``chunk_order``)."""
        document_id = _document_id(metadata)
        title = metadata.get(schema.TITLE)
        semantic_identifier = metadata.get(schema.SEMANTIC_IDENTIFIER) or title or document_id
        link = metadata.get(schema.LINK)
        source_type = metadata.get(schema.SOURCE_TYPE)
        version = metadata.get(schema.VERSION)
        scope_key = metadata.get(schema.TENANT)
        collections = tuple(
            c if type(c) is uuid.UUID else uuid.UUID(str(c)) for c in collection_ids
        )
        hidden = hidden_collection is not None and _uuid(hidden_collection) in collections
        return cls(
            document_id=document_id,
            r2r_document_id=r2r_document_id,
            text=text,
            title=str(title) if title else None,
            semantic_identifier=str(semantic_identifier),
            link=str(link) if link else None,
            source_type=str(source_type) if source_type else None,
            updated_at=_datetime(metadata.get(schema.UPDATED_AT)),
            source_metadata=_source_metadata(metadata.get(schema.SOURCE_METADATA)),
            chunk_order=_int(metadata.get(schema.CHUNK_ORDER, fallback_order), fallback_order),
            score=score,
            hidden=hidden,
            version=str(version) if version is not None else None,
            seq=_seq(metadata),
            collection_ids=collections,
            scope_key=str(scope_key) if scope_key is not None else None,
            modified=_optional_int(metadata.get(schema.MODIFIED)),
        )

    @classmethod
    def from_r2r(
        cls,
        item: SearchHit | R2RChunk,
        *,
        hidden_collection: uuid.UUID | str | None,
        fallback_order: int = 0,
    ) -> MirroredChunk:
        """One ``R2RClient.search`` hit (scored) or ``list_document_chunks`` chunk (unscored)."""
        return cls.from_metadata(
            r2r_document_id=item.document_id,
            text=item.text,
            metadata=item.metadata,
            collection_ids=item.collection_ids,
            score=item.score if isinstance(item, SearchHit) else None,
            hidden_collection=hidden_collection,
            fallback_order=fallback_order,
        )


def newest_versions(
    items: Sequence[T], version_of: Callable[[T], tuple[str, int]] | None = None
) -> list[T]:
    """Drop the items of older versions of a document; keep the order of the rest (pure).

    Items are grouped by host document id (by R2R document id when they have none, so
    chunks written outside the engine are never dropped); within a group only the items
    with the highest ``seq`` stay (several chunks of the newest version all stay).
    *version_of* gives an item's ``(group, seq)``: by default the item is a
    :class:`MirroredChunk`; :func:`raw_version` reads R2R's hits and chunks unmapped.
    """
    version = version_of or _chunk_version
    versions = [version(item) for item in items]
    newest: dict[str, int] = {}
    for group, seq in versions:
        newest[group] = max(seq, newest.get(group, seq))
    return [
        item for item, (group, seq) in zip(items, versions, strict=True) if seq == newest[group]
    ]


def raw_version(item: SearchHit | R2RChunk) -> tuple[str, int]:
    """The ``(group, seq)`` of an unmapped R2R hit or chunk (see :func:`newest_versions`)."""
    return _document_id(item.metadata) or str(item.document_id), _seq(item.metadata)


def _chunk_version(chunk: Any) -> tuple[str, int]:
    return chunk.document_id or str(chunk.r2r_document_id), chunk.seq


def _document_id(metadata: Mapping[str, Any]) -> str:
    return str(metadata.get(schema.SOURCE_DOCUMENT_ID) or "")


def _seq(metadata: Mapping[str, Any]) -> int:
    return _int(metadata.get(schema.SEQ, 0) or 0, 0)


def _uuid(value: uuid.UUID | str) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _int(value: Any, fallback: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return fallback


def _optional_int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def _source_metadata(value: Any) -> dict[str, str | list[str]]:
    if not isinstance(value, Mapping):
        return {}
    out: dict[str, str | list[str]] = {}
    for key, item in value.items():
        if isinstance(item, list | tuple):
            out[str(key)] = [str(v) for v in item]
        elif item is not None:
            out[str(key)] = str(item)
    return out
