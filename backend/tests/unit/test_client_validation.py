"""R2RClient behaviour that needs no R2R server: argument checks, secrecy, the retry policy.

No HTTP mocks. Pure parts (the retry wait policy, redaction, transport-error mapping, the
settings check) are called directly. Where a client is needed it points at a local port where
nothing listens, and an httpx ``request`` event hook (instrumentation, not a mock) counts what
the client really tries to send. Everything that depends on R2R's answers (retries on a real
outage, 429, 401, token renewal, ...) is in ``tests/integration/test_client_server_behaviour.py``.
"""

from __future__ import annotations

import logging
import pickle
import random
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import backoff
import httpx
import pytest

from onyx.r2r_sender.client import (
    R2RClient,
    _LoginAuth,
    _redact,
    _retry_wait,
    _Secret,
    _settings_problems,
    _transport_error,
)
from onyx.r2r_sender.errors import R2RFatalError, R2RRetryableError

API_KEY = "key_UNITTESTpublic.sUpErSeCrEt-unit-test-value"
EMAIL = "svc@example.com"
PASSWORD = "pAsSwOrD-unit-test-value"
DOC = uuid.UUID("4f8a1d6e-0c3b-5a1e-9e1d-2b7c8d9e0f10")
COL_A = uuid.UUID("11111111-1111-4111-8111-111111111111")


