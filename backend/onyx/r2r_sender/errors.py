"""Exceptions raised by :class:`onyx.r2r_sender.client.R2RClient`.

The hierarchy is small on purpose; callers branch on the class, never on the text::

    R2RError
    ├── R2RRetryableError      transient: connect errors, timeouts, 429, 502/503/504,
    │                          embedding-provider outages ("Error getting embeddings")
    ├── R2RAlreadyExistsError  the document/collection/assignment already exists
    ├── R2RBusyError           the document id is being ingested right now
    ├── R2RNotFoundError       404
    └── R2RFatalError          do not retry: bad payload, unknown errors
        ├── R2RAuthError       401/403: the API key was rejected or lacks permission
        └── R2RConfigError     the server's settings are unusable for the bridge

:func:`classify` maps an HTTP status and R2R's error message to one of these. It is a pure
function so the whole table is unit-testable. None of these exceptions ever carries the API key:
messages come from the server (which never echoes it) or are built by the client.
"""

from __future__ import annotations

import email.utils
import json
import math
import time
from datetime import datetime

MAX_MESSAGE_CHARS = 500
"""Server messages are truncated to this many characters."""

_EMBEDDING_FAILURE = "error getting embeddings"
_ALREADY_INGESTED = "already ingested and is not in a failed state"


def _truncate(message: str) -> str:
    message = message.strip()
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    return message[: MAX_MESSAGE_CHARS - 1] + "…"


class R2RError(Exception):
    """Base class of every error the R2R client raises.

    Attributes:
        status_code: HTTP status of R2R's answer, or ``None`` when there was no answer
            (connection refused, timeout, ...).
        message: R2R's own message (or the client's description of the transport failure),
            truncated to about 500 characters.
        document_id: the R2R document id the operation was about, if any.
        operation: the client operation that failed, e.g. ``"create_document"``.
    """

    def __init__(
        self,
        message: str,
        *,
        operation: str,
        status_code: int | None = None,
        document_id: str | None = None,
    ) -> None:
        self.message = _truncate(message)
        self.operation = operation
        self.status_code = status_code
        self.document_id = document_id
        super().__init__(self.message)

    def __str__(self) -> str:
        status = f"HTTP {self.status_code}" if self.status_code is not None else "no response"
        where = f" for document {self.document_id}" if self.document_id else ""
        return f"R2R {self.operation} failed ({status}){where}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(operation={self.operation!r}, "
            f"status_code={self.status_code!r}, document_id={self.document_id!r}, "
            f"message={self.message!r})"
        )

    def __reduce__(self) -> tuple[object, tuple[type[R2RError], dict[str, object]]]:
        # Keyword-only constructor: make instances picklable (e.g. across Celery workers).
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type[R2RError], state: dict[str, object]) -> R2RError:
    instance = cls.__new__(cls)
    Exception.__init__(instance, state.get("message", ""))
    instance.__dict__.update(state)
    return instance


class R2RRetryableError(R2RError):
    """A transient failure; the same request may succeed later.

    ``retry_after`` is the server's requested minimum wait in seconds (from ``Retry-After``),
    or ``None``.
    """

    def __init__(
        self,
        message: str,
        *,
        operation: str,
        status_code: int | None = None,
        document_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message, operation=operation, status_code=status_code, document_id=document_id
        )
        self.retry_after = retry_after


class R2RAlreadyExistsError(R2RError):
    """The target already exists: a document id that was ingested successfully (409, or the
    chunk path's 500 "already ingested and is not in a failed state"), a duplicate collection
    name, or a document already assigned to a collection."""


class R2RBusyError(R2RError):
    """The document id is being ingested right now (409 "currently ingesting")."""


class R2RNotFoundError(R2RError):
    """R2R answered 404."""


class R2RFatalError(R2RError):
    """Retrying the same request will not help (bad payload, unsupported request, unknown error)."""


class R2RAuthError(R2RFatalError):
    """The API key was rejected (401) or lacks permission for the operation (403)."""


class R2RConfigError(R2RFatalError):
    """The R2R server's configuration is unusable for the bridge (see ``check_settings``)."""


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Parse an HTTP ``Retry-After`` header into seconds to wait.

    Accepts delay-seconds (``"120"``, also fractional) and HTTP dates
    (``"Wed, 21 Oct 2015 07:28:00 GMT"``). A date in the past gives ``0.0``. Missing or
    unparsable values give ``None``. ``now`` (epoch seconds) is for tests.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if math.isnan(seconds) or math.isinf(seconds):
            return None
        return max(seconds, 0.0)
    try:
        when: datetime = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 850 / asctime forms: HTTP dates are always GMT
        return None
    current = time.time() if now is None else now
    return max(when.timestamp() - current, 0.0)


