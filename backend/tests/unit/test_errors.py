"""The (status, message) -> exception table, Retry-After parsing and error-body extraction."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from onyx.r2r_sender.cli import CliError
from onyx.r2r_sender.errors import (
    MAX_MESSAGE_CHARS,
    TRANSIENT_DEAD_LETTER_CLASSES,
    BridgeError,
    CredentialError,
    DeadLetterClass,
    InvalidArgumentError,
    R2RAlreadyExistsError,
    R2RAuthError,
    R2RBusyError,
    R2RConfigError,
    R2RError,
    R2RFatalError,
    R2RNotFoundError,
    R2RRetryableError,
    SettingsError,
    classify,
    message_from_body,
    parse_retry_after,
)

DOC = "0b5b7a3e-4a43-5d8e-9f00-3f8f6bd2c1a7"

# Messages as R2R 3.6.6 sends them (see r2r-api-behaviour.md §1.2, §4.3, §5.1, §6.1, §10.1).
ALREADY_EXISTS = (
    f"Document {DOC} already exists. Submit a DELETE request to `/documents/{{document_id}}` "
    "to delete this document and allow for re-ingestion."
)
CURRENTLY_INGESTING = f"Document {DOC} is currently ingesting with status embedding."
ALREADY_INGESTED = (
    f"An error '500: Error during chunk ingestion: Document {DOC} was already ingested and "
    "is not in a failed state.' occurred during create_document"
)
EMBEDDINGS_400 = "Error getting embeddings: litellm.APIConnectionError: Connection refused"
EMBEDDINGS_500 = (
    "An error '500: Error during chunk ingestion: Error getting embeddings: boom' "
    "occurred during create_document"
)

# Seen live on the stack (R2R 3.6.6, `openai` embedding provider): raw-text path answers 500.
EMBEDDINGS_500_RAW = (
    "An error '500: Error during ingestion: Error getting embeddings: Error code: 500 - "
    "{'error': {'message': 'embed stub: simulated embedding outage'}}' occurred during "
    "create_document"
)


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        (409, ALREADY_EXISTS, R2RAlreadyExistsError),
        (409, "Collection with this ID already exists", R2RAlreadyExistsError),
        (409, "Document is already assigned to the collection", R2RAlreadyExistsError),
        (409, CURRENTLY_INGESTING, R2RBusyError),
        (409, "some other conflict", R2RFatalError),
        (500, ALREADY_INGESTED, R2RAlreadyExistsError),
        (400, EMBEDDINGS_400, R2RRetryableError),
        (400, "  error getting embeddings (case/space tolerant)", R2RRetryableError),
        (500, EMBEDDINGS_500, R2RRetryableError),
        (500, EMBEDDINGS_500_RAW, R2RRetryableError),
        (400, "Part exceeded maximum size of 1024KB.", R2RFatalError),
        (400, "Something failed; Error getting embeddings later in the text", R2RFatalError),
        (429, "Per-route per-minute rate limit exceeded", R2RRetryableError),
        (502, "Bad Gateway", R2RRetryableError),
        (503, "Service Unavailable", R2RRetryableError),
        (504, "Gateway Timeout", R2RRetryableError),
        (401, "Invalid token or API key", R2RAuthError),
        (403, "Insufficient permissions for this action.", R2RAuthError),
        (404, "Document not found", R2RNotFoundError),
        (413, "File size exceeds maximum of 2000000 bytes for extension 'txt'.", R2RFatalError),
        (415, "'ext' is not a valid DocumentType.", R2RFatalError),
        (422, "Either a `file`, `raw_text`, or `chunks` must be provided.", R2RFatalError),
        (418, "I'm a teapot", R2RFatalError),
        (500, "Internal Server Error", R2RFatalError),
        (
            500,
            "An error 'sorry, too many clients already' occurred during create_document",
            R2RRetryableError,
        ),
        (
            500,
            "An error '500: An error occurred while fetching collections: sorry, too many "
            "clients already' occurred during create_collection",
            R2RRetryableError,
        ),
        (
            500,
            "remaining connection slots are reserved for roles with the SUPERUSER attribute",
            R2RRetryableError,
        ),
        (501, "Not Implemented", R2RFatalError),
    ],
)
def test_classification_table(status: int, message: str, expected: type[R2RError]) -> None:
    error = classify(status, message, operation="create_document", document_id=DOC)
    assert type(error) is expected
    assert error.status_code == status
    assert error.operation == "create_document"
    assert error.document_id == DOC
    assert message.strip() in error.message


@pytest.mark.parametrize(
    ("operation", "expected"),
    [
        ("get_collection_by_name", R2RRetryableError),
        ("list_collections", R2RRetryableError),
        ("create_document", R2RFatalError),
        ("assign_document_to_collection", R2RFatalError),
    ],
)
def test_a_bare_500_is_retried_only_for_lookups(operation: str, expected: type[R2RError]) -> None:
    """Seen live under load: lookups answered 500 "Internal Server Error" while R2R's
    database was out of connections; a write's bare 500 may be its payload, so it stays fatal."""
    assert type(classify(500, "Internal Server Error", operation=operation)) is expected


