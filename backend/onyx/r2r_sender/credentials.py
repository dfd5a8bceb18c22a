"""Per-tenant R2R credentials: the store (validated, live-tested, encrypted at rest, rotatable).

One credential per tenant lives in ``r2r_bridge.tenant_config``: the R2R base URL, an
API key and/or a service-account login (email + password), and the export switch.
Workers and hosts call :func:`credentials_for` (or a :class:`TenantCredentialLookup`,
which falls back to the ``R2R_*`` environment settings when a tenant stored nothing).

The API key and the password are sealed by the key ring
(:mod:`onyx.r2r_sender.credentials_crypto`, AES-256-GCM); ``key_version`` counts
rotations (0 = stored unencrypted under the development flag; ``onyx-r2r rotate-key``
encrypts such rows later).

Before anything is saved: :func:`~onyx.r2r_sender.url_policy.validate_base_url` (see
:mod:`onyx.r2r_sender.url_policy`), then :meth:`CredentialStore.test` makes a live call
(``health`` + the authenticated ``check_settings``; with a login, the login too).  A failed
test raises :class:`ConnectionTestError` carrying R2R's reason, and nothing is stored.

Secrets never appear in a repr, a log line, an exception message or an API view.
"""

from __future__ import annotations

import enum
import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.sql import func

from onyx.r2r_sender.config import BridgeSettings, R2RCredentials, Secret
from onyx.r2r_sender.credentials_crypto import (
    EncryptionKey,
    EncryptionKeyError,
    Keyring,
    blob_key_id,
    is_encrypted_blob,
    is_unencrypted_blob,
)
from onyx.r2r_sender.errors import (
    CredentialError,
    InvalidArgumentError,
    R2RAuthError,
    R2RConfigError,
    R2RError,
    R2RNotFoundError,
    R2RRetryableError,
    SettingsError,
)
from onyx.r2r_sender.ledger import get_engine
from onyx.r2r_sender.ledger.models import TenantConfig
from onyx.r2r_sender.url_policy import Resolver, UrlPolicy, validate_base_url

logger = logging.getLogger(__name__)

CACHE_SECONDS_ENV = "ONYX_R2R_CREDENTIAL_CACHE_SECONDS"

_API_KEY_COLUMN = "api_key_ciphertext"
_PASSWORD_COLUMN = "password_ciphertext"  # noqa: S105 - a column name
EXPORT_MODES = ("mirror", "replace")


class CredentialType(enum.StrEnum):
    """Kinds of credential the bridge stores (Onyx itself has no such enum)."""

    R2R_API = "r2r_api"  # an R2R server: base URL + API key and/or service-account login


class InvalidCredentialError(CredentialError):
    """The entered credential is incomplete or malformed (nothing was sent anywhere)."""

    code = "invalid_credential"


class ConnectionTestError(CredentialError):
    """The live test failed; ``reason`` is R2R's own message (or the transport failure)."""

    code = "connection_test_failed"

    def __init__(self, message: str, *, reason: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.status_code = status_code


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
    export_enabled: bool | None  # None: no export choice stored (the environment decides)
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
            encrypted=bool(blobs) and all(is_encrypted_blob(b) for b in blobs),
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
            except InvalidArgumentError as exc:  # the client's own argument checks
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
        self, tenant_id: str, *, enabled: bool | None, mode: str, default_base_url: str
    ) -> CredentialView:
        """Store the tenant's export choice: on/off and mirror/replace, or ``enabled=None``
        to forget it (the environment decides again).  Creates a row if needed: without a
        stored secret the tenant keeps using the environment's server."""
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
                was_plain = any(is_unencrypted_blob(b) for b in blobs.values())
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
    """``(export_enabled, export_mode)`` the tenant's admin saved, or ``None`` when it stored
    no export choice (saving only a credential stores none): the environment decides."""
    view = (store or default_store()).get(tenant_id)
    if view is None or view.export_enabled is None:
        return None
    return (view.export_enabled, view.export_mode)


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
                raise SettingsError(f"{CACHE_SECONDS_ENV} must be a number, got {raw!r}") from None
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
