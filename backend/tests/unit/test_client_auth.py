"""client_auth: credentials stay secret, which auth flow the arguments pick, what it adds.

Pure: the auth flows are driven as the generators httpx drives, up to the first request
they yield; what R2R answers (logins, 401s, renewals) is tested against the real server in
``tests/integration/test_client_server_behaviour.py``.
"""

from __future__ import annotations

import pickle
import urllib.parse

import httpx
import pytest

from onyx.r2r_sender.client_auth import (
    ApiKeyAuth,
    ClientSecret,
    LoginAuth,
    build_auth,
    redact,
)
from onyx.r2r_sender.errors import InvalidArgumentError

API_KEY = "key_UNITTESTpublic.sUpErSeCrEt-unit-test-value"
EMAIL = "svc@example.com"
PASSWORD = "pAsSwOrD-unit-test-value"
BASE = "http://127.0.0.1:7272"


def test_secret_hides_its_value() -> None:
    secret = ClientSecret(API_KEY)
    assert repr(secret) == str(secret) == f"{secret}" == "***"
    assert secret.reveal() == API_KEY
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(secret)


def test_redact_replaces_every_secret() -> None:
    text = f"key={API_KEY} pw={PASSWORD} again {API_KEY}"
    assert redact(text, [API_KEY, PASSWORD]) == "key=*** pw=*** again ***"
    assert redact(text, ["", "absent"]) == text  # empty secrets are ignored
    assert redact("", [API_KEY]) == ""


def test_arguments_pick_the_flow() -> None:
    assert isinstance(build_auth(BASE, API_KEY, None, None), ApiKeyAuth)
    assert isinstance(build_auth(BASE, None, EMAIL, PASSWORD), LoginAuth)
    login = build_auth(BASE, API_KEY, EMAIL, PASSWORD)  # the login wins; the key is not kept
    assert isinstance(login, LoginAuth) and API_KEY not in login.secrets()
    assert build_auth(BASE, f"  {API_KEY}\n", None, None).secrets() == [API_KEY]


@pytest.mark.parametrize(
    ("api_key", "email", "password", "fragment"),
    [
        (None, None, None, "api_key must be a non-empty string"),
        ("   ", None, None, "api_key must be a non-empty string"),
        (API_KEY, EMAIL, None, "email and password must both be non-empty strings"),
        (None, None, PASSWORD, "email and password must both be non-empty strings"),
    ],
)
def test_incomplete_credentials_are_refused(
    api_key: str | None, email: str | None, password: str | None, fragment: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=fragment) as info:
        build_auth(BASE, api_key, email, password)
    assert isinstance(info.value, ValueError)
    assert API_KEY not in str(info.value) and PASSWORD not in str(info.value)


def test_api_key_is_added_to_each_request_when_it_is_sent() -> None:
    auth = build_auth(BASE, API_KEY, None, None)
    request = httpx.Request("GET", f"{BASE}/v3/health")
    sent = next(auth.auth_flow(request))
    assert sent is request and sent.headers["x-api-key"] == API_KEY
    assert repr(auth) == "ApiKeyAuth(***)" and API_KEY not in repr(auth)


def test_login_flow_logs_in_before_its_first_request() -> None:
    auth = build_auth(BASE, None, EMAIL, PASSWORD)
    assert auth.secrets() == [PASSWORD]  # no token before the first request
    first = next(auth.auth_flow(httpx.Request("GET", f"{BASE}/v3/documents")))
    assert (first.method, str(first.url)) == ("POST", f"{BASE}/v3/users/login")
    form = urllib.parse.parse_qs(first.read().decode())
    assert form == {"username": [EMAIL], "password": [PASSWORD]}
    assert repr(auth) == f"LoginAuth(email={EMAIL!r})" and PASSWORD not in repr(auth)