def message_from_body(body: bytes | str) -> str:
    """Extract R2R's error message from a response body.

    Handles FastAPI ``HTTPException`` bodies (``{"detail": "..."}`` or
    ``{"detail": {"message": "..."}}``), validation errors (``{"detail": [{"loc","msg"}...]}``)
    and R2R's ``R2RException`` bodies (``{"message": "...", "error_type": "..."}``). Anything
    that is not JSON gives the first 500 characters of the text. Never raises.
    """
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    try:
        parsed = json.loads(text)
    except ValueError:
        return _truncate(text)
    return _truncate(_message_from_json(parsed))


def _message_from_json(parsed: object) -> str:
    if isinstance(parsed, dict):
        detail = parsed.get("detail")
        if isinstance(detail, str):
            return detail
        if isinstance(detail, dict):
            inner = detail.get("message")
            if isinstance(inner, str):
                return inner
            return json.dumps(detail, default=str)
        if isinstance(detail, list):
            return _validation_summary(detail)
        message = parsed.get("message")
        if isinstance(message, str):
            return message
    if isinstance(parsed, str):
        return parsed
    return json.dumps(parsed, default=str)


def _validation_summary(errors: list[object]) -> str:
    parts: list[str] = []
    for item in errors:
        if isinstance(item, dict):
            loc = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
            msg = str(item.get("msg", item.get("type", "invalid")))
            parts.append(f"{loc}: {msg}" if loc else msg)
        else:
            parts.append(str(item))
    return "validation failed: " + "; ".join(parts)


def classify(
    status_code: int,
    message: str,
    *,
    operation: str,
    document_id: str | None = None,
    retry_after: float | None = None,
    base_url: str | None = None,
) -> R2RError:
    """Map an R2R error answer to the exception to raise (pure; does not raise).

    ``message`` is R2R's message (see :func:`message_from_body`). ``base_url`` only makes auth
    errors name the server. The table (R2R 3.6.6):

    ============================================  =========================
    status / message                              exception
    ============================================  =========================
    429, 502, 503, 504                            R2RRetryableError
    400 starting "Error getting embeddings"       R2RRetryableError
    500 containing "Error getting embeddings"     R2RRetryableError (chunk path; also
                                                  raw text with the openai provider)
    409 containing "currently ingesting"          R2RBusyError
    409 containing "already exists"/"assigned"    R2RAlreadyExistsError
    500 containing "already ingested and is not   R2RAlreadyExistsError (chunk path)
    in a failed state"
    404                                           R2RNotFoundError
    401, 403                                      R2RAuthError
    anything else (413, 415, 422, 418, 500, ...)  R2RFatalError
    ============================================  =========================
    """
    lowered = message.lower()

    def make(cls: type[R2RError], text: str = message) -> R2RError:
        return cls(text, operation=operation, status_code=status_code, document_id=document_id)

    def retryable() -> R2RError:
        return R2RRetryableError(
            message,
            operation=operation,
            status_code=status_code,
            document_id=document_id,
            retry_after=retry_after,
        )

    if status_code in (429, 502, 503, 504):
        return retryable()
    if status_code == 400 and lowered.lstrip().startswith(_EMBEDDING_FAILURE):
        return retryable()
    if status_code == 500 and _EMBEDDING_FAILURE in lowered:
        return retryable()
    if status_code == 409:
        if "currently ingesting" in lowered:
            return make(R2RBusyError)
        if "already exists" in lowered or "already assigned" in lowered:
            return make(R2RAlreadyExistsError)
        return make(R2RFatalError)
    if status_code == 500 and _ALREADY_INGESTED in lowered:
        return make(R2RAlreadyExistsError)
    if status_code == 404:
        return make(R2RNotFoundError)
    if status_code in (401, 403):
        server = f"R2R at {base_url}" if base_url else "R2R"
        if status_code == 401 and operation == "login":
            text = f"{server} rejected the login (check the email and password): {message}"
        elif status_code == 401:
            text = f"{server} rejected the API key (check the configured key): {message}"
        else:
            text = (
                f"{server} refused the request: the API key lacks permission for "
                f"{operation} (a superuser key is required for some operations): {message}"
            )
        return make(R2RAuthError, text)
    return make(R2RFatalError)
