"""The engine's :class:`~onyx.r2r_sender.read_model.MirroredChunk` → Onyx's ``InferenceChunk``.

:func:`inference_chunk_fields` turns one mirrored chunk into the keyword arguments of
``InferenceChunk`` (Onyx's class inside Onyx; a plain dataclass in CI) - no Onyx import
here.  Reading R2R's chunks (metadata keys, defaults) is the engine's job
(:mod:`onyx.r2r_sender.read_model.chunks`).

Mapping notes (documented behaviour):

* ``chunk_id`` is R2R's ``chunk_order``: R2R chunks the text itself, so ids are
  R2R's chunks, not Onyx's (consistent within R2R: id-based retrieval of a
  document returns the same ids in order).
* ``source_type`` is ``not_applicable`` when the chunk has none.
* ``boost`` is 0 (R2R has no per-document boost), ``match_highlights`` is empty,
  ``doc_summary``/``chunk_context`` are empty (contextual RAG text is not mirrored).
* ``score`` is R2R's score for the search mode (RRF for hybrid), ``None`` for
  id-based and random retrieval.
"""

from __future__ import annotations

from typing import Any

from onyx.r2r_sender.read_model import MirroredChunk

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


def inference_chunk_fields(chunk: MirroredChunk) -> dict[str, Any]:
    """Keyword arguments of Onyx's ``InferenceChunk`` for one mirrored chunk."""
    return {
        "chunk_id": chunk.chunk_order,
        "blurb": make_blurb(chunk.text),
        "content": chunk.text,
        "source_links": {0: chunk.link} if chunk.link else None,
        "image_file_id": None,
        "section_continuation": False,
        "document_id": chunk.document_id,
        "source_type": chunk.source_type or UNKNOWN_SOURCE,
        "semantic_identifier": chunk.semantic_identifier,
        "title": chunk.title,
        "boost": 0,
        "score": chunk.score,
        "hidden": chunk.hidden,
        "metadata": dict(chunk.source_metadata),
        "match_highlights": [],
        "doc_summary": "",
        "chunk_context": "",
        "updated_at": chunk.updated_at,
        "primary_owners": None,
        "secondary_owners": None,
        "large_chunk_reference_ids": [],
    }
