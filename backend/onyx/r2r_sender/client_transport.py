"""The client's transport: one pooled httpx client, timeouts, retries and error mapping.

:class:`R2RTransport` sends one request to one R2R server and either returns R2R's answer
or raises an :class:`~onyx.r2r_sender.errors.R2RError`: an error answer through
:func:`~onyx.r2r_sender.errors.classify`, no answer through :func:`transport_error`.
When asked to, it retries :class:`~onyx.r2r_sender.errors.R2RRetryableError` with
exponential backoff and full jitter (:func:`retry_wait`), bounded by a number of attempts
and a time budget and honouring ``Retry-After``; every other error is raised at once.
Redirects are never followed.  Texts it logs or raises have the auth flow's credentials
redacted.  httpx's ``transport`` and ``event_hooks`` are passed through unchanged (for
instrumentation and tests).
"""

from __future__ import annotations

import logging
import ssl
import time
import urllib.parse
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from typing import Any
from uuid import UUID

import backoff
import httpx

from onyx.r2r_sender.client_auth import ApiKeyAuth, LoginAuth, redact
from onyx.r2r_sender.client_requests import MAX_PAGE
from onyx.r2r_sender.errors import (
    InvalidArgumentError,
    R2RError,
    R2RFatalError,
    R2RRetryableError,
    classify,
    message_from_body,
    parse_retry_after,
)

logger = logging.getLogger(__name__)

_BACKOFF_FACTOR = 0.5  # first retry waits up to 0.5 s, then 1, 2, 4, ... (full jitter)
_BACKOFF_MAX_WAIT = 10.0


def http_timeout(connect: float, read: float) -> httpx.Timeout:
    """httpx timeouts of one request: ``connect`` for connecting, ``read`` for the rest."""
    return httpx.Timeout(connect=connect, read=read, write=read, pool=read)


def check_base_url(base_url: str) -> str:
    """Return *base_url* without a trailing slash.

    Raises :class:`~onyx.r2r_sender.errors.InvalidArgumentError` unless it is an
    ``http``/``https`` URL with a host.
    """
    parsed = urllib.parse.urlsplit(base_url or "")
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InvalidArgumentError(f"base_url must be an http(s) URL, got {base_url!r}")
    return base_url.rstrip("/")


