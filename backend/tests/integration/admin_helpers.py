"""Helpers of the admin API tests (real Postgres, Redis, R2R; nothing faked).

Also used as a script by the web end-to-end test (``scripts/web_test``):

    python backend/tests/integration/admin_helpers.py ledger-url      # prints the test ledger URL
    python backend/tests/integration/admin_helpers.py create-key      # prints JSON
    python backend/tests/integration/admin_helpers.py revoke-key KEY_ID
    python backend/tests/integration/admin_helpers.py cleanup TENANT

The script reads the stack's facts as the tests do (``tests/conftest.py``): with
``ONYX_R2R_TEST_DB`` set, the test ledger is that database of its own.
"""

from __future__ import annotations

import json
import logging
import sys
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, text

from onyx.r2r_sender.config import BridgeSettings
from onyx.r2r_sender.credentials_crypto import EncryptionKey, Keyring
from onyx.r2r_sender.ledger.models import SCHEMA
from onyx.r2r_sender.url_policy import UrlPolicy
from onyx.server.r2r.api import AdminContext
from onyx.server.r2r.standalone import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

ADMIN_TOKEN = "integration-admin-token-0123456789"
TEST_KEY = "integration-encryption-key-A-0123456789"
OTHER_KEY = "integration-encryption-key-B-9876543210"
ADMIN_USER_ID = str(uuid.uuid5(uuid.NAMESPACE_DNS, "admin@example.com"))


def admin_context(
    settings: BridgeSettings,
    *,
    key: str | None = TEST_KEY,
    allow_unencrypted: bool = False,
    url_policy: UrlPolicy = UrlPolicy.PRIVATE,
) -> AdminContext:
    keyring = Keyring(
        EncryptionKey(key, source="ONYX_R2R_ENCRYPTION_KEY") if key else None,
        allow_unencrypted=allow_unencrypted,
    )
    return AdminContext.build(settings, keyring=keyring, url_policy=url_policy)


@dataclass
class AdminClient:
    """A TestClient on the standalone app, signed in as admin for one tenant."""

    client: TestClient
    tenant_id: str
    context: AdminContext

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}", "X-Onyx-Tenant": self.tenant_id}

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.request(method, f"/admin/r2r{path}", headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)


def admin_client(context: AdminContext, tenant_id: str) -> AdminClient:
    app = create_app(context=context, admin_token=ADMIN_TOKEN)
    return AdminClient(TestClient(app), tenant_id, context)


def raw_config_row(engine: Engine, tenant_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = (
            conn.execute(
                text(f"SELECT * FROM {SCHEMA}.tenant_config WHERE tenant_id = :t"),
                {"t": tenant_id},
            )
            .mappings()
            .first()
        )
    return dict(row) if row is not None else None


def forget_tenant(engine: Engine, tenant_id: str) -> None:
    """Remove every row of the test tenant (credential, ledger, collections, runs)."""
    with engine.begin() as conn:
        for table in ("tenant_config", "document_state", "collection_map", "reconcile_run"):
            conn.execute(
                text(f"DELETE FROM {SCHEMA}.{table} WHERE tenant_id = :t"), {"t": tenant_id}
            )


# ------------------------------------------------------------- R2R API keys
def _admin_token(base_url: str, email: str, password: str) -> str:
    response = httpx.post(
        f"{base_url}/v3/users/login", data={"username": email, "password": password}, timeout=30
    )
    response.raise_for_status()
    return response.json()["results"]["access_token"]["token"]


def create_api_key(stack: dict[str, str], name: str = "onyx-r2r admin test") -> dict[str, str]:
    """A fresh R2R API key of the superuser: ``{"api_key", "key_id"}`` (revoke it after)."""
    base = stack["R2R_BASE_URL"]
    token = _admin_token(base, stack["R2R_ADMIN_EMAIL"], stack["R2R_ADMIN_PASSWORD"])
    response = httpx.post(
        f"{base}/v3/users/{ADMIN_USER_ID}/api-keys",
        json={"name": name, "description": "created by an onyx-r2r test; safe to delete"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    response.raise_for_status()
    results = response.json()["results"]
    return {"api_key": results["api_key"], "key_id": str(results["key_id"])}


def revoke_api_key(stack: dict[str, str], key_id: str) -> None:
    base = stack["R2R_BASE_URL"]
    token = _admin_token(base, stack["R2R_ADMIN_EMAIL"], stack["R2R_ADMIN_PASSWORD"])
    response = httpx.delete(
        f"{base}/v3/users/{ADMIN_USER_ID}/api-keys/{key_id}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    if response.status_code not in (200, 404):
        response.raise_for_status()


# ------------------------------------------------------------------ logging
class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = record.getMessage()
        except Exception:  # a broken format string is still captured raw
            line = f"{record.msg!r} {record.args!r}"
        if record.exc_info:
            line += "\n" + logging.Formatter().formatException(record.exc_info)
        self.lines.append(f"{record.name}: {line}")


@contextmanager
def captured_logs() -> Iterator[list[str]]:
    """Every log record of every logger (DEBUG and up) while the block runs."""
    handler = _Capture()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def sample_docs(prefix: str, count: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{prefix}-{i}",
            "semantic_identifier": f"Admin page sample {i}",
            "source": "web",
            "sections": [
                {"text": f"Document {i} about the admin page of the R2R mirror ({prefix})."}
            ],
            "metadata": {"topic": "admin"},
            "acl": ["PUBLIC"],
        }
        for i in range(count)
    ]


# ------------------------------------------------------------------- script
def _stack_env() -> dict[str, str]:
    """The stack's facts exactly as the tests read them (``ONYX_R2R_TEST_DB`` honoured)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # backend/tests
    from stack_helpers import read_stack_env

    return read_stack_env()


def _prepared_ledger_url(stack: dict[str, str]) -> str:
    """The test ledger's URL, its database created when missing and migrated."""
    from stack_helpers import ensure_database

    from onyx.r2r_sender.ledger import get_engine
    from onyx.r2r_sender.ledger.migrate import upgrade

    url = stack["ONYX_R2R_TEST_DATABASE_URL"]
    ensure_database(url)
    upgrade(get_engine(url))
    return url


def main(argv: list[str]) -> int:
    stack = _stack_env()
    if argv[:1] == ["ledger-url"]:
        print(_prepared_ledger_url(stack))
        return 0
    if argv[:1] == ["create-key"]:
        print(json.dumps(create_api_key(stack, "onyx-r2r web e2e")))
        return 0
    if argv[:1] == ["revoke-key"] and len(argv) == 2:
        revoke_api_key(stack, argv[1])
        return 0
    if argv[:1] == ["cleanup"] and len(argv) == 2:
        from onyx.r2r_sender.ledger import get_engine

        forget_tenant(get_engine(stack["ONYX_R2R_TEST_DATABASE_URL"]), argv[1])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
