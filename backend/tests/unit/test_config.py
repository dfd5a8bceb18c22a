"""config: the settings registry, environment parsing, checks, secrets that never print."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from onyx.r2r_sender.config import (
    DEFAULT_BROKER_URL,
    DEFAULT_DATABASE_URL,
    MIRROR_QUEUE,
    SETTINGS,
    BridgeSettings,
    R2RCredentials,
    Secret,
    Setting,
    SettingsError,
)

API_KEY = "sk-very-secret-api-key-123"
PASSWORD = "hunter2-secret-password"
DB_URL = "postgresql+psycopg2://bridge:db-secret-pw@db.internal:5432/ledger"
BROKER_URL = "redis://:redis-secret-pw@redis.internal:6379/3"
SECRET_TEXTS = (API_KEY, PASSWORD, "db-secret-pw", "redis-secret-pw")

ENV_NAMES = sorted(
    {s.variable for s in SETTINGS} | {s.file_variable for s in SETTINGS if s.file_variable}
)

# Every field's variable and default as they were before the registry: operators' .env
# files and the deployment depend on them, so they never change.
GOLDEN: dict[str, tuple[str, Any]] = {
    "r2r_base_url": ("R2R_BASE_URL", "http://127.0.0.1:7272"),
    "r2r_api_key": ("R2R_API_KEY", Secret("")),
    "r2r_email": ("R2R_EMAIL", ""),
    "r2r_password": ("R2R_PASSWORD", Secret("")),
    "database_url": ("ONYX_R2R_DATABASE_URL", DEFAULT_DATABASE_URL),
    "broker_url": ("ONYX_R2R_BROKER_URL", DEFAULT_BROKER_URL),
    "queue": ("ONYX_R2R_QUEUE", MIRROR_QUEUE),
    "claim_batch": ("ONYX_R2R_CLAIM_BATCH", 4),
    "drain_slice_seconds": ("ONYX_R2R_DRAIN_SLICE_SECONDS", 20.0),
    "task_expires_seconds": ("ONYX_R2R_TASK_EXPIRES_SECONDS", 3600.0),
    "sweep_interval_seconds": ("ONYX_R2R_SWEEP_INTERVAL_SECONDS", 15.0),
    "heavy_chunks": ("ONYX_R2R_HEAVY_CHUNKS", 256),
    "heavy_principals": ("ONYX_R2R_HEAVY_PRINCIPALS", 1000),
    "heavy_yield_seconds": ("ONYX_R2R_HEAVY_YIELD_SECONDS", 10.0),
    "retry_base_seconds": ("ONYX_R2R_RETRY_BASE_SECONDS", 2.0),
    "retry_cap_seconds": ("ONYX_R2R_RETRY_CAP_SECONDS", 300.0),
    "max_attempts": ("ONYX_R2R_MAX_ATTEMPTS", 25),
    "busy_retry_seconds": ("ONYX_R2R_BUSY_RETRY_SECONDS", 5.0),
    "stuck_ingestion_seconds": ("ONYX_R2R_STUCK_INGESTION_SECONDS", 900.0),
    "breaker_threshold": ("ONYX_R2R_BREAKER_THRESHOLD", 5),
    "breaker_cooldown_seconds": ("ONYX_R2R_BREAKER_COOLDOWN_SECONDS", 15.0),
    "breaker_max_cooldown_seconds": ("ONYX_R2R_BREAKER_MAX_COOLDOWN_SECONDS", 300.0),
    "breaker_probe_seconds": ("ONYX_R2R_BREAKER_PROBE_SECONDS", 5.0),
    "connect_timeout": ("ONYX_R2R_CONNECT_TIMEOUT", 3.0),
    "read_timeout": ("ONYX_R2R_READ_TIMEOUT", 30.0),
    "client_retry_max_time": ("ONYX_R2R_CLIENT_RETRY_MAX_TIME", 20.0),
    "max_text_bytes": ("ONYX_R2R_MAX_TEXT_BYTES", 20 * 1024 * 1024),
    "max_acl_entries": ("ONYX_R2R_MAX_ACL_ENTRIES", 10_000),
    "max_metadata_bytes": ("ONYX_R2R_MAX_METADATA_BYTES", 256 * 1024),
    "metrics_port": ("ONYX_R2R_METRICS_PORT", 0),
    "metrics_address": ("ONYX_R2R_METRICS_ADDRESS", "127.0.0.1"),
    "chunking": ("ONYX_R2R_CHUNKING", "bridge"),
    "chunk_size": ("ONYX_R2R_CHUNK_SIZE", 1024),
    "chunk_overlap": ("ONYX_R2R_CHUNK_OVERLAP", 256),
}

# A valid value different from the default for every field (awkward floats on purpose).
NON_DEFAULT: dict[str, Any] = {
    "r2r_base_url": "http://r2r.internal:7272",
    "r2r_api_key": Secret(API_KEY),
    "r2r_email": "bridge@example.com",
    "r2r_password": Secret(PASSWORD),
    "database_url": DB_URL,
    "broker_url": BROKER_URL,
    "queue": "q1",
    "claim_batch": 9,
    "drain_slice_seconds": 2.5,
    "task_expires_seconds": 0.1,
    "sweep_interval_seconds": 7.0,
    "heavy_chunks": 64,
    "heavy_principals": 300,
    "heavy_yield_seconds": 2.5,
    "retry_base_seconds": 0.25,
    "retry_cap_seconds": 60.0,
    "max_attempts": 4,
    "busy_retry_seconds": 1e-3,
    "stuck_ingestion_seconds": 123456.789,
    "breaker_threshold": 3,
    "breaker_cooldown_seconds": 1.5,
    "breaker_max_cooldown_seconds": 5.0,
    "breaker_probe_seconds": 2.5,
    "connect_timeout": 0.3,
    "read_timeout": 45.0,
    "client_retry_max_time": 12.0,
    "max_text_bytes": 1_048_577,
    "max_acl_entries": 17,
    "max_metadata_bytes": 4096,
    "metrics_port": 9464,
    "metrics_address": "0.0.0.0",
    "chunking": "server",
    "chunk_size": 800,
    "chunk_overlap": 0,
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


def _set_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def _full_env(monkeypatch: pytest.MonkeyPatch) -> None:
    _set_env(
        monkeypatch,
        {
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
        },
    )


# ------------------------------------------------------------------ the registry
def test_registry_has_one_entry_per_field_in_field_order() -> None:
    """A new BridgeSettings field without a registry entry (or the reverse) fails here."""
    assert [s.name for s in SETTINGS] == [f.name for f in dataclasses.fields(BridgeSettings)]
    assert all(isinstance(s, Setting) for s in SETTINGS)


def test_variables_and_defaults_are_unchanged() -> None:
    assert set(GOLDEN) == {f.name for f in dataclasses.fields(BridgeSettings)}
    defaults = BridgeSettings()
    for setting in SETTINGS:
        variable, default = GOLDEN[setting.name]
        assert setting.variable == variable
        assert getattr(defaults, setting.name) == default, setting.name
    assert [s.file_variable for s in SETTINGS if s.file_variable] == [
        "R2R_API_KEY_FILE",
        "R2R_PASSWORD_FILE",
    ]


def test_variable_names_follow_the_pattern_and_are_unique() -> None:
    for setting in SETTINGS:
        expected = (
            setting.name.upper()
            if setting.name.startswith("r2r_")
            else f"ONYX_R2R_{setting.name.upper()}"
        )
        assert setting.variable == expected
    assert len(set(ENV_NAMES)) == len(SETTINGS) + 2  # + the two *_FILE variables


def test_every_entry_has_a_one_line_doc() -> None:
    for setting in SETTINGS:
        assert setting.doc.strip() and "\n" not in setting.doc, setting.name
        assert setting.doc[0].isupper() and setting.doc.endswith("."), setting.name


def test_secret_entries_never_print_their_values() -> None:
    """A secret setting is a Secret, or a string kept out of the repr (URLs)."""
    repr_of = {f.name: f.repr for f in dataclasses.fields(BridgeSettings)}
    defaults = BridgeSettings()
    secret = {s.name for s in SETTINGS if s.secret}
    assert secret == {"r2r_api_key", "r2r_password", "database_url", "broker_url"}
    for name in secret:
        assert isinstance(getattr(defaults, name), Secret) or not repr_of[name], name


# ------------------------------------------------------------------ from_env
def test_defaults_without_environment() -> None:
    settings = BridgeSettings.from_env()
    assert settings == BridgeSettings()
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


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.variable)
def test_every_field_is_settable_from_its_variable(
    monkeypatch: pytest.MonkeyPatch, setting: Setting
) -> None:
    """Only this variable set: only its field differs from the default."""
    value = NON_DEFAULT[setting.name]
    monkeypatch.setenv(setting.variable, setting.render(value))
    assert BridgeSettings.from_env() == BridgeSettings(**{setting.name: value})


@pytest.mark.parametrize(
    ("variable", "field", "value"),
    [
        ("ONYX_R2R_READ_TIMEOUT", "read_timeout", 45.0),
        ("ONYX_R2R_CONNECT_TIMEOUT", "connect_timeout", 0.5),
        ("ONYX_R2R_BREAKER_MAX_COOLDOWN_SECONDS", "breaker_max_cooldown_seconds", 5.0),
        ("ONYX_R2R_BUSY_RETRY_SECONDS", "busy_retry_seconds", 0.0),
        ("ONYX_R2R_STUCK_INGESTION_SECONDS", "stuck_ingestion_seconds", 60.0),
        ("ONYX_R2R_MAX_TEXT_BYTES", "max_text_bytes", 1000),
        ("ONYX_R2R_MAX_ACL_ENTRIES", "max_acl_entries", 3),
        ("ONYX_R2R_MAX_METADATA_BYTES", "max_metadata_bytes", 400),
        ("ONYX_R2R_TASK_EXPIRES_SECONDS", "task_expires_seconds", 60.0),
    ],
)
def test_formerly_unsettable_fields_read_their_variables(
    monkeypatch: pytest.MonkeyPatch, variable: str, field: str, value: Any
) -> None:
    monkeypatch.setenv(variable, f" {value} ")
    assert getattr(BridgeSettings.from_env(), field) == value


def test_empty_variables_mean_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for setting in SETTINGS:
        monkeypatch.setenv(setting.variable, "" if setting.secret else "  ")
    assert BridgeSettings.from_env() == BridgeSettings()


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("ONYX_R2R_CLAIM_BATCH", "four", "ONYX_R2R_CLAIM_BATCH must be an integer, got 'four'"),
        ("ONYX_R2R_MAX_ATTEMPTS", "2.5", "ONYX_R2R_MAX_ATTEMPTS must be an integer"),
        ("ONYX_R2R_RETRY_BASE_SECONDS", "soon", "ONYX_R2R_RETRY_BASE_SECONDS must be a number"),
        ("ONYX_R2R_BREAKER_COOLDOWN_SECONDS", "1s", "must be a number, got '1s'"),
        ("ONYX_R2R_CLAIM_BATCH", "0", "ONYX_R2R_CLAIM_BATCH must be >= 1, got '0'"),
        ("ONYX_R2R_READ_TIMEOUT", "0", "ONYX_R2R_READ_TIMEOUT must be > 0, got '0'"),
        ("ONYX_R2R_BUSY_RETRY_SECONDS", "-1", "ONYX_R2R_BUSY_RETRY_SECONDS must be >= 0, got '-1'"),
        ("ONYX_R2R_CONNECT_TIMEOUT", "inf", "must be a finite number, got 'inf'"),
        ("ONYX_R2R_RETRY_CAP_SECONDS", "nan", "must be a finite number, got 'nan'"),
        ("ONYX_R2R_MAX_TEXT_BYTES", "20MiB", "ONYX_R2R_MAX_TEXT_BYTES must be an integer"),
    ],
)
def test_bad_numbers_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match="must be") as info:
        BridgeSettings.from_env()
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


# settings whose text must be a number or one of a few choices
TYPED = [
    s
    for s in SETTINGS
    if s.name == "chunking" or not isinstance(getattr(BridgeSettings(), s.name), str | Secret)
]


def test_typed_settings_are_all_but_the_strings() -> None:
    assert len(TYPED) == len(SETTINGS) - 8


@pytest.mark.parametrize("setting", TYPED, ids=lambda s: s.variable)
def test_every_typed_variable_rejects_garbage_by_name(
    monkeypatch: pytest.MonkeyPatch, setting: Setting
) -> None:
    """Every number/choice variable refuses text that is none, naming itself and the text."""
    monkeypatch.setenv(setting.variable, "not-a-value")
    with pytest.raises(SettingsError) as info:
        BridgeSettings.from_env()
    assert str(info.value).startswith(f"{setting.variable} must be ")
    assert str(info.value).endswith("got 'not-a-value'")


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
    _set_env(monkeypatch, env)
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


def test_unreadable_api_key_file_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "nope"
    monkeypatch.setenv("R2R_API_KEY_FILE", str(missing))
    with pytest.raises(SettingsError) as info:
        BridgeSettings.from_env()
    assert str(info.value) == (
        f"R2R_API_KEY_FILE: cannot read {str(missing)!r}: No such file or directory"
    )


def test_from_env_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    _full_env(monkeypatch)
    s = BridgeSettings.from_env(queue="other", r2r_api_key="override-key")
    assert s.queue == "other"
    assert isinstance(s.r2r_api_key, Secret)
    assert s.r2r_api_key.get() == "override-key"
    assert s.claim_batch == 9  # the environment still applies
    # overrides are applied before the checks: they may repair an environment value
    monkeypatch.setenv("ONYX_R2R_CHUNK_SIZE", "200")
    assert BridgeSettings.from_env(chunk_overlap=10).chunk_size == 200
    with pytest.raises(TypeError, match="unknown BridgeSettings fields: \\['qeueu'\\]"):
        BridgeSettings.from_env(qeueu="x")


# ------------------------------------------------------------------ to_env
def test_non_default_values_cover_every_field() -> None:
    assert set(NON_DEFAULT) == {f.name for f in dataclasses.fields(BridgeSettings)}
    defaults = BridgeSettings()
    for name, value in NON_DEFAULT.items():
        assert value != getattr(defaults, name), name


def test_to_env_round_trips_every_field(monkeypatch: pytest.MonkeyPatch) -> None:
    """A child process started with ``to_env()`` runs on exactly the parent's settings."""
    original = BridgeSettings(**NON_DEFAULT)
    env = original.to_env()
    assert set(env) == set(ENV_NAMES)
    _set_env(monkeypatch, env)
    rebuilt = BridgeSettings.from_env()
    assert rebuilt == original
    for name in NON_DEFAULT:  # field by field: types too (an int stays an int)
        assert type(getattr(rebuilt, name)) is type(getattr(original, name)), name


