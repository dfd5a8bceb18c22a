"""The engine's exceptions (one root) and its dead-letter classes.

Every exception the engine raises on purpose derives from :class:`BridgeError`; callers
branch on the class, never on the text::

    BridgeError                    catch this to catch every deliberate engine error
    ├── R2RError                   an R2R call failed (raised by the client)
    │   ├── R2RRetryableError      transient: connect errors, timeouts, 429, 502/503/504,
    │   │                          embedding-provider outages ("Error getting embeddings")
    │   ├── R2RAlreadyExistsError  the document/collection/assignment already exists
    │   ├── R2RBusyError           the document id is being ingested right now
    │   ├── R2RNotFoundError       404
    │   └── R2RFatalError          do not retry: bad payload, unknown errors
    │       ├── R2RAuthError       401/403: the credential was rejected or lacks permission
    │       └── R2RConfigError     the server's settings are unusable for the bridge
    ├── CredentialError            an entered or stored credential cannot be used; ``str()``
    │   │                          is a plain sentence for an admin, ``code`` a short name
    │   ├── EncryptionNotConfiguredError, EncryptionKeyError   (credentials_crypto)
    │   ├── InvalidUrlError ── UrlNotAllowedError              (url_policy)
    │   └── InvalidCredentialError, ConnectionTestError        (credentials)
    ├── InvalidArgumentError       (also a ValueError) a caller passed the client an invalid
    │                              argument; nothing was sent to R2R
    ├── SettingsError              (also a ValueError) a setting has an invalid value; the
    │                              message names the environment variable
    └── CliError                   (cli) a command cannot run; printed without a traceback

The applier's, the payload validation's and the sender's errors join this root as their own
branches.  :func:`classify` maps an HTTP status and R2R's error message to an
:class:`R2RError`; it is a pure function so the whole table is unit-testable.  No exception
ever carries a credential: messages come from the server (which never echoes it) or are
built by the engine, with secrets redacted.

:class:`DeadLetterClass` names why a document was dead-lettered; the ledger stores its value,
the worker picks it (``worker.classify_failure``), and the admin API serves each class with
its label and description.
"""

from __future__ import annotations

import email.utils
import enum
import json
import math
import time
from datetime import datetime

MAX_MESSAGE_CHARS = 500
"""Server messages are truncated to this many characters."""

_EMBEDDING_FAILURE = "error getting embeddings"
_ALREADY_INGESTED = "already ingested and is not in a failed state"
# R2R answers 500 when its own PostgreSQL is out of connections or drops one (asyncpg and
# PostgreSQL texts): the next attempt may well succeed, nothing was wrong with the request.
_DATABASE_OVERLOAD = (
    "too many clients already",
    "remaining connection slots are reserved",
    "connection was closed in the middle of operation",
    "connection is closed",
    "cannot connect now",
    "pool timeout",
    "database query failed",  # R2R's wrapper of any asyncpg failure (seen with the above)
)
# A 500 to a lookup carries nothing the server could reject: retry it (R2R's generic
# "Internal Server Error" there came from its database being overloaded, seen live).
_LOOKUP_PREFIXES = ("get_", "list_")


def _truncate(message: str) -> str:
    message = message.strip()
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    return message[: MAX_MESSAGE_CHARS - 1] + "…"


class BridgeError(Exception):
    """Root of every exception the engine raises on purpose (see the module docstring)."""


