"""R2RClient behaviour that needs no R2R server: argument checks, secrecy, retry bounds.

No HTTP mocks, and no private attribute of the client is read. The client points at a local
port where nothing listens, and an httpx ``request`` event hook (instrumentation, not a mock)
records what the client really tries to send. The pure parts are tested on their own in
``test_client_requests.py``, ``test_client_auth.py`` and ``test_client_transport.py``;
everything that depends on R2R's answers (retries on a real outage, 429, 401, token
renewal, ...) is in ``tests/integration/test_client_server_behaviour.py``.
"""

from __future__ import annotations

import logging
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from object_graph import reachable_reprs

from onyx.r2r_sender.client import R2RClient
from onyx.r2r_sender.errors import InvalidArgumentError, R2RRetryableError

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
    """A client aimed at a closed local port, with a request-recording event hook."""

    def __init__(self, **kwargs: Any) -> None:
        self.base_url = f"http://127.0.0.1:{free_closed_port()}"
        self.sent: list[str] = []
        self.headers: list[httpx.Headers] = []
        hooks = {"request": [self._record]}
        if "email" not in kwargs:
            kwargs.setdefault("api_key", API_KEY)
        self.client = R2RClient(self.base_url, event_hooks=hooks, **kwargs)

    def _record(self, request: httpx.Request) -> None:
        self.sent.append(f"{request.method} {request.url}")
        self.headers.append(request.headers)


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
    with pytest.raises(InvalidArgumentError, match="retry_max_time"):
        R2RClient(base, API_KEY, retry_max_time=-1)


def test_base_url_loses_its_trailing_slash() -> None:
    with R2RClient("http://127.0.0.1:7272/", API_KEY) as client:
        assert client.base_url == "http://127.0.0.1:7272"
        assert repr(client) == "R2RClient(base_url='http://127.0.0.1:7272')"


def test_login_mode_needs_no_key_and_logs_in_before_its_first_request() -> None:
    dead = DeadServer(email=EMAIL, password=PASSWORD, retry_max_tries=1)
    with dead.client:
        assert dead.sent == []  # nothing is sent before the first call
        with pytest.raises(R2RRetryableError):
            dead.client.get_document(DOC)
    assert dead.sent == [f"POST {dead.base_url}/v3/users/login"]
    assert "x-api-key" not in dead.headers[0] and "authorization" not in dead.headers[0]


def test_the_api_key_is_sent_with_each_request() -> None:
    dead = DeadServer(retry_max_tries=1)
    with dead.client:
        for _ in range(2):
            with pytest.raises(R2RRetryableError):
                dead.client.health()
    assert [h.get("x-api-key") for h in dead.headers] == [API_KEY, API_KEY]


def test_a_closed_client_sends_nothing() -> None:
    dead = DeadServer()
    with dead.client:
        pass
    with pytest.raises(RuntimeError, match="closed"):
        dead.client.health(retry=False)
    assert dead.sent == []


# ---------------------------------------------------------------- credentials stay secret


@pytest.mark.parametrize(
    "kwargs", [{"api_key": API_KEY}, {"email": EMAIL, "password": PASSWORD}], ids=["key", "login"]
)
def test_nothing_reachable_from_the_client_prints_a_credential(kwargs: dict[str, str]) -> None:
    """Whatever a dump shows (reprs of everything reachable from the client, the pool and
    its default headers included) holds neither the key nor the password."""
    with R2RClient("http://127.0.0.1:7272", **kwargs) as client:
        dumped = reachable_reprs(client)
    assert "R2RClient(base_url='http://127.0.0.1:7272')" in dumped  # the walk saw the client
    assert "'user-agent': 'onyx-r2r'" in dumped  # ... and as deep as httpx's default headers
    assert "***" in dumped  # ... and reached the secret holder, which prints only that
    for secret in (API_KEY, "sUpErSeCrEt", PASSWORD):
        assert secret not in dumped


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
        lambda c: c.list_collections(str(COL_A)),
        lambda c: c.list_collections([COL_A, "not-a-uuid"]),
        lambda c: c.list_collections([COL_A], page_size=1001),
        lambda c: c.get_collection_by_name(" "),
        lambda c: c.create_collection(""),
        lambda c: c.add_document_to_collection("x", DOC),
        lambda c: c.remove_document_from_collection(COL_A, "x"),
    ],
)
def test_invalid_arguments_raise_value_error_without_a_request(dead: DeadServer, call: Any) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        call(dead.client)
    assert isinstance(info.value, ValueError)
    assert dead.sent == []


def test_search_with_empty_collection_list_returns_nothing_without_a_request(
    dead: DeadServer,
) -> None:
    assert dead.client.search("anything", collection_ids=[]) == []
    assert dead.client.search("anything", collection_ids=()) == []
    assert dead.client.list_documents([]) == []
    assert dead.client.list_collections([]) == []
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
