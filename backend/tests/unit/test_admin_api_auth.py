"""The admin router's guard rails that need no services: fail-closed auth, JSON errors
that never echo the request body, tenant header checks (pure: nothing is connected)."""

from __future__ import annotations

import warnings

import pytest
from fastapi import FastAPI

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from onyx.r2r_sender.config import BridgeSettings
from onyx.server.r2r import api, host
from onyx.server.r2r.standalone import create_app

# nothing listens there: a request that got past auth/validation would fail loudly
NOWHERE = BridgeSettings(
    database_url="postgresql+psycopg2://nobody@127.0.0.1:9/none",
    broker_url="redis://127.0.0.1:9/0",
)
SECRET = "key_unit.s3cr3t-never-echo-me"
TOKEN = "unit-admin-token-0123456789"

ENDPOINTS = [
    ("GET", "/admin/r2r/config", None),
    ("PUT", "/admin/r2r/config", {"base_url": "http://r2r:7272", "api_key": SECRET}),
    ("DELETE", "/admin/r2r/config", None),
    ("POST", "/admin/r2r/test", {"base_url": "http://r2r:7272", "api_key": SECRET}),
    ("PUT", "/admin/r2r/export", {"enabled": True, "mode": "mirror"}),
    ("GET", "/admin/r2r/status", None),
    ("GET", "/admin/r2r/dead-letters", None),
    ("GET", "/admin/r2r/dead-letter-classes", None),
    ("POST", "/admin/r2r/dead-letters/replay", {"all": True}),
    ("POST", "/admin/r2r/resync", None),
    ("POST", "/admin/r2r/reconcile", None),
]


def test_outside_onyx_the_default_router_refuses_everything() -> None:
    assert host.onyx_admin_dependency() is None  # no Onyx here
    app = FastAPI()
    app.include_router(api.create_router(settings=NOWHERE))
    client = TestClient(app)
    for method, path, body in ENDPOINTS:
        response = client.request(method, path, json=body)
        assert response.status_code == 403, (method, path)
        assert "Admin access required" in response.json()["detail"]
        assert SECRET not in response.text


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": TOKEN},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
    ],
)
def test_standalone_needs_the_admin_bearer_token(headers: dict[str, str]) -> None:
    client = TestClient(create_app(settings=NOWHERE, admin_token=TOKEN))
    for method, path, body in ENDPOINTS:
        response = client.request(method, path, json=body, headers=headers)
        assert response.status_code == 403, (method, path)
        assert response.json() == {
            "detail": "Admin access required: you are not signed in as an admin.",
            "error": "forbidden",
        }


def test_standalone_without_a_configured_token_refuses_even_an_empty_bearer() -> None:
    client = TestClient(create_app(settings=NOWHERE, admin_token=""))
    response = client.get("/admin/r2r/config", headers={"Authorization": "Bearer "})
    assert response.status_code == 403
    assert "ONYX_R2R_ADMIN_TOKEN" in response.json()["detail"]


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"api_key": SECRET}, "base_url: Field required"),
        ({"base_url": 7, "api_key": SECRET}, "base_url: Input should be a valid string"),
        ({"base_url": "http://r2r", "api_key": SECRET, "extra": 1}, "extra: Extra inputs"),
        ({"base_url": "http://r2r", "api_key": ["x", SECRET]}, "api_key"),
    ],
)
def test_validation_errors_are_plain_json_without_the_body(body: dict, fragment: str) -> None:
    client = TestClient(create_app(settings=NOWHERE, admin_token=TOKEN))
    response = client.put(
        "/admin/r2r/config", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 422
    payload = response.json()
    assert payload["error"] == "invalid_request"
    assert fragment in payload["detail"]
    assert SECRET not in response.text


def test_bad_tenant_header_is_refused() -> None:
    client = TestClient(create_app(settings=NOWHERE, admin_token=TOKEN))
    response = client.get(
        "/admin/r2r/config",
        headers={"Authorization": f"Bearer {TOKEN}", "X-Onyx-Tenant": "../etc"},
    )
    assert response.status_code == 400
    assert response.json()["detail"] == "The X-Onyx-Tenant header is not valid."


def test_unknown_paths_are_json_too() -> None:
    client = TestClient(create_app(settings=NOWHERE, admin_token=TOKEN))
    response = client.get("/admin/r2r/nope", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_unreachable_database_is_a_clear_503() -> None:
    client = TestClient(create_app(settings=NOWHERE, admin_token=TOKEN))
    response = client.get("/admin/r2r/config", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 503
    assert response.json()["error"] == "backend_unavailable"
    assert "unreachable" in response.json()["detail"]
