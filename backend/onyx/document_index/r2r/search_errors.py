"""What Onyx receives when R2RIndex cannot serve a retrieval: an HTTP status and a detail.

Onyx's handlers read ``exc.status_code`` (its 500 handler compares it with 400) and
``exc.detail``.  The engine's errors carry ``status_code=None`` when R2R gave no answer,
which crashed that handler into a bare plain-text 500.  :func:`search_failure` maps any
failure of a retrieval to a :class:`R2RSearchError` with an ``int`` status:

===========================================  =====  ====================================
failure                                      HTTP   detail says
===========================================  =====  ====================================
circuit breaker open (the mirror's workers)  503    R2R failed repeatedly, for how long
R2R gave no answer (refused, timeout)        503    R2R is unreachable, check the server
R2R answered 429/502/503/504                 503    R2R is overloaded or unavailable
R2R rejected the credential (401/403)        502    fix the credential on the admin page
any other R2R answer                         502    R2R's status; the server's logs
ledger database / Redis unreachable          503    the mirror's ledger database/Redis
===========================================  =====  ====================================

Details name the R2R server without user info in its URL and never carry a secret; the
original exception stays the ``__cause__`` (in the server's log, not in the answer).
Anything else (a bug) is not mapped and propagates unchanged.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from onyx.r2r_sender.errors import R2RAuthError, R2RError, R2RRetryableError

ADMIN_PAGE = "Admin → R2R Mirror (/admin/r2r)"


class R2RSearchError(Exception):
    """A retrieval R2RIndex could not serve.

    Attributes:
        status_code: the HTTP status Onyx should answer (503 or 502).
        detail: a message for the admin (no secrets).
    """

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail

    def __repr__(self) -> str:
        return f"R2RSearchError(status_code={self.status_code}, detail={self.detail!r})"


def public_url(url: str) -> str:
    """*url* without user info, query or fragment (safe to show)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, "", ""))
    except ValueError:
        return "the configured R2R server"


def breaker_open(base_url: str, seconds: float) -> R2RSearchError:
    """The error for a search while the mirror's breaker for *base_url* is open."""
    return R2RSearchError(
        503,
        f"R2R at {public_url(base_url)} failed repeatedly and the mirror's circuit breaker "
        f"is open for {seconds:.0f} more seconds: search is unavailable until R2R answers "
        f"again. Check the R2R server (its logs, `onyx-r2r health`) and {ADMIN_PAGE}.",
    )


def search_failure(exc: BaseException, base_url: str) -> R2RSearchError | None:
    """The :class:`R2RSearchError` for *exc*, or ``None`` when it is not a service failure."""
    where = f"R2R at {public_url(base_url)}"
    if isinstance(exc, R2RError):
        status = exc.status_code
        if isinstance(exc, R2RRetryableError) and status is None:
            return R2RSearchError(
                503,
                f"{where} is unreachable (no answer to {exc.operation}): search is "
                "unavailable until it is back. Check that the R2R server runs and that this "
                f"Onyx can reach it (`onyx-r2r health`); the URL is set on {ADMIN_PAGE}.",
            )
        if isinstance(exc, R2RRetryableError):
            return R2RSearchError(
                503,
                f"{where} is overloaded or unavailable (HTTP {status} to {exc.operation}): "
                "try again shortly; if it persists, check the R2R server's logs.",
            )
        if isinstance(exc, R2RAuthError):
            return R2RSearchError(
                502,
                f"{where} rejected the bridge's credential (HTTP {status} to "
                f"{exc.operation}): fix the R2R credential on {ADMIN_PAGE}.",
            )
        shown = f"HTTP {status}" if status is not None else "a failed request"
        return R2RSearchError(
            502,
            f"{where} answered {shown} to {exc.operation}: see the R2R server's logs.",
        )
    kind = _infrastructure(exc)
    if kind is not None:
        return R2RSearchError(
            503,
            f"the R2R mirror's {kind} is unreachable ({type(exc).__name__}): search through "
            "R2R is unavailable until it is back; check the ONYX_R2R_DATABASE_URL / "
            "ONYX_R2R_BROKER_URL services.",
        )
    return None


def _infrastructure(exc: BaseException) -> str | None:
    module = type(exc).__module__ or ""
    if module.startswith("sqlalchemy") or module.startswith("psycopg"):
        return "ledger database"
    if module.startswith("redis"):
        return "Redis"
    return None
