"""credentials_crypto: AES-256-GCM with HKDF keys, tenant/column AAD, rotation keys (pure)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from onyx.r2r_sender.credentials_crypto import (
    EncryptionKey,
    EncryptionKeyError,
    EncryptionNotConfiguredError,
    Keyring,
    blob_key_id,
    is_encrypted_blob,
    is_unencrypted_blob,
)
from onyx.r2r_sender.errors import BridgeError, CredentialError

KEY_A = "unit-test-key-A-0123456789abcdef"
KEY_B = "unit-test-key-B-0123456789abcdef"
API_KEY = "key_AbCdEfGh.sEcReT-vAlUe-0123456789"
COLUMN = "api_key_ciphertext"


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


def test_key_repr_shows_its_source_and_id_never_the_secret() -> None:
    key = EncryptionKey(KEY_A, source="test")
    assert KEY_A not in repr(key)
    assert repr(key) == f"EncryptionKey(source='test', key_id={key.key_id.hex()!r})"


def test_blob_kind_is_recognised() -> None:
    sealed = Keyring(EncryptionKey(KEY_A, source="test")).seal("t", COLUMN, API_KEY)
    plain = Keyring(None, allow_unencrypted=True).seal("t", COLUMN, API_KEY)
    assert is_encrypted_blob(sealed) and not is_unencrypted_blob(sealed)
    assert is_unencrypted_blob(plain) and not is_encrypted_blob(plain)
    assert not is_encrypted_blob(b"junk") and not is_unencrypted_blob(b"junk")


def test_key_errors_are_credential_errors_of_the_engine_root() -> None:
    for cls in (EncryptionKeyError, EncryptionNotConfiguredError):
        assert issubclass(cls, CredentialError) and issubclass(cls, BridgeError)
    assert EncryptionKeyError("x").code == "encryption_key_error"
    assert EncryptionNotConfiguredError("x").code == "encryption_not_configured"
