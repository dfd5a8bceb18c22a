"""Per-tenant R2R credentials: validated, live-tested, encrypted at rest, rotatable.

One credential per tenant lives in ``r2r_bridge.tenant_config``: the R2R base URL, an
API key and/or a service-account login (email + password), and the export switch.
Workers and hosts call :func:`credentials_for` (or a :class:`TenantCredentialLookup`,
which falls back to the ``R2R_*`` environment settings when a tenant stored nothing).

Secrets at rest
---------------
The API key and the password are encrypted with AES-256-GCM (``cryptography``).  The
key is derived with HKDF-SHA256 from ``ONYX_R2R_ENCRYPTION_KEY`` or, when that is not
set, Onyx's ``ENCRYPTION_KEY_SECRET`` (never used directly: HKDF with our own ``info``
keeps the two uses apart).  Each value is authenticated with the tenant id and the
column as associated data, so a ciphertext copied to another tenant or column does not
decrypt.  A stored blob is ``b"R2K1" | key id (8) | nonce (12) | ciphertext+tag``; the
key id (another HKDF output, not the key) says which key encrypted it, so a process
may hold the current key and the previous one (``ONYX_R2R_OLD_ENCRYPTION_KEY``) during
a rotation.  ``key_version`` counts rotations (0 = stored unencrypted).

With no key configured, storing a secret is refused unless the development flag
``ONYX_R2R_ALLOW_UNENCRYPTED_SECRETS=true`` is set (then the blob is ``b"R2P0" | utf-8``
and ``key_version`` is 0; ``onyx-r2r rotate-key`` encrypts such rows later).

Before anything is saved
------------------------
:func:`validate_base_url` (scheme http/https, no userinfo/query/fragment, hostname
resolved; link-local and cloud-metadata addresses refused; see :class:`UrlPolicy`),
then :meth:`CredentialStore.test` makes a live call (``health`` + the authenticated
``check_settings``; with a login, the login too).  A failed test raises
:class:`ConnectionTestError` carrying R2R's reason, and nothing is stored.

Secrets never appear in a repr, a log line, an exception message or an API view.
"""

from __future__ import annotations

import enum
import ipaddress
import logging
import os
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Engine, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.sql import func

from onyx.r2r_sender.config import BridgeSettings, R2RCredentials, Secret
from onyx.r2r_sender.errors import (
    R2RAuthError,
    R2RConfigError,
    R2RError,
    R2RNotFoundError,
    R2RRetryableError,
)
from onyx.r2r_sender.ledger import get_engine
from onyx.r2r_sender.ledger.models import TenantConfig

logger = logging.getLogger(__name__)

ENCRYPTION_KEY_ENV = "ONYX_R2R_ENCRYPTION_KEY"
ONYX_ENCRYPTION_KEY_ENV = "ENCRYPTION_KEY_SECRET"
OLD_ENCRYPTION_KEY_ENV = "ONYX_R2R_OLD_ENCRYPTION_KEY"
ALLOW_UNENCRYPTED_ENV = "ONYX_R2R_ALLOW_UNENCRYPTED_SECRETS"
URL_POLICY_ENV = "ONYX_R2R_URL_POLICY"
CACHE_SECONDS_ENV = "ONYX_R2R_CREDENTIAL_CACHE_SECONDS"
MIN_KEY_CHARS = 16

_MAGIC_ENCRYPTED = b"R2K1"
_MAGIC_PLAIN = b"R2P0"
_KEY_ID_BYTES = 8
_NONCE_BYTES = 12
_HKDF_SALT = b"onyx-r2r credential encryption v1"
_HKDF_INFO_KEY = b"onyx-r2r tenant_config aes-256-gcm"
_HKDF_INFO_ID = b"onyx-r2r tenant_config key id"

_API_KEY_COLUMN = "api_key_ciphertext"
_PASSWORD_COLUMN = "password_ciphertext"  # noqa: S105 - a column name
EXPORT_MODES = ("mirror", "replace")