def test_to_env_of_defaults_round_trips(monkeypatch: pytest.MonkeyPatch) -> None:
    _set_env(monkeypatch, BridgeSettings().to_env())
    assert BridgeSettings.from_env() == BridgeSettings()


def test_to_env_keeps_an_empty_key_empty(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A parent's R2R_API_KEY_FILE must not hand a child the key its settings dropped."""
    key_file = tmp_path / "key"
    key_file.write_text(API_KEY)
    monkeypatch.setenv("R2R_API_KEY_FILE", str(key_file))
    parent = BridgeSettings.from_env()
    assert parent.r2r_api_key.get() == API_KEY
    child_settings = parent.with_overrides(r2r_api_key="")
    _set_env(monkeypatch, child_settings.to_env())
    assert BridgeSettings.from_env() == child_settings


# ------------------------------------------------------------------ checks on any build
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"claim_batch": 0}, "claim_batch (ONYX_R2R_CLAIM_BATCH) must be >= 1, got 0"),
        ({"claim_batch": 2.0}, "claim_batch (ONYX_R2R_CLAIM_BATCH) must be an integer, got 2.0"),
        ({"read_timeout": 0}, "read_timeout (ONYX_R2R_READ_TIMEOUT) must be > 0, got 0"),
        (
            {"retry_base_seconds": -0.5},
            "retry_base_seconds (ONYX_R2R_RETRY_BASE_SECONDS) must be >= 0, got -0.5",
        ),
        (
            {"connect_timeout": float("inf")},
            "connect_timeout (ONYX_R2R_CONNECT_TIMEOUT) must be a finite number, got inf",
        ),
        ({"queue": " "}, "queue (ONYX_R2R_QUEUE) must not be empty, got ' '"),
        (
            {"max_acl_entries": True},
            "max_acl_entries (ONYX_R2R_MAX_ACL_ENTRIES) must be an integer",
        ),
        (
            {"chunking": "r2r"},
            "chunking (ONYX_R2R_CHUNKING) must be one of bridge, server, got 'r2r'",
        ),
    ],
)
def test_invalid_values_name_field_and_variable(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError) as info:
        BridgeSettings(**overrides)
    assert str(info.value).startswith(message)
    with pytest.raises(SettingsError):
        BridgeSettings().with_overrides(**overrides)


