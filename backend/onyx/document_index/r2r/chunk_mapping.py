"""R2R chunks (search hits, stored chunks) → the fields of Onyx's ``InferenceChunk``.

The engine stores, on every chunk of a mirrored document, the metadata written
by :func:`onyx.r2r_sender.payload.prepare` (``source_document_id``, ``title``,
``semantic_identifier``, ``link``, ``source_type``, ``updated_at``,
``source_metadata``) plus R2R's own ``chunk_order``.  :func:`inference_chunk_fields`
turns one chunk into the keyword arguments of ``InferenceChunk`` (Onyx's class
inside Onyx; a plain dataclass in CI) - no Onyx import here.

Mapping notes (documented behaviour):

* ``chunk_id`` is R2R's ``chunk_order``: R2R chunks the text itself, so ids are
  R2R's chunks, not Onyx's (consistent within R2R: id-based retrieval of a
  document returns the same ids in order).
* ``boost`` is 0 (R2R has no per-document boost), ``match_highlights`` is empty,
  ``doc_summary``/``chunk_context`` are empty (contextual RAG text is not mirrored).
* ``score`` is R2R's score for the search mode (RRF for hybrid), ``None`` for
  id-based and random retrieval.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

BLURB_CHARS = 400  # ~ Onyx's BLURB_SIZE (128 tokens)
UNKNOWN_SOURCE = "not_applicable"  # DocumentSource.NOT_APPLICABLE


def make_blurb(text: str, limit: int = BLURB_CHARS) -> str:
    """The first sentence(s) of *text*, at most about *limit* characters, cut at a word."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit]
    for end in (". ", "! ", "? "):
        pos = cut.rfind(end)
        if pos >= limit // 3:
            return cut[: pos + 1]
    space = cut.rfind(" ")
    return cut[:space] if space > 0 else cut


def _datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def _metadata(value: Any) -> dict[str, str | list[str]]:
    if not isinstance(value, Mapping):
        return {}
    out: dict[str, str | list[str]] = {}
    for key, item in value.items():
        if isinstance(item, list | tuple):
            out[str(key)] = [str(v) for v in item]
        elif item is not None:
            out[str(key)] = str(item)
    return out


def _chunk_order(metadata: Mapping[str, Any], fallback: int) -> int:
    try:
        return int(metadata.get("chunk_order", fallback))
    except (TypeError, ValueError):
        return fallback


def inference_chunk_fields(
    *,
    text: str,
    metadata: Mapping[str, Any],
    collection_ids: Iterable[uuid.UUID | str],
    score: float | None,
    hidden_collection: str | None,
    fallback_chunk_id: int = 0,
) -> dict[str, Any]:
    """Keyword arguments of Onyx's ``InferenceChunk`` for one R2R chunk."""
    document_id = str(metadata.get("source_document_id") or "")
    title = metadata.get("title")
    semantic_identifier = metadata.get("semantic_identifier") or title or document_id
    link = metadata.get("link")
    collections = {str(c) for c in collection_ids}
    return {
        "chunk_id": _chunk_order(metadata, fallback_chunk_id),
        "blurb": make_blurb(text),
        "content": text,
        "source_links": {0: str(link)} if link else None,
        "image_file_id": None,
        "section_continuation": False,
        "document_id": document_id,
        "source_type": str(metadata.get("source_type") or UNKNOWN_SOURCE),
        "semantic_identifier": str(semantic_identifier),
        "title": str(title) if title else None,
        "boost": 0,
        "score": score,
        "hidden": hidden_collection is not None and hidden_collection in collections,
        "metadata": _metadata(metadata.get("source_metadata")),
        "match_highlights": [],
        "doc_summary": "",
        "chunk_context": "",
        "updated_at": _datetime(metadata.get("updated_at")),
        "primary_owners": None,
        "secondary_owners": None,
        "large_chunk_reference_ids": [],
    }
