"""credentials (the store's pure parts): inputs never print secrets, hints, plain-words test
errors, the worker's cached lookup.  The store's database side is tested in
``tests/integration/test_admin_api.py``."""

from __future__ import annotations

import pytest

from onyx.r2r_sender.config import BridgeSettings, R2RCredentials, Secret
from onyx.r2r_sender.credentials import (
    CACHE_SECONDS_ENV,
    ConnectionTestError,
    CredentialInput,
    CredentialType,
    InvalidCredentialError,
    TenantCredentialLookup,
    _plain_reason,
    secret_hint,
)
from onyx.r2r_sender.errors import (
    BridgeError,
    CredentialError,
    R2RAuthError,
    R2RConfigError,
    R2RFatalError,
    R2RNotFoundError,
    R2RRetryableError,
    SettingsError,
    classify,
)

API_KEY = "key_AbCdEfGh.sEcReT-vAlUe-0123456789"


def test_credential_type_enum() -> None:
    assert CredentialType.R2R_API.value == "r2r_api"
    assert CredentialType("r2r_api") is CredentialType.R2R_API


def test_inputs_never_print_secrets() -> None:
    given = CredentialInput(
        base_url="http://r2r:7272",
        api_key=Secret(API_KEY),
        login_email="svc@example.com",
        password=Secret("pw-123456"),
    )
    assert API_KEY not in repr(given) and "pw-123456" not in repr(given)
    creds = R2RCredentials("http://r2r:7272", Secret(API_KEY))
    assert API_KEY not in repr(creds)


def test_store_errors_are_credential_errors_of_the_engine_root() -> None:
    failed = ConnectionTestError("It failed", reason="Invalid token", status_code=401)
    assert (failed.code, failed.reason, failed.status_code, str(failed)) == (
        "connection_test_failed",
        "Invalid token",
        401,
        "It failed",
    )
    assert InvalidCredentialError("x").code == "invalid_credential"
    for cls in (ConnectionTestError, InvalidCredentialError):
        assert issubclass(cls, CredentialError) and issubclass(cls, BridgeError)


def test_secret_hint_shows_little() -> None:
    assert secret_hint(API_KEY) == "key_Ab…789"
    assert secret_hint("short-key1") == "…y1"
    assert secret_hint("abc") == "…"


def test_plain_reasons_keep_r2rs_words() -> None:
    url = "http://r2r:7272"
    auth = classify(401, "Invalid token or API key", operation="check_settings", base_url=url)
    assert isinstance(auth, R2RAuthError)
    message, reason = _plain_reason(auth, url)
    assert reason == "Invalid token or API key"
    assert "rejected the API key" in message and url in message
    down = R2RRetryableError(
        f"could not reach R2R at {url}: [Errno 111] Connection refused", operation="health"
    )
    message, _ = _plain_reason(down, url)
    assert message.startswith("Could not reach R2R at") and message.count("reach R2R") == 1
    config = R2RConfigError("[ingestion] skip_document_summary = False", operation="x")
    assert "configuration does not fit" in _plain_reason(config, url)[0]
    missing = R2RNotFoundError("Not Found", operation="health", status_code=404)
    assert "without /v3" in _plain_reason(missing, url)[0]
    other = R2RFatalError("boom", operation="health", status_code=500)
    assert "HTTP 500" in _plain_reason(other, url)[0]


class _FakeStore:
    def __init__(self, stored: dict[str, R2RCredentials]) -> None:
        self.stored = stored
        self.loads = 0

    def load(self, tenant_id: str) -> R2RCredentials | None:
        self.loads += 1
        return self.stored.get(tenant_id)


def test_lookup_falls_back_to_env_and_caches() -> None:
    env = R2RCredentials("http://env:7272", Secret("env-key-123456"))
    mine = R2RCredentials("http://mine:7272", Secret("tenant-key-123456"))
    store = _FakeStore({"t1": mine})
    lookup = TenantCredentialLookup(store, env, ttl_seconds=60)  # type: ignore[arg-type]
    assert lookup("t1") is mine
    assert lookup("t2") is env
    assert lookup("") is env
    assert lookup("t1") is mine and store.loads == 2  # cached ("" never loads)
    lookup.forget("t1")
    lookup("t1")
    assert store.loads == 3
    assert "tenant-key" not in repr(lookup)


def test_lookup_refuses_a_cache_time_that_is_not_a_number(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_SECONDS_ENV, "soon")
    with pytest.raises(SettingsError, match=f"{CACHE_SECONDS_ENV} must be a number, got 'soon'"):
        TenantCredentialLookup.from_settings(BridgeSettings())
    with pytest.raises(ValueError):  # still a ValueError for callers that catch that
        TenantCredentialLookup.from_settings(BridgeSettings())
