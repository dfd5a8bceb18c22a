"""``EX-APP-VERSION`` on every HTTP response (AppAPI's version of this ExApp).

One pure ASGI middleware, added once in CCBE's ``main.py`` (``app.add_middleware``), where it
becomes the outermost user middleware: the 401s of nc_py_api's ``AppAPIAuthMiddleware``,
FastAPI's 422s, CCBE's error answers and unhandled errors (answered here with a 500, then
re-raised so the server logs them) all carry the header.
"""

from __future__ import annotations

import json
import os
from typing import Any

__all__ = ["HEADER", "ExAppVersionHeader"]

HEADER = "EX-APP-VERSION"
_HEADER_KEY = HEADER.lower().encode("latin-1")

Scope = dict[str, Any]
Message = dict[str, Any]


class ExAppVersionHeader:
    """ASGI middleware: ``EX-APP-VERSION: <version>`` on every HTTP response, exactly once.

    *version* defaults to ``APP_VERSION`` from the environment (what AppAPI deploys the
    ExApp with), read when the middleware is built. A header of that name set by the app is
    replaced. When the app raises before it started a response, the middleware answers
    ``500 {"error": "Internal Server Error"}`` with the header and re-raises.
    """

    def __init__(self, app: Any, version: str | None = None) -> None:
        self.app = app
        value = os.environ.get("APP_VERSION", "") if version is None else version
        self.version = value.strip().encode("latin-1")

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_with_version(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [
                    (key, value)
                    for key, value in message.get("headers", [])
                    if key.lower() != _HEADER_KEY
                ]
                headers.append((_HEADER_KEY, self.version))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_version)
        except Exception:
            if not started:
                body = json.dumps({"error": "Internal Server Error"}).encode()
                await send_with_version(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send_with_version({"type": "http.response.body", "body": body})
            raise
