"""A small, typed REST client for R2R 3.6.6 (``/v3``), built on httpx and backoff.

The R2R SDK is deliberately not used (it pins FastAPI and installs top-level ``core``/``shared``
packages). This client covers exactly what the bridge needs and encodes the server's quirks:

* documents are created with *urlencoded* form fields (multipart text parts are capped at 1 MiB),
  ``ingestion_mode=custom`` and ``run_with_orchestration=false``;
* errors are mapped to the small hierarchy in :mod:`onyx.r2r_sender.errors`;
* only :class:`R2RRetryableError` is retried (exponential backoff with full jitter, bounded by
  ``retry_max_time`` and ``retry_max_tries``, honouring ``Retry-After``);
* search always nests the collection filter inside ``$and`` (exact for non-superusers too);
* the API key never appears in reprs, logs or exception messages.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import urllib.parse
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence, Set
from types import TracebackType
from typing import Any, Literal, Self
from uuid import UUID

import backoff
import httpx

from onyx.r2r_sender.errors import (
    R2RAlreadyExistsError,
    R2RConfigError,
    R2RError,
    R2RFatalError,
    R2RNotFoundError,
    R2RRetryableError,
    classify,
    message_from_body,
    parse_retry_after,
)
from onyx.r2r_sender.r2r_types import (
    IngestResult,
    R2RChunk,
    R2RCollection,
    R2RDocument,
    SearchHit,
)

logger = logging.getLogger(__name__)

SearchMode = Literal["semantic", "hybrid", "fulltext"]
UUIDLike = UUID | str

_MIB = 1024 * 1024
_MAX_PAGE = 1000  # R2R's maximum `limit` for list endpoints
_HEALTH_READ_TIMEOUT = 5.0
_BACKOFF_FACTOR = 0.5  # first retry waits up to 0.5 s, then 1, 2, 4, ... (full jitter)
_BACKOFF_MAX_WAIT = 10.0
_COLLECTION_IDS_TYPE_ERROR = "collection_ids must be a list of UUID strings"


class _Secret:
    """Holds a credential; its repr/str are ``***`` so dumps and logs cannot leak it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "***"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("secrets cannot be pickled")


class _ApiKeyAuth(httpx.Auth):
    """Adds ``x-api-key`` to each request at send time (not to the client's default headers)."""

    def __init__(self, secret: _Secret) -> None:
        self._secret = secret

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["x-api-key"] = self._secret.reveal()
        yield request

    def __repr__(self) -> str:
        return "_ApiKeyAuth(***)"


class _LoginAuth(httpx.Auth):
    """Bearer JWT from ``POST /v3/users/login``; logs in again once when R2R answers 401.

    R2R 3.6.6 bcrypt-checks an API key on every request (about 0.45 s on two cores, run
    inside its event loop, so concurrent requests queue behind each other); a JWT costs
    milliseconds.  The token is shared by all threads of one client.
    """

    requires_response_body = True

    def __init__(self, login_url: str, email: str, password: _Secret) -> None:
        self._login_url = login_url
        self._email = email
        self._password = password
        self._token: _Secret | None = None
        self._lock = threading.Lock()

    def _login(self, stale: _Secret | None) -> Generator[httpx.Request, httpx.Response, _Secret]:
        with self._lock:
            if self._token is not None and self._token is not stale:
                return self._token  # another thread already logged in
            response = yield httpx.Request(
                "POST",
                self._login_url,
                data={"username": self._email, "password": self._password.reveal()},
            )
            if response.status_code != 200:
                message = _redact(message_from_body(response.content), [self._password.reveal()])
                raise classify(
                    response.status_code,
                    f"login as {self._email} failed: {message}",
                    operation="login",
                    base_url=self._login_url.rsplit("/v3/", 1)[0],
                )
            try:
                token = response.json()["results"]["access_token"]["token"]
            except (ValueError, KeyError, TypeError):
                raise R2RFatalError(
                    "login answered 200 without an access token", operation="login"
                ) from None
            self._token = _Secret(str(token))
            return self._token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._token
        if token is None:
            token = yield from self._login(None)
        request.headers["Authorization"] = f"Bearer {token.reveal()}"
        response = yield request
        if response.status_code == 401:
            token = yield from self._login(token)
            request.headers["Authorization"] = f"Bearer {token.reveal()}"
            yield request

    def secrets(self) -> list[str]:
        token = self._token
        return [self._password.reveal(), *([token.reveal()] if token else [])]

    def __repr__(self) -> str:
        return f"_LoginAuth(email={self._email!r})"