class CredentialType(enum.StrEnum):
    """Kinds of credential the bridge stores (Onyx itself has no such enum)."""

    R2R_API = "r2r_api"  # an R2R server: base URL + API key and/or service-account login


# ---------------------------------------------------------------------- errors
class CredentialError(Exception):
    """A user-facing problem with a credential; ``str()`` is a plain sentence, never a secret.

    ``code`` is a short machine-readable name (the admin API returns it beside the text).
    """

    code = "credential_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EncryptionNotConfiguredError(CredentialError):
    code = "encryption_not_configured"


class EncryptionKeyError(CredentialError):
    """A configured key is unusable, or a stored secret does not decrypt with any key."""

    code = "encryption_key_error"


class InvalidUrlError(CredentialError):
    code = "invalid_url"


class UrlNotAllowedError(InvalidUrlError):
    code = "url_not_allowed"


class InvalidCredentialError(CredentialError):
    code = "invalid_credential"


class ConnectionTestError(CredentialError):
    """The live test failed; ``reason`` is R2R's own message (or the transport failure)."""

    code = "connection_test_failed"

    def __init__(self, message: str, *, reason: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.status_code = status_code


# ------------------------------------------------------------------ encryption
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


# ------------------------------------------------------------------ URL policy
class UrlPolicy(enum.StrEnum):
    """Which addresses an admin-entered R2R URL may point at (``ONYX_R2R_URL_POLICY``).

    * ``private`` (default): public, private-network and loopback addresses; R2R usually
      runs on the compose network or on localhost in development.  Link-local and
      cloud-metadata addresses (where cloud credentials live) are refused.
    * ``public``: public addresses only (multi-tenant/cloud deployments: tenants' admins
      must not reach the operator's internal network).
    * ``any``: no address check at all (an explicit opt-in).
    """

    PUBLIC = "public"
    PRIVATE = "private"
    ANY = "any"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> UrlPolicy:
        env = os.environ if environ is None else environ
        raw = env.get(URL_POLICY_ENV, "").strip().lower() or cls.PRIVATE.value
        try:
            return cls(raw)
        except ValueError:
            raise InvalidUrlError(
                f"{URL_POLICY_ENV} must be one of public, private, any (got {raw!r})"
            ) from None


METADATA_HOSTNAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.internal",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle
        "169.254.170.2",  # AWS ECS task metadata
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (classic)
        "fd00:ec2::254",  # AWS IPv6 IMDS
    )
)

Resolver = Callable[[str, int], list[str]]


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]).split("%", 1)[0] for info in infos})


def _address_problem(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, policy: UrlPolicy
) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_unspecified or address.is_multicast:
        return "not a usable server address"
    if address.is_loopback:
        return "a loopback address" if policy is UrlPolicy.PUBLIC else None
    if address.is_private:
        return "a private-network address" if policy is UrlPolicy.PUBLIC else None
    if address.is_reserved:
        return "not a usable server address"
    if policy is UrlPolicy.PUBLIC and not address.is_global:
        return "a private-network address"
    return None


def _addresses(
    host: str, lowered: str, port: int, resolver: Resolver
) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(lowered)]
    except ValueError:
        pass
    try:
        resolved = resolver(lowered, port)
    except (OSError, UnicodeError) as exc:
        detail = getattr(exc, "strerror", None) or str(exc)
        raise InvalidUrlError(f"The host name {host} could not be resolved ({detail})") from None
    addresses: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for raw in resolved:
        try:
            addresses.append(ipaddress.ip_address(raw))
        except ValueError:
            continue
    if not addresses:
        raise InvalidUrlError(f"The host name {host} did not resolve to any address")
    return addresses


