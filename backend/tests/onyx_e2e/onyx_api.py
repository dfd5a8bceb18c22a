"""A small client for the parts of Onyx's HTTP API the end-to-end check drives.

Only what a running Onyx (a7d66a8) answers on its API server: register and log in a user
(basic auth, the first user is the admin), file and BookStack connectors with their
credentials and cc-pairs, indexing status, pruning, connector deletion, document sets,
the ingestion API and search (the admin keyword search and the hybrid
``/search/send-search-message``, an Enterprise Edition route). Every call raises
:class:`OnyxApiError` with the status and Onyx's ``detail`` on an HTTP error.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx


class OnyxApiError(RuntimeError):
    """Onyx answered an HTTP error; ``status`` and the body's ``detail`` are kept."""

    def __init__(self, method: str, path: str, status: int, detail: str) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {detail[:500]}")
        self.status = status
        self.detail = detail


class OnyxApi:
    """One logged-in Onyx user (session cookie) on ``base_url``."""

    def __init__(self, base_url: str, *, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    # ------------------------------------------------------------------ plumbing
    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        for _ in range(6):
            response = self.http.request(method, path, **kwargs)
            # the shared PostgreSQL full for a moment: Onyx failed before doing anything
            if response.status_code < 500 or "too many clients already" not in response.text:
                break
            time.sleep(2.0)
        if response.is_error:
            try:
                detail = str(response.json().get("detail", response.text))
            except ValueError:
                detail = response.text
            raise OnyxApiError(method, path, response.status_code, detail)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return response.text

    # ------------------------------------------------------------------ users
    def register_and_login(self, email: str, password: str) -> None:
        """Register *email* (ignored if it exists) and log in (the cookie stays on the client)."""
        try:
            self.request("POST", "/auth/register", json={"email": email, "password": password})
        except OnyxApiError as exc:
            if exc.status != 400:
                raise
        response = self.http.post("/auth/login", data={"username": email, "password": password})
        if response.status_code not in (200, 204):
            raise OnyxApiError("POST", "/auth/login", response.status_code, response.text)

    def me(self) -> dict[str, Any]:
        return self.request("GET", "/me")

    # ------------------------------------------------------------------ connectors
    def upload_files(self, files: dict[str, bytes]) -> dict[str, Any]:
        """Upload files for a file connector; returns ``file_paths``/``file_names``."""
        parts = [("files", (name, data, "text/plain")) for name, data in files.items()]
        return self.request("POST", "/manage/admin/connector/file/upload", files=parts)

    def create_cc_pair(
        self,
        *,
        name: str,
        source: str,
        input_type: str,
        connector_config: dict[str, Any],
        credential_json: dict[str, Any],
        refresh_freq: int | None = None,
        prune_freq: int | None = None,
        access_type: str = "public",
    ) -> dict[str, int]:
        """Connector + credential + cc-pair; returns their ids (``connector_id``, …)."""
        connector = self.request(
            "POST",
            "/manage/admin/connector",
            json={
                "name": name,
                "source": source,
                "input_type": input_type,
                "connector_specific_config": connector_config,
                "refresh_freq": refresh_freq,
                "prune_freq": prune_freq,
                "indexing_start": None,
                "access_type": access_type,
                "groups": [],
            },
        )
        credential = self.request(
            "POST",
            "/manage/credential",
            json={
                "name": name,
                "credential_json": credential_json,
                "admin_public": True,
                "source": source,
                "curator_public": True,
                "groups": [],
            },
        )
        pair = self.request(
            "PUT",
            f"/manage/connector/{connector['id']}/credential/{credential['id']}",
            json={"name": name, "access_type": access_type, "groups": []},
        )
        return {
            "connector_id": int(connector["id"]),
            "credential_id": int(credential["id"]),
            "cc_pair_id": int(pair["data"]),
        }

    def indexing_status(self, cc_pair_id: int) -> dict[str, Any] | None:
        """The cc-pair's row of ``/manage/admin/connector/indexing-status`` (None: gone)."""
        body = self.request(
            "POST", "/manage/admin/connector/indexing-status", json={"get_all_connectors": True}
        )
        for by_source in body:
            for row in by_source["indexing_statuses"]:
                if row["cc_pair_id"] == cc_pair_id:
                    return row
        return None

    def cc_pair(self, cc_pair_id: int) -> dict[str, Any]:
        return self.request("GET", f"/manage/admin/cc-pair/{cc_pair_id}")

    def wait_for_index_success(
        self, cc_pair_id: int, after: datetime, *, timeout: float = 240.0
    ) -> float:
        """Wait until the cc-pair's last success is newer than *after*; returns seconds waited."""
        start = time.monotonic()
        last: dict[str, Any] | None = None
        while time.monotonic() - start < timeout:
            try:
                last = self.indexing_status(cc_pair_id)
            except OnyxApiError as exc:  # a 5xx while a shared service is busy: ask again
                if exc.status < 500:
                    raise
                time.sleep(2.0)
                continue
            if last and not last.get("in_progress") and last.get("last_success"):
                if datetime.fromisoformat(last["last_success"]) > after:
                    return time.monotonic() - start
            if last and last.get("in_repeated_error_state"):
                raise RuntimeError(f"cc-pair {cc_pair_id}: indexing keeps failing: {last}")
            time.sleep(1.0)
        raise TimeoutError(f"cc-pair {cc_pair_id} not indexed in {timeout:.0f} s: {last}")

    def run_once(self, ids: dict[str, int], *, from_beginning: bool) -> None:
        """Trigger an indexing run now (``from_beginning``: a complete re-run)."""
        self.request(
            "POST",
            "/manage/admin/connector/run-once",
            json={
                "connector_id": ids["connector_id"],
                "credential_ids": [ids["credential_id"]],
                "from_beginning": from_beginning,
            },
        )

    def prune(self, cc_pair_id: int) -> None:
        self.request("POST", f"/manage/admin/cc-pair/{cc_pair_id}/prune")

    def delete_cc_pair(self, ids: dict[str, int]) -> None:
        """Pause and delete a cc-pair (Onyx deletes its documents in the background)."""
        self.request(
            "PUT", f"/manage/admin/cc-pair/{ids['cc_pair_id']}/status", json={"status": "PAUSED"}
        )
        self.request(
            "POST",
            "/manage/admin/deletion-attempt",
            json={"connector_id": ids["connector_id"], "credential_id": ids["credential_id"]},
        )

    # ------------------------------------------------------------------ document sets
    def create_document_set(self, name: str, cc_pair_ids: list[int]) -> int:
        return int(
            self.request(
                "POST",
                "/manage/admin/document-set",
                json={
                    "name": name,
                    "description": name,
                    "cc_pair_ids": cc_pair_ids,
                    "is_public": True,
                    "users": [],
                    "groups": [],
                    "federated_connectors": [],
                },
            )
        )

    def document_sets(self) -> list[dict[str, Any]]:
        return self.request("GET", "/manage/document-set")

    # ------------------------------------------------------------------ ingestion API
    def ingest(self, document: dict[str, Any], cc_pair_id: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"document": document}
        if cc_pair_id is not None:
            body["cc_pair_id"] = cc_pair_id
        return self.request("POST", "/onyx-api/ingestion", json=body)

    def delete_ingested(self, document_id: str) -> None:
        self.request("DELETE", f"/onyx-api/ingestion/{document_id}")

    # ------------------------------------------------------------------ search
    def keyword_search(self, query: str, **filters: Any) -> list[dict[str, Any]]:
        """Onyx's admin search (``R2RIndex.keyword_retrieval``): the documents found."""
        body = {
            "query": query,
            "filters": {
                "source_type": None,
                "document_set": None,
                "time_cutoff": None,
                "tags": None,
                **filters,
            },
        }
        return self.request("POST", "/admin/search", json=body)["documents"]

    def hybrid_search(
        self, query: str, *, document_set: list[str] | None = None, hybrid_alpha: float = 0.5
    ) -> list[dict[str, Any]]:
        """Onyx's search page (``R2RIndex.hybrid_retrieval``, no LLM): the documents found."""
        filters = {"document_set": document_set} if document_set else None
        body = self.request(
            "POST",
            "/search/send-search-message",
            json={
                "search_query": query,
                "filters": filters,
                "run_query_expansion": False,
                "num_hits": 30,
                "hybrid_alpha": hybrid_alpha,
                "stream": False,
            },
        )
        if body.get("error"):
            raise OnyxApiError("POST", "/search/send-search-message", 200, body["error"])
        return body["search_docs"]


def unique_word(prefix: str = "zq") -> str:
    """A word no other document contains (letters only, so every tokenizer keeps it whole)."""
    letters = "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:10])
    return prefix + letters


def wait_for(
    probe: Callable[[], Any], *, timeout: float, interval: float = 1.0, what: str = "condition"
) -> tuple[Any, float]:
    """Call *probe* until it returns a truthy value; returns (value, seconds waited)."""
    start = time.monotonic()
    last: Any = None
    while time.monotonic() - start < timeout:
        try:
            last = probe()
        except OnyxApiError as exc:  # Onyx's 5xx while a shared service restarts: retry
            if exc.status < 500:
                raise
            last = exc
        else:
            if last:
                return last, time.monotonic() - start
        time.sleep(interval)
    raise TimeoutError(f"{what}: not reached in {timeout:.0f} s (last: {last!r})")
