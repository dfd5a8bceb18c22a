"""How the client authenticates to R2R: an API key, or a service account's login (JWT).

R2R 3.6.6 bcrypt-checks an API key on every request (about 0.45 s on two cores, run inside
its event loop, so concurrent requests queue behind each other); a login costs one bcrypt
check and returns a JWT that costs milliseconds per request.  Both are ``httpx.Auth`` flows:
the credential is added to each request when it is sent, never to the client's default
headers, and every credential is held in a :class:`ClientSecret`, whose repr is ``***`` and
which refuses to be pickled.  :func:`redact` removes credentials from any text the client
logs or raises.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Generator, Iterable

import httpx

from onyx.r2r_sender.errors import (
    InvalidArgumentError,
    R2RFatalError,
    classify,
    message_from_body,
)
from onyx.r2r_sender.token_store import TokenStore, token_key

LOGIN_PATH = "/v3/users/login"


class ClientSecret:
    """Holds a credential; its repr/str are ``***`` so dumps and logs cannot leak it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The credential itself; only for the code that sends or redacts it."""
        return self._value

    def __repr__(self) -> str:
        return "***"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("secrets cannot be pickled")


def redact(text: str, secrets: Iterable[str]) -> str:
    """Return ``text`` with every non-empty secret in ``secrets`` replaced by ``***``."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, "***")
    return text


class ApiKeyAuth(httpx.Auth):
    """Adds ``x-api-key`` to each request at send time (not to the client's default headers)."""

    def __init__(self, secret: ClientSecret) -> None:
        self._secret = secret

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["x-api-key"] = self._secret.reveal()
        yield request

    def secrets(self) -> list[str]:
        """The credentials this flow holds (to redact them from texts)."""
        return [self._secret.reveal()]

    def __repr__(self) -> str:
        return "ApiKeyAuth(***)"


class LoginAuth(httpx.Auth):
    """Bearer JWT from ``POST /v3/users/login``; logs in again once when R2R answers 401.

    The token is shared by all threads of one client: the first request logs in, and a
    401 makes exactly one thread log in again while the others reuse its new token.  A
    failed login raises the :class:`~onyx.r2r_sender.errors.R2RError` that
    :func:`~onyx.r2r_sender.errors.classify` gives for R2R's answer (operation
    ``"login"``; the password redacted), a login answer without a token
    :class:`~onyx.r2r_sender.errors.R2RFatalError`.

    With a *token_store* (:mod:`~onyx.r2r_sender.token_store`) the token is shared by the
    processes of a host: the first request uses the stored token when there is one, a
    login happens under the store's lock (a process that finds a newer token there after
    waiting uses it instead of logging in again) and saves its token; ``logins`` counts
    the logins this flow made.
    """

    requires_response_body = True

    def __init__(
        self,
        login_url: str,
        email: str,
        password: ClientSecret,
        token_store: TokenStore | None = None,
    ) -> None:
        self._login_url = login_url
        self._email = email
        self._password = password
        self._token: ClientSecret | None = None
        self._lock = threading.Lock()
        self._store = token_store
        self._store_key = token_key(login_url.rsplit("/v3/", 1)[0], email)
        self.logins = 0

    def _stored(self) -> ClientSecret | None:
        if self._store is None:
            return None
        token = self._store.load(self._store_key)
        return ClientSecret(token) if token else None

    def _login(
        self, stale: ClientSecret | None
    ) -> Generator[httpx.Request, httpx.Response, ClientSecret]:
        store_lock = self._store.locked() if self._store is not None else contextlib.nullcontext()
        with self._lock, store_lock:
            if self._token is not None and self._token is not stale:
                return self._token  # another thread already logged in
            stored = self._stored()
            if stored is not None and (stale is None or stored.reveal() != stale.reveal()):
                self._token = stored  # another process logged in meanwhile
                return stored
            self.logins += 1
            response = yield httpx.Request(
                "POST",
                self._login_url,
                data={"username": self._email, "password": self._password.reveal()},
            )
            if response.status_code != 200:
                message = redact(message_from_body(response.content), [self._password.reveal()])
                raise classify(
                    response.status_code,
                    f"login as {self._email} failed: {message}",
                    operation="login",
                    base_url=self._login_url.rsplit("/v3/", 1)[0],
                )
            try:
                token = response.json()["results"]["access_token"]["token"]
            except (ValueError, KeyError, TypeError):
                raise R2RFatalError(
                    "login answered 200 without an access token", operation="login"
                ) from None
            self._token = ClientSecret(str(token))
            if self._store is not None:
                self._store.save(self._store_key, self._token.reveal())
            return self._token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._token
        if token is None:
            with self._lock:
                token = self._token = self._token or self._stored()
        if token is None:
            token = yield from self._login(None)
        request.headers["Authorization"] = f"Bearer {token.reveal()}"
        response = yield request
        if response.status_code == 401:
            token = yield from self._login(token)
            request.headers["Authorization"] = f"Bearer {token.reveal()}"
            yield request

    def secrets(self) -> list[str]:
        """The password and the current token (to redact them from texts)."""
        token = self._token
        return [self._password.reveal(), *([token.reveal()] if token else [])]

    def __repr__(self) -> str:
        return f"LoginAuth(email={self._email!r})"


def build_auth(
    base_url: str,
    api_key: str | None,
    email: str | None,
    password: str | None,
    token_store: TokenStore | None = None,
) -> ApiKeyAuth | LoginAuth:
    """The auth flow for these arguments: a login when ``email``/``password`` are given
    (an API key given as well is not used; *token_store* shares its token between
    processes), else the API key.

    Raises :class:`~onyx.r2r_sender.errors.InvalidArgumentError` when only one of
    ``email``/``password`` is given, or when neither a login nor a non-blank
    ``api_key`` is.
    """
    use_login = bool(email) or bool(password)
    if use_login and not (
        isinstance(email, str) and email and isinstance(password, str) and password
    ):
        raise InvalidArgumentError("email and password must both be non-empty strings")
    if use_login:
        return LoginAuth(
            f"{base_url}{LOGIN_PATH}", str(email), ClientSecret(str(password)), token_store
        )
    if not isinstance(api_key, str) or not api_key.strip():
        raise InvalidArgumentError("api_key must be a non-empty string")
    return ApiKeyAuth(ClientSecret(api_key.strip()))
