"""client_transport's pure parts: timeouts, the retry wait policy, transport-error mapping.

The retrying transport itself is exercised through R2RClient against a closed port in
``test_client_validation.py`` and against the real R2R in the integration tests.
"""

from __future__ import annotations

import random
import ssl
import uuid

import backoff
import httpx
import pytest

from onyx.r2r_sender.client_auth import build_auth
from onyx.r2r_sender.client_transport import (
    R2RTransport,
    check_base_url,
    http_timeout,
    retry_wait,
    retry_waits,
    tls_verification,
    transport_error,
)
from onyx.r2r_sender.errors import InvalidArgumentError, R2RFatalError, R2RRetryableError

API_KEY = "key_UNITTESTpublic.sUpErSeCrEt-unit-test-value"
PASSWORD = "pAsSwOrD-unit-test-value"
DOC = uuid.UUID("4f8a1d6e-0c3b-5a1e-9e1d-2b7c8d9e0f10")


def test_http_timeout_uses_connect_for_connecting_and_read_for_the_rest() -> None:
    timeout = http_timeout(3.0, 50.0)
    assert timeout.as_dict() == {"connect": 3.0, "read": 50.0, "write": 50.0, "pool": 50.0}


def test_base_url_must_be_http_and_loses_its_trailing_slash() -> None:
    assert check_base_url("http://127.0.0.1:7272/") == "http://127.0.0.1:7272"
    assert check_base_url("https://r2r.example.com/base") == "https://r2r.example.com/base"
    for bad in ("localhost:7272", "ftp://host", "", "http://"):
        with pytest.raises(InvalidArgumentError, match="base_url must be an http"):
            check_base_url(bad)


def test_retry_bounds_are_checked() -> None:
    auth = build_auth("http://r2r:7272", API_KEY, None, None)
    common = {"connect_timeout": 1.0, "read_timeout": 1.0, "max_connections": 1}
    with pytest.raises(InvalidArgumentError, match="retry_max_tries"):
        R2RTransport("http://r2r:7272", auth, retry_max_time=1, retry_max_tries=0, **common)
    with pytest.raises(InvalidArgumentError, match="retry_max_time"):
        R2RTransport("http://r2r:7272", auth, retry_max_time=-1, retry_max_tries=2, **common)
    transport = R2RTransport("http://r2r:7272", auth, retry_max_time=0, retry_max_tries=1, **common)
    assert repr(transport) == "R2RTransport(base_url='http://r2r:7272')"
    assert transport.timeout(9.0).as_dict()["connect"] == 1.0
    transport.close()


def _ca_loads_while_building(base_url: str, monkeypatch: pytest.MonkeyPatch) -> int:
    """How many CA bundles building a transport for *base_url* parses."""
    loads: list[object] = []
    real = ssl.SSLContext.load_verify_locations

    def counting(self: ssl.SSLContext, *args: object, **kwargs: object) -> None:
        loads.append(args or kwargs)
        real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)
    auth = build_auth(base_url, API_KEY, None, None)
    transport = R2RTransport(
        base_url,
        auth,
        connect_timeout=1.0,
        read_timeout=1.0,
        retry_max_time=0,
        retry_max_tries=1,
        max_connections=1,
    )
    transport.close()
    return len(loads)


def test_a_plain_http_client_parses_no_ca_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    # CCBE builds a client per operation (a fresh process each): parsing certifi's bundle
    # cost about 20 ms of every search for a URL that never negotiates TLS
    assert _ca_loads_while_building("http://r2r:7272", monkeypatch) == 0
    assert _ca_loads_while_building("https://r2r.example.com", monkeypatch) >= 1


def test_the_plain_http_context_fails_closed_if_tls_is_ever_tried() -> None:
    context = tls_verification("HTTP://r2r:7272")
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.get_ca_certs() == []  # trusts nobody: a handshake could not verify
    assert tls_verification("https://r2r.example.com") is True  # httpx's default trust


# ---------------------------------------------------------------- retry wait policy


def _upper(ceiling: float) -> float:
    return ceiling