def retry_wait(
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
        raise InvalidArgumentError("attempt must be at least 1")
    exponent = min(attempt - 1, 64)  # 0.5 * 2**64 is far above the cap; avoids float overflow
    ceiling = min(_BACKOFF_FACTOR * 2.0**exponent, _BACKOFF_MAX_WAIT)
    wait = jitter(ceiling)
    if retry_after is not None:
        wait = max(wait, retry_after)
    return max(0.0, min(wait, budget - elapsed))


def retry_waits(
    budget: float, *, clock: Callable[[], float] = time.monotonic
) -> Generator[float, Any, None]:
    """backoff wait generator: the waits of :func:`retry_wait`, one per failed attempt.

    backoff creates it once per call, primes it with ``send(None)`` (answered with ``0.0``,
    which is not used as a wait) and then sends each caught exception into it, which is
    how an :class:`~onyx.r2r_sender.errors.R2RRetryableError`'s ``retry_after`` reaches the
    policy; the budget runs from the priming.  backoff itself additionally caps each wait by
    the remaining ``max_time``.
    """
    started = clock()
    exc = yield 0.0  # answer to backoff's priming send(None); not used as a wait
    attempt = 0
    while True:
        attempt += 1
        retry_after = exc.retry_after if isinstance(exc, R2RRetryableError) else None
        exc = yield retry_wait(attempt, retry_after, clock() - started, budget)


def transport_error(
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
    detail = redact(str(exc), secrets) or type(exc).__name__
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


def tls_verification(base_url: str) -> ssl.SSLContext | bool:
    """What the transport's httpx client verifies TLS with, for *base_url*.

    ``https``: httpx's default (``True``: certifi's bundle, or ``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR``).  ``http``: no TLS is ever negotiated (redirects are not followed), so
    the client gets a context that trusts no certificate authority instead of parsing a CA
    bundle it never uses: 0.1 ms instead of about 20 ms per client, which every operation of
    a host that builds a client per process (CCBE) pays.  Should TLS ever be attempted with
    it (an ``https://`` proxy in ``HTTP_PROXY``), verification fails closed: the context
    still requires a certificate and checks host names.
    """
    if urllib.parse.urlsplit(base_url).scheme.lower() == "http":
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return True


class R2RTransport:
    """Requests to one R2R server with retries; thread-safe (one pooled httpx client).

    ``base_url`` must already be checked (:func:`check_base_url`).  Raises
    :class:`~onyx.r2r_sender.errors.InvalidArgumentError` when ``retry_max_tries`` is below
    1 or ``retry_max_time`` is negative.
    """

    def __init__(
        self,
        base_url: str,
        auth: ApiKeyAuth | LoginAuth,
        *,
        connect_timeout: float,
        read_timeout: float,
        retry_max_time: float,
        retry_max_tries: int,
        max_connections: int,
        transport: httpx.BaseTransport | None = None,
        event_hooks: Mapping[str, list[Callable[..., Any]]] | None = None,
    ) -> None:
        if retry_max_tries < 1:
            raise InvalidArgumentError("retry_max_tries must be at least 1")
        if retry_max_time < 0:
            raise InvalidArgumentError("retry_max_time must not be negative")
        self._base_url = base_url
        self._auth = auth
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._retry_max_time = retry_max_time
        self._retry_max_tries = retry_max_tries
        self._http = httpx.Client(
            base_url=base_url,
            auth=auth,
            timeout=self.timeout(read_timeout),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            headers={"accept": "application/json", "user-agent": "onyx-r2r"},
            follow_redirects=False,
            verify=tls_verification(base_url),
            transport=transport,
            event_hooks=dict(event_hooks) if event_hooks else None,
        )

    @property
    def base_url(self) -> str:
        """The server's base URL (without a trailing slash)."""
        return self._base_url

    @property
    def read_timeout(self) -> float:
        """The default read timeout of a request, in seconds."""
        return self._read_timeout

    def close(self) -> None:
        """Close the connection pool; the transport must not be used afterwards."""
        self._http.close()

    def timeout(self, read: float, connect: float | None = None) -> httpx.Timeout:
        """httpx timeouts with this read timeout (and the configured connect timeout)."""
        return http_timeout(self._connect_timeout if connect is None else connect, read)

    def secrets(self) -> list[str]:
        """Every credential the auth flow holds right now (API key, password, current JWT)."""
        return self._auth.secrets()

    def __repr__(self) -> str:
        return f"R2RTransport(base_url={self._base_url!r})"

    # ------------------------------------------------------------------ one request

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
            raise transport_error(
                exc,
                base_url=self._base_url,
                operation=operation,
                document_id=document_id,
                secrets=self.secrets(),
            ) from None

        elapsed = time.monotonic() - started
        logger.debug("R2R %s %s -> %d in %.3fs", method, path, response.status_code, elapsed)
        if response.status_code >= 400:
            message = redact(message_from_body(response.content), self.secrets())
            raise classify(
                response.status_code,
                message,
                retry_after=parse_retry_after(response.headers.get("retry-after")),
                base_url=self._base_url,
                operation=operation,
                document_id=document_id,
            )
        return response

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

    def request(
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
        """Send one request; return R2R's (2xx/3xx) answer.

        Raises the :class:`~onyx.r2r_sender.errors.R2RError` for an error answer or for no
        answer; with ``retry``, an :class:`~onyx.r2r_sender.errors.R2RRetryableError` only
        after the attempts or the time budget are used up.
        """

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
            lambda: retry_waits(self._retry_max_time),
            R2RRetryableError,
            max_tries=self._retry_max_tries,
            max_time=self._retry_max_time,
            jitter=None,
            on_backoff=self._on_backoff,
            on_giveup=self._on_giveup,
            logger=None,
        )(send)
        return retrying()

    # ------------------------------------------------------------------ answers

    def body(self, response: httpx.Response, operation: str) -> dict[str, Any]:
        """R2R's JSON answer; raises R2RFatalError when it is not JSON or has no ``results``."""
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

    def results(self, response: httpx.Response, operation: str) -> Any:
        """The ``results`` of R2R's answer (see :meth:`body`)."""
        return self.body(response, operation)["results"]

    def paged(
        self,
        path: str,
        *,
        operation: str,
        document_id: UUID | None = None,
        page_size: int = MAX_PAGE,
        extra_params: Sequence[tuple[str, str]] = (),
        retry: bool = True,
    ) -> Iterator[dict[str, Any]]:
        """Yield every item of an offset/limit paged list endpoint."""
        offset = 0
        while True:
            params = [*extra_params, ("offset", str(offset)), ("limit", str(page_size))]
            response = self.request(
                "GET",
                path,
                operation=operation,
                document_id=document_id,
                params=params,
                retry=retry,
            )
            body = self.body(response, operation)
            items, total = body["results"], body.get("total_entries")
            if not isinstance(items, list):
                raise R2RFatalError(
                    f"R2R list answer is not a list: {str(items)[:200]}", operation=operation
                )
            yield from items
            offset += len(items)
            if len(items) < page_size or (isinstance(total, int) and offset >= total):
                return

    def by_ids(
        self,
        path: str,
        ids: Sequence[str],
        *,
        operation: str,
        page_size: int,
        retry: bool = True,
    ) -> Iterator[dict[str, Any]]:
        """Yield the items of a list endpoint filtered by ``ids`` (``?ids=…``), asking for at
        most ``page_size`` ids per request to keep URLs short (ids must be checked)."""
        for start in range(0, len(ids), page_size):
            batch = ids[start : start + page_size]
            params = [("ids", i) for i in batch] + [("offset", "0"), ("limit", str(len(batch)))]
            response = self.request("GET", path, operation=operation, params=params, retry=retry)
            yield from self.results(response, operation)
