"""R2RClient's handling of what a REAL R2R 3.6.6 answers: outages, 429, 401, token renewal.

No HTTP mocks: every answer comes from the local stack's R2R (``scripts/stack up``). Failures
are produced for real: an embedding outage via the embedding stub's ``/control`` switch, a
429 by exceeding R2R's per-route rate limit as a non-superuser (superusers are exempt), 401s
with a wrong API key / password / revoked or garbage JWT. httpx event hooks (instrumentation)
count the requests the client really sends.

Each test cleans up what it created (documents, collections, the temporary user) and the
``embed_stub`` fixture resets the shared stub afterwards.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import httpx
import pytest
from object_graph import reachable_reprs

from onyx.r2r_sender import R2RAuthError, R2RClient, R2RRetryableError, r2r_document_id

pytestmark = pytest.mark.integration

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------- helpers


@dataclass
class Recorder:
    """httpx event hooks that record (time, "METHOD /path") of requests and response facts.

    ``bearer_tokens`` are the JWTs the client sent, in order.  ``garble_next_token()`` makes
    the hook replace the bearer token of the next request on the wire with a garbage one
    (instrumentation tampering with one request in transit; the client itself is untouched).
    """

    requests: list[tuple[float, str]] = field(default_factory=list)
    api_key_sent: list[bool] = field(default_factory=list)
    # kept out of the repr: the client's hooks are reachable from the client, and a dump
    # of the client must show no token (the recorder's copies are the test's, not its own)
    bearer_tokens: list[str] = field(default_factory=list, repr=False)
    responses: list[tuple[str, int, str | None]] = field(default_factory=list)
    garble: bool = False

    def hooks(self) -> dict[str, list[Callable[..., Any]]]:
        return {"request": [self._on_request], "response": [self._on_response]}

    def garble_next_token(self) -> None:
        self.garble = True

    def _on_request(self, request: httpx.Request) -> None:
        self.requests.append((time.monotonic(), f"{request.method} {request.url.path}"))
        self.api_key_sent.append("x-api-key" in request.headers)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme == "Bearer" and self.garble:
            self.garble = False
            request.headers["authorization"] = f"Bearer garbage.{uuid.uuid4().hex}"
        elif scheme == "Bearer":
            self.bearer_tokens.append(token)

    def _on_response(self, response: httpx.Response) -> None:
        request = response.request
        self.responses.append(
            (
                f"{request.method} {request.url.path}",
                response.status_code,
                response.headers.get("retry-after"),
            )
        )

    def sent(self, what: str) -> list[float]:
        """Send times of the requests equal to ``"METHOD /path"``."""
        return [at for at, line in self.requests if line == what]

    def paths(self) -> list[str]:
        return [line for _, line in self.requests]


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture DEBUG from every logger, including httpx, httpcore and onyx."""
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "backoff", "onyx"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def assert_secret_free(secrets: Iterable[str], *texts: str) -> None:
    """None of ``secrets`` (nor the secret half of an API key) appears in any of ``texts``."""
    needles: set[str] = set()
    for secret in secrets:
        if secret:
            needles.add(secret)
            if secret.startswith("key_") and "." in secret:
                needles.add(secret.split(".", 1)[1])
    for text in texts:
        for needle in needles:
            assert needle not in text, f"a credential leaked into: {text[:200]!r}"


def error_texts(error: BaseException) -> list[str]:
    return [str(error), repr(error), str(error.__cause__), str(error.__context__)]


def client_texts(client: R2RClient) -> list[str]:
    """What a dump of the client shows (everything reachable from it)."""
    return [repr(client), str(client), reachable_reprs(client)]


def current_token(recorder: Recorder) -> str:
    """The JWT the client sent last (seen on the wire by the recorder's hook)."""
    assert recorder.bearer_tokens, "the client should be logged in by now"
    return recorder.bearer_tokens[-1]


@pytest.fixture(scope="module")
def admin(stack: dict[str, str]) -> dict[str, str]:
    """Bearer headers of the superuser for setup/cleanup (an API key costs a bcrypt per call)."""
    response = httpx.post(
        f"{stack['R2R_BASE_URL']}/v3/users/login",
        data={"username": stack["R2R_ADMIN_EMAIL"], "password": stack["R2R_ADMIN_PASSWORD"]},
        timeout=60,
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['results']['access_token']['token']}"}


def delete_collection(stack: dict[str, str], admin: dict[str, str], collection_id: UUID) -> None:
    response = httpx.delete(
        f"{stack['R2R_BASE_URL']}/v3/collections/{collection_id}", headers=admin, timeout=60
    )
    if response.status_code not in (200, 404):
        log.warning("cleanup of collection %s failed: %s", collection_id, response.text[:200])