def test_wait_ceiling_doubles_from_half_a_second_up_to_ten() -> None:
    waits = [retry_wait(n, None, 0.0, 1e9, jitter=_upper) for n in range(1, 9)]
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    assert retry_wait(10_000, None, 0.0, 1e9, jitter=_upper) == 10.0  # no float overflow


def test_wait_ceilings_match_backoffs_expo_schedule() -> None:
    expo = backoff.expo(factor=0.5, max_value=10.0)
    next(expo)
    expected = [next(expo) for _ in range(12)]
    assert [retry_wait(n, None, 0.0, 1e9, jitter=_upper) for n in range(1, 13)] == expected


def test_default_jitter_is_full_jitter_within_the_ceiling() -> None:
    state = random.getstate()
    random.seed(1234)
    try:
        for attempt in range(1, 8):
            ceiling = retry_wait(attempt, None, 0.0, 1e9, jitter=_upper)
            samples = [retry_wait(attempt, None, 0.0, 1e9) for _ in range(300)]
            assert all(0.0 <= s <= ceiling for s in samples)
            assert min(samples) < ceiling * 0.1 and max(samples) > ceiling * 0.9  # full range
    finally:
        random.setstate(state)


def test_retry_after_is_a_minimum_wait() -> None:
    assert retry_wait(1, 0.6, 0.0, 30.0, jitter=lambda _: 0.0) == 0.6
    assert retry_wait(1, 7.0, 0.0, 30.0, jitter=_upper) == 7.0
    assert retry_wait(5, 1.0, 0.0, 30.0, jitter=_upper) == 8.0  # backoff already longer
    assert retry_wait(1, 0.0, 0.0, 30.0, jitter=_upper) == 0.5


def test_waits_are_capped_by_the_remaining_budget_and_never_negative() -> None:
    assert retry_wait(1, 3600.0, 0.2, 1.0, jitter=_upper) == pytest.approx(0.8)
    assert retry_wait(6, None, 25.0, 30.0, jitter=_upper) == pytest.approx(5.0)
    assert retry_wait(1, None, 2.0, 1.0, jitter=_upper) == 0.0
    assert retry_wait(1, 10.0, 0.0, 0.0, jitter=_upper) == 0.0


def test_attempt_numbers_start_at_one() -> None:
    with pytest.raises(InvalidArgumentError, match="attempt"):
        retry_wait(0, None, 0.0, 1.0)


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_wait_generator_feeds_retry_after_to_the_policy() -> None:
    """Drive ``retry_waits`` exactly as backoff does: prime, then send each exception."""
    clock = _Clock()
    waits = retry_waits(30.0, clock=clock)
    assert waits.send(None) == 0.0  # priming answer, not used as a wait
    limited = R2RRetryableError("slow down", operation="t", status_code=429, retry_after=4.0)
    assert 4.0 <= waits.send(limited) <= 30.0
    plain = R2RRetryableError("down", operation="t", status_code=503)
    assert 0.0 <= waits.send(plain) <= 1.0  # second retry: ceiling 1 s
    assert 0.0 <= waits.send(plain) <= 2.0
    clock.now += 29.5  # the budget runs from the priming
    assert waits.send(limited) == pytest.approx(0.5)


def test_wait_generator_caps_retry_after_by_the_budget() -> None:
    waits = retry_waits(1.0, clock=_Clock())
    waits.send(None)
    huge = R2RRetryableError("later", operation="t", status_code=429, retry_after=3600.0)
    assert waits.send(huge) == 1.0


# ---------------------------------------------------------------- transport failures


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
    error = transport_error(
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
    error = transport_error(
        exc,
        base_url="http://r2r:7272",
        operation="health",
        document_id=None,
        secrets=[API_KEY, PASSWORD],
    )
    for text in (str(error), repr(error), error.message):
        assert API_KEY not in text and PASSWORD not in text
    assert "***" in str(error)
    empty = transport_error(
        httpx.ConnectError(""), base_url="http://r2r", operation="health", document_id=None
    )
    assert "ConnectError" in str(empty)  # no detail: the class name stands in
