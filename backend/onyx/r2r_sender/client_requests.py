"""R2R 3.6.6's wire format for the client: request builders and answer readers (pure).

Everything here is a pure function (no I/O, no clock): it validates the arguments of a
client call and builds the exact form fields, query parameters or JSON body R2R expects,
or reads R2R's answer into the bridge's types.  :class:`~onyx.r2r_sender.client.R2RClient`
only hands these to the transport.  Invalid arguments raise
:class:`~onyx.r2r_sender.errors.InvalidArgumentError` (a ``ValueError``) before anything
is sent.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence, Set
from typing import Any, Literal
from uuid import UUID

from onyx.r2r_sender.errors import InvalidArgumentError
from onyx.r2r_sender.r2r_types import IngestResult, SearchHit

SearchMode = Literal["semantic", "hybrid", "fulltext"]
UUIDLike = UUID | str

MAX_PAGE = 1000  # R2R's maximum `limit` for list endpoints
_MIB = 1024 * 1024
_COLLECTION_IDS_TYPE_ERROR = "collection_ids must be a list of UUID strings"


def as_uuid(value: UUIDLike, what: str) -> UUID:
    if isinstance(value, UUID):
        return value
    if isinstance(value, str):
        try:
            return UUID(value)
        except ValueError:
            pass
    raise InvalidArgumentError(f"{what} is not a valid UUID: {value!r}")


def collection_id_list(collection_ids: object) -> list[str]:
    """Validate ``collection_ids`` and return canonical UUID strings (order kept, deduplicated).

    A bare ``str``/``bytes`` is the classic mistake (the SDK would iterate it per character), so
    it is rejected explicitly.
    """
    if isinstance(collection_ids, str | bytes | bytearray) or not isinstance(
        collection_ids, Sequence | Set
    ):
        raise InvalidArgumentError(_COLLECTION_IDS_TYPE_ERROR)
    result: list[str] = []
    for element in collection_ids:
        if not isinstance(element, UUID | str):
            raise InvalidArgumentError(
                f"collection_ids contains an invalid UUID: {element!r} "
                f"({type(element).__name__}); {_COLLECTION_IDS_TYPE_ERROR}"
            )
        text = str(as_uuid(element, "collection_ids element"))
        if text not in result:
            result.append(text)
    return result


def strip_title_prefix(text: str, metadata: Mapping[str, Any]) -> str:
    """Undo R2R's ``"Document Title: {title}\\n\\nText: "`` rewrite of search hit text.

    R2R adds it only when the chunk metadata has a truthy ``title``; text without that exact
    prefix is returned unchanged.
    """
    title = metadata.get("title")
    if not title:
        return text
    prefix = f"Document Title: {title}\n\nText: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def _same_setting(left: object, right: object) -> bool:
    if isinstance(left, float) and isinstance(right, float) and math.isnan(left):
        return math.isnan(right)
    return left == right


def build_create_form(
    document_id: UUIDLike,
    *,
    raw_text: str | None = None,
    chunks: Sequence[str] | None = None,
    metadata: Mapping[str, Any],
    collection_ids: Sequence[UUIDLike],
) -> dict[str, str]:
    """Validate the arguments of ``create_document`` and return its urlencoded form fields.

    The fields are ``id``, ``metadata`` (JSON), ``collection_ids`` (JSON list of canonical,
    deduplicated UUID strings), ``ingestion_mode=custom``, ``run_with_orchestration=false``
    and exactly one of ``raw_text`` (as given) or ``chunks`` (JSON list without empty or
    whitespace-only chunks).

    Raises:
        InvalidArgumentError: invalid ``document_id``; both or neither of ``raw_text``/``chunks``; bad
            ``collection_ids`` (see :func:`collection_id_list`); ``metadata`` not a mapping
            or not JSON-serialisable (NaN included); empty ``raw_text``; ``chunks`` not a
            list of strings or without any non-empty chunk.
    """
    doc_id = as_uuid(document_id, "document_id")
    if (raw_text is None) == (chunks is None):
        raise InvalidArgumentError("exactly one of raw_text or chunks must be given")
    wire_collections = collection_id_list(collection_ids)
    if not isinstance(metadata, Mapping):
        raise InvalidArgumentError("metadata must be a dict")
    try:
        wire_metadata = json.dumps(dict(metadata), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"metadata must be JSON-serialisable: {exc}") from None

    form = {
        "id": str(doc_id),
        "metadata": wire_metadata,
        "collection_ids": json.dumps(wire_collections),
        "ingestion_mode": "custom",
        "run_with_orchestration": "false",
    }
    if raw_text is not None:
        if not isinstance(raw_text, str):
            raise InvalidArgumentError("raw_text must be a string")
        if not raw_text.strip():
            raise InvalidArgumentError("raw_text is empty; R2R cannot ingest an empty document")
        form["raw_text"] = raw_text
    else:
        if isinstance(chunks, str | bytes) or not isinstance(chunks, Sequence):
            raise InvalidArgumentError("chunks must be a list of strings")
        if not all(isinstance(chunk, str) for chunk in chunks):
            raise InvalidArgumentError("chunks must be a list of strings")
        kept = [chunk for chunk in chunks if chunk.strip()]
        if not kept:
            raise InvalidArgumentError("chunks has no non-empty chunk; R2R cannot ingest it")
        form["chunks"] = json.dumps(kept)
    return form


READ_TIMEOUT_PER_COLLECTION = 0.1
"""Seconds added to a create's read timeout per collection it assigns (R2R assigns each one
inside the request, two statements apiece: thousands of ACL principals take a while)."""


def create_read_timeout(
    form: Mapping[str, str], read_timeout: float, read_timeout_per_mib: float
) -> float:
    """Read timeout of a create request: ``read_timeout`` plus ``read_timeout_per_mib`` per MiB
    plus :data:`READ_TIMEOUT_PER_COLLECTION` per collection it assigns.

    The payload is the UTF-8 size of the form's ``raw_text`` or (JSON) ``chunks`` field, since
    R2R embeds synchronously and its time grows with the text.
    """
    payload = form.get("raw_text", form.get("chunks", ""))
    collections = len(json.loads(form.get("collection_ids") or "[]"))
    return (
        read_timeout
        + read_timeout_per_mib * len(payload.encode("utf-8")) / _MIB
        + READ_TIMEOUT_PER_COLLECTION * collections
    )


def build_search_body(
    query: str,
    *,
    collection_ids: Sequence[UUIDLike] | None = None,
    filters: Mapping[str, Any] | None = None,
    limit: int = 10,
    mode: SearchMode = "semantic",
) -> dict[str, Any] | None:
    """Validate the arguments of ``search`` and return the JSON body of the search request.

    Returns ``None`` when ``collection_ids`` is empty: nothing is allowed, so no request must
    be sent. The filter is ``{"$and": [{"collection_ids": {"$overlap": [...]}}, *filters]}``
    (a top-level ``{"$and": [...]}`` in ``filters`` is flattened into it); without any clause
    it is ``{}``.

    Raises:
        InvalidArgumentError: empty ``query``; ``limit`` outside 1..1000; unknown ``mode``; ``filters``
            not a mapping; bad ``collection_ids`` (see :func:`collection_id_list`).
    """
    if not isinstance(query, str) or not query.strip():
        raise InvalidArgumentError("query must be a non-empty string")
    if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidArgumentError(f"limit must be between 1 and {MAX_PAGE}")
    if mode not in ("semantic", "hybrid", "fulltext"):
        raise InvalidArgumentError(f"mode must be 'semantic', 'hybrid' or 'fulltext', got {mode!r}")
    if filters is not None and not isinstance(filters, Mapping):
        raise InvalidArgumentError("filters must be a dict of R2R filter clauses")

    clauses: list[dict[str, Any]] = []
    if collection_ids is not None:
        allowed = collection_id_list(collection_ids)
        if not allowed:
            return None
        clauses.append({"collection_ids": {"$overlap": allowed}})
    if filters:
        if set(filters) == {"$and"} and isinstance(filters["$and"], list):
            clauses.extend(filters["$and"])
        else:
            clauses.extend({key: value} for key, value in filters.items())

    settings: dict[str, Any] = {
        "limit": limit,
        "offset": 0,
        "use_semantic_search": mode in ("semantic", "hybrid"),
        "use_fulltext_search": mode in ("fulltext", "hybrid"),
        "use_hybrid_search": mode == "hybrid",
        "include_metadatas": True,
        "include_scores": True,
        "search_strategy": "vanilla",
        "graph_settings": {"enabled": False},
        "chunk_settings": {"enabled": True},
        "filters": {"$and": clauses} if clauses else {},
    }
    return {"query": query, "search_mode": "custom", "search_settings": settings}


def search_hits(results: object) -> list[SearchHit]:
    """Turn the ``results`` of a search answer into hits (R2R's order kept).

    Text loses R2R's title prefix (:func:`strip_title_prefix`), metadata loses R2R's injected
    ``associated_query``.
    """
    raw_hits = results.get("chunk_search_results") if isinstance(results, dict) else None
    hits: list[SearchHit] = []
    for item in raw_hits or []:
        metadata = dict(item.get("metadata") or {})
        metadata.pop("associated_query", None)
        hits.append(
            SearchHit(
                chunk_id=item["id"],
                document_id=item["document_id"],
                collection_ids=item.get("collection_ids") or [],
                score=float(item.get("score") or 0.0),
                text=strip_title_prefix(item.get("text") or "", metadata),
                metadata=metadata,
            )
        )
    return hits


def settings_problems(config: Mapping[str, Any]) -> list[str]:
    """Return what makes R2R's ``results.config`` unusable for the bridge (``[]`` when fine).

    ``[embedding]`` and ``[completion_embedding]`` must agree on ``provider``, ``base_model``
    and ``base_dimension``; ``[ingestion] skip_document_summary`` must be ``true``.
    """
    problems: list[str] = []
    embedding = config.get("embedding")
    completion = config.get("completion_embedding")
    if not isinstance(embedding, dict):
        problems.append("the [embedding] section is missing")
    if not isinstance(completion, dict):
        problems.append("the [completion_embedding] section is missing")
    if isinstance(embedding, dict) and isinstance(completion, dict):
        for key in ("provider", "base_model", "base_dimension"):
            left, right = embedding.get(key), completion.get(key)
            if not _same_setting(left, right):
                problems.append(
                    f"[embedding] {key} = {left!r} but [completion_embedding] {key} = "
                    f"{right!r} (documents and queries would be embedded differently; "
                    f"set both to the same value)"
                )
    ingestion = config.get("ingestion")
    skip = ingestion.get("skip_document_summary") if isinstance(ingestion, dict) else None
    if skip is not True:
        problems.append(
            f"[ingestion] skip_document_summary = {skip!r}; set it to true (otherwise "
            f"every ingestion calls an LLM to summarise the document)"
        )
    return problems


def uuid_list(ids: Iterable[UUIDLike], what: str) -> list[str]:
    """Validate *ids* and return canonical UUID strings (order kept, deduplicated).

    Raises :class:`InvalidArgumentError` for a bare ``str``/``bytes`` (``what`` must be a
    list) or an element that is not a UUID (R2R would answer 500).
    """
    if isinstance(ids, str | bytes):
        raise InvalidArgumentError(f"{what} must be a list of UUIDs")
    wanted: list[str] = []
    for value in ids:
        text = str(as_uuid(value, f"{what} element"))
        if text not in wanted:
            wanted.append(text)
    return wanted


def check_page_size(page_size: int) -> int:
    """Return *page_size*; raise :class:`InvalidArgumentError` unless it is 1..1000."""
    if not 1 <= page_size <= MAX_PAGE:
        raise InvalidArgumentError(f"page_size must be between 1 and {MAX_PAGE}")
    return page_size


def check_collection_name(name: object) -> str:
    """Return *name*; raise :class:`InvalidArgumentError` unless it is a non-blank string."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidArgumentError("collection name must be a non-empty string")
    return name


def ingest_result(results: object, document_id: UUID) -> IngestResult:
    """Read the ``results`` of a create answer (``POST /v3/documents``).

    ``completed`` is true only for a readable answer without a ``task_id`` (simple
    orchestration ingested inside the request); an unreadable answer proves nothing.  The
    returned id falls back to *document_id* when R2R's is missing or not a UUID.
    """
    answered = isinstance(results, dict)
    fields: dict[str, Any] = results if isinstance(results, dict) else {}
    returned = fields.get("document_id")
    try:
        returned_id = UUID(str(returned)) if returned else document_id
    except ValueError:
        returned_id = document_id
    task_id = fields.get("task_id")
    return IngestResult(
        document_id=returned_id,
        completed=answered and task_id is None,
        task_id=None if task_id is None else str(task_id),
        message=str(fields.get("message") or ""),
    )