def validate_base_url(
    url: str,
    *,
    policy: UrlPolicy | None = None,
    resolver: Resolver | None = None,
) -> str:
    """Check an admin-entered R2R base URL; return it normalised (no trailing slash).

    Raises :class:`InvalidUrlError` (malformed, wrong scheme, credentials in the URL,
    unresolvable host) or :class:`UrlNotAllowedError` (an address the policy refuses).
    """
    policy = UrlPolicy.from_env() if policy is None else policy
    resolver = resolver or _system_resolver
    url = (url or "").strip()
    if not url:
        raise InvalidUrlError("Enter the R2R server's URL, e.g. http://r2r:7272")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise InvalidUrlError("The URL must not contain spaces or control characters")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidUrlError(f"The URL is not valid: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidUrlError("The URL must start with http:// or https://")
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise InvalidUrlError(
            "The URL must not contain a user name or password; enter the API key in its own field"
        )
    host = parts.hostname
    if not host:
        raise InvalidUrlError("The URL has no host name")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise InvalidUrlError("The URL must not contain a query string or fragment")
    normalised = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    normalised = normalised.rstrip("/")
    if policy is UrlPolicy.ANY:
        return normalised
    lowered = host.lower().rstrip(".")
    if lowered in METADATA_HOSTNAMES:
        raise UrlNotAllowedError(
            f"{host} is a cloud metadata service; it cannot be used as the R2R server"
        )
    addresses = _addresses(
        host, lowered, port or (443 if parts.scheme == "https" else 80), resolver
    )
    for address in addresses:
        problem = _address_problem(address, policy)
        if problem:
            shown = host if str(address) == lowered else f"{host} ({address})"
            hint = (
                ""
                if problem == "not a usable server address"
                else f" Set {URL_POLICY_ENV}=any to allow it deliberately."
                if problem in ("a cloud metadata address", "a link-local address")
                else f" Set {URL_POLICY_ENV}=private to allow private-network servers."
            )
            raise UrlNotAllowedError(f"{shown} is {problem}; it is not allowed.{hint}")
    return normalised


# ------------------------------------------------------------------ the store
def secret_hint(api_key: str) -> str:
    """A recognisable but harmless hint of an API key (``key_Ab…9xQ``)."""
    api_key = api_key.strip()
    if len(api_key) >= 20:
        return f"{api_key[:6]}…{api_key[-3:]}"
    if len(api_key) >= 10:
        return f"…{api_key[-2:]}"
    return "…"


@dataclass(frozen=True)
class CredentialView:
    """What may be shown about a stored credential (no secret, only a hint)."""

    tenant_id: str
    credential_type: str
    base_url: str
    has_api_key: bool
    api_key_hint: str | None
    login_email: str | None
    has_password: bool
    encrypted: bool
    key_version: int
    export_enabled: bool
    export_mode: str
    created_at: datetime | None
    updated_at: datetime | None

    @property
    def has_secret(self) -> bool:
        return self.has_api_key or (bool(self.login_email) and self.has_password)


@dataclass(frozen=True)
class CredentialInput:
    """A credential to test or save.  ``None`` secrets mean "keep the stored one"."""

    base_url: str
    api_key: Secret | None = None
    login_email: str | None = None
    password: Secret | None = None

    def __repr__(self) -> str:  # never show the secrets, not even masked lengths
        return (
            f"CredentialInput(base_url={self.base_url!r}, api_key={'***' if self.api_key else None}, "
            f"login_email={self.login_email!r}, password={'***' if self.password else None})"
        )


@dataclass(frozen=True)
class ConnectionCheck:
    base_url: str
    auth: str  # "api_key", "login" or "api_key+login"
    elapsed_seconds: float


@dataclass(frozen=True)
class RotationReport:
    rotated: int = 0
    encrypted_plaintext: int = 0
    already_current: int = 0
    tenants: list[str] = field(default_factory=list)


def _plain_reason(exc: R2RError, base_url: str) -> tuple[str, str]:
    """(message, reason) for a failed live test, in plain words (R2R's own reason kept)."""
    reason = exc.message
    if isinstance(exc, R2RRetryableError) and exc.status_code is None:
        # the client's text already says "could not reach R2R at …" / "timed out talking to …"
        return reason[:1].upper() + reason[1:], reason
    if isinstance(exc, R2RAuthError):
        # the client's text names the server and what to check, and ends with R2R's words
        return reason, reason.rsplit(": ", 1)[-1]
    if isinstance(exc, R2RConfigError):
        return f"R2R answered, but its configuration does not fit the bridge: {reason}", reason
    if isinstance(exc, R2RNotFoundError):
        return (
            f"{base_url} answered 404: is this the R2R server's base URL (without /v3)? "
            f"R2R said: {reason}",
            reason,
        )
    status = f" (HTTP {exc.status_code})" if exc.status_code else ""
    return f"The R2R connection test failed{status}: {reason}", reason


def _redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


class CredentialStore:
    """Reads and writes ``tenant_config`` rows; encrypts secrets; tests before saving."""

    def __init__(
        self,
        engine: Engine,
        *,
        keyring: Keyring | None = None,
        url_policy: UrlPolicy | None = None,
        resolver: Resolver | None = None,
        connect_timeout: float = 3.0,
        read_timeout: float = 15.0,
    ) -> None:
        self.engine = engine
        self.keyring = keyring if keyring is not None else Keyring.from_env()
        self.url_policy = url_policy if url_policy is not None else UrlPolicy.from_env()
        self.resolver = resolver
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._table = TenantConfig.__table__

    @classmethod
    def from_settings(cls, settings: BridgeSettings, **kwargs: Any) -> CredentialStore:
        return cls(get_engine(settings.database_url), **kwargs)

    # ------------------------------------------------------------------ reads
    def _row(self, tenant_id: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(
                select(self._table).where(self._table.c.tenant_id == tenant_id)
            ).first()

    def _view(self, row: Any) -> CredentialView:
        blobs = [bytes(b) for b in (row.api_key_ciphertext, row.password_ciphertext) if b]
        return CredentialView(
            tenant_id=row.tenant_id,
            credential_type=row.credential_type,
            base_url=row.base_url,
            has_api_key=row.api_key_ciphertext is not None,
            api_key_hint=row.secret_hint if row.api_key_ciphertext is not None else None,
            login_email=row.login_email,
            has_password=row.password_ciphertext is not None,
            encrypted=bool(blobs) and all(b.startswith(_MAGIC_ENCRYPTED) for b in blobs),
            key_version=row.key_version,
            export_enabled=row.export_enabled,
            export_mode=row.export_mode,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    def get(self, tenant_id: str) -> CredentialView | None:
        """The stored credential of *tenant_id* without secrets, or ``None``."""
        row = self._row(tenant_id)
        return self._view(row) if row is not None else None

    def load(self, tenant_id: str) -> R2RCredentials | None:
        """The decrypted credential of *tenant_id*; ``None`` when it stored no secret."""
        row = self._row(tenant_id)
        if row is None:
            return None
        api_key = (
            self.keyring.open(tenant_id, _API_KEY_COLUMN, row.api_key_ciphertext)
            if row.api_key_ciphertext is not None
            else ""
        )
        password = (
            self.keyring.open(tenant_id, _PASSWORD_COLUMN, row.password_ciphertext)
            if row.password_ciphertext is not None and row.login_email
            else ""
        )
        if not api_key and not password:
            return None
        return R2RCredentials(
            base_url=row.base_url,
            api_key=Secret(api_key),
            email=(row.login_email or "") if password else "",
            password=Secret(password),
        )

    def tenants(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(select(self._table.c.tenant_id).order_by(self._table.c.tenant_id))
                .scalars()
                .all()
            )

    # ----------------------------------------------------------- test & save
    def resolve(self, tenant_id: str, given: CredentialInput) -> R2RCredentials:
        """Validate *given* and merge in the stored secrets it keeps; return what to test.

        A stored secret is only reused for the server it was saved for: when the URL
        changes, the secrets must be entered again (so a changed URL cannot send the
        stored key to another server).
        """
        base_url = validate_base_url(given.base_url, policy=self.url_policy, resolver=self.resolver)
        stored: R2RCredentials | None = None
        if given.api_key is None or given.password is None:
            try:
                stored = self.load(tenant_id)
            except EncryptionKeyError:
                stored = None  # unreadable: the admin must enter the secrets again
        same_server = stored is not None and stored.base_url.rstrip("/") == base_url
        api_key = given.api_key.get().strip() if given.api_key is not None else None
        if api_key is None:
            api_key = stored.api_key.get() if same_server and stored else ""
        email = given.login_email
        if email is None:
            email = stored.email if same_server and stored else ""
        email = email.strip()
        password = given.password.get() if given.password is not None else None
        if password is None:
            password = (
                stored.password.get()
                if same_server and stored and stored.email and email == stored.email
                else ""
            )
        if not email:
            password = ""
        if email and ("@" not in email or any(ch.isspace() for ch in email)):
            raise InvalidCredentialError("The login email is not a valid email address")
        if email and not password:
            raise InvalidCredentialError("Enter the password of the login email")
        if not api_key and not email:
            changed = stored is not None and not same_server
            raise InvalidCredentialError(
                "Enter the API key again: the R2R URL changed, and a stored key is only sent "
                "to the server it was saved for"
                if changed
                else "Enter an R2R API key (or a service account's login email and password)"
            )
        if api_key and (len(api_key) > 4096 or any(ch.isspace() for ch in api_key)):
            raise InvalidCredentialError("The API key must not contain spaces or line breaks")
        return R2RCredentials(
            base_url=base_url,
            api_key=Secret(api_key),
            email=email,
            password=Secret(password),
        )

    def test(self, credentials: R2RCredentials) -> ConnectionCheck:
        """Live test: ``health`` then the authenticated ``check_settings`` (per auth method).

        Raises :class:`ConnectionTestError` with R2R's reason in plain words.
        """
        from onyx.r2r_sender.client import R2RClient

        started = time.monotonic()
        methods: list[tuple[str, dict[str, Any]]] = []
        if credentials.api_key:
            methods.append(("api_key", {"api_key": credentials.api_key.get()}))
        if credentials.uses_login:
            methods.append(
                (
                    "login",
                    {"email": credentials.email, "password": credentials.password.get()},
                )
            )
        if not methods:
            raise InvalidCredentialError("Enter an R2R API key (or a login email and password)")
        secrets = [credentials.api_key.get(), credentials.password.get()]
        for index, (_name, auth) in enumerate(methods):
            try:
                with R2RClient(
                    credentials.base_url,
                    auth.get("api_key"),
                    email=auth.get("email"),
                    password=auth.get("password"),
                    connect_timeout=self.connect_timeout,
                    read_timeout=self.read_timeout,
                    retry_max_time=0,
                    retry_max_tries=1,
                ) as client:
                    if index == 0:
                        client.health(retry=False)
                    client.check_settings(retry=False)
            except R2RError as exc:
                message, reason = _plain_reason(exc, credentials.base_url)
                if len(methods) > 1:
                    which = "API key" if _name == "api_key" else "login"
                    message = f"With the {which}: {message}"
                raise ConnectionTestError(
                    _redact(message, secrets),
                    reason=_redact(reason, secrets),
                    status_code=exc.status_code,
                ) from None
            except ValueError as exc:  # the client's own argument checks
                raise InvalidCredentialError(_redact(str(exc), secrets)) from None
        return ConnectionCheck(
            base_url=credentials.base_url,
            auth="+".join(name for name, _ in methods),
            elapsed_seconds=time.monotonic() - started,
        )

    def save(
        self,
        tenant_id: str,
        given: CredentialInput,
        *,
        test: bool = True,
    ) -> CredentialView:
        """Validate, live-test, encrypt and store one tenant's credential (nothing on failure)."""
        credentials = self.resolve(tenant_id, given)
        if test:
            self.test(credentials)
        api_key = credentials.api_key.get()
        values: dict[str, Any] = {
            "credential_type": CredentialType.R2R_API.value,
            "base_url": credentials.base_url,
            "api_key_ciphertext": self.keyring.seal(tenant_id, _API_KEY_COLUMN, api_key)
            if api_key
            else None,
            "login_email": credentials.email or None,
            "password_ciphertext": self.keyring.seal(
                tenant_id, _PASSWORD_COLUMN, credentials.password.get()
            )
            if credentials.uses_login
            else None,
            "secret_hint": secret_hint(api_key) if api_key else None,
            "key_version": 0 if not self.keyring.encrypts else None,
            "updated_at": func.now(),
        }
        with self.engine.begin() as conn:
            current = conn.execute(
                select(self._table.c.key_version)
                .where(self._table.c.tenant_id == tenant_id)
                .with_for_update()
            ).scalar()
            if values["key_version"] is None:
                values["key_version"] = max(1, current or 0)
            stmt = pg_insert(self._table).values(tenant_id=tenant_id, **values)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[self._table.c.tenant_id],
                    set_={k: stmt.excluded[k] for k in values},
                )
            )
        logger.info(
            "stored the r2r credential of tenant %s (server %s, %s)",
            tenant_id,
            credentials.base_url,
            "encrypted" if self.keyring.encrypts else "UNENCRYPTED (development flag)",
        )
        view = self.get(tenant_id)
        assert view is not None
        return view

    def delete(self, tenant_id: str) -> bool:
        """Remove the tenant's credential and export switch; return whether one existed."""
        with self.engine.begin() as conn:
            deleted = conn.execute(
                delete(self._table).where(self._table.c.tenant_id == tenant_id)
            ).rowcount
        if deleted:
            logger.info("deleted the r2r credential of tenant %s", tenant_id)
        return bool(deleted)

    def set_export(
        self, tenant_id: str, *, enabled: bool, mode: str, default_base_url: str
    ) -> CredentialView:
        """Switch the tenant's export on/off and pick mirror/replace (creates a row if needed:
        without a stored secret the tenant keeps using the environment's server)."""
        if mode not in EXPORT_MODES:
            raise InvalidCredentialError("The export mode must be mirror or replace")
        values = {"export_enabled": enabled, "export_mode": mode, "updated_at": func.now()}
        with self.engine.begin() as conn:
            stmt = pg_insert(self._table).values(
                tenant_id=tenant_id,
                credential_type=CredentialType.R2R_API.value,
                base_url=default_base_url,
                key_version=0 if not self.keyring.encrypts else 1,
                **values,
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[self._table.c.tenant_id],
                    set_={k: stmt.excluded[k] for k in values},
                )
            )
        view = self.get(tenant_id)
        assert view is not None
        return view

    # ---------------------------------------------------------------- rotate
    def rotate(
        self, old: Keyring, new: EncryptionKey, *, tenant_ids: Iterable[str] | None = None
    ) -> RotationReport:
        """Re-encrypt every stored secret (or those of *tenant_ids*) with *new*.

        Secrets are decrypted with *old*'s keys or *new*.  One transaction: either every
        row is re-encrypted or none is.  Rows already under *new* are left alone
        (re-running is harmless); plaintext rows from development mode are encrypted.
        """
        reader = Keyring(new, (*((old.current,) if old.current else ()), *old.previous), True)
        writer = Keyring(new)
        rotated = encrypted_plain = current = 0
        tenants: list[str] = []
        with self.engine.begin() as conn:
            query = select(self._table).order_by(self._table.c.tenant_id).with_for_update()
            if tenant_ids is not None:
                query = query.where(self._table.c.tenant_id.in_(list(tenant_ids)))
            rows = conn.execute(query).all()
            for row in rows:
                blobs = {
                    column: getattr(row, column)
                    for column in (_API_KEY_COLUMN, _PASSWORD_COLUMN)
                    if getattr(row, column) is not None
                }
                if not blobs:
                    continue
                if all(blob_key_id(bytes(b)) == new.key_id for b in blobs.values()):
                    current += 1
                    continue
                was_plain = any(bytes(b).startswith(_MAGIC_PLAIN) for b in blobs.values())
                fresh = {
                    column: writer.seal(
                        row.tenant_id, column, reader.open(row.tenant_id, column, bytes(blob))
                    )
                    for column, blob in blobs.items()
                }
                conn.execute(
                    update(self._table)
                    .where(self._table.c.tenant_id == row.tenant_id)
                    .values(**fresh, key_version=row.key_version + 1, updated_at=func.now())
                )
                tenants.append(row.tenant_id)
                if was_plain:
                    encrypted_plain += 1
                else:
                    rotated += 1
        report = RotationReport(rotated, encrypted_plain, current, tenants)
        logger.info(
            "re-encrypted r2r credentials: %d rotated, %d were unencrypted, %d already current",
            rotated,
            encrypted_plain,
            current,
        )
        return report