def test_fatal_subclasses_are_fatal_and_the_rest_are_not() -> None:
    assert issubclass(R2RAuthError, R2RFatalError)
    assert issubclass(R2RConfigError, R2RFatalError)
    for cls in (R2RRetryableError, R2RAlreadyExistsError, R2RBusyError, R2RNotFoundError):
        assert not issubclass(cls, R2RFatalError)
        assert issubclass(cls, R2RError)


def test_429_keeps_retry_after() -> None:
    error = classify(429, "slow down", operation="search", retry_after=12.5)
    assert isinstance(error, R2RRetryableError)
    assert error.retry_after == 12.5


def test_429_retry_after_from_seconds_header() -> None:
    error = classify(429, "slow down", operation="search", retry_after=parse_retry_after("7"))
    assert isinstance(error, R2RRetryableError)
    assert error.retry_after == 7.0


def test_429_retry_after_from_http_date_header() -> None:
    now = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=90), usegmt=True)
    retry_after = parse_retry_after(header, now=now.timestamp())
    error = classify(429, "slow down", operation="search", retry_after=retry_after)
    assert isinstance(error, R2RRetryableError)
    assert error.retry_after == pytest.approx(90.0)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        (" 1.5 ", 1.5),
        ("-3", 0.0),
        ("Wed, 01 Jan 2025 00:00:00 GMT", 0.0),  # in the past relative to `now`
        ("", None),
        (None, None),
        ("soon", None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    now = datetime(2025, 6, 1, tzinfo=UTC).timestamp()
    assert parse_retry_after(header, now=now) == expected


def test_non_retryable_errors_have_no_retry_after_attribute_confusion() -> None:
    error = classify(409, ALREADY_EXISTS, operation="create_document")
    assert not hasattr(error, "retry_after")


def test_auth_error_message_is_clear_and_names_the_server() -> None:
    error = classify(
        401, "Invalid token or API key", operation="get_document", base_url="http://r2r:7272"
    )
    assert isinstance(error, R2RAuthError)
    text = str(error)
    assert "rejected the API key" in text
    assert "http://r2r:7272" in text
    assert "HTTP 401" in text

    forbidden = classify(
        403, "Only a superuser can call this endpoint.", operation="check_settings"
    )
    assert "lacks permission for check_settings" in str(forbidden)
    assert "superuser" in str(forbidden)


def test_str_names_operation_status_document_and_message() -> None:
    error = classify(404, "Document not found", operation="get_document", document_id=DOC)
    assert (
        str(error) == f"R2R get_document failed (HTTP 404) for document {DOC}: Document not found"
    )

    transport = R2RRetryableError("could not reach R2R", operation="health")
    assert str(transport) == "R2R health failed (no response): could not reach R2R"


def test_message_is_truncated() -> None:
    error = classify(500, "x" * 5000, operation="search")
    assert len(error.message) <= MAX_MESSAGE_CHARS
    assert len(str(error)) < MAX_MESSAGE_CHARS + 100


def test_errors_pickle_round_trip() -> None:
    error = classify(429, "slow down", operation="search", document_id=DOC, retry_after=3.0)
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is R2RRetryableError
    assert (clone.status_code, clone.message, clone.document_id, clone.operation) == (
        429,
        "slow down",
        DOC,
        "search",
    )
    assert clone.retry_after == 3.0
    assert str(clone) == str(error)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"detail": "Document not found."}', "Document not found."),
        (
            b'{"detail": {"message": "An error occurred", "error_type": "HTTPException"}}',
            "An error occurred",
        ),
        (
            b'{"message": "Document x already exists.", "error_type": "R2RException"}',
            "Document x already exists.",
        ),
        (
            b'{"detail": [{"loc": ["body", "id"], "msg": "Input should be a valid UUID",'
            b' "type": "uuid_parsing"}]}',
            "validation failed: id: Input should be a valid UUID",
        ),
        (b"<html>502 Bad Gateway</html>", "<html>502 Bad Gateway</html>"),
        (b"", ""),
        (b'"plain json string"', "plain json string"),
        (b"[1, 2]", "[1, 2]"),
        ("caf\u00e9 not json".encode(), "caf\u00e9 not json"),
        (b"\xff\xfe broken utf8", "\ufffd\ufffd broken utf8"),
    ],
)
def test_message_from_body(body: bytes, expected: str) -> None:
    assert message_from_body(body) == expected


