"""Migrations go forward on a ledger that already holds data (a scratch database)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from stack_helpers import ensure_database

from onyx.r2r_sender.ledger import Ledger, migrate
from onyx.r2r_sender.ledger.models import SCHEMA

pytestmark = pytest.mark.integration


@pytest.fixture
def scratch(stack) -> Iterator[Engine]:
    base, _, _ = stack["ONYX_R2R_TEST_DATABASE_URL"].rpartition("/")
    name = f"onyx_r2r_upgrade_{uuid.uuid4().hex[:8]}"
    ensure_database(f"{base}/{name}")
    engine = create_engine(f"{base}/{name}")
    yield engine
    engine.dispose()
    admin = create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


def test_0004_to_head_keeps_documents_and_tenant_choices(scratch, settings) -> None:
    migrate.upgrade(scratch, "0004_due_index_order")
    with scratch.begin() as conn:
        conn.execute(
            text(
                f"INSERT INTO {SCHEMA}.document_state (tenant_id, document_id, desired_seq, "
                "desired_version, desired_labels, status) VALUES "
                "('t', 'd1', 3, 'v1', ARRAY['acl:PUBLIC'], 'synced'), "
                "('t', 'd2', 1, 'v2', ARRAY['acl:x'], 'pending')"
            )
        )
        conn.execute(
            text(
                f"INSERT INTO {SCHEMA}.tenant_config (tenant_id, base_url, export_enabled, "
                "export_mode) VALUES ('on', 'http://r2r:7272', true, 'replace'), "
                "('off', 'http://r2r:7272', false, 'mirror')"
            )
        )
    migrate.upgrade(scratch)
    assert migrate.current_revision(scratch) == "0005_export_choice"
    ledger = Ledger(scratch, settings)
    states = ledger.desired_of("t", ["d1", "d2"])
    assert (states["d1"].version, states["d1"].labels, states["d1"].status) == (
        "v1",
        ["acl:PUBLIC"],
        "synced",
    )
    assert ledger.pending_count("t") == 1
    with scratch.begin() as conn:
        rows = dict(
            conn.execute(
                text(f"SELECT tenant_id, export_enabled FROM {SCHEMA}.tenant_config")
            ).all()
        )
        assert rows == {"on": True, "off": False}  # stored choices are kept
        # and a row can now hold no choice at all (the environment decides)
        conn.execute(
            text(
                f"INSERT INTO {SCHEMA}.tenant_config (tenant_id, base_url, export_mode) "
                "VALUES ('none', 'http://r2r:7272', 'mirror')"
            )
        )
        assert (
            conn.execute(
                text(f"SELECT export_enabled FROM {SCHEMA}.tenant_config WHERE tenant_id = 'none'")
            ).scalar()
            is None
        )
