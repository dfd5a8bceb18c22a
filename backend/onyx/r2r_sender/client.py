"""A small, typed REST client for R2R 3.6.6 (``/v3``): :class:`R2RClient`.

The R2R SDK is deliberately not used (it pins FastAPI and installs top-level ``core``/``shared``
packages). This client covers exactly what the bridge needs and encodes the server's quirks:

* documents are created with *urlencoded* form fields (multipart text parts are capped at 1 MiB),
  ``ingestion_mode=custom`` and ``run_with_orchestration=false``;
* errors are mapped to the small hierarchy in :mod:`onyx.r2r_sender.errors`;
* only :class:`R2RRetryableError` is retried (exponential backoff with full jitter, bounded by
  ``retry_max_time`` and ``retry_max_tries``, honouring ``Retry-After``);
* search always nests the collection filter inside ``$and`` (exact for non-superusers too);
* the API key never appears in reprs, logs or exception messages.

The class only wires three modules together: :mod:`~onyx.r2r_sender.client_requests`
(what goes on the wire and how answers are read, pure), :mod:`~onyx.r2r_sender.client_auth`
(API key or login) and :mod:`~onyx.r2r_sender.client_transport` (httpx, timeouts, retries,
error mapping).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Self
from uuid import UUID

import httpx

from onyx.r2r_sender.client_auth import build_auth
from onyx.r2r_sender.client_requests import (
    SearchMode,
    UUIDLike,
    as_uuid,
    build_create_form,
    build_search_body,
    check_collection_name,
    check_page_size,
    create_read_timeout,
    ingest_result,
    search_hits,
    settings_problems,
    uuid_list,
)
from onyx.r2r_sender.client_transport import R2RTransport, check_base_url
from onyx.r2r_sender.errors import (
    R2RAlreadyExistsError,
    R2RConfigError,
    R2RNotFoundError,
)
from onyx.r2r_sender.r2r_types import (
    IngestResult,
    R2RChunk,
    R2RCollection,
    R2RDocument,
    SearchHit,
)
from onyx.r2r_sender.token_store import TokenStore

_HEALTH_READ_TIMEOUT = 5.0


class R2RClient:
    """Synchronous client for one R2R server.

    One pooled :class:`httpx.Client` per instance; thread-safe for concurrent calls. Use it as a
    context manager or call :meth:`close`. Every request carries ``x-api-key``, or, when
    ``email``/``password`` of a service account are given instead, a bearer JWT from
    ``POST /v3/users/login`` (renewed once on a 401; kept in ``token_store`` when given, so
    the processes of a host share one login). Prefer the login for volume: R2R 3.6.6
    bcrypt-checks an API key on every request (~0.45 s, serialised in its event loop).

    Each request method takes ``retry`` (default ``True``): when true, an
    :class:`R2RRetryableError` is retried with exponential backoff and full jitter until
    ``retry_max_tries`` attempts or ``retry_max_time`` seconds are used up, waiting at least the
    server's ``Retry-After`` (capped by the remaining budget); then the last
    :class:`R2RRetryableError` is raised. Every other error is raised at once.

    ``transport`` and ``event_hooks`` are passed to httpx unchanged (for instrumentation and
    tests). Invalid constructor arguments raise :class:`InvalidArgumentError` (a
    ``ValueError``).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        email: str | None = None,
        password: str | None = None,
        connect_timeout: float = 3.0,
        read_timeout: float = 30.0,
        read_timeout_per_mib: float = 60.0,
        retry_max_time: float = 30.0,
        retry_max_tries: int = 6,
        max_connections: int = 16,
        transport: httpx.BaseTransport | None = None,
        event_hooks: Mapping[str, list[Callable[..., Any]]] | None = None,
        token_store: TokenStore | None = None,
    ) -> None:
        url = check_base_url(base_url)
        self._read_timeout_per_mib = read_timeout_per_mib
        self._auth = build_auth(url, api_key, email, password, token_store)
        self._transport = R2RTransport(
            url,
            self._auth,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retry_max_time=retry_max_time,
            retry_max_tries=retry_max_tries,
            max_connections=max_connections,
            transport=transport,
            event_hooks=event_hooks,
        )

    # ------------------------------------------------------------------ lifecycle

    @property
    def logins(self) -> int:
        """How many times this client logged in (0 with an API key or a stored token)."""
        return int(getattr(self._auth, "logins", 0))

    @property
    def base_url(self) -> str:
        """The server's base URL (without a trailing slash)."""
        return self._transport.base_url

    def close(self) -> None:
        """Close the connection pool. The client must not be used afterwards."""
        self._transport.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"R2RClient(base_url={self._transport.base_url!r})"

    def _by_ids(
        self, path: str, ids: Sequence[UUIDLike], operation: str, page_size: int, retry: bool
    ) -> Iterator[dict[str, Any]]:
        """Check ``ids`` and ``page_size`` now, then the items of ``path?ids=…`` (batched)."""
        wanted = uuid_list(ids, "ids")
        check_page_size(page_size)
        return self._transport.by_ids(
            path, wanted, operation=operation, page_size=page_size, retry=retry
        )

    # ------------------------------------------------------------------ system

    def health(self, *, retry: bool = True) -> None:
        """Check that R2R answers ``GET /v3/health`` (short timeout, ~5 s).

        Returns ``None`` when healthy. Raises :class:`R2RRetryableError` when the server cannot
        be reached or answers 502/503/504 (after the retry budget when ``retry`` is true), and
        another :class:`R2RError` for any other error answer.
        """
        self._transport.request(
            "GET",
            "/v3/health",
            operation="health",
            timeout=self._transport.timeout(
                min(_HEALTH_READ_TIMEOUT, self._transport.read_timeout)
            ),
            retry=retry,
        )

    def check_settings(self, *, retry: bool = True) -> None:
        """Verify that the server's settings are usable for the bridge (superuser key needed).

        Reads ``GET /v3/system/settings`` and checks ``results.config``:

        * ``[embedding]`` and ``[completion_embedding]`` use the same ``provider``,
          ``base_model`` and ``base_dimension`` (R2R embeds documents with the first and search
          queries with the second; a mismatch makes search meaningless);
        * ``[ingestion] skip_document_summary`` is true (otherwise every ingestion makes an LLM
          call).

        Returns ``None`` when everything is fine. Raises :class:`R2RConfigError` listing every
        problem, :class:`R2RAuthError` when the key is not a superuser's, other
        :class:`R2RError` subclasses on transport/server errors.
        """
        operation = "check_settings"
        response = self._transport.request(
            "GET", "/v3/system/settings", operation=operation, retry=retry
        )
        results = self._transport.results(response, operation)
        config = results.get("config") if isinstance(results, dict) else None
        if not isinstance(config, dict):
            raise R2RConfigError(
                "GET /v3/system/settings has no 'results.config' object; is this R2R 3.6.x?",
                operation=operation,
            )
        problems = settings_problems(config)
        if problems:
            raise R2RConfigError(
                f"R2R at {self._transport.base_url} is misconfigured for onyx-r2r: "
                + "; ".join(problems),
                operation=operation,
            )

    # ------------------------------------------------------------------ documents

    def ingest_document(
        self,
        *,
        document_id: UUIDLike,
        raw_text: str | None = None,
        chunks: Sequence[str] | None = None,
        metadata: Mapping[str, Any],
        collection_ids: Sequence[UUIDLike],
        retry: bool = True,
    ) -> IngestResult:
        """Ingest one document (``POST /v3/documents``); return what R2R answered.

        Exactly one of ``raw_text`` (R2R chunks it) or ``chunks`` (stored as given, empty
        chunks dropped) must be given. Fields are sent urlencoded with ``ingestion_mode=custom``
        and ``run_with_orchestration=false``; with simple orchestration the document is
        ``success`` when this returns (``completed``: R2R answered without a ``task_id``).
        ``metadata`` is copied onto every chunk.

        Collections: the chunk path assigns every id in ``collection_ids``; the raw-text path
        assigns **only the first one** (R2R 3.6.6 bug #2028) - reconcile membership afterwards.

        Raises:
            InvalidArgumentError: (a ``ValueError``) before sending, for an invalid id,
                both/neither payload, empty text or no non-empty chunk, non-JSON metadata, or
                a bad ``collection_ids``.
            R2RAlreadyExistsError: the id exists and is not ``failed`` (409 on the raw-text
                path, 500 "already ingested" on the chunk path). Also when a retry finds that
                an earlier timed-out attempt succeeded.
            R2RBusyError: the id is being ingested right now (raw-text path; on the chunk
                path R2R reports an in-progress id with the same 500 as a finished one, so it
                surfaces as R2RAlreadyExistsError - check ``get_document().ingestion_status``).
            R2RRetryableError: embedding provider outage (the document is then ``failed``
                and may be re-created with the same id), timeouts, unreachable server.
            R2RFatalError: anything else (payload rejected, permission, ...).
        """
        data = build_create_form(
            document_id,
            raw_text=raw_text,
            chunks=chunks,
            metadata=metadata,
            collection_ids=collection_ids,
        )
        doc_id = UUID(data["id"])
        read = create_read_timeout(data, self._transport.read_timeout, self._read_timeout_per_mib)
        operation = "create_document"
        response = self._transport.request(
            "POST",
            "/v3/documents",
            operation=operation,
            document_id=doc_id,
            data=data,
            timeout=self._transport.timeout(read),
            retry=retry,
        )
        return ingest_result(self._transport.results(response, operation), doc_id)

    def create_document(
        self,
        *,
        document_id: UUIDLike,
        raw_text: str | None = None,
        chunks: Sequence[str] | None = None,
        metadata: Mapping[str, Any],
        collection_ids: Sequence[UUIDLike],
        retry: bool = True,
    ) -> UUID:
        """:meth:`ingest_document`, returning only the document id (same contract)."""
        return self.ingest_document(
            document_id=document_id,
            raw_text=raw_text,
            chunks=chunks,
            metadata=metadata,
            collection_ids=collection_ids,
            retry=retry,
        ).document_id

    def get_document(self, document_id: UUIDLike, *, retry: bool = True) -> R2RDocument:
        """Return one document (``GET /v3/documents/{id}``).

        Raises :class:`R2RNotFoundError` when it does not exist (or is not visible to the key).
        """
        doc_id = as_uuid(document_id, "document_id")
        operation = "get_document"
        response = self._transport.request(
            "GET", f"/v3/documents/{doc_id}", operation=operation, document_id=doc_id, retry=retry
        )
        return R2RDocument.model_validate(self._transport.results(response, operation))

    def list_documents(
        self, ids: Sequence[UUIDLike], *, page_size: int = 100, retry: bool = True
    ) -> list[R2RDocument]:
        """Return the documents among ``ids`` that exist (missing ids are simply absent).

        Ids are validated first (``InvalidArgumentError`` on a non-UUID: R2R would answer
        500), then requested in batches of at most ``page_size`` (1..1000) ids per
        ``GET /v3/documents?ids=…`` to keep URLs short. Order follows R2R (newest first within
        a batch).
        """
        items = self._by_ids("/v3/documents", ids, "list_documents", page_size, retry)
        return [R2RDocument.model_validate(item) for item in items]

    def iter_all_documents(
        self, *, page_size: int = 1000, retry: bool = True
    ) -> Iterator[R2RDocument]:
        """Yield every document visible to the key (``GET /v3/documents``, offset paging).

        Meant for reconciliation. R2R orders by ``created_at`` descending, so documents
        created while iterating shift later pages; each id is yielded at most once, but a
        document deleted concurrently may cause another to be skipped - run reconciliation
        again rather than relying on one pass being a snapshot.
        """
        check_page_size(page_size)
        seen: set[UUID] = set()
        for item in self._transport.paged(
            "/v3/documents", operation="iter_all_documents", page_size=page_size, retry=retry
        ):
            document = R2RDocument.model_validate(item)
            if document.id not in seen:
                seen.add(document.id)
                yield document

    def list_document_chunks(self, document_id: UUIDLike, *, retry: bool = True) -> list[R2RChunk]:
        """Return all stored chunks of a document (``GET /v3/documents/{id}/chunks``, paged).

        R2R answers 404 both for an unknown document and for a document without chunks; this
        method tells them apart: it returns ``[]`` when the document exists but has no chunks
        and raises :class:`R2RNotFoundError` when the document does not exist.
        """
        doc_id = as_uuid(document_id, "document_id")
        try:
            items = list(
                self._transport.paged(
                    f"/v3/documents/{doc_id}/chunks",
                    operation="list_document_chunks",
                    document_id=doc_id,
                    extra_params=[("include_vectors", "false")],
                    retry=retry,
                )
            )
        except R2RNotFoundError:
            self.get_document(doc_id, retry=retry)  # raises R2RNotFoundError if really gone
            return []
        return [R2RChunk.model_validate(item) for item in items]

    def delete_document(self, document_id: UUIDLike, *, retry: bool = True) -> bool:
        """Delete a document and its chunks (``DELETE /v3/documents/{id}``).

        Returns ``True`` when it was deleted and ``False`` when it was already gone (404).
        Works for ``failed`` and stuck (mid-ingestion) documents too.
        """
        doc_id = as_uuid(document_id, "document_id")
        try:
            self._transport.request(
                "DELETE",
                f"/v3/documents/{doc_id}",
                operation="delete_document",
                document_id=doc_id,
                retry=retry,
            )
        except R2RNotFoundError:
            return False
        return True

    def list_document_collections(
        self, document_id: UUIDLike, *, retry: bool = True
    ) -> list[R2RCollection]:
        """Return the collections a document belongs to (``GET /v3/documents/{id}/collections``).

        Needs a superuser key. R2R 3.6.6 answers an empty list (not 404) for an unknown
        document id, so ``[]`` means "in no collection or does not exist".
        """
        doc_id = as_uuid(document_id, "document_id")
        return [
            R2RCollection.model_validate(item)
            for item in self._transport.paged(
                f"/v3/documents/{doc_id}/collections",
                operation="list_document_collections",
                document_id=doc_id,
                retry=retry,
            )
        ]

    # ------------------------------------------------------------------ collections

    def get_collection_by_name(self, name: str, *, retry: bool = True) -> R2RCollection | None:
        """Return the key owner's collection called ``name``, or ``None`` when there is none.

        ``GET /v3/collections/name/{name}`` (the name is URL-encoded; names containing ``/``
        cannot be looked up by R2R's router, so keep names URL-safe).
        """
        check_collection_name(name)
        operation = "get_collection_by_name"
        try:
            response = self._transport.request(
                "GET",
                f"/v3/collections/name/{urllib.parse.quote(name, safe='')}",
                operation=operation,
                retry=retry,
            )
        except R2RNotFoundError:
            return None
        return R2RCollection.model_validate(self._transport.results(response, operation))

    def create_collection(
        self, name: str, description: str = "", *, retry: bool = True
    ) -> R2RCollection:
        """Create a collection owned by the key's user (``POST /v3/collections``).

        R2R generates the id. Raises :class:`R2RAlreadyExistsError` when the owner already
        has a collection with that name (409). Prefer :meth:`ensure_collection`.
        """
        check_collection_name(name)
        operation = "create_collection"
        response = self._transport.request(
            "POST",
            "/v3/collections",
            operation=operation,
            json_body={"name": name, "description": description},
            retry=retry,
        )
        return R2RCollection.model_validate(self._transport.results(response, operation))

    def ensure_collection(
        self, name: str, description: str = "", *, retry: bool = True
    ) -> R2RCollection:
        """Return the collection called ``name``, creating it when it does not exist.

        Safe under concurrency: R2R's unique ``(owner, name)`` constraint lets exactly one
        concurrent create win; the losers get 409 and re-read, so every caller gets the same
        id. ``description`` is only used when creating.
        """
        existing = self.get_collection_by_name(name, retry=retry)
        if existing is not None:
            return existing
        try:
            return self.create_collection(name, description, retry=retry)
        except R2RAlreadyExistsError:
            existing = self.get_collection_by_name(name, retry=retry)
            if existing is None:
                raise
            return existing

    def iter_collections(
        self, *, page_size: int = 1000, retry: bool = True
    ) -> Iterator[R2RCollection]:
        """Yield every collection the caller owns (``GET /v3/collections?owner_only=true``,
        offset paging, one request per *page_size* collections; each id at most once)."""
        check_page_size(page_size)
        seen: set[UUID] = set()
        for item in self._transport.paged(
            "/v3/collections",
            operation="iter_collections",
            page_size=page_size,
            extra_params=[("owner_only", "true")],
            retry=retry,
        ):
            collection = R2RCollection.model_validate(item)
            if collection.id not in seen:
                seen.add(collection.id)
                yield collection

    def list_collections(
        self, ids: Sequence[UUIDLike], *, page_size: int = 100, retry: bool = True
    ) -> list[R2RCollection]:
        """Return the collections among ``ids`` that exist (missing ids are simply absent).

        ``GET /v3/collections?ids=…`` in batches of at most ``page_size`` (1..1000) ids.
        Raises :class:`InvalidArgumentError` (a ``ValueError``) on a non-UUID id before any
        request.
        """
        items = self._by_ids("/v3/collections", ids, "list_collections", page_size, retry)
        return [R2RCollection.model_validate(item) for item in items]

    def iter_collection_documents(
        self, collection_id: UUIDLike, *, page_size: int = 1000, retry: bool = True
    ) -> Iterator[R2RDocument]:
        """Yield every document of a collection (``GET /v3/collections/{id}/documents``,
        offset paging; each id at most once). Raises :class:`R2RNotFoundError` when the
        collection does not exist."""
        cid = as_uuid(collection_id, "collection_id")
        check_page_size(page_size)
        seen: set[UUID] = set()
        for item in self._transport.paged(
            f"/v3/collections/{cid}/documents",
            operation="iter_collection_documents",
            page_size=page_size,
            retry=retry,
        ):
            document = R2RDocument.model_validate(item)
            if document.id not in seen:
                seen.add(document.id)
                yield document

    def add_document_to_collection(
        self, collection_id: UUIDLike, document_id: UUIDLike, *, retry: bool = True
    ) -> bool:
        """Assign a document to a collection (``POST /v3/collections/{cid}/documents/{id}``).

        Updates the document row and its chunks without re-embedding. Returns ``True`` when it
        was assigned now, ``False`` when it already was (409). Raises
        :class:`R2RNotFoundError` when the document or the collection does not exist.
        """
        cid = as_uuid(collection_id, "collection_id")
        doc_id = as_uuid(document_id, "document_id")
        try:
            self._transport.request(
                "POST",
                f"/v3/collections/{cid}/documents/{doc_id}",
                operation="add_document_to_collection",
                document_id=doc_id,
                retry=retry,
            )
        except R2RAlreadyExistsError:
            return False
        return True

    def remove_document_from_collection(
        self, collection_id: UUIDLike, document_id: UUIDLike, *, retry: bool = True
    ) -> bool:
        """Remove a document from a collection (``DELETE /v3/collections/{cid}/documents/{id}``).

        Returns ``True`` when it was removed now and ``False`` when there was nothing to remove
        (404: not in the collection, or the document/collection does not exist).
        """
        cid = as_uuid(collection_id, "collection_id")
        doc_id = as_uuid(document_id, "document_id")
        try:
            self._transport.request(
                "DELETE",
                f"/v3/collections/{cid}/documents/{doc_id}",
                operation="remove_document_from_collection",
                document_id=doc_id,
                retry=retry,
            )
        except R2RNotFoundError:
            return False
        return True

    # ------------------------------------------------------------------ retrieval

    def search(
        self,
        query: str,
        *,
        collection_ids: Sequence[UUIDLike] | None = None,
        filters: Mapping[str, Any] | None = None,
        limit: int = 10,
        mode: SearchMode = "semantic",
        retry: bool = True,
    ) -> list[SearchHit]:
        """Search chunks (``POST /v3/retrieval/search``, ``search_mode=custom``, no graph).

        Access control: ``collection_ids`` restricts hits to chunks in at least one of these
        collections. The filter is always sent as
        ``{"$and": [{"collection_ids": {"$overlap": [...]}}, <filters...>]}`` (the form R2R
        honours exactly, even for non-superuser keys). An empty list means "nothing is allowed"
        and returns ``[]`` without a request; ``None`` means no collection restriction.
        ``filters`` are extra R2R filter clauses (e.g. ``{"source": {"$eq": "web"}}``), ANDed.

        Returned text has R2R's ``"Document Title: …\\n\\nText: "`` prefix removed and
        metadata has R2R's injected ``associated_query`` key removed. Hits are in R2R's order
        (best first).
        """
        body = build_search_body(
            query, collection_ids=collection_ids, filters=filters, limit=limit, mode=mode
        )
        if body is None:  # an empty allowed-collections list: nothing may be returned
            return []
        operation = "search"
        response = self._transport.request(
            "POST", "/v3/retrieval/search", operation=operation, json_body=body, retry=retry
        )
        return search_hits(self._transport.results(response, operation))


__all__ = ["R2RClient", "SearchMode", "UUIDLike"]