# --------------------------------------------------------------- for hosts
_default_store: CredentialStore | None = None
_default_lock = threading.Lock()


def default_store(settings: BridgeSettings | None = None) -> CredentialStore:
    """The process-wide store on ``ONYX_R2R_DATABASE_URL`` (built on first use)."""
    global _default_store
    with _default_lock:
        if _default_store is None:
            _default_store = CredentialStore.from_settings(settings or BridgeSettings.from_env())
        return _default_store


def credentials_for(
    tenant_id: str, *, store: CredentialStore | None = None
) -> R2RCredentials | None:
    """The stored R2R credential of *tenant_id*, or ``None`` when the tenant stored none.

    Hosts fall back to ``BridgeSettings.from_env().credentials`` on ``None``.
    Raises :class:`EncryptionKeyError` when a stored secret cannot be decrypted.
    """
    return (store or default_store()).load(tenant_id)


def export_state(
    tenant_id: str, *, store: CredentialStore | None = None
) -> tuple[bool, str] | None:
    """``(export_enabled, export_mode)`` the tenant's admin saved, or ``None`` (use the env)."""
    view = (store or default_store()).get(tenant_id)
    return (view.export_enabled, view.export_mode) if view is not None else None


class TenantCredentialLookup:
    """A worker's ``CredentialLookup``: the tenant's stored credential, else the env settings.

    Results are cached for ``ttl_seconds`` so drains do not hit the database each time;
    a saved credential reaches running workers within that time.
    """

    def __init__(
        self,
        store: CredentialStore,
        fallback: R2RCredentials,
        *,
        ttl_seconds: float = 15.0,
    ) -> None:
        self._store = store
        self._fallback = fallback
        self._ttl = ttl_seconds
        self._cache: dict[str, tuple[float, R2RCredentials]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: BridgeSettings, **kwargs: Any) -> TenantCredentialLookup:
        """The stored credential, else *settings*' own; ``ONYX_R2R_CREDENTIAL_CACHE_SECONDS``
        (default 15) is how long a looked-up credential is reused."""
        if "ttl_seconds" not in kwargs:
            raw = os.environ.get(CACHE_SECONDS_ENV, "").strip()
            try:
                kwargs["ttl_seconds"] = float(raw) if raw else 15.0
            except ValueError:
                raise ValueError(f"{CACHE_SECONDS_ENV} must be a number, got {raw!r}") from None
        return cls(CredentialStore.from_settings(settings), settings.credentials, **kwargs)

    def __call__(self, tenant_id: str) -> R2RCredentials:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(tenant_id)
            if hit is not None and hit[0] > now:
                return hit[1]
        stored = self._store.load(tenant_id) if tenant_id else None
        result = stored if stored is not None else self._fallback
        with self._lock:
            self._cache[tenant_id] = (now + self._ttl, result)
        return result

    def forget(self, tenant_id: str | None = None) -> None:
        with self._lock:
            if tenant_id is None:
                self._cache.clear()
            else:
                self._cache.pop(tenant_id, None)

    def __repr__(self) -> str:
        return f"TenantCredentialLookup(ttl_seconds={self._ttl})"