def _as_uuid(value: UUIDLike, what: str) -> UUID:
    if isinstance(value, UUID):
        return value
    if isinstance(value, str):
        try:
            return UUID(value)
        except ValueError:
            pass
    raise ValueError(f"{what} is not a valid UUID: {value!r}")


def _collection_id_list(collection_ids: object) -> list[str]:
    """Validate ``collection_ids`` and return canonical UUID strings (order kept, deduplicated).

    A bare ``str``/``bytes`` is the classic mistake (the SDK would iterate it per character), so
    it is rejected explicitly.
    """
    if isinstance(collection_ids, str | bytes | bytearray) or not isinstance(
        collection_ids, Sequence | Set
    ):
        raise ValueError(_COLLECTION_IDS_TYPE_ERROR)
    result: list[str] = []
    for element in collection_ids:
        if not isinstance(element, UUID | str):
            raise ValueError(
                f"collection_ids contains an invalid UUID: {element!r} "
                f"({type(element).__name__}); {_COLLECTION_IDS_TYPE_ERROR}"
            )
        text = str(_as_uuid(element, "collection_ids element"))
        if text not in result:
            result.append(text)
    return result


def _strip_title_prefix(text: str, metadata: Mapping[str, Any]) -> str:
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


# ---------------------------------------------------------------------- pure building blocks
#
# Everything below up to R2RClient is pure (no I/O, no clock unless passed in) so it can be
# unit-tested without a transport; R2RClient only wires these to httpx and backoff.


def _redact(text: str, secrets: Iterable[str]) -> str:
    """Return ``text`` with every non-empty secret in ``secrets`` replaced by ``***``."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, "***")
    return text


def _http_timeout(connect: float, read: float) -> httpx.Timeout:
    """httpx timeouts of one request: ``connect`` for connecting, ``read`` for the rest."""
    return httpx.Timeout(connect=connect, read=read, write=read, pool=read)


def _build_create_form(
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
        ValueError: invalid ``document_id``; both or neither of ``raw_text``/``chunks``; bad
            ``collection_ids`` (see :func:`_collection_id_list`); ``metadata`` not a mapping
            or not JSON-serialisable (NaN included); empty ``raw_text``; ``chunks`` not a
            list of strings or without any non-empty chunk.
    """
    doc_id = _as_uuid(document_id, "document_id")
    if (raw_text is None) == (chunks is None):
        raise ValueError("exactly one of raw_text or chunks must be given")
    wire_collections = _collection_id_list(collection_ids)
    if not isinstance(metadata, Mapping):
        raise ValueError("metadata must be a dict")
    try:
        wire_metadata = json.dumps(dict(metadata), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"metadata must be JSON-serialisable: {exc}") from None

    form = {
        "id": str(doc_id),
        "metadata": wire_metadata,
        "collection_ids": json.dumps(wire_collections),
        "ingestion_mode": "custom",
        "run_with_orchestration": "false",
    }
    if raw_text is not None:
        if not isinstance(raw_text, str):
            raise ValueError("raw_text must be a string")
        if not raw_text.strip():
            raise ValueError("raw_text is empty; R2R cannot ingest an empty document")
        form["raw_text"] = raw_text
    else:
        if isinstance(chunks, str | bytes) or not isinstance(chunks, Sequence):
            raise ValueError("chunks must be a list of strings")
        if not all(isinstance(chunk, str) for chunk in chunks):
            raise ValueError("chunks must be a list of strings")
        kept = [chunk for chunk in chunks if chunk.strip()]
        if not kept:
            raise ValueError("chunks has no non-empty chunk; R2R cannot ingest it")
        form["chunks"] = json.dumps(kept)
    return form


