"""Errors that reach Onyx from R2RIndex's retrievals carry a real HTTP status (issue 17).

Onyx's 500 handler reads ``exc.status_code`` and compares it with 400; the engine's
errors carry ``status_code=None`` when R2R gave no answer, so with R2R down Onyx's search
answered a bare plain-text 500.  Here: every failure of a retrieval becomes an error with
an ``int`` status (503 for R2R unreachable, overloaded or the breaker open; 502 for an
answer the bridge cannot use) and a message an admin can act on, without secrets.
"""

from __future__ import annotations

from typing import Any

import pytest
from onyx_shaped import InferenceChunk, insertion_record
from sqlalchemy.exc import OperationalError

from onyx.document_index.r2r.index_core import R2RIndexCore
from onyx.r2r_sender.config import BridgeSettings
from onyx.r2r_sender.errors import R2RAuthError, R2RFatalError, R2RRetryableError

SECRET = "s3cr3t-pw"
SETTINGS = BridgeSettings(r2r_base_url=f"http://svc:{SECRET}@r2r.internal:7272")


class FailingRetriever:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc
        self.calls = 0

    def resolve(self, scope: Any) -> Any:
        self.calls += 1
        raise self.exc


class FailingReader:
    def __init__(self, exc: Exception) -> None:
        self.retriever = FailingRetriever(exc)


class Breaker:
    def __init__(self, wait: float) -> None:
        self.wait = wait

    def wait_seconds(self) -> float:
        return self.wait


def make_index(exc: Exception, *, breaker_wait: float = 0.0) -> tuple[R2RIndexCore, FailingReader]:
    reader = FailingReader(exc)
    index = R2RIndexCore(
        tenant_id="t1",
        chunk_factory=InferenceChunk,
        record_factory=insertion_record,
        docfetching_export=True,
        settings=SETTINGS,
        reader_factory=lambda: reader,
    )
    index._breaker_factory = lambda: Breaker(breaker_wait)  # type: ignore[attr-defined]
    return index, reader


def _search_error(index: R2RIndexCore) -> Exception:
    with pytest.raises(Exception) as info:
        index.keyword_retrieval("query", filters=None, num_to_retrieve=5)
    return info.value


@pytest.mark.parametrize(
    ("exc", "status", "words"),
    [
        (
            R2RRetryableError("could not reach R2R: refused", operation="search"),
            503,
            ("unreachable", "r2r.internal:7272"),
        ),
        (
            R2RRetryableError("busy", operation="search", status_code=503),
            503,
            ("HTTP 503", "r2r.internal:7272"),
        ),
        (
            R2RAuthError("rejected the API key", operation="search", status_code=401),
            502,
            ("credential", "Admin"),
        ),
        (
            R2RFatalError("boom", operation="search", status_code=500),
            502,
            ("HTTP 500",),
        ),
        (
            OperationalError("SELECT 1", {}, Exception(f"could not connect pw={SECRET}")),
            503,
            ("ledger database",),
        ),
    ],
)
def test_retrieval_errors_carry_an_http_status_and_an_actionable_message(
    exc: Exception, status: int, words: tuple[str, ...]
) -> None:
    index, _ = make_index(exc)
    error = _search_error(index)
    assert isinstance(getattr(error, "status_code", None), int), repr(error)
    assert error.status_code == status  # type: ignore[attr-defined]
    detail = str(getattr(error, "detail", error))
    for word in words:
        assert word in detail, detail
    assert SECRET not in detail and SECRET not in repr(error)
    assert error.__cause__ is exc  # the original stays in the log's traceback


def test_an_open_breaker_answers_503_without_asking_r2r() -> None:
    index, reader = make_index(RuntimeError("never reached"), breaker_wait=12.0)
    error = _search_error(index)
    assert error.status_code == 503  # type: ignore[attr-defined]
    assert "circuit breaker" in str(error) and "12" in str(error)
    assert reader.retriever.calls == 0
    assert SECRET not in str(error)


def test_every_retrieval_is_covered() -> None:
    for call in (
        lambda i: i.hybrid_retrieval("q", None, None, None, None, 5),
        lambda i: i.keyword_retrieval("q", None, 5),
        lambda i: i.id_based_retrieval([{"document_id": "d"}], None),
        lambda i: i.random_retrieval(None, 5),
    ):
        index, _ = make_index(R2RRetryableError("refused", operation="search"))
        with pytest.raises(Exception) as info:
            call(index)
        assert info.value.status_code == 503  # type: ignore[attr-defined]


def test_an_onyx_error_factory_receives_status_and_detail() -> None:
    index, _ = make_index(R2RRetryableError("refused", operation="search"))
    made: list[tuple[int, str]] = []

    class HostError(Exception):
        pass

    def factory(status: int, detail: str) -> Exception:
        made.append((status, detail))
        return HostError(detail)

    index.error_factory = factory  # type: ignore[attr-defined]
    with pytest.raises(HostError):
        index.keyword_retrieval("q", None, 5)
    assert made and made[0][0] == 503
