"""worker.classify_failure: which failures retry, dead-letter or trip the breaker (pure)."""

from __future__ import annotations

import pytest

from onyx.r2r_sender.applier import ApplyError, classify_failure
from onyx.r2r_sender.errors import (
    DeadLetterClass,
    R2RAlreadyExistsError,
    R2RAuthError,
    R2RBusyError,
    R2RConfigError,
    R2RError,
    R2RFatalError,
    R2RNotFoundError,
    R2RRetryableError,
    classify,
)

OP = {"operation": "create_document"}


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (R2RRetryableError("down", **OP), ("r2r_unavailable", True, True)),
        (
            R2RRetryableError("429", status_code=429, retry_after=3, **OP),
            ("r2r_unavailable", True, True),
        ),
        (R2RBusyError("ingesting", status_code=409, **OP), ("r2r_busy", True, False)),
        (R2RAuthError("bad key", status_code=401, **OP), ("r2r_config", True, False)),
        (R2RConfigError("misconfigured", **OP), ("r2r_config", True, False)),
        (R2RNotFoundError("gone", status_code=404, **OP), ("r2r_not_found", True, False)),
        (R2RAlreadyExistsError("exists", status_code=409, **OP), ("r2r_conflict", True, False)),
        (R2RFatalError("bad payload", status_code=422, **OP), ("r2r_rejected", False, False)),
        (R2RError("odd", **OP), ("r2r_error", True, False)),
        (ApplyError("d", "no payload", retryable=False), ("invalid_state", False, False)),
        (ApplyError("d", "later", retryable=True), ("invalid_state", True, False)),
        (RuntimeError("bug"), ("internal", True, False)),
        (ValueError("raw_text is empty"), ("internal", True, False)),
        (ConnectionError("db"), ("internal", True, False)),
    ],
)
def test_classify_failure_table(exc: BaseException, expected: tuple[str, bool, bool]) -> None:
    assert classify_failure(exc) == expected
    assert type(classify_failure(exc)[0]) is DeadLetterClass  # the enum, not a loose string


def test_subclasses_are_checked_before_their_bases() -> None:
    # R2RAuthError/R2RConfigError are R2RFatalError subclasses, but must not dead-letter:
    # a rotated key or a config fix makes them succeed later.
    assert issubclass(R2RAuthError, R2RFatalError)
    assert classify_failure(R2RAuthError("x", **OP))[1] is True
    assert classify_failure(R2RConfigError("x", **OP))[1] is True


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        (503, "Service Unavailable", ("r2r_unavailable", True, True)),
        (502, "Bad Gateway", ("r2r_unavailable", True, True)),
        (504, "Gateway Timeout", ("r2r_unavailable", True, True)),
        (429, "Too many requests", ("r2r_unavailable", True, True)),
        (500, "Error getting embeddings: provider down", ("r2r_unavailable", True, True)),
        (400, "Error getting embeddings: bad", ("r2r_unavailable", True, True)),
        (409, "Document abc is currently ingesting.", ("r2r_busy", True, False)),
        (409, "Document already exists", ("r2r_conflict", True, False)),
        (404, "Not found", ("r2r_not_found", True, False)),
        (401, "Invalid API key", ("r2r_config", True, False)),
        (403, "Only superusers", ("r2r_config", True, False)),
        (413, "Payload too large", ("r2r_rejected", False, False)),
        (422, "validation failed: metadata: invalid", ("r2r_rejected", False, False)),
        (500, "Internal Server Error", ("r2r_rejected", False, False)),
    ],
)
def test_http_answers_end_to_end(
    status: int, message: str, expected: tuple[str, bool, bool]
) -> None:
    """An R2R answer, through the client's classify, to what the worker does with it."""
    assert classify_failure(classify(status, message, operation="create_document")) == expected


def test_only_transient_r2r_failures_count_against_the_breaker() -> None:
    samples: list[BaseException] = [
        R2RBusyError("x", **OP),
        R2RNotFoundError("x", **OP),
        R2RFatalError("x", **OP),
        R2RAuthError("x", **OP),
        ApplyError("d", "x", retryable=True),
        RuntimeError("x"),
    ]
    assert not any(classify_failure(exc)[2] for exc in samples)
    assert classify_failure(R2RRetryableError("x", **OP))[2]