class EmbeddingOutage:
    """Switches the shared embedding stub to failing and KEEPS it failing until :meth:`end`.

    Other test runs share the stub and reset it in their teardown; a keeper thread re-applies
    the outage every 0.2 s so a foreign reset cannot end ours early.
    """

    def __init__(self, control: Callable[..., dict]) -> None:
        self._control = control
        self._stop = threading.Event()
        self._keeper = threading.Thread(target=self._keep, daemon=True)

    def _keep(self) -> None:
        while not self._stop.wait(0.2):
            try:
                self._control(fail_embeddings=True)
            except httpx.HTTPError as exc:
                log.warning("could not re-apply the embedding outage: %s", exc)

    def start(self) -> EmbeddingOutage:
        self._control(fail_embeddings=True)
        self._keeper.start()
        return self

    def __enter__(self) -> EmbeddingOutage:
        return self.start()

    def end(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self._keeper.join(timeout=10)
        self._control(fail_embeddings=False)

    def __exit__(self, *exc_info: object) -> None:
        self.end()


@dataclass
class TempUser:
    id: str
    email: str
    password: str


@pytest.fixture
def temp_user(stack: dict[str, str], admin: dict[str, str]) -> Iterator[TempUser]:
    """A fresh verified NON-superuser (R2R rate-limits only those); deleted afterwards."""
    email = f"ratelimit-{uuid.uuid4().hex[:12]}@example.com"
    password = f"pw-{uuid.uuid4().hex}"
    response = httpx.post(
        f"{stack['R2R_BASE_URL']}/v3/users",
        json={"email": email, "password": password, "is_verified": True},
        headers=admin,
        timeout=60,
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert results["is_superuser"] is False
    user = TempUser(id=results["id"], email=email, password=password)
    yield user
    # As superuser: no password needed, and superusers are never rate-limited.
    deleted = httpx.request(
        "DELETE",
        f"{stack['R2R_BASE_URL']}/v3/users/{user.id}",
        json={},
        headers=admin,
        timeout=60,
    )
    if deleted.status_code != 200:
        log.warning("could not delete temporary user %s: %s", email, deleted.text[:200])


# ------------------------------------------------------------------------------- outages


def test_embedding_outage_is_retried_until_the_budget_is_spent(
    stack: dict[str, str], embed_stub: Callable[..., dict], tenant_id: str, debug_logs: Any
) -> None:
    """A real embedding outage: every create attempt fails; the client retries, then gives up.

    R2R's embedding SDK retries internally, so one failing attempt takes ~5 s. backoff checks
    the budget when an attempt *fails* against the time it *started*: attempts are started
    while the budget lasts, plus the one that finds it spent.
    """
    budget = 2.0
    recorder = Recorder()
    document_id = r2r_document_id(tenant_id, "outage-exhausted")
    with R2RClient(
        stack["R2R_BASE_URL"],
        stack["R2R_API_KEY"],
        retry_max_time=budget,
        event_hooks=recorder.hooks(),
    ) as r2r:
        with EmbeddingOutage(embed_stub), pytest.raises(R2RRetryableError) as info:
            started = time.monotonic()
            r2r.create_document(
                document_id=document_id,
                raw_text="Text written during an embedding outage.",
                metadata={},
                collection_ids=[],
            )
        elapsed = time.monotonic() - started
        try:
            attempts = [at - started for at in recorder.sent("POST /v3/documents")]
            assert len(attempts) >= 2, attempts  # it really retried
            assert all(at < budget for at in attempts[:-1]), attempts
            assert elapsed < 60, elapsed
            error = info.value
            assert error.status_code in (400, 500)
            assert "error getting embeddings" in error.message.lower()
            assert error.document_id == str(document_id)
            assert r2r.get_document(document_id).ingestion_status == "failed"
        finally:
            r2r.delete_document(document_id)
    assert_secret_free(
        [stack["R2R_API_KEY"]], *error_texts(info.value), debug_logs.text, *client_texts(r2r)
    )


def test_embedding_outage_that_ends_during_the_retry_window_succeeds(
    stack: dict[str, str], embed_stub: Callable[..., dict], tenant_id: str
) -> None:
    recorder = Recorder()
    outage_seen = threading.Event()

    def on_response(response: httpx.Response) -> None:
        if response.request.url.path == "/v3/documents" and response.status_code >= 400:
            outage_seen.set()

    hooks = recorder.hooks()
    hooks["response"].append(on_response)

    outage = EmbeddingOutage(embed_stub)

    def end_outage() -> None:  # a timer thread: ends the outage once the client has hit it
        if outage_seen.wait(timeout=90):
            time.sleep(0.2)
        outage.end()

    document_id = r2r_document_id(tenant_id, "outage-recovered")
    with R2RClient(
        stack["R2R_BASE_URL"], stack["R2R_API_KEY"], retry_max_time=40, event_hooks=hooks
    ) as r2r:
        outage.start()
        switch = threading.Thread(target=end_outage, daemon=True)
        switch.start()
        try:
            returned = r2r.create_document(
                document_id=document_id,
                chunks=["Chunk written while the embedding provider recovers."],
                metadata={"v": 1},
                collection_ids=[],
            )
            switch.join(timeout=70)
            assert returned == document_id
            statuses = [status for line, status, _ in recorder.responses if "documents" in line]
            assert statuses[0] >= 400  # the first attempt really met the outage
            assert statuses[-1] < 300
            assert len(recorder.sent("POST /v3/documents")) >= 2
            document = r2r.get_document(document_id)
            assert document.ingestion_status == "success"
            assert [c.text for c in r2r.list_document_chunks(document_id)] == [
                "Chunk written while the embedding provider recovers."
            ]
        finally:
            outage_seen.set()
            switch.join(timeout=30)
            outage.end()
            r2r.delete_document(document_id)


# ------------------------------------------------------------------------------- 429


def test_real_rate_limit_429_is_retryable_and_retried_within_the_budget(
    stack: dict[str, str], admin: dict[str, str], temp_user: TempUser, debug_logs: Any
) -> None:
    """R2R limits non-superusers to ~20 POST/DELETE per minute per route (then 429).

    R2R 3.6.6 answers ``{"detail": "Per-route per-minute rate limit exceeded"}`` WITHOUT a
    ``Retry-After`` header (its HTTPException carries none); should a later version send one,
    the second half asserts the client waits for it.
    """
    created: list[UUID] = []
    first = Recorder()
    errors: list[BaseException] = []
    tokens: list[str] = []
    try:
        with R2RClient(
            stack["R2R_BASE_URL"],
            email=temp_user.email,
            password=temp_user.password,
            event_hooks=first.hooks(),
        ) as r2r:
            limited: R2RRetryableError | None = None
            for i in range(40):
                before = len(first.sent("POST /v3/collections"))
                try:
                    created.append(
                        r2r.create_collection(f"rl-{i}-{uuid.uuid4().hex[:8]}", retry=False).id
                    )
                except R2RRetryableError as exc:
                    limited = exc
                    assert len(first.sent("POST /v3/collections")) == before + 1  # no retry
                    break
            tokens.append(current_token(first))
            assert limited is not None, "R2R never answered 429"
            errors.append(limited)
            assert limited.status_code == 429
            assert "rate limit" in limited.message.lower()
            assert 15 <= len(created) <= 30, len(created)  # route_per_min=20 (> 20 -> 429)
            statuses = [s for line, s, _ in first.responses if line == "POST /v3/collections"]
            assert statuses[-1] == 429
            retry_after_header = next(h for _, s, h in first.responses if s == 429)
            print(
                f"\nR2R 429 after {len(created)} POSTs; Retry-After header: {retry_after_header!r}"
            )

        budget = 2.0
        second = Recorder()
        with R2RClient(
            stack["R2R_BASE_URL"],
            email=temp_user.email,
            password=temp_user.password,
            retry_max_time=budget,
            retry_max_tries=50,
            event_hooks=second.hooks(),
        ) as r2r:
            started = time.monotonic()
            with pytest.raises(R2RRetryableError) as info:
                r2r.create_collection(f"rl-retry-{uuid.uuid4().hex[:8]}")
            elapsed = time.monotonic() - started
            tokens.append(current_token(second))
        errors.append(info.value)
        attempts = second.sent("POST /v3/collections")
        assert len(attempts) > 1, "the 429 must be retried"
        assert info.value.status_code == 429
        assert budget * 0.9 <= elapsed < budget + 4, elapsed
        if retry_after_header is None:
            assert info.value.retry_after is None
        else:  # honoured: every gap is at least Retry-After (or what was left of the budget)
            retry_after = float(retry_after_header)
            assert info.value.retry_after == pytest.approx(retry_after)
            first_gap = attempts[1] - attempts[0]
            assert first_gap >= min(retry_after, budget) * 0.8, first_gap
    finally:
        for collection_id in created:
            delete_collection(stack, admin, collection_id)
    secrets = [stack["R2R_API_KEY"], temp_user.password, *tokens]
    texts = [t for e in errors for t in error_texts(e)]
    assert_secret_free(secrets, *texts, debug_logs.text)


# ------------------------------------------------------------------------------- 401


def test_wrong_api_key_is_an_auth_error_naming_the_server_not_the_key(
    stack: dict[str, str], debug_logs: Any
) -> None:
    wrong_key = "key_WRONGpublic.wrong-secret-" + uuid.uuid4().hex
    recorder = Recorder()
    with R2RClient(stack["R2R_BASE_URL"], wrong_key, event_hooks=recorder.hooks()) as bad:
        with pytest.raises(R2RAuthError) as info:
            bad.list_documents([uuid.uuid4()])
        texts = client_texts(bad)
    assert len(recorder.requests) == 1  # auth errors are not retried
    error = info.value
    assert error.status_code == 401
    assert "rejected the API key" in str(error)
    assert stack["R2R_BASE_URL"] in str(error)
    assert_secret_free([wrong_key, stack["R2R_API_KEY"]], *error_texts(error), *texts)
    assert_secret_free([wrong_key], debug_logs.text)


def test_wrong_login_password_is_an_auth_error_without_the_password(
    stack: dict[str, str], debug_logs: Any
) -> None:
    wrong_password = "wrong-" + uuid.uuid4().hex
    recorder = Recorder()
    with R2RClient(
        stack["R2R_BASE_URL"],
        email=stack["R2R_ADMIN_EMAIL"],
        password=wrong_password,
        event_hooks=recorder.hooks(),
    ) as bad:
        with pytest.raises(R2RAuthError) as info:
            bad.get_document(uuid.uuid4())
        texts = client_texts(bad)
    assert recorder.paths() == ["POST /v3/users/login"]  # no retry, no request without a token
    assert recorder.bearer_tokens == []  # no token was ever sent
    error = info.value
    assert error.status_code == 401
    assert error.operation == "login"
    assert "rejected the login" in str(error)
    assert stack["R2R_BASE_URL"] in str(error)
    assert stack["R2R_ADMIN_EMAIL"] in str(error)
    assert_secret_free(
        [wrong_password, stack["R2R_ADMIN_PASSWORD"]], *error_texts(error), *texts, debug_logs.text
    )


@pytest.mark.parametrize("how", ["garbage", "revoked"])
def test_invalid_bearer_token_is_renewed_once_transparently(
    stack: dict[str, str], debug_logs: Any, how: str
) -> None:
    recorder = Recorder()
    with R2RClient(
        stack["R2R_BASE_URL"],
        email=stack["R2R_ADMIN_EMAIL"],
        password=stack["R2R_ADMIN_PASSWORD"],
        event_hooks=recorder.hooks(),
    ) as r2r:
        r2r.list_documents([uuid.uuid4()])
        old_token = current_token(recorder)
        if how == "garbage":  # the next request carries a token R2R cannot decode
            recorder.garble_next_token()
        else:  # a real token that R2R no longer accepts: logged out (blacklisted)
            httpx.post(
                f"{stack['R2R_BASE_URL']}/v3/users/logout",
                headers={"Authorization": f"Bearer {old_token}"},
                timeout=30,
            ).raise_for_status()
        recorder.requests.clear()
        recorder.responses.clear()

        assert r2r.list_documents([uuid.uuid4()]) == []

        assert recorder.paths() == [
            "GET /v3/documents",
            "POST /v3/users/login",
            "GET /v3/documents",
        ]
        assert [status for _, status, _ in recorder.responses] == [401, 200, 200]
        new_token = current_token(recorder)
        assert new_token != old_token
        recorder.requests.clear()
        r2r.list_documents([uuid.uuid4()])
        assert recorder.paths() == ["GET /v3/documents"]  # the renewed token is reused
        texts = client_texts(r2r)
    assert_secret_free([stack["R2R_ADMIN_PASSWORD"], old_token, new_token], *texts, debug_logs.text)


# ------------------------------------------------------------------------------- login mode


def test_login_mode_round_trip_without_leaking_credentials(
    stack: dict[str, str], admin: dict[str, str], tenant_id: str, debug_logs: Any
) -> None:
    recorder = Recorder()
    errors: list[BaseException] = []
    with R2RClient(
        stack["R2R_BASE_URL"],
        email=stack["R2R_ADMIN_EMAIL"],
        password=stack["R2R_ADMIN_PASSWORD"],
        event_hooks=recorder.hooks(),
    ) as r2r:
        assert r2r.health() is None
        assert r2r.check_settings() is None  # superuser-only: the login is the admin's
        collection = r2r.ensure_collection(f"{tenant_id}-login")
        document_id = r2r_document_id(tenant_id, "login-doc")
        try:
            assert (
                r2r.create_document(
                    document_id=document_id,
                    chunks=["pangolins roll into a ball", "their scales are keratin"],
                    metadata={"title": "Pangolins", "via": "login"},
                    collection_ids=[collection.id],
                )
                == document_id
            )
            hits = r2r.search("pangolins roll", collection_ids=[collection.id], limit=5)
            assert {h.document_id for h in hits} == {document_id}
            assert hits[0].text == "pangolins roll into a ball"
            assert hits[0].metadata["via"] == "login"
            with pytest.raises(Exception) as duplicate:
                r2r.create_document(
                    document_id=document_id, chunks=["again"], metadata={}, collection_ids=[]
                )
            errors.append(duplicate.value)
            assert r2r.delete_document(document_id) is True
            assert r2r.delete_document(document_id) is False
            assert r2r.search("pangolins roll", collection_ids=[collection.id]) == []
        finally:
            r2r.delete_document(document_id)
            delete_collection(stack, admin, collection.id)
        token = current_token(recorder)
        texts = client_texts(r2r)
    logins = [p for p in recorder.paths() if p == "POST /v3/users/login"]
    assert len(logins) == 1  # one login for the whole session
    assert not any(recorder.api_key_sent)  # login mode sends the JWT only
    assert_secret_free(
        [stack["R2R_ADMIN_PASSWORD"], token, stack["R2R_API_KEY"]],
        *texts,
        *(t for e in errors for t in error_texts(e)),
        debug_logs.text,
    )


def test_login_is_much_faster_than_the_api_key(stack: dict[str, str]) -> None:
    """R2R 3.6.6 bcrypt-checks an API key on every request; a JWT check costs milliseconds.

    Asserts that 20 sequential calls with the login are at least 5x faster than 20 with the
    API key (idle stack: ~0.3 s vs ~9 s). The stack is shared with other test runs whose
    requests queue in R2R's single event loop and add the same wait to BOTH modes, which
    shrinks the ratio without changing the API key's surcharge. So: up to three rounds, one
    at >= 5x passes. If none does and the server was busy (a JWT-authenticated call's median
    above 50 ms; idle it is ~15 ms), the test judges the load-independent part instead: every
    API-key call costs at least 0.25 s more than a login call (the bcrypt check, ~0.45 s).
    """
    calls = 20
    rounds: list[tuple[float, float]] = []
    login_all: list[float] = []
    key_all: list[float] = []

    def timed(client: R2RClient, into: list[float]) -> float:
        latencies = []
        for _ in range(calls):
            started = time.monotonic()
            client.list_documents([uuid.uuid4()])
            latencies.append(time.monotonic() - started)
        into.extend(latencies)
        return sum(latencies)

    with (
        R2RClient(stack["R2R_BASE_URL"], stack["R2R_API_KEY"]) as by_key,
        R2RClient(
            stack["R2R_BASE_URL"],
            email=stack["R2R_ADMIN_EMAIL"],
            password=stack["R2R_ADMIN_PASSWORD"],
        ) as by_login,
    ):
        by_key.list_documents([uuid.uuid4()])  # warm up: connections and the login
        by_login.list_documents([uuid.uuid4()])
        for _ in range(3):
            key_seconds, login_seconds = timed(by_key, key_all), timed(by_login, login_all)
            rounds.append((key_seconds, login_seconds))
            print(
                f"\n{calls} sequential calls: api key {key_seconds:.2f}s, "
                f"login {login_seconds:.2f}s ({key_seconds / max(login_seconds, 1e-6):.1f}x)"
            )
            if login_seconds * 5 <= key_seconds:
                return
            time.sleep(2)
    median_key, median_login = statistics.median(key_all), statistics.median(login_all)
    busy = median_login > 0.05
    print(
        f"\nno round reached 5x; per call: api key median {median_key:.3f}s (fastest "
        f"{min(key_all):.3f}s), login median {median_login:.3f}s (fastest {min(login_all):.3f}s)"
        f"; server {'busy' if busy else 'IDLE'}"
    )
    assert busy, f"login is not 5x faster on an idle server: {rounds}"
    assert median_key - median_login >= 0.25, (median_key, median_login, rounds)
