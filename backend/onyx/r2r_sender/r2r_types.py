"""Typed views of the R2R 3.6.6 responses the client returns.

Only the fields the bridge uses are declared; unknown fields are ignored so newer servers that
add fields keep working.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class _R2RModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class R2RDocument(_R2RModel):
    """One row of ``GET /v3/documents`` (R2R's ``DocumentResponse``).

    ``ingestion_status`` is one of ``pending, parsing, extracting, chunking, embedding,
    augmenting, storing, enriching, failed, success``. On ``failed`` R2R puts the error into
    ``metadata["failure"]``.
    """

    id: UUID
    ingestion_status: str
    collection_ids: list[UUID] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    title: str | None = None
    owner_id: UUID | None = None
    document_type: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    size_in_bytes: int | None = None
    total_tokens: int | None = None


class IngestResult(_R2RModel):
    """What ``POST /v3/documents`` answered (``IngestionResponse``).

    ``completed`` is True when R2R ran the ingestion inside the request and it finished
    (simple orchestration: no ``task_id``); the document is then ``success``, with only
    the first of its ``collection_ids`` assigned on the raw-text path.  False means the
    ingestion was queued (Hatchet) and ``ingestion_status`` must be polled.
    """

    document_id: UUID
    completed: bool
    task_id: str | None = None
    message: str = ""


class R2RCollection(_R2RModel):
    """One R2R collection (``CollectionResponse``)."""

    id: UUID
    name: str
    description: str | None = None
    owner_id: UUID | None = None
    document_count: int | None = None


class SearchHit(_R2RModel):
    """One chunk returned by ``POST /v3/retrieval/search``.

    ``text`` is the chunk text with R2R's ``"Document Title: …\\n\\nText: "`` prefix removed.
    ``score`` depends on the search mode (cosine similarity for semantic, RRF for hybrid,
    ``ts_rank`` for full text): never compare scores across modes.
    """

    chunk_id: UUID
    document_id: UUID
    collection_ids: list[UUID] = Field(default_factory=list)
    score: float
    text: str
    metadata: dict[str, Any] = Field(default_factory=dict)


class R2RChunk(_R2RModel):
    """One stored chunk of a document (``GET /v3/documents/{id}/chunks``)."""

    id: UUID
    document_id: UUID
    text: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    collection_ids: list[UUID] = Field(default_factory=list)
