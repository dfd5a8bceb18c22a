"""The AppAPI lifecycle routes of the ExApp (in place of nc_py_api's ``set_handlers``).

:func:`install_lifecycle` registers on CCBE's FastAPI app:

* ``GET /heartbeat`` → ``{"status": "ok"}``; nc_py_api's ``AppAPIAuthMiddleware`` always
  exempts it from authentication (as upstream).
* ``PUT /enabled?enabled=0|1`` → ``{"error": ""}`` or ``{"error": "<why>"}``: calls CCBE's
  ``enabled_handler(enabled, nc)``. ``enabled`` is read with FastAPI's ``Query`` (this
  module's namespace has no other ``Query``; CCBE v5.3's controller has a model of that
  name); anything but a boolean is FastAPI's 422 with the validation detail.
* ``POST /init`` → ``{}`` at once; the :class:`.init_job.InitJob` runs in the background.
* ``POST /trigger?providerId=…`` → ``{}`` (only with a *trigger_handler*).

Authentication is upstream's: the middleware CCBE adds (``AppAPIAuthMiddleware``: required
``EX-APP-ID``, ``EX-APP-VERSION`` and ``AUTHORIZATION-APP-API``, app id and secret compared),
and nc_py_api's own request dependency for the ``NextcloudApp`` handed to the handlers
(which checks the signature itself when CCBE runs without that middleware,
``disable_aaa: true``). Each of these routes logs its request headers at debug level with
every credential replaced by ``<redacted>``.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Callable, Mapping
from typing import Annotated, Any

import fastapi
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request

from .init_job import InitJob

__all__ = ["REDACTED", "install_lifecycle", "redacted_headers"]

logger = logging.getLogger("ccb.exapp")

REDACTED = "<redacted>"
_SECRET_HEADER = re.compile(r"authorization|cookie|secret|password|token|api-?key|shared-key", re.I)


def redacted_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """*headers* with the value of every credential-bearing header (``AUTHORIZATION-APP-API``,
    ``Authorization``, cookies, HaRP's shared key, anything named like a secret, token or
    key) replaced by :data:`REDACTED`."""
    return {
        name: REDACTED if _SECRET_HEADER.search(name) else value for name, value in headers.items()
    }


def _log_headers(request: Request) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "%s %s headers: %s",
            request.method,
            request.url.path,
            redacted_headers(request.headers),
        )


def _nextcloud_app(request: HTTPConnection) -> Any:
    """nc_py_api's ``NextcloudApp`` for an AppAPI request, as upstream's ``set_handlers``
    builds it (``nc_app``: the request's user and ``AA-REQUEST-ID``; the signature checked
    when no ``AppAPIAuthMiddleware`` did it), without its deprecation warning."""
    from nc_py_api.ex_app import nc_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return nc_app(request)


# (module level: FastAPI resolves the handlers' string annotations in this module's globals)
_NcApp = Annotated[Any, fastapi.Depends(_nextcloud_app)]
_Enabled = Annotated[bool, fastapi.Query(description="1 to enable, 0 to disable")]
_ProviderId = Annotated[str, fastapi.Query(alias="providerId")]


def install_lifecycle(
    app: fastapi.FastAPI,
    enabled_handler: Callable[[bool, Any], str],
    *,
    models_to_fetch: Mapping[str, Mapping[str, Any]] | None = None,
    trigger_handler: Callable[[str], None] | None = None,
    app_config: Any = None,
) -> InitJob:
    """Register the lifecycle routes (module docstring) on *app* and return the init job.

    *enabled_handler* is CCBE's (sync) ``enabled_handler(enabled, nc) -> str`` (``""`` =
    success); *trigger_handler* CCBE's sync ``trigger_handler(provider_id)``.
    *app_config* defaults to ``app.extra["CONFIG"]``, where CCBE keeps its ``TConfig``.
    """
    config = app.extra["CONFIG"] if app_config is None else app_config
    init_job = InitJob(config, models_to_fetch)
    logged = [fastapi.Depends(_log_headers)]

    @app.get("/heartbeat", dependencies=logged)
    async def heartbeat() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.put("/enabled", dependencies=logged)
    async def enabled(enabled: _Enabled, nc: _NcApp) -> JSONResponse:
        error = await run_in_threadpool(enabled_handler, enabled, nc)
        return JSONResponse({"error": error or ""})

    @app.post("/init", dependencies=logged)
    async def init(nc: _NcApp) -> JSONResponse:
        init_job.start(nc)
        return JSONResponse({})

    if trigger_handler is not None:

        @app.post("/trigger", dependencies=logged)
        async def trigger(provider_id: _ProviderId) -> JSONResponse:
            await run_in_threadpool(trigger_handler, provider_id)
            return JSONResponse({})

    return init_job