def free_closed_port() -> int:
    """A local TCP port with nothing listening on it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DeadServer:
    """A client aimed at a closed local port, with a request-counting event hook."""

    def __init__(self, **kwargs: Any) -> None:
        self.base_url = f"http://127.0.0.1:{free_closed_port()}"
        self.sent: list[str] = []
        hooks = {"request": [lambda request: self.sent.append(f"{request.method} {request.url}")]}
        if "email" not in kwargs:
            kwargs.setdefault("api_key", API_KEY)
        self.client = R2RClient(self.base_url, event_hooks=hooks, **kwargs)


@pytest.fixture(params=["api_key", "login"])
def dead(request: pytest.FixtureRequest) -> Iterator[DeadServer]:
    server = (
        DeadServer() if request.param == "api_key" else DeadServer(email=EMAIL, password=PASSWORD)
    )
    with server.client:
        yield server


# ---------------------------------------------------------------- constructor


def test_constructor_validates_arguments() -> None:
    base = "http://127.0.0.1:7272"
    with pytest.raises(ValueError, match="base_url"):
        R2RClient("localhost:7272", API_KEY)
    with pytest.raises(ValueError, match="base_url"):
        R2RClient("ftp://host", API_KEY)
    with pytest.raises(ValueError, match="base_url"):
        R2RClient("", API_KEY)
    with pytest.raises(ValueError, match="api_key"):
        R2RClient(base, "  ")
    with pytest.raises(ValueError, match="api_key"):
        R2RClient(base)
    with pytest.raises(ValueError, match="email and password"):
        R2RClient(base, email=EMAIL)
    with pytest.raises(ValueError, match="email and password"):
        R2RClient(base, password=PASSWORD)
    with pytest.raises(ValueError, match="retry_max_tries"):
        R2RClient(base, API_KEY, retry_max_tries=0)
    with pytest.raises(ValueError, match="retry_max_time"):
        R2RClient(base, API_KEY, retry_max_time=-1)


def test_base_url_loses_its_trailing_slash_and_login_mode_needs_no_key() -> None:
    with R2RClient("http://127.0.0.1:7272/", API_KEY) as client:
        assert client.base_url == "http://127.0.0.1:7272"
    with R2RClient("http://127.0.0.1:7272", email=EMAIL, password=PASSWORD) as client:
        assert isinstance(client._auth, _LoginAuth)
        assert client._auth._token is None  # no login before the first request


def test_context_manager_closes_the_pool() -> None:
    with R2RClient("http://127.0.0.1:7272", API_KEY) as client:
        pass
    assert client._http.is_closed


# ---------------------------------------------------------------- credentials stay secret


def test_repr_and_vars_do_not_contain_the_key() -> None:
    with R2RClient("http://127.0.0.1:7272", API_KEY) as client:
        assert repr(client) == "R2RClient(base_url='http://127.0.0.1:7272')"
        dumped = repr(vars(client)) + str(vars(client)) + repr(client._http.headers)
        dumped += repr(vars(client._auth)) + repr(client._auth)
        assert API_KEY not in dumped
        assert "sUpErSeCrEt" not in dumped
        assert "x-api-key" not in client._http.headers  # added per request, not a default


def test_repr_and_vars_do_not_contain_the_password() -> None:
    with R2RClient("http://127.0.0.1:7272", email=EMAIL, password=PASSWORD) as client:
        dumped = repr(client) + repr(vars(client)) + str(vars(client))
        dumped += repr(vars(client._auth)) + repr(client._auth) + repr(client._http.headers)
        assert PASSWORD not in dumped
        assert repr(client._auth) == f"_LoginAuth(email={EMAIL!r})"
        assert "authorization" not in client._http.headers


def test_secret_hides_its_value() -> None:
    secret = _Secret(API_KEY)
    assert repr(secret) == str(secret) == f"{secret}" == "***"
    assert secret.reveal() == API_KEY
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(secret)


def test_redact_replaces_every_secret() -> None:
    text = f"key={API_KEY} pw={PASSWORD} again {API_KEY}"
    assert _redact(text, [API_KEY, PASSWORD]) == "key=*** pw=*** again ***"
    assert _redact(text, ["", "absent"]) == text  # empty secrets are ignored
    assert _redact("", [API_KEY]) == ""


# ---------------------------------------------------------------- invalid input: no request


@pytest.mark.parametrize("bad", [str(COL_A), str(COL_A).encode(), bytearray(b"x")])
def test_string_collection_ids_rejected_before_any_request(dead: DeadServer, bad: object) -> None:
    started = time.monotonic()
    with pytest.raises(ValueError, match=r"^collection_ids must be a list of UUID strings$"):
        dead.client.create_document(
            document_id=DOC,
            raw_text="hello",
            metadata={},
            collection_ids=bad,  # type: ignore[arg-type]
        )
    with pytest.raises(ValueError, match=r"^collection_ids must be a list of UUID strings$"):
        dead.client.search("hello", collection_ids=bad)  # type: ignore[arg-type]
    assert time.monotonic() - started < 0.5  # raised at once: no connect, no retry
    assert dead.sent == []


def test_the_request_hook_sees_real_connection_attempts(dead: DeadServer) -> None:
    """Control for the "no request" tests: the same client does try to connect when valid."""
    with pytest.raises(R2RRetryableError) as info:
        dead.client.search("hello", collection_ids=[COL_A], retry=False)
    assert len(dead.sent) == 1
    assert dead.sent[0].startswith("POST ")
    assert info.value.status_code is None
    assert dead.base_url in str(info.value)


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.create_document(document_id=DOC, raw_text=" ", metadata={}, collection_ids=[]),
        lambda c: c.create_document(
            document_id="nope", raw_text="x", metadata={}, collection_ids=[]
        ),
        lambda c: c.create_document(
            document_id=DOC, chunks=["x"], metadata={"n": float("nan")}, collection_ids=[]
        ),
        lambda c: c.create_document(
            document_id=DOC, chunks=["x"], metadata={}, collection_ids=[123]
        ),
        lambda c: c.search(""),
        lambda c: c.search("q", limit=0),
        lambda c: c.search("q", mode="graph"),
        lambda c: c.get_document("not-a-uuid"),
        lambda c: c.delete_document("not-a-uuid"),
        lambda c: c.list_documents(str(DOC)),
        lambda c: c.list_documents(["not-a-uuid"]),
        lambda c: c.list_documents([DOC], page_size=0),
        lambda c: c.get_collection_by_name(" "),
        lambda c: c.create_collection(""),
        lambda c: c.add_document_to_collection("x", DOC),
        lambda c: c.remove_document_from_collection(COL_A, "x"),
    ],
)
def test_invalid_arguments_raise_value_error_without_a_request(dead: DeadServer, call: Any) -> None:
    with pytest.raises(ValueError):
        call(dead.client)
    assert dead.sent == []


def test_search_with_empty_collection_list_returns_nothing_without_a_request(
    dead: DeadServer,
) -> None:
    assert dead.client.search("anything", collection_ids=[]) == []
    assert dead.client.search("anything", collection_ids=()) == []
    assert dead.client.list_documents([]) == []
    assert dead.sent == []


# ---------------------------------------------------------------- retry loop bounds


def test_retry_false_makes_one_attempt() -> None:
    dead = DeadServer(retry_max_time=30)
    with dead.client, pytest.raises(R2RRetryableError):
        dead.client.health(retry=False)
    assert len(dead.sent) == 1


def test_max_tries_bounds_attempts() -> None:
    dead = DeadServer(retry_max_time=60, retry_max_tries=3)
    with dead.client, pytest.raises(R2RRetryableError):
        dead.client.get_document(DOC)
    assert len(dead.sent) == 3


def test_time_budget_bounds_the_retries() -> None:
    dead = DeadServer(retry_max_time=1.0, retry_max_tries=1000)
    started = time.monotonic()
    with dead.client, pytest.raises(R2RRetryableError):
        dead.client.health()
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 3.0, elapsed
    assert len(dead.sent) >= 2


def test_retry_logs_never_contain_credentials(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "backoff", "onyx"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    for kwargs in ({"api_key": API_KEY}, {"email": EMAIL, "password": PASSWORD}):
        dead = DeadServer(retry_max_time=0.6, **kwargs)
        with dead.client, pytest.raises(R2RRetryableError) as info:
            dead.client.search("q")
        for text in (str(info.value), repr(info.value)):
            assert API_KEY not in text and PASSWORD not in text
    assert any("retry" in r.getMessage() for r in caplog.records), "retries must be logged"
    assert API_KEY not in caplog.text and PASSWORD not in caplog.text
    assert all(API_KEY not in str(r.args) and PASSWORD not in str(r.args) for r in caplog.records)


# ---------------------------------------------------------------- retry wait policy (pure)


def _upper(ceiling: float) -> float:
    return ceiling


def test_wait_ceiling_doubles_from_half_a_second_up_to_ten() -> None:
    waits = [_retry_wait(n, None, 0.0, 1e9, jitter=_upper) for n in range(1, 9)]
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    assert _retry_wait(10_000, None, 0.0, 1e9, jitter=_upper) == 10.0  # no float overflow


def test_wait_ceilings_match_backoffs_expo_schedule() -> None:
    expo = backoff.expo(factor=0.5, max_value=10.0)
    next(expo)
    expected = [next(expo) for _ in range(12)]
    assert [_retry_wait(n, None, 0.0, 1e9, jitter=_upper) for n in range(1, 13)] == expected


def test_default_jitter_is_full_jitter_within_the_ceiling() -> None:
    state = random.getstate()
    random.seed(1234)
    try:
        for attempt in range(1, 8):
            ceiling = _retry_wait(attempt, None, 0.0, 1e9, jitter=_upper)
            samples = [_retry_wait(attempt, None, 0.0, 1e9) for _ in range(300)]
            assert all(0.0 <= s <= ceiling for s in samples)
            assert min(samples) < ceiling * 0.1 and max(samples) > ceiling * 0.9  # full range
    finally:
        random.setstate(state)


def test_retry_after_is_a_minimum_wait() -> None:
    assert _retry_wait(1, 0.6, 0.0, 30.0, jitter=lambda _: 0.0) == 0.6
    assert _retry_wait(1, 7.0, 0.0, 30.0, jitter=_upper) == 7.0
    assert _retry_wait(5, 1.0, 0.0, 30.0, jitter=_upper) == 8.0  # backoff already longer
    assert _retry_wait(1, 0.0, 0.0, 30.0, jitter=_upper) == 0.5


def test_waits_are_capped_by_the_remaining_budget_and_never_negative() -> None:
    assert _retry_wait(1, 3600.0, 0.2, 1.0, jitter=_upper) == pytest.approx(0.8)
    assert _retry_wait(6, None, 25.0, 30.0, jitter=_upper) == pytest.approx(5.0)
    assert _retry_wait(1, None, 2.0, 1.0, jitter=_upper) == 0.0
    assert _retry_wait(1, 10.0, 0.0, 0.0, jitter=_upper) == 0.0


def test_attempt_numbers_start_at_one() -> None:
    with pytest.raises(ValueError, match="attempt"):
        _retry_wait(0, None, 0.0, 1.0)


def test_client_wait_generator_feeds_retry_after_to_the_policy() -> None:
    """Drive ``_retry_waits`` exactly as backoff does: prime, then send each exception."""
    with R2RClient("http://127.0.0.1:7272", API_KEY, retry_max_time=30.0) as client:
        waits = client._retry_waits()
        assert waits.send(None) == 0.0  # priming answer, not used as a wait
        limited = R2RRetryableError("slow down", operation="t", status_code=429, retry_after=4.0)
        assert 4.0 <= waits.send(limited) <= 30.0
        plain = R2RRetryableError("down", operation="t", status_code=503)
        assert 0.0 <= waits.send(plain) <= 1.0  # second retry: ceiling 1 s
        assert 0.0 <= waits.send(plain) <= 2.0
    with R2RClient("http://127.0.0.1:7272", API_KEY, retry_max_time=1.0) as client:
        waits = client._retry_waits()
        waits.send(None)
        huge = R2RRetryableError("later", operation="t", status_code=429, retry_after=3600.0)
        assert waits.send(huge) <= 1.0  # capped by the budget


# ---------------------------------------------------------------- transport failures (pure)


@pytest.mark.parametrize(
    ("exc", "expected", "fragment"),
    [
        (httpx.ConnectTimeout("slow"), R2RRetryableError, "timed out"),
        (httpx.ReadTimeout("slow"), R2RRetryableError, "timed out"),
        (httpx.PoolTimeout("busy"), R2RRetryableError, "timed out"),
        (httpx.ConnectError("refused"), R2RRetryableError, "could not reach"),
        (httpx.ReadError("reset"), R2RRetryableError, "could not reach"),
        (httpx.RemoteProtocolError("eof"), R2RRetryableError, "could not reach"),
        (httpx.UnsupportedProtocol("nope"), R2RFatalError, "could not be sent"),
        (httpx.InvalidURL("bad"), R2RFatalError, "could not be sent"),
        (httpx.DecodingError("gzip"), R2RFatalError, "could not be sent"),
    ],
)
def test_transport_failures_map_to_retryable_or_fatal(
    exc: Exception, expected: type[Exception], fragment: str
) -> None:
    error = _transport_error(
        exc, base_url="http://r2r:7272", operation="health", document_id=str(DOC)
    )
    assert type(error) is expected
    assert fragment in str(error)
    assert "http://r2r:7272" in str(error)
    assert error.status_code is None
    assert error.operation == "health"
    assert error.document_id == str(DOC)


def test_transport_failure_detail_is_redacted() -> None:
    exc = httpx.ConnectError(f"refused while sending x-api-key={API_KEY} pw={PASSWORD}")
    error = _transport_error(
        exc,
        base_url="http://r2r:7272",
        operation="health",
        document_id=None,
        secrets=[API_KEY, PASSWORD],
    )
    for text in (str(error), repr(error), error.message):
        assert API_KEY not in text and PASSWORD not in text
    assert "***" in str(error)
    empty = _transport_error(
        httpx.ConnectError(""), base_url="http://r2r", operation="health", document_id=None
    )
    assert "ConnectError" in str(empty)  # no detail: the class name stands in


# ---------------------------------------------------------------- settings check (pure)


def _config(**overrides: Any) -> dict[str, Any]:
    embedding = {"provider": "openai", "base_model": "m", "base_dimension": 512}
    config: dict[str, Any] = {
        "embedding": dict(embedding),
        "completion_embedding": dict(embedding),
        "ingestion": {"skip_document_summary": True},
    }
    config.update(overrides)
    return config


def test_matching_settings_have_no_problem() -> None:
    assert _settings_problems(_config()) == []
    nan = float("nan")
    same_nan = _config(
        embedding={"provider": "p", "base_model": "m", "base_dimension": nan},
        completion_embedding={"provider": "p", "base_model": "m", "base_dimension": nan},
    )
    assert _settings_problems(same_nan) == []


def test_every_settings_problem_is_listed() -> None:
    problems = _settings_problems(
        _config(
            completion_embedding={"provider": "litellm", "base_model": "x", "base_dimension": 3},
            ingestion={"skip_document_summary": False},
        )
    )
    assert len(problems) == 4
    assert any("provider = 'openai'" in p and "'litellm'" in p for p in problems)
    assert any("base_model" in p for p in problems)
    assert any("base_dimension = 512" in p for p in problems)
    assert any("skip_document_summary = False" in p for p in problems)


def test_missing_sections_are_problems() -> None:
    problems = _settings_problems({})
    assert problems == [
        "the [embedding] section is missing",
        "the [completion_embedding] section is missing",
        "[ingestion] skip_document_summary = None; set it to true (otherwise every ingestion "
        "calls an LLM to summarise the document)",
    ]
