"""Mounting the admin page never stops Onyx: any failure to build or mount the router is
one ERROR line and an application without the page (Onyx's own ``get_application`` runs
the same in the real-Onyx contract tests)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, FastAPI

from onyx.server.r2r import mount


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"ok": "yes"}

    return app


def _include(application: FastAPI, router: APIRouter) -> None:
    application.include_router(router, prefix="/api")


def test_the_real_router_is_mounted() -> None:
    app = _app()
    assert mount.include_r2r_admin_router(app, _include) is True
    assert any("/api/admin/r2r/config" == getattr(r, "path", "") for r in app.routes)


def test_a_router_that_cannot_be_built_leaves_the_app_without_the_page(caplog) -> None:
    def renamed_permission() -> APIRouter:
        raise AttributeError("type object 'Permission' has no attribute 'FULL_ADMIN_PANEL_ACCESS'")

    app = _app()
    before = [getattr(r, "path", "") for r in app.routes]
    with caplog.at_level(logging.ERROR, logger=mount.__name__):
        assert mount.include_r2r_admin_router(app, _include, renamed_permission) is False
    assert [getattr(r, "path", "") for r in app.routes] == before
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "R2R admin page is not available" in errors[0].getMessage()
    assert "FULL_ADMIN_PANEL_ACCESS" in errors[0].getMessage()


def test_a_failed_mount_leaves_nothing_half_mounted(caplog) -> None:
    router = APIRouter(prefix="/admin/r2r")

    @router.get("/config")
    def config() -> dict[str, str]:
        return {}

    def half(application: FastAPI, built: APIRouter) -> None:
        application.include_router(built, prefix="/api")
        raise TypeError("include_router() got an unexpected keyword argument")

    app = _app()
    before = list(app.routes)
    with caplog.at_level(logging.ERROR, logger=mount.__name__):
        assert mount.include_r2r_admin_router(app, half, lambda: router) is False
    assert app.routes == before
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1