def _create_read_timeout(
    form: Mapping[str, str], read_timeout: float, read_timeout_per_mib: float
) -> float:
    """Read timeout of a create request: ``read_timeout`` plus ``read_timeout_per_mib`` per MiB.

    The payload is the UTF-8 size of the form's ``raw_text`` or (JSON) ``chunks`` field, since
    R2R embeds synchronously and its time grows with the text.
    """
    payload = form.get("raw_text", form.get("chunks", ""))
    return read_timeout + read_timeout_per_mib * len(payload.encode("utf-8")) / _MIB


def _build_search_body(
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
        ValueError: empty ``query``; ``limit`` outside 1..1000; unknown ``mode``; ``filters``
            not a mapping; bad ``collection_ids`` (see :func:`_collection_id_list`).
    """
    if not isinstance(query, str) or not query.strip():
        raise ValueError("query must be a non-empty string")
    if not isinstance(limit, int) or not 1 <= limit <= _MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {_MAX_PAGE}")
    if mode not in ("semantic", "hybrid", "fulltext"):
        raise ValueError(f"mode must be 'semantic', 'hybrid' or 'fulltext', got {mode!r}")
    if filters is not None and not isinstance(filters, Mapping):
        raise ValueError("filters must be a dict of R2R filter clauses")

    clauses: list[dict[str, Any]] = []
    if collection_ids is not None:
        allowed = _collection_id_list(collection_ids)
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


def _search_hits(results: object) -> list[SearchHit]:
    """Turn the ``results`` of a search answer into hits (R2R's order kept).

    Text loses R2R's title prefix (:func:`_strip_title_prefix`), metadata loses R2R's injected
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
                text=_strip_title_prefix(item.get("text") or "", metadata),
                metadata=metadata,
            )
        )
    return hits


def _settings_problems(config: Mapping[str, Any]) -> list[str]:
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


def _retry_wait(
    attempt: int,
    retry_after: float | None,
    elapsed: float,
    budget: float,
    *,
    jitter: Callable[[float], float] = backoff.full_jitter,
) -> float:
    """Seconds to wait before retry number ``attempt`` (1 = after the first failed attempt).

    Exponential backoff with full jitter: ``jitter(min(0.5 * 2 ** (attempt - 1), 10))``
    (``jitter`` draws uniformly from ``[0, ceiling]`` by default), raised to the server's
    ``retry_after`` when there is one, then capped by what is left of ``budget`` seconds after
    ``elapsed`` (never negative).
    """
    if attempt < 1:
        raise ValueError("attempt must be at least 1")
    exponent = min(attempt - 1, 64)  # 0.5 * 2**64 is far above the cap; avoids float overflow
    ceiling = min(_BACKOFF_FACTOR * 2.0**exponent, _BACKOFF_MAX_WAIT)
    wait = jitter(ceiling)
    if retry_after is not None:
        wait = max(wait, retry_after)
    return max(0.0, min(wait, budget - elapsed))


def _transport_error(
    exc: Exception,
    *,
    base_url: str,
    operation: str,
    document_id: str | None,
    secrets: Iterable[str] = (),
) -> R2RError:
    """Map an httpx exception (no answer from R2R) to the error to raise; never raises.

    Timeouts and network/protocol failures are :class:`R2RRetryableError`; anything else
    (the request could not even be sent) is :class:`R2RFatalError`. The detail text has
    ``secrets`` redacted.
    """
    if isinstance(exc, httpx.TimeoutException):
        return R2RRetryableError(
            f"timed out talking to R2R at {base_url} ({type(exc).__name__})",
            operation=operation,
            document_id=document_id,
        )
    detail = _redact(str(exc), secrets) or type(exc).__name__
    if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError | httpx.ProxyError):
        return R2RRetryableError(
            f"could not reach R2R at {base_url}: {detail}",
            operation=operation,
            document_id=document_id,
        )
    return R2RFatalError(
        f"request to R2R at {base_url} could not be sent: {detail}",
        operation=operation,
        document_id=document_id,
    )


