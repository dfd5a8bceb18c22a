"""credentials: encryption at rest, URL policy, hints and plain-words test errors (pure)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from onyx.r2r_sender.config import R2RCredentials, Secret
from onyx.r2r_sender.credentials import (
    CredentialInput,
    CredentialType,
    EncryptionKey,
    EncryptionKeyError,
    EncryptionNotConfiguredError,
    InvalidUrlError,
    Keyring,
    TenantCredentialLookup,
    UrlNotAllowedError,
    UrlPolicy,
    _plain_reason,
    blob_key_id,
    secret_hint,
    validate_base_url,
)
from onyx.r2r_sender.errors import (
    R2RAuthError,
    R2RConfigError,
    R2RFatalError,
    R2RNotFoundError,
    R2RRetryableError,
    classify,
)

KEY_A = "unit-test-key-A-0123456789abcdef"
KEY_B = "unit-test-key-B-0123456789abcdef"
API_KEY = "key_AbCdEfGh.sEcReT-vAlUe-0123456789"
COLUMN = "api_key_ciphertext"


def test_credential_type_enum() -> None:
    assert CredentialType.R2R_API.value == "r2r_api"
    assert CredentialType("r2r_api") is CredentialType.R2R_API


# ------------------------------------------------------------------ crypto
def test_seal_is_aes_gcm_with_hkdf_key_and_tenant_aad() -> None:
    keyring = Keyring(EncryptionKey(KEY_A, source="test"))
    blob = keyring.seal("tenant_1", COLUMN, API_KEY)
    assert API_KEY.encode() not in blob
    assert blob.startswith(b"R2K1")
    # decrypt independently: HKDF-SHA256 → AES-256-GCM, AAD binds tenant and column
    key = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"onyx-r2r credential encryption v1",
        info=b"onyx-r2r tenant_config aes-256-gcm",
    ).derive(KEY_A.encode())
    nonce, body = blob[12:24], blob[24:]
    aad = b"onyx-r2r/tenant_config/api_key_ciphertext/tenant_1"
    assert AESGCM(key).decrypt(nonce, body, aad).decode() == API_KEY
    assert keyring.open("tenant_1", COLUMN, blob) == API_KEY


def test_nonces_differ_per_seal() -> None:
    keyring = Keyring(EncryptionKey(KEY_A, source="test"))
    assert keyring.seal("t", COLUMN, API_KEY) != keyring.seal("t", COLUMN, API_KEY)


def test_ciphertext_moved_to_another_tenant_or_column_does_not_decrypt() -> None:
    keyring = Keyring(EncryptionKey(KEY_A, source="test"))
    blob = keyring.seal("tenant_1", COLUMN, API_KEY)
    with pytest.raises(EncryptionKeyError) as other_tenant:
        keyring.open("tenant_2", COLUMN, blob)
    with pytest.raises(EncryptionKeyError):
        keyring.open("tenant_1", "password_ciphertext", blob)
    assert API_KEY not in str(other_tenant.value)


def test_wrong_key_names_key_ids_and_the_way_out() -> None:
    blob = Keyring(EncryptionKey(KEY_A, source="A")).seal("t", COLUMN, API_KEY)
    with pytest.raises(EncryptionKeyError) as err:
        Keyring(EncryptionKey(KEY_B, source="ONYX_R2R_ENCRYPTION_KEY")).open("t", COLUMN, blob)
    message = str(err.value)
    assert blob_key_id(blob).hex() in message
    assert "ONYX_R2R_OLD_ENCRYPTION_KEY" in message and "rotate-key" in message
    assert KEY_A not in message and KEY_B not in message and API_KEY not in message


def test_previous_key_still_decrypts_during_rotation() -> None:
    blob = Keyring(EncryptionKey(KEY_A, source="A")).seal("t", COLUMN, API_KEY)
    both = Keyring(EncryptionKey(KEY_B, source="B"), (EncryptionKey(KEY_A, source="A"),))
    assert both.open("t", COLUMN, blob) == API_KEY


def test_no_key_refuses_to_store_and_says_how_to_fix() -> None:
    with pytest.raises(EncryptionNotConfiguredError) as err:
        Keyring(None).seal("t", COLUMN, API_KEY)
    message = str(err.value)
    assert "ONYX_R2R_ENCRYPTION_KEY" in message
    assert "ENCRYPTION_KEY_SECRET" in message
    assert "ONYX_R2R_ALLOW_UNENCRYPTED_SECRETS=true" in message


def test_dev_flag_stores_plaintext_marked_as_such() -> None:
    keyring = Keyring(None, allow_unencrypted=True)
    blob = keyring.seal("t", COLUMN, API_KEY)
    assert blob.startswith(b"R2P0") and blob_key_id(blob) is None
    assert keyring.open("t", COLUMN, blob) == API_KEY


def test_keyring_from_env_prefers_own_key_then_onyx_key() -> None:
    own = Keyring.from_env({"ONYX_R2R_ENCRYPTION_KEY": KEY_A, "ENCRYPTION_KEY_SECRET": KEY_B})
    assert own.current is not None and own.current.source == "ONYX_R2R_ENCRYPTION_KEY"
    onyx = Keyring.from_env({"ENCRYPTION_KEY_SECRET": KEY_B})
    assert onyx.current is not None and onyx.current.source == "ENCRYPTION_KEY_SECRET"
    assert own.current.key_id != onyx.current.key_id
    none = Keyring.from_env({"ONYX_R2R_ALLOW_UNENCRYPTED_SECRETS": "true"})
    assert none.current is None and none.allow_unencrypted
    rotating = Keyring.from_env(
        {"ONYX_R2R_ENCRYPTION_KEY": KEY_B, "ONYX_R2R_OLD_ENCRYPTION_KEY": KEY_A}
    )
    assert [k.source for k in rotating.previous] == ["ONYX_R2R_OLD_ENCRYPTION_KEY"]


def test_short_key_is_refused() -> None:
    with pytest.raises(EncryptionKeyError, match="at least 16 characters"):
        EncryptionKey("short", source="ONYX_R2R_ENCRYPTION_KEY")


def test_key_and_inputs_never_print_secrets() -> None:
    key = EncryptionKey(KEY_A, source="test")
    assert KEY_A not in repr(key)
    given = CredentialInput(
        base_url="http://r2r:7272",
        api_key=Secret(API_KEY),
        login_email="svc@example.com",
        password=Secret("pw-123456"),
    )
    assert API_KEY not in repr(given) and "pw-123456" not in repr(given)
    creds = R2RCredentials("http://r2r:7272", Secret(API_KEY))
    assert API_KEY not in repr(creds)


# --------------------------------------------------------------- URL policy
def resolver_for(mapping: dict[str, list[str]]):
    def resolve(host: str, port: int) -> list[str]:
        if host not in mapping:
            raise OSError(-2, "Name or service not known")
        return mapping[host]

    return resolve


RESOLVE = resolver_for(
    {
        "r2r": ["172.18.0.5"],
        "r2r.example.com": ["93.184.216.34"],
        "localhost": ["127.0.0.1", "::1"],
        "evil.example.com": ["169.254.169.254"],
        "sneaky.example.com": ["93.184.216.34", "fe80::1"],
        "alibaba.example.com": ["100.100.100.200"],
    }
)


@pytest.mark.parametrize(
    "url, expected",
    [
        ("http://r2r:7272", "http://r2r:7272"),
        ("http://r2r:7272/", "http://r2r:7272"),
        ("https://r2r.example.com/r2r/", "https://r2r.example.com/r2r"),
        ("http://127.0.0.1:7272", "http://127.0.0.1:7272"),
        ("http://localhost:7272", "http://localhost:7272"),
        ("http://[::1]:7272", "http://[::1]:7272"),
        ("  http://10.0.0.8:7272  ", "http://10.0.0.8:7272"),
    ],
)
def test_allowed_urls_under_the_default_policy(url: str, expected: str) -> None:
    assert validate_base_url(url, policy=UrlPolicy.PRIVATE, resolver=RESOLVE) == expected


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("", "Enter the R2R server's URL"),
        ("r2r:7272", "http:// or https://"),
        ("ftp://r2r:7272", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://"),
        ("http://admin:secret@r2r:7272", "must not contain a user name or password"),
        ("http://user@r2r:7272", "must not contain a user name or password"),
        ("http://r2r:7272/?x=1", "query string"),
        ("http://r2r:7272/#frag", "query string"),
        ("http://r2r:notaport", "not valid"),
        ("http:///v3", "no host name"),
        ("http://r2r 7272", "spaces"),
        ("http://unknown-host:7272", "could not be resolved"),
    ],
)
def test_malformed_urls_are_refused_with_a_reason(url: str, fragment: str) -> None:
    with pytest.raises(InvalidUrlError) as err:
        validate_base_url(url, policy=UrlPolicy.PRIVATE, resolver=RESOLVE)
    assert fragment in str(err.value)
    assert "secret" not in str(err.value)


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("http://169.254.169.254/latest/meta-data", "cloud metadata"),
        ("http://169.254.170.2", "cloud metadata"),
        ("http://169.254.1.1:7272", "link-local"),
        ("http://[fe80::1]:7272", "link-local"),
        ("http://[::ffff:169.254.169.254]", "cloud metadata"),
        ("http://[fd00:ec2::254]", "cloud metadata"),
        ("http://100.100.100.200", "cloud metadata"),
        ("http://metadata.google.internal/computeMetadata/v1", "cloud metadata service"),
        ("http://METADATA.GOOGLE.INTERNAL.", "cloud metadata service"),
        ("http://evil.example.com", "cloud metadata"),
        ("http://sneaky.example.com", "link-local"),
        ("http://alibaba.example.com", "cloud metadata"),
        ("http://0.0.0.0:7272", "not a usable server address"),
        ("http://224.0.0.1", "not a usable server address"),
    ],
)
def test_metadata_and_link_local_are_refused(url: str, fragment: str) -> None:
    with pytest.raises(UrlNotAllowedError) as err:
        validate_base_url(url, policy=UrlPolicy.PRIVATE, resolver=RESOLVE)
    assert fragment in str(err.value)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:7272", "http://localhost:7272", "http://r2r:7272", "http://10.1.2.3"]
)
def test_public_policy_refuses_private_and_loopback(url: str) -> None:
    with pytest.raises(UrlNotAllowedError, match="ONYX_R2R_URL_POLICY=private"):
        validate_base_url(url, policy=UrlPolicy.PUBLIC, resolver=RESOLVE)
    assert validate_base_url("https://r2r.example.com", policy=UrlPolicy.PUBLIC, resolver=RESOLVE)


def test_any_policy_allows_link_local_deliberately() -> None:
    assert validate_base_url("http://169.254.10.10:7272", policy=UrlPolicy.ANY)


def test_policy_from_env() -> None:
    assert UrlPolicy.from_env({}) is UrlPolicy.PRIVATE
    assert UrlPolicy.from_env({"ONYX_R2R_URL_POLICY": "PUBLIC"}) is UrlPolicy.PUBLIC
    with pytest.raises(InvalidUrlError, match="public, private, any"):
        UrlPolicy.from_env({"ONYX_R2R_URL_POLICY": "everything"})


# ------------------------------------------------------------------ others
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
