"""A small fake BookStack server: the part of its REST API Onyx's BookStack connector reads.

``GET /api/books|chapters|shelves|pages`` (``count``, ``offset``, ``sort=+id``,
``filter[updated_at:gte]``/``filter[updated_at:lte]`` as ISO date-times, answered as
``{"data": [...], "total": n}``) and ``GET /api/pages/{id}`` (``html``, ``slug``, times).
Any ``Authorization: Token id:secret`` header is accepted; none gets 401. Tests edit and
delete items while it runs (:meth:`FakeBookStack.edit_page`, :meth:`delete_book`); every
change stamps ``updated_at`` with the current UTC time, as BookStack does. Stdlib only.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

_KINDS = ("books", "chapters", "shelves", "pages")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: str) -> datetime:
    """BookStack's times and the connector's filter values (naive = UTC)."""
    text = value.rstrip("Z").split(".")[0]
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)


class FakeBookStack:
    """The fake's state (items per kind) and its HTTP server on 127.0.0.1."""

    def __init__(self) -> None:
        self.items: dict[str, dict[int, dict[str, Any]]] = {kind: {} for kind in _KINDS}
        self.requests: list[str] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                return

            def do_GET(self) -> None:
                url = urlparse(self.path)
                with fake.lock:
                    fake.requests.append(self.path)
                if not self.headers.get("Authorization", "").startswith("Token "):
                    self._send(401, {"error": {"message": "no token"}})
                    return
                parts = [p for p in url.path.split("/") if p]
                if len(parts) == 2 and parts[0] == "api" and parts[1] in _KINDS:
                    self._send(200, fake.listing(parts[1], parse_qs(url.query)))
                elif len(parts) == 3 and parts[:2] == ["api", "pages"] and parts[2].isdigit():
                    page = fake.page(int(parts[2]))
                    self._send(200 if page else 404, page or {"error": {"message": "not found"}})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeBookStack:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ------------------------------------------------------------------ content
    def add_book(self, book_id: int, name: str, description: str) -> None:
        stamp = _now()
        with self.lock:
            self.items["books"][book_id] = {
                "id": book_id, "name": name, "slug": f"book-{book_id}",
                "description": description, "created_at": stamp, "updated_at": stamp,
            }  # fmt: skip

    def add_page(self, page_id: int, book_id: int, name: str, html: str) -> None:
        stamp = _now()
        with self.lock:
            self.items["pages"][page_id] = {
                "id": page_id, "book_id": book_id, "book_slug": f"book-{book_id}",
                "name": name, "slug": f"page-{page_id}", "html": html,
                "created_at": stamp, "updated_at": stamp,
            }  # fmt: skip

    def edit_page(self, page_id: int, html: str) -> None:
        with self.lock:
            self.items["pages"][page_id].update(html=html, updated_at=_now())

    def delete_book(self, book_id: int) -> None:
        with self.lock:
            del self.items["books"][book_id]

    # ------------------------------------------------------------------ API answers
    def listing(self, kind: str, query: dict[str, list[str]]) -> dict[str, Any]:
        count = int(query.get("count", ["100"])[0])
        offset = int(query.get("offset", ["0"])[0])
        gte = query.get("filter[updated_at:gte]", [None])[0]
        lte = query.get("filter[updated_at:lte]", [None])[0]
        with self.lock:
            rows = sorted(self.items[kind].values(), key=lambda item: item["id"])
            if gte:
                rows = [r for r in rows if _parse(r["updated_at"]) >= _parse(gte)]
            if lte:
                rows = [r for r in rows if _parse(r["updated_at"]) <= _parse(lte)]
            summary = [
                {k: v for k, v in row.items() if k != "html"}
                for row in rows[offset : offset + count]
            ]
            return {"data": summary, "total": len(rows)}

    def page(self, page_id: int) -> dict[str, Any] | None:
        with self.lock:
            page = self.items["pages"].get(page_id)
            return dict(page) if page else None