def test_errors_never_show_a_secret_value(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError) as info:
        BridgeSettings(r2r_password=12345)  # type: ignore[arg-type]
    assert str(info.value) == (
        "r2r_password (R2R_PASSWORD) must be a string or a Secret (the value is secret and "
        "not shown)"
    )
    with pytest.raises(SettingsError) as info:
        BridgeSettings(database_url="   ")
    assert "database_url (ONYX_R2R_DATABASE_URL) must not be empty" in str(info.value)
    assert "got" not in str(info.value)
    # the registry's error path for a secret variable that does not parse
    setting = Setting(
        "pin", "ONYX_R2R_TEST_PIN", int, lambda v: None, "A secret number.", secret=True
    )
    with pytest.raises(SettingsError) as info:
        setting.read({"ONYX_R2R_TEST_PIN": PASSWORD})
    assert PASSWORD not in str(info.value)
    assert str(info.value).startswith("ONYX_R2R_TEST_PIN ")


def test_plain_strings_for_secrets_become_secrets() -> None:
    s = BridgeSettings(r2r_api_key="k", r2r_password="p")  # type: ignore[arg-type]
    assert s.r2r_api_key == Secret("k") and s.r2r_password == Secret("p")
    assert s == BridgeSettings(r2r_api_key=Secret("k"), r2r_password=Secret("p"))


# ------------------------------------------------------------------ secrets, overrides
def test_secrets_never_in_repr_or_str() -> None:
    s = BridgeSettings(**NON_DEFAULT)
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
        for secret in SECRET_TEXTS:
            assert secret not in text, text
    assert "***" in repr(s.r2r_api_key)
    assert "read_timeout=45.0" in repr(s)  # the repr still shows the rest


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
