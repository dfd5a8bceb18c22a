"""A small standalone app serving the admin router (demo, tests, the web harness).

Same router as inside Onyx, with its own auth: a bearer admin token from
``ONYX_R2R_ADMIN_TOKEN`` (``Authorization: Bearer <token>``); anything else gets 403,
and with no token configured every request gets 403.  The tenant comes from the
``X-Onyx-Tenant`` header, else ``ONYX_R2R_DEFAULT_TENANT`` (default ``public``).
Bridge settings come from the environment (``R2R_*``, ``ONYX_R2R_*``; see README).

Run it::

    .venv/bin/python -m onyx.server.r2r.standalone --port 8090
    # or: uvicorn onyx.server.r2r.standalone:app --port 8090

The API is at ``/admin/r2r/...`` as on Onyx's API server (Onyx's web proxy strips the
``/api`` prefix the browser uses; the harness's dev server does the same).
"""

import argparse
import hmac
import logging
import os
import re
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from onyx.r2r_sender.config import BridgeSettings
from onyx.server.r2r.api import AdminContext, create_router

ADMIN_TOKEN_ENV = "ONYX_R2R_ADMIN_TOKEN"  # noqa: S105 - a variable name
DEFAULT_TENANT_ENV = "ONYX_R2R_DEFAULT_TENANT"
TENANT_HEADER = "X-Onyx-Tenant"
_TENANT_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_ERROR_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}


def bearer_admin_auth(token: str | None) -> Callable[..., None]:
    """A dependency admitting only ``Authorization: Bearer <token>`` (403 otherwise)."""
    expected = (token or "").strip()

    def require_admin(authorization: Annotated[str | None, Header()] = None) -> None:
        if not expected:
            raise HTTPException(
                status_code=403,
                detail=f"Admin access required: no admin token is configured ({ADMIN_TOKEN_ENV}).",
            )
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), expected.encode()
        ):
            raise HTTPException(
                status_code=403,
                detail="Admin access required: you are not signed in as an admin.",
            )

    return require_admin


def header_tenant(default: str) -> Callable[..., str]:
    """A dependency reading the tenant from ``X-Onyx-Tenant`` (else *default*)."""

    def tenant(x_onyx_tenant: Annotated[str | None, Header()] = None) -> str:
        value = (x_onyx_tenant or "").strip() or default
        if not _TENANT_RE.match(value):
            raise HTTPException(status_code=400, detail="The X-Onyx-Tenant header is not valid.")
        return value

    return tenant


def create_app(
    *,
    settings: BridgeSettings | None = None,
    admin_token: str | None = None,
    default_tenant: str | None = None,
    context: AdminContext | Callable[[], AdminContext] | None = None,
    auth: Callable[..., Any] | None = None,
) -> FastAPI:
    """The standalone admin app (arguments override the environment)."""
    token = admin_token if admin_token is not None else os.environ.get(ADMIN_TOKEN_ENV, "")
    tenant = default_tenant or os.environ.get(DEFAULT_TENANT_ENV, "") or "public"
    app = FastAPI(title="onyx-r2r admin", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            status_code=exc.status_code,
            content={
                "detail": exc.detail if isinstance(exc.detail, str) else "Request failed.",
                "error": _ERROR_CODES.get(exc.status_code, "http_error"),
            },
            headers=getattr(exc, "headers", None),
        )

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(
        create_router(
            auth=auth or bearer_admin_auth(token),
            tenant=header_tenant(tenant),
            settings=settings,
            context=context,
            passthrough=(),
        )
    )
    return app


def __getattr__(name: str) -> Any:
    """``app`` (for ``uvicorn onyx.server.r2r.standalone:app``) is built on first access,
    not when the module is imported."""
    if name == "app":
        value = create_app()
        globals()["app"] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: Sequence[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(description="Serve the R2R admin API on its own.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:  # the bridge's own log lines (never secrets)
        logging.basicConfig(
            level=args.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
