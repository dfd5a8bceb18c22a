"""Shared fixtures.

Integration tests talk to the real local stack started by ``scripts/stack up``
(PostgreSQL, Redis, the embedding stub and a real R2R 3.6.6 server).  The stack
writes its connection facts to ``.stack/stack.env``; these fixtures read them.
Nothing here fakes R2R, Postgres or Redis.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from stack_helpers import (
    WorkerFactory,
    ensure_database,
    read_stack_env,
    run_stack,
)


@pytest.fixture(scope="session")
def stack() -> dict[str, str]:
    """The running local stack's facts (starts it when it is not up)."""
    run_stack("up", "--quiet")
    values = read_stack_env()
    if os.environ.get("ONYX_R2R_TEST_DB"):
        ensure_database(values["ONYX_R2R_TEST_DATABASE_URL"])
    return values


@pytest.fixture
def tenant_id() -> Iterator[str]:
    """A fresh tenant id, so tests never see each other's documents."""
    yield f"test_{uuid.uuid4().hex[:12]}"


# --------------------------------------------------------------------------
# Engine fixtures: the ledger in the real test database, real Celery worker
# processes on a per-test queue (so tests never share tasks), real Redis.
# --------------------------------------------------------------------------
@pytest.fixture(scope="session")
def ledger_engine(stack: dict[str, str]):
    """SQLAlchemy engine on the migrated test ledger database."""
    from onyx.r2r_sender.ledger import get_engine
    from onyx.r2r_sender.ledger.migrate import upgrade

    engine = get_engine(stack["ONYX_R2R_TEST_DATABASE_URL"])
    upgrade(engine)
    # A test session starts from an empty test ledger: rows left by earlier runs would
    # be swept into every test worker's queue (sweeps ring all tenants with due rows).
    from sqlalchemy import text

    with engine.begin() as conn:
        conn.execute(
            text(
                "TRUNCATE r2r_bridge.document_state, r2r_bridge.document_payload, "
                "r2r_bridge.collection_map, r2r_bridge.sync_cursor, r2r_bridge.reconcile_run, "
                "r2r_bridge.tenant_config"
            )
        )
    return engine


@pytest.fixture
def settings(stack: dict[str, str], ledger_engine):
    """Bridge settings for one test: the real stack, a private queue, fast retries."""
    from onyx.r2r_sender.config import BridgeSettings

    return BridgeSettings(
        r2r_base_url=stack["R2R_BASE_URL"],
        database_url=stack["ONYX_R2R_TEST_DATABASE_URL"],
        broker_url=stack["ONYX_R2R_BROKER_URL"],
        queue=f"r2r_mirror_test_{uuid.uuid4().hex[:10]}",
        sweep_interval_seconds=1.0,
        retry_base_seconds=0.5,
        retry_cap_seconds=5.0,
        breaker_cooldown_seconds=2.0,
        breaker_max_cooldown_seconds=5.0,
        client_retry_max_time=3.0,
        drain_slice_seconds=5.0,
    ).with_overrides(
        r2r_api_key=stack["R2R_API_KEY"],
        # workers log in (JWT): R2R bcrypt-checks API keys on every request
        r2r_email=stack["R2R_ADMIN_EMAIL"],
        r2r_password=stack["R2R_ADMIN_PASSWORD"],
    )


@pytest.fixture
def workers(settings, tmp_path: Path) -> Iterator[WorkerFactory]:
    """Start real worker processes for the test; all are stopped afterwards."""
    factory = WorkerFactory(settings=settings, tmp=tmp_path)
    yield factory
    factory.stop_all()


@pytest.fixture
def r2r_client(stack: dict[str, str]):
    """A real R2R client with the stack's superuser key."""
    from onyx.r2r_sender.client import R2RClient

    with R2RClient(stack["R2R_BASE_URL"], stack["R2R_API_KEY"]) as client:
        yield client


@pytest.fixture
def make_sender(settings):
    """Build an R2RDocumentSender for a tenant with the test's settings."""
    from onyx.r2r_integration.sender import R2RDocumentSender

    def build(tenant_id: str, **kwargs):
        return R2RDocumentSender(tenant_id=tenant_id, settings=settings, **kwargs)

    return build


@pytest.fixture
def embed_stub(stack: dict[str, str]) -> Iterator[Callable[..., dict]]:
    """Control the embedding stub (``fail_embeddings``, ``delay_seconds``); reset afterwards."""
    import httpx

    url = stack["EMBED_STUB_URL"]

    def control(**settings_: object) -> dict:
        if settings_:
            httpx.post(f"{url}/control", json=settings_, timeout=5).raise_for_status()
        return httpx.get(f"{url}/control", timeout=5).json()

    yield control
    httpx.post(f"{url}/control/reset", timeout=5).raise_for_status()
