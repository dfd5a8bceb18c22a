"""Encryption of stored secrets: the key ring (AES-256-GCM keys derived with HKDF-SHA256).

The key is derived with HKDF-SHA256 from ``ONYX_R2R_ENCRYPTION_KEY`` or, when that is not
set, Onyx's ``ENCRYPTION_KEY_SECRET`` (never used directly: HKDF with our own ``info``
keeps the two uses apart).  Each value is authenticated with the tenant id and the column
as associated data, so a ciphertext copied to another tenant or column does not decrypt.
A sealed blob is ``b"R2K1" | key id (8) | nonce (12) | ciphertext+tag``; the key id
(another HKDF output, not the key) says which key encrypted it, so a process may hold the
current key and the previous one (``ONYX_R2R_OLD_ENCRYPTION_KEY``) during a rotation.

With no key configured, sealing is refused unless the development flag
``ONYX_R2R_ALLOW_UNENCRYPTED_SECRETS=true`` is set (then the blob is ``b"R2P0" | utf-8``).
Keys and secrets never appear in a repr or an exception message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from onyx.r2r_sender.errors import CredentialError

ENCRYPTION_KEY_ENV = "ONYX_R2R_ENCRYPTION_KEY"
ONYX_ENCRYPTION_KEY_ENV = "ENCRYPTION_KEY_SECRET"
OLD_ENCRYPTION_KEY_ENV = "ONYX_R2R_OLD_ENCRYPTION_KEY"
ALLOW_UNENCRYPTED_ENV = "ONYX_R2R_ALLOW_UNENCRYPTED_SECRETS"
MIN_KEY_CHARS = 16

_MAGIC_ENCRYPTED = b"R2K1"
_MAGIC_PLAIN = b"R2P0"
_KEY_ID_BYTES = 8
_NONCE_BYTES = 12
_HKDF_SALT = b"onyx-r2r credential encryption v1"
_HKDF_INFO_KEY = b"onyx-r2r tenant_config aes-256-gcm"
_HKDF_INFO_ID = b"onyx-r2r tenant_config key id"


class EncryptionNotConfiguredError(CredentialError):
    """A secret must be stored but no encryption key is configured (and no dev flag)."""

    code = "encryption_not_configured"


class EncryptionKeyError(CredentialError):
    """A configured key is unusable, or a stored secret does not decrypt with any key."""

    code = "encryption_key_error"


def _truthy(raw: str | None) -> bool:
    return (raw or "").strip().lower() in ("1", "true", "yes", "on")


def _hkdf(secret: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=_HKDF_SALT, info=info).derive(secret)


class EncryptionKey:
    """A 256-bit AES-GCM key derived from a configured secret (never printed)."""

    __slots__ = ("_aes", "key_id", "source")

    def __init__(self, secret: str, *, source: str) -> None:
        secret = secret.strip()
        if len(secret) < MIN_KEY_CHARS:
            raise EncryptionKeyError(
                f"{source} is too short: use at least {MIN_KEY_CHARS} characters "
                "(for example the output of `openssl rand -base64 32`)"
            )
        raw = secret.encode("utf-8")
        self._aes = AESGCM(_hkdf(raw, _HKDF_INFO_KEY, 32))
        self.key_id = _hkdf(raw, _HKDF_INFO_ID, _KEY_ID_BYTES)
        self.source = source

    def encrypt(self, plaintext: str, aad: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return (
            _MAGIC_ENCRYPTED
            + self.key_id
            + nonce
            + self._aes.encrypt(nonce, plaintext.encode("utf-8"), aad)
        )

    def decrypt(self, blob: bytes, aad: bytes) -> str:
        head = len(_MAGIC_ENCRYPTED) + _KEY_ID_BYTES
        nonce, body = blob[head : head + _NONCE_BYTES], blob[head + _NONCE_BYTES :]
        return self._aes.decrypt(nonce, body, aad).decode("utf-8")

    def __repr__(self) -> str:
        return f"EncryptionKey(source={self.source!r}, key_id={self.key_id.hex()!r})"


def _aad(tenant_id: str, column: str) -> bytes:
    return b"onyx-r2r/tenant_config/" + column.encode() + b"/" + tenant_id.encode("utf-8")


def blob_key_id(blob: bytes) -> bytes | None:
    """The key id of an encrypted blob (``None`` for a plaintext blob)."""
    if blob.startswith(_MAGIC_ENCRYPTED):
        return blob[len(_MAGIC_ENCRYPTED) : len(_MAGIC_ENCRYPTED) + _KEY_ID_BYTES]
    return None


@dataclass(frozen=True)
class Keyring:
    """The current encryption key (may be absent) and older keys still accepted to decrypt."""

    current: EncryptionKey | None
    previous: tuple[EncryptionKey, ...] = ()
    allow_unencrypted: bool = False

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Keyring:
        env = os.environ if environ is None else environ
        current: EncryptionKey | None = None
        if env.get(ENCRYPTION_KEY_ENV, "").strip():
            current = EncryptionKey(env[ENCRYPTION_KEY_ENV], source=ENCRYPTION_KEY_ENV)
        elif env.get(ONYX_ENCRYPTION_KEY_ENV, "").strip():
            current = EncryptionKey(env[ONYX_ENCRYPTION_KEY_ENV], source=ONYX_ENCRYPTION_KEY_ENV)
        previous: list[EncryptionKey] = []
        if env.get(OLD_ENCRYPTION_KEY_ENV, "").strip():
            previous.append(
                EncryptionKey(env[OLD_ENCRYPTION_KEY_ENV], source=OLD_ENCRYPTION_KEY_ENV)
            )
        return cls(current, tuple(previous), _truthy(env.get(ALLOW_UNENCRYPTED_ENV)))

    @property
    def encrypts(self) -> bool:
        return self.current is not None

    def seal(self, tenant_id: str, column: str, plaintext: str) -> bytes:
        """Encrypt *plaintext* for (tenant, column); refuse when no key and no dev flag."""
        if self.current is not None:
            return self.current.encrypt(plaintext, _aad(tenant_id, column))
        if self.allow_unencrypted:
            return _MAGIC_PLAIN + plaintext.encode("utf-8")
        raise EncryptionNotConfiguredError(
            "Secrets cannot be stored: no encryption key is configured. Set "
            f"{ENCRYPTION_KEY_ENV} (or Onyx's {ONYX_ENCRYPTION_KEY_ENV}) to a random string of "
            f"at least {MIN_KEY_CHARS} characters; for local development only, "
            f"{ALLOW_UNENCRYPTED_ENV}=true stores them unencrypted."
        )

    def open(self, tenant_id: str, column: str, blob: bytes) -> str:
        """Decrypt a stored blob (plaintext blobs from development mode are accepted)."""
        blob = bytes(blob)
        if blob.startswith(_MAGIC_PLAIN):
            return blob[len(_MAGIC_PLAIN) :].decode("utf-8")
        key_id = blob_key_id(blob)
        if key_id is None:
            raise EncryptionKeyError(
                f"the stored {column.removesuffix('_ciphertext')} of tenant {tenant_id!r} is "
                "not in a known format"
            )
        for key in (self.current, *self.previous):
            if key is not None and key.key_id == key_id:
                try:
                    return key.decrypt(blob, _aad(tenant_id, column))
                except InvalidTag:
                    break
        raise EncryptionKeyError(
            f"the stored {column.removesuffix('_ciphertext')} of tenant {tenant_id!r} cannot be "
            f"decrypted with the configured key (it was encrypted with key id {key_id.hex()}; "
            f"configured: {self._ids()}). Restore the key it was saved with, or set it as "
            f"{OLD_ENCRYPTION_KEY_ENV} and run `onyx-r2r rotate-key`."
        )

    def _ids(self) -> str:
        ids = [f"{k.source}={k.key_id.hex()}" for k in (self.current, *self.previous) if k]
        return ", ".join(ids) or "none"


def is_encrypted_blob(blob: bytes) -> bool:
    """Whether *blob* was sealed with a key (``False`` for development-mode plaintext)."""
    return bytes(blob).startswith(_MAGIC_ENCRYPTED)


def is_unencrypted_blob(blob: bytes) -> bool:
    """Whether *blob* holds a secret stored unencrypted (development flag)."""
    return bytes(blob).startswith(_MAGIC_PLAIN)
