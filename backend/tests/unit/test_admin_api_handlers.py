"""The admin API's handlers are plain functions the router only wires; the dead-letter
classes endpoint serves the engine's enum (no services needed: it reads no database)."""

from __future__ import annotations

import inspect
import typing
import warnings

import pytest
from fastapi import FastAPI
from pydantic import BaseModel

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from onyx.r2r_sender.config import BridgeSettings
from onyx.r2r_sender.errors import DeadLetterClass
from onyx.server.r2r import api
from onyx.server.r2r.standalone import create_app

NOWHERE = BridgeSettings(  # nothing listens there: a handler that touched it would fail
    database_url="postgresql+psycopg2://nobody@127.0.0.1:9/none",
    broker_url="redis://127.0.0.1:9/0",
)
TOKEN = "unit-admin-token-0123456789"


@pytest.mark.parametrize("route", api.ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_every_route_is_a_typed_documented_module_level_handler(route: api.Route) -> None:
    handler = route.handler
    assert getattr(api, handler.__name__) is handler  # module level, not a closure
    assert handler.__qualname__ == handler.__name__
    assert inspect.getdoc(handler), f"{handler.__name__} has no docstring"
    hints = typing.get_type_hints(handler, include_extras=True)
    parameters = inspect.signature(handler).parameters
    assert set(parameters) <= set(hints), f"{handler.__name__} has untyped parameters"
    assert issubclass(hints["return"], BaseModel)
    if "tenant_id" in parameters:
        assert hints["tenant_id"] is str
    if "ctx" in parameters:
        assert hints["ctx"] is api.AdminContext


def test_the_router_serves_exactly_the_route_table() -> None:
    router = api.create_router(auth=lambda: None, tenant=lambda: "t", settings=NOWHERE)
    served = {
        (method, route.path, route.status_code, route.endpoint.__wrapped__)
        for route in router.routes
        for method in route.methods
        if route.path != api.PREFIX + "/metrics"
    }
    expected = {(r.method, api.PREFIX + r.path, r.status_code, r.handler) for r in api.ROUTES}
    assert served == expected
    # plus the Prometheus exposition, which answers text rather than a model
    metrics = [r for r in router.routes if r.path == api.PREFIX + "/metrics"]
    assert [sorted(r.methods) for r in metrics] == [["GET"]]


def test_handlers_are_callable_without_fastapi() -> None:
    listing = api.get_dead_letter_classes()
    assert [c.name for c in listing.classes] == [c.value for c in DeadLetterClass]


def test_dead_letter_classes_endpoint_serves_labels_and_descriptions() -> None:
    client = TestClient(create_app(settings=NOWHERE, admin_token=TOKEN))
    response = client.get(
        "/admin/r2r/dead-letter-classes", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 200
    classes = response.json()["classes"]
    assert [c["name"] for c in classes] == [c.value for c in DeadLetterClass]
    by_name = {c["name"]: c for c in classes}
    config = by_name["r2r_config"]
    assert config == {
        "name": "r2r_config",
        "label": DeadLetterClass.R2R_CONFIG.label,
        "description": DeadLetterClass.R2R_CONFIG.description,
        "retried_by_reconcile": True,
    }
    assert by_name["invalid_document"]["retried_by_reconcile"] is False


def test_a_too_long_tenant_is_refused_before_any_handler_runs() -> None:
    router = api.create_router(auth=lambda: None, tenant=lambda: "t" * 129, settings=NOWHERE)
    app = FastAPI()
    app.include_router(router)
    response = TestClient(app).get("/admin/r2r/config")
    assert response.status_code == 400
    assert response.json() == {
        "detail": "The tenant id is missing or too long.",
        "error": "invalid_tenant",
    }