class R2RError(BridgeError):
    """Base class of every error the R2R client raises about a request it sent (or tried to).

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


class CredentialError(BridgeError):
    """A user-facing problem with a credential; ``str()`` is a plain sentence, never a secret.

    ``code`` is a short machine-readable name (the admin API returns it beside the text).
    """

    code = "credential_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgumentError(BridgeError, ValueError):
    """A caller passed the R2R client an invalid argument; nothing was sent to R2R.

    Also a :class:`ValueError`, so existing ``except ValueError`` callers keep working.
    """


class SettingsError(BridgeError, ValueError):
    """A setting has an invalid value; the message names the variable and the value's problem.

    Also a :class:`ValueError` (what settings parsing raised before this class existed).
    """


# ------------------------------------------------------------------ dead letters
class DeadLetterClass(enum.StrEnum):
    """Why a document was dead-lettered (the ledger's ``last_error_class``).

    A ``str`` enum: members compare equal to the strings stored in the ledger.  Each has a
    short :attr:`label` and a one-sentence :attr:`description` for people (the admin page
    shows them), and :attr:`transient` says whether a reconciliation re-queues such dead
    letters (the failure may have gone away) or they stay dead until the host sends a new
    version or an admin replays them.
    """

    INVALID_DOCUMENT = "invalid_document"
    R2R_REJECTED = "r2r_rejected"
    R2R_CONFIG = "r2r_config"
    R2R_UNAVAILABLE = "r2r_unavailable"
    R2R_BUSY = "r2r_busy"
    R2R_NOT_FOUND = "r2r_not_found"
    R2R_CONFLICT = "r2r_conflict"
    R2R_ERROR = "r2r_error"
    INVALID_STATE = "invalid_state"
    INTERNAL = "internal"

    @property
    def label(self) -> str:
        """A short name for people, e.g. ``"R2R unavailable"``."""
        return _DEAD_LETTER_DETAILS[self][0]

    @property
    def description(self) -> str:
        """One sentence: what happened and what fixes it."""
        return _DEAD_LETTER_DETAILS[self][1]

    @property
    def transient(self) -> bool:
        """Whether a reconciliation re-queues dead letters of this class."""
        return _DEAD_LETTER_DETAILS[self][2]


_DEAD_LETTER_DETAILS: dict[DeadLetterClass, tuple[str, str, bool]] = {
    DeadLetterClass.INVALID_DOCUMENT: (
        "Invalid document",
        "The host sent a document the bridge cannot mirror (no text, too large, or a bad "
        "ACL or metadata); it stays dead until the host sends a valid version.",
        False,
    ),
    DeadLetterClass.R2R_REJECTED: (
        "Rejected by R2R",
        "R2R refused the request for good (for example a payload it does not accept); "
        "sending the same request again will not help.",
        False,
    ),
    DeadLetterClass.R2R_CONFIG: (
        "R2R credential or settings",
        "R2R rejected the credential, or its settings do not fit the bridge; fix the "
        "connection, then replay.",
        True,
    ),
    DeadLetterClass.R2R_UNAVAILABLE: (
        "R2R unavailable",
        "R2R or its embedding provider could not be reached, timed out or was overloaded.",
        True,
    ),
    DeadLetterClass.R2R_BUSY: (
        "R2R busy",
        "R2R was still ingesting an earlier version of the document.",
        True,
    ),
    DeadLetterClass.R2R_NOT_FOUND: (
        "Not found in R2R",
        "R2R no longer had a document or collection the change needed.",
        True,
    ),
    DeadLetterClass.R2R_CONFLICT: (
        "Conflict in R2R",
        "R2R already held something the change was about to create.",
        True,
    ),
    DeadLetterClass.R2R_ERROR: (
        "R2R error",
        "R2R answered with an error the bridge does not recognise.",
        True,
    ),
    DeadLetterClass.INVALID_STATE: (
        "Inconsistent state",
        "The ledger's record of the document did not allow the change (for example, "
        "nothing stored to apply).",
        False,
    ),
    DeadLetterClass.INTERNAL: (
        "Internal error",
        "An unexpected error in the bridge; the worker's log has the details.",
        True,
    ),
}

TRANSIENT_DEAD_LETTER_CLASSES: tuple[DeadLetterClass, ...] = tuple(
    c for c in DeadLetterClass if c.transient
)
"""The dead-letter classes a reconciliation re-queues (the failure may have been transient);
invalid input, rejected payloads and impossible states stay dead."""


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
    500 naming R2R's database out of/losing       R2RRetryableError
    connections ("too many clients already", …)
    500 to a lookup (operation get_*/list_*)      R2RRetryableError
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
    if status_code == 500 and any(text in lowered for text in _DATABASE_OVERLOAD):
        return retryable()
    if status_code == 500 and operation.startswith(_LOOKUP_PREFIXES):
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