class R2RClient:
    """Synchronous client for one R2R server.

    One pooled :class:`httpx.Client` per instance; thread-safe for concurrent calls. Use it as a
    context manager or call :meth:`close`. Every request carries ``x-api-key``, or, when
    ``email``/``password`` of a service account are given instead, a bearer JWT from
    ``POST /v3/users/login`` (renewed once on a 401). Prefer the login for volume: R2R 3.6.6
    bcrypt-checks an API key on every request (~0.45 s, serialised in its event loop).

    Each request method takes ``retry`` (default ``True``): when true, an
    :class:`R2RRetryableError` is retried with exponential backoff and full jitter until
    ``retry_max_tries`` attempts or ``retry_max_time`` seconds are used up, waiting at least the
    server's ``Retry-After`` (capped by the remaining budget); then the last
    :class:`R2RRetryableError` is raised. Every other error is raised at once.

    ``transport`` and ``event_hooks`` are passed to httpx unchanged (for instrumentation and
    tests).
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
    ) -> None:
        parsed = urllib.parse.urlsplit(base_url or "")
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        use_login = bool(email) or bool(password)
        if use_login and not (
            isinstance(email, str) and email and isinstance(password, str) and password
        ):
            raise ValueError("email and password must both be non-empty strings")
        if not use_login and (not isinstance(api_key, str) or not api_key.strip()):
            raise ValueError("api_key must be a non-empty string")
        if retry_max_tries < 1:
            raise ValueError("retry_max_tries must be at least 1")
        if retry_max_time < 0:
            raise ValueError("retry_max_time must not be negative")

        self._base_url = base_url.rstrip("/")
        self._api_key = _Secret(api_key.strip() if isinstance(api_key, str) else "")
        auth: _ApiKeyAuth | _LoginAuth
        if use_login:
            auth = _LoginAuth(
                f"{self._base_url}/v3/users/login", str(email), _Secret(str(password))
            )
        else:
            auth = _ApiKeyAuth(self._api_key)
        self._auth = auth
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._read_timeout_per_mib = read_timeout_per_mib
        self._retry_max_time = retry_max_time
        self._retry_max_tries = retry_max_tries
        self._http = httpx.Client(
            base_url=self._base_url,
            auth=auth,
            timeout=self._timeout(read_timeout),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            headers={"accept": "application/json", "user-agent": "onyx-r2r"},
            follow_redirects=False,
            transport=transport,
            event_hooks=dict(event_hooks) if event_hooks else None,
        )

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        """The server's base URL (without a trailing slash)."""
        return self._base_url

    def close(self) -> None:
        """Close the connection pool. The client must not be used afterwards."""
        self._http.close()

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
        return f"R2RClient(base_url={self._base_url!r})"

    # ------------------------------------------------------------------ transport

    def _timeout(self, read: float, connect: float | None = None) -> httpx.Timeout:
        return _http_timeout(self._connect_timeout if connect is None else connect, read)

    def _secrets(self) -> list[str]:
        """Every credential this client holds right now (API key, password, current JWT)."""
        secrets = [self._api_key.reveal()]
        if isinstance(self._auth, _LoginAuth):
            secrets += self._auth.secrets()
        return secrets

    def _redact(self, text: str) -> str:
        return _redact(text, self._secrets())

    def _send_once(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        document_id: str | None,
        params: Any,
        json_body: Any,
        data: Mapping[str, str] | None,
        timeout: httpx.Timeout | None,
    ) -> httpx.Response:
        started = time.monotonic()
        try:
            response = self._http.request(
                method,
                path,
                params=params,
                json=json_body,
                data=data,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise _transport_error(
                exc,
                base_url=self._base_url,
                operation=operation,
                document_id=document_id,
                secrets=self._secrets(),
            ) from None

        elapsed = time.monotonic() - started
        logger.debug("R2R %s %s -> %d in %.3fs", method, path, response.status_code, elapsed)
        if response.status_code >= 400:
            message = self._redact(message_from_body(response.content))
            raise classify(
                response.status_code,
                message,
                retry_after=parse_retry_after(response.headers.get("retry-after")),
                base_url=self._base_url,
                operation=operation,
                document_id=document_id,
            )
        return response

    def _retry_waits(self) -> Generator[float, Any, None]:
        """backoff wait generator: the waits of :func:`_retry_wait`, one per failed attempt.

        backoff creates it once per call, primes it with ``send(None)`` and then sends each
        caught exception into it, which is how ``retry_after`` reaches the policy; backoff
        itself additionally caps each wait by the remaining ``max_time``.
        """
        started = time.monotonic()
        exc = yield 0.0  # answer to backoff's priming send(None); not used as a wait
        attempt = 0
        while True:
            attempt += 1
            retry_after = exc.retry_after if isinstance(exc, R2RRetryableError) else None
            exc = yield _retry_wait(
                attempt, retry_after, time.monotonic() - started, self._retry_max_time
            )

    def _on_backoff(self, details: Mapping[str, Any]) -> None:
        logger.warning(
            "%s; retry %d in %.2fs",
            details.get("exception"),
            details.get("tries", 0),
            details.get("wait", 0.0),
        )

    def _on_giveup(self, details: Mapping[str, Any]) -> None:
        exc = details.get("exception")
        if isinstance(exc, R2RRetryableError):
            logger.warning(
                "%s; giving up after %d attempt(s) in %.1fs",
                exc,
                details.get("tries", 0),
                details.get("elapsed", 0.0),
            )

    def _request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        document_id: UUID | str | None = None,
        params: Any = None,
        json_body: Any = None,
        data: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
        retry: bool = True,
    ) -> httpx.Response:
        def send() -> httpx.Response:
            return self._send_once(
                method,
                path,
                operation=operation,
                document_id=str(document_id) if document_id is not None else None,
                params=params,
                json_body=json_body,
                data=data,
                timeout=timeout,
            )

        if not retry or self._retry_max_tries == 1:
            return send()
        retrying = backoff.on_exception(
            self._retry_waits,
            R2RRetryableError,
            max_tries=self._retry_max_tries,
            max_time=self._retry_max_time,
            jitter=None,
            on_backoff=self._on_backoff,
            on_giveup=self._on_giveup,
            logger=None,
        )(send)
        return retrying()

    def _body(self, response: httpx.Response, operation: str) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            raise R2RFatalError(
                f"R2R returned a non-JSON answer: {message_from_body(response.content)}",
                operation=operation,
                status_code=response.status_code,
            ) from None
        if not isinstance(body, dict) or "results" not in body:
            raise R2RFatalError(
                f"R2R answer has no 'results': {str(body)[:200]}",
                operation=operation,
                status_code=response.status_code,
            )
        return body

    def _results(self, response: httpx.Response, operation: str) -> Any:
        return self._body(response, operation)["results"]

    def _paged(
        self,
        path: str,
        *,
        operation: str,
        document_id: UUID | None = None,
        page_size: int = _MAX_PAGE,
        extra_params: Sequence[tuple[str, str]] = (),
        retry: bool = True,
    ) -> Iterator[dict[str, Any]]:
        """Yield every item of an offset/limit paged list endpoint."""
        offset = 0
        while True:
            params = [*extra_params, ("offset", str(offset)), ("limit", str(page_size))]
            response = self._request(
                "GET",
                path,
                operation=operation,
                document_id=document_id,
                params=params,
                retry=retry,
            )
            body = self._body(response, operation)
            items, total = body["results"], body.get("total_entries")
            if not isinstance(items, list):
                raise R2RFatalError(
                    f"R2R list answer is not a list: {str(items)[:200]}", operation=operation
                )
            yield from items
            offset += len(items)
            if len(items) < page_size or (isinstance(total, int) and offset >= total):
                return

    # ------------------------------------------------------------------ system

    def health(self, *, retry: bool = True) -> None:
        """Check that R2R answers ``GET /v3/health`` (short timeout, ~5 s).

        Returns ``None`` when healthy. Raises :class:`R2RRetryableError` when the server cannot
        be reached or answers 502/503/504 (after the retry budget when ``retry`` is true), and
        another :class:`R2RError` for any other error answer.
        """
        self._request(
            "GET",
            "/v3/health",
            operation="health",
            timeout=self._timeout(min(_HEALTH_READ_TIMEOUT, self._read_timeout)),
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
        response = self._request("GET", "/v3/system/settings", operation=operation, retry=retry)
        results = self._results(response, operation)
        config = results.get("config") if isinstance(results, dict) else None
        if not isinstance(config, dict):
            raise R2RConfigError(
                "GET /v3/system/settings has no 'results.config' object; is this R2R 3.6.x?",
                operation=operation,
            )
        problems = _settings_problems(config)
        if problems:
            raise R2RConfigError(
                f"R2R at {self._base_url} is misconfigured for onyx-r2r: " + "; ".join(problems),
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
            ValueError: before sending, for an invalid id, both/neither payload, empty text
                or no non-empty chunk, non-JSON metadata, or a bad ``collection_ids``.
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
        data = _build_create_form(
            document_id,
            raw_text=raw_text,
            chunks=chunks,
            metadata=metadata,
            collection_ids=collection_ids,
        )
        doc_id = UUID(data["id"])
        read = _create_read_timeout(data, self._read_timeout, self._read_timeout_per_mib)
        operation = "create_document"
        response = self._request(
            "POST",
            "/v3/documents",
            operation=operation,
            document_id=doc_id,
            data=data,
            timeout=self._timeout(read),
            retry=retry,
        )
        results = self._results(response, operation)
        answered = isinstance(results, dict)
        if not answered:
            results = {}  # an answer we cannot read proves nothing: completed=False
        returned = results.get("document_id")
        try:
            returned_id = UUID(str(returned)) if returned else doc_id
        except ValueError:
            returned_id = doc_id
        task_id = results.get("task_id")
        return IngestResult(
            document_id=returned_id,
            completed=answered and task_id is None,
            task_id=None if task_id is None else str(task_id),
            message=str(results.get("message") or ""),
        )

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
        doc_id = _as_uuid(document_id, "document_id")
        operation = "get_document"
        response = self._request(
            "GET", f"/v3/documents/{doc_id}", operation=operation, document_id=doc_id, retry=retry
        )
        return R2RDocument.model_validate(self._results(response, operation))

    def list_documents(
        self, ids: Sequence[UUIDLike], *, page_size: int = 100, retry: bool = True
    ) -> list[R2RDocument]:
        """Return the documents among ``ids`` that exist (missing ids are simply absent).

        Ids are validated first (``ValueError`` on a non-UUID: R2R would answer 500), then
        requested in batches of at most ``page_size`` (1..1000) ids per
        ``GET /v3/documents?ids=…`` to keep URLs short. Order follows R2R (newest first within
        a batch).
        """
        if isinstance(ids, str | bytes):
            raise ValueError("ids must be a list of UUIDs")
        if not 1 <= page_size <= _MAX_PAGE:
            raise ValueError(f"page_size must be between 1 and {_MAX_PAGE}")
        wanted: list[str] = []
        for value in ids:
            text = str(_as_uuid(value, "ids element"))
            if text not in wanted:
                wanted.append(text)
        documents: list[R2RDocument] = []
        operation = "list_documents"
        for start in range(0, len(wanted), page_size):
            batch = wanted[start : start + page_size]
            params = [("ids", i) for i in batch] + [("offset", "0"), ("limit", str(len(batch)))]
            response = self._request(
                "GET", "/v3/documents", operation=operation, params=params, retry=retry
            )
            documents.extend(
                R2RDocument.model_validate(item) for item in self._results(response, operation)
            )
        return documents

    def iter_all_documents(
        self, *, page_size: int = 1000, retry: bool = True
    ) -> Iterator[R2RDocument]:
        """Yield every document visible to the key (``GET /v3/documents``, offset paging).

        Meant for reconciliation. R2R orders by ``created_at`` descending, so documents
        created while iterating shift later pages; each id is yielded at most once, but a
        document deleted concurrently may cause another to be skipped - run reconciliation
        again rather than relying on one pass being a snapshot.
        """
        if not 1 <= page_size <= _MAX_PAGE:
            raise ValueError(f"page_size must be between 1 and {_MAX_PAGE}")
        seen: set[UUID] = set()
        for item in self._paged(
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
        doc_id = _as_uuid(document_id, "document_id")
        try:
            items = list(
                self._paged(
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
        doc_id = _as_uuid(document_id, "document_id")
        try:
            self._request(
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
        doc_id = _as_uuid(document_id, "document_id")
        return [
            R2RCollection.model_validate(item)
            for item in self._paged(
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
        if not isinstance(name, str) or not name.strip():
            raise ValueError("collection name must be a non-empty string")
        operation = "get_collection_by_name"
        try:
            response = self._request(
                "GET",
                f"/v3/collections/name/{urllib.parse.quote(name, safe='')}",
                operation=operation,
                retry=retry,
            )
        except R2RNotFoundError:
            return None
        return R2RCollection.model_validate(self._results(response, operation))

    def create_collection(
        self, name: str, description: str = "", *, retry: bool = True
    ) -> R2RCollection:
        """Create a collection owned by the key's user (``POST /v3/collections``).

        R2R generates the id. Raises :class:`R2RAlreadyExistsError` when the owner already
        has a collection with that name (409). Prefer :meth:`ensure_collection`.
        """
        if not isinstance(name, str) or not name.strip():
            raise ValueError("collection name must be a non-empty string")
        operation = "create_collection"
        response = self._request(
            "POST",
            "/v3/collections",
            operation=operation,
            json_body={"name": name, "description": description},
            retry=retry,
        )
        return R2RCollection.model_validate(self._results(response, operation))

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

    def list_collections(
        self, ids: Sequence[UUIDLike], *, page_size: int = 100, retry: bool = True
    ) -> list[R2RCollection]:
        """Return the collections among ``ids`` that exist (missing ids are simply absent).

        ``GET /v3/collections?ids=…`` in batches of at most ``page_size`` (1..1000) ids.
        Raises ``ValueError`` on a non-UUID id before any request.
        """
        if isinstance(ids, str | bytes):
            raise ValueError("ids must be a list of UUIDs")
        if not 1 <= page_size <= _MAX_PAGE:
            raise ValueError(f"page_size must be between 1 and {_MAX_PAGE}")
        wanted = list(dict.fromkeys(str(_as_uuid(value, "ids element")) for value in ids))
        collections: list[R2RCollection] = []
        operation = "list_collections"
        for start in range(0, len(wanted), page_size):
            batch = wanted[start : start + page_size]
            params = [("ids", i) for i in batch] + [("offset", "0"), ("limit", str(len(batch)))]
            response = self._request(
                "GET", "/v3/collections", operation=operation, params=params, retry=retry
            )
            collections.extend(
                R2RCollection.model_validate(item) for item in self._results(response, operation)
            )
        return collections

    def add_document_to_collection(
        self, collection_id: UUIDLike, document_id: UUIDLike, *, retry: bool = True
    ) -> bool:
        """Assign a document to a collection (``POST /v3/collections/{cid}/documents/{id}``).

        Updates the document row and its chunks without re-embedding. Returns ``True`` when it
        was assigned now, ``False`` when it already was (409). Raises
        :class:`R2RNotFoundError` when the document or the collection does not exist.
        """
        cid = _as_uuid(collection_id, "collection_id")
        doc_id = _as_uuid(document_id, "document_id")
        try:
            self._request(
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
        cid = _as_uuid(collection_id, "collection_id")
        doc_id = _as_uuid(document_id, "document_id")
        try:
            self._request(
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
        body = _build_search_body(
            query, collection_ids=collection_ids, filters=filters, limit=limit, mode=mode
        )
        if body is None:  # an empty allowed-collections list: nothing may be returned
            return []
        operation = "search"
        response = self._request(
            "POST", "/v3/retrieval/search", operation=operation, json_body=body, retry=retry
        )
        return _search_hits(self._results(response, operation))


__all__ = ["R2RClient", "SearchMode", "UUIDLike"]