def test_message_from_non_json_body_is_truncated_to_500_chars() -> None:
    assert len(message_from_body(b"y" * 10_000)) == MAX_MESSAGE_CHARS


# ---------------------------------------------------------------- one root


def test_every_engine_error_class_derives_from_the_one_root() -> None:
    for cls in (
        R2RError,
        R2RRetryableError,
        R2RAlreadyExistsError,
        R2RBusyError,
        R2RNotFoundError,
        R2RFatalError,
        R2RAuthError,
        R2RConfigError,
        CredentialError,
        InvalidArgumentError,
        SettingsError,
        CliError,
    ):
        assert issubclass(cls, BridgeError), cls
    assert not issubclass(BridgeError, ValueError)
    # argument and settings errors stay ValueErrors for callers that catch those
    assert issubclass(InvalidArgumentError, ValueError)
    assert issubclass(SettingsError, ValueError)
    assert not issubclass(R2RError, ValueError)


def test_credential_error_is_a_plain_sentence_with_a_code() -> None:
    error = CredentialError("Enter the R2R server's URL")
    assert (str(error), error.message, error.code) == (
        "Enter the R2R server's URL",
        "Enter the R2R server's URL",
        "credential_error",
    )


# ---------------------------------------------------------------- dead-letter classes


def test_dead_letter_classes_are_the_strings_the_ledger_stores() -> None:
    assert [c.value for c in DeadLetterClass] == [
        "invalid_document",
        "r2r_rejected",
        "r2r_config",
        "r2r_unavailable",
        "r2r_busy",
        "r2r_not_found",
        "r2r_conflict",
        "r2r_error",
        "invalid_state",
        "internal",
    ]
    assert DeadLetterClass("r2r_config") is DeadLetterClass.R2R_CONFIG
    assert DeadLetterClass.R2R_CONFIG == "r2r_config"  # a str: SQL and JSON take it as is
    assert f"{DeadLetterClass.INTERNAL}" == "internal"


def test_every_dead_letter_class_has_a_label_and_a_sentence() -> None:
    labels = [c.label for c in DeadLetterClass]
    assert len(set(labels)) == len(labels)
    for cls in DeadLetterClass:
        assert cls.label and cls.label[0].isupper() and "_" not in cls.label
        assert cls.description.endswith(".") and len(cls.description) > len(cls.label)
    assert DeadLetterClass.R2R_CONFIG.label == "R2R credential or settings"


def test_transient_classes_are_what_a_reconciliation_requeues() -> None:
    assert set(TRANSIENT_DEAD_LETTER_CLASSES) == {
        DeadLetterClass.R2R_UNAVAILABLE,
        DeadLetterClass.R2R_BUSY,
        DeadLetterClass.R2R_CONFIG,
        DeadLetterClass.R2R_NOT_FOUND,
        DeadLetterClass.R2R_CONFLICT,
        DeadLetterClass.R2R_ERROR,
        DeadLetterClass.INTERNAL,
    }
    # the ledger's re-queue list must name exactly these (until it imports the enum)
    from onyx.r2r_sender.ledger.ops import RETRYABLE_DEAD_CLASSES

    assert set(RETRYABLE_DEAD_CLASSES) == set(TRANSIENT_DEAD_LETTER_CLASSES)
