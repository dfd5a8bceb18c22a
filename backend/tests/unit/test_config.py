"""config: environment parsing, secrets that never print, overrides (pure)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from onyx.r2r_sender.config import (
    DEFAULT_BROKER_URL,
    DEFAULT_DATABASE_URL,
    MIRROR_QUEUE,
    BridgeSettings,
    R2RCredentials,
    Secret,
)

API_KEY = "sk-very-secret-api-key-123"
PASSWORD = "hunter2-secret-password"
DB_URL = "postgresql+psycopg2://bridge:db-secret-pw@db.internal:5432/ledger"
BROKER_URL = "redis://:redis-secret-pw@redis.internal:6379/3"

ENV_NAMES = [
    "R2R_BASE_URL",
    "R2R_API_KEY",
    "R2R_API_KEY_FILE",
    "R2R_EMAIL",
    "R2R_PASSWORD",
    "ONYX_R2R_DATABASE_URL",
    "ONYX_R2R_BROKER_URL",
    "ONYX_R2R_QUEUE",
    "ONYX_R2R_CLAIM_BATCH",
    "ONYX_R2R_DRAIN_SLICE_SECONDS",
    "ONYX_R2R_SWEEP_INTERVAL_SECONDS",
    "ONYX_R2R_RETRY_BASE_SECONDS",
    "ONYX_R2R_RETRY_CAP_SECONDS",
    "ONYX_R2R_MAX_ATTEMPTS",
    "ONYX_R2R_BREAKER_THRESHOLD",
    "ONYX_R2R_BREAKER_COOLDOWN_SECONDS",
    "ONYX_R2R_CLIENT_RETRY_MAX_TIME",
    "ONYX_R2R_CHUNKING",
    "ONYX_R2R_CHUNK_SIZE",
    "ONYX_R2R_CHUNK_OVERLAP",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


def _full_env(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {
        "R2R_BASE_URL": "http://r2r.internal:7272",
        "R2R_API_KEY": API_KEY,
        "R2R_EMAIL": "bridge@example.com",
        "R2R_PASSWORD": PASSWORD,
        "ONYX_R2R_DATABASE_URL": DB_URL,
        "ONYX_R2R_BROKER_URL": BROKER_URL,
        "ONYX_R2R_QUEUE": "q1",
        "ONYX_R2R_CLAIM_BATCH": "9",
        "ONYX_R2R_DRAIN_SLICE_SECONDS": "2.5",
        "ONYX_R2R_SWEEP_INTERVAL_SECONDS": "7",
        "ONYX_R2R_RETRY_BASE_SECONDS": "0.25",
        "ONYX_R2R_RETRY_CAP_SECONDS": "60",
        "ONYX_R2R_MAX_ATTEMPTS": "4",
        "ONYX_R2R_BREAKER_THRESHOLD": "3",
        "ONYX_R2R_BREAKER_COOLDOWN_SECONDS": "1.5",
        "ONYX_R2R_CLIENT_RETRY_MAX_TIME": "12",
        "ONYX_R2R_CHUNKING": " Server ",
        "ONYX_R2R_CHUNK_SIZE": "800",
        "ONYX_R2R_CHUNK_OVERLAP": "0",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def test_defaults_without_environment() -> None:
    settings = BridgeSettings.from_env()
    assert settings == BridgeSettings()
    assert settings.r2r_base_url == "http://127.0.0.1:7272"
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.broker_url == DEFAULT_BROKER_URL
    assert settings.queue == MIRROR_QUEUE
    assert not settings.r2r_api_key
    assert not settings.credentials.uses_login


def test_from_env_reads_every_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    _full_env(monkeypatch)
    s = BridgeSettings.from_env()
    assert s.r2r_base_url == "http://r2r.internal:7272"
    assert s.r2r_api_key.get() == API_KEY
    assert s.r2r_email == "bridge@example.com"
    assert s.r2r_password.get() == PASSWORD
    assert s.database_url == DB_URL
    assert s.broker_url == BROKER_URL
    assert s.queue == "q1"
    assert s.claim_batch == 9
    assert s.drain_slice_seconds == 2.5
    assert s.sweep_interval_seconds == 7.0
    assert s.retry_base_seconds == 0.25
    assert s.retry_cap_seconds == 60.0
    assert s.max_attempts == 4
    assert s.breaker_threshold == 3
    assert s.breaker_cooldown_seconds == 1.5
    assert s.client_retry_max_time == 12.0
    assert (s.chunking, s.chunk_size, s.chunk_overlap) == ("server", 800, 0)
    creds = s.credentials
    assert creds == R2RCredentials(
        base_url="http://r2r.internal:7272",
        api_key=Secret(API_KEY),
        email="bridge@example.com",
        password=Secret(PASSWORD),
    )
    assert creds.uses_login


def test_empty_variables_mean_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONYX_R2R_CLAIM_BATCH", "")
    monkeypatch.setenv("ONYX_R2R_RETRY_BASE_SECONDS", "")
    s = BridgeSettings.from_env()
    assert s.claim_batch == BridgeSettings.claim_batch
    assert s.retry_base_seconds == BridgeSettings.retry_base_seconds


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("ONYX_R2R_CLAIM_BATCH", "four", "ONYX_R2R_CLAIM_BATCH must be an integer, got 'four'"),
        ("ONYX_R2R_MAX_ATTEMPTS", "2.5", "ONYX_R2R_MAX_ATTEMPTS must be an integer"),
        ("ONYX_R2R_RETRY_BASE_SECONDS", "soon", "ONYX_R2R_RETRY_BASE_SECONDS must be a number"),
        ("ONYX_R2R_BREAKER_COOLDOWN_SECONDS", "1s", "must be a number, got '1s'"),
    ],
)
def test_bad_numbers_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match="must be") as info:
        BridgeSettings.from_env()
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        (
            {"ONYX_R2R_CHUNKING": "r2r"},
            "ONYX_R2R_CHUNKING must be one of bridge, server, got 'r2r'",
        ),
        ({"ONYX_R2R_CHUNK_SIZE": "0"}, "ONYX_R2R_CHUNK_SIZE"),
        ({"ONYX_R2R_CHUNK_SIZE": "100", "ONYX_R2R_CHUNK_OVERLAP": "100"}, "got 100 and 100"),
        ({"ONYX_R2R_CHUNK_OVERLAP": "-1"}, "ONYX_R2R_CHUNK_OVERLAP"),
    ],
)
def test_bad_chunking_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], fragment: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError) as info:
        BridgeSettings.from_env()
    assert fragment in str(info.value).replace("(", "").replace(")", "")
    with pytest.raises(ValueError):
        BridgeSettings().with_overrides(chunking="r2r")


def test_api_key_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(f"  {API_KEY}\n")
    monkeypatch.setenv("R2R_API_KEY_FILE", str(key_file))
    assert BridgeSettings.from_env().r2r_api_key.get() == API_KEY
    # R2R_API_KEY wins over the file
    monkeypatch.setenv("R2R_API_KEY", "direct")
    assert BridgeSettings.from_env().r2r_api_key.get() == "direct"


def test_from_env_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    _full_env(monkeypatch)
    s = BridgeSettings.from_env(queue="other", r2r_api_key="override-key")
    assert s.queue == "other"
    assert isinstance(s.r2r_api_key, Secret)
    assert s.r2r_api_key.get() == "override-key"
    assert s.claim_batch == 9  # the environment still applies


def test_secrets_never_in_repr_or_str(monkeypatch: pytest.MonkeyPatch) -> None:
    _full_env(monkeypatch)
    s = BridgeSettings.from_env()
    for text in (
        repr(s),
        str(s),
        repr(s.credentials),
        str(s.credentials),
        repr(s.r2r_api_key),
        str(s.r2r_password),
        f"{s}",
        f"{s.r2r_api_key}",
        repr(dataclasses.replace(s, queue="x")),
        repr([s, s.credentials]),
    ):
        for secret in (API_KEY, PASSWORD, "db-secret-pw", "redis-secret-pw"):
            assert secret not in text, text
    assert "***" in repr(s.r2r_api_key)


def test_secret_behaviour() -> None:
    secret = Secret("abc")
    assert secret.get() == "abc"
    assert bool(secret) and not bool(Secret(""))
    assert secret == Secret("abc") and secret != Secret("abd") and secret != "abc"
    assert hash(secret) == hash(Secret("abc"))
    assert repr(secret) == str(secret) == "Secret('***')"


def test_with_overrides() -> None:
    base = BridgeSettings()
    changed = base.with_overrides(queue="q2", claim_batch=2, r2r_password="pw")
    assert (changed.queue, changed.claim_batch) == ("q2", 2)
    assert isinstance(changed.r2r_password, Secret) and changed.r2r_password.get() == "pw"
    assert base.queue == MIRROR_QUEUE and base.claim_batch == 4  # immutable original
    assert base.with_overrides() == base
    already = Secret("k")
    assert base.with_overrides(r2r_api_key=already).r2r_api_key is already


def test_with_overrides_rejects_unknown_fields() -> None:
    with pytest.raises(TypeError, match="unknown BridgeSettings fields: \\['bogus', 'qeueu'\\]"):
        BridgeSettings().with_overrides(qeueu="x", bogus=1)


def test_settings_are_frozen_and_hashable_credentials() -> None:
    s = BridgeSettings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.queue = "x"  # type: ignore[misc]
    a = BridgeSettings(r2r_api_key=Secret("k")).credentials
    b = BridgeSettings(r2r_api_key=Secret("k")).credentials
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != BridgeSettings(r2r_api_key=Secret("other")).credentials


def test_uses_login_needs_email_and_password() -> None:
    assert not R2RCredentials("http://x", email="a@b.c").uses_login
    assert not R2RCredentials("http://x", password=Secret("p")).uses_login
    assert R2RCredentials("http://x", email="a@b.c", password=Secret("p")).uses_login


def test_to_env_round_trips_through_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A child process started with ``to_env()`` runs on exactly the parent's settings."""
    _full_env(monkeypatch)
    original = BridgeSettings.from_env().with_overrides(chunk_size=700, chunk_overlap=70)
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    for name, value in original.to_env().items():
        monkeypatch.setenv(name, value)
    assert BridgeSettings.from_env() == original
    assert set(original.to_env()) <= set(ENV_NAMES)
