"""Migrations go forward on a ledger that already holds data (a scratch database)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import IntegrityError
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
    assert migrate.current_revision(scratch) == _head()
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


def _head() -> str:
    return ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()


def _payload_ids(conn) -> list[str]:
    return list(
        conn.execute(
            text(f"SELECT document_id FROM {SCHEMA}.document_payload ORDER BY document_id")
        ).scalars()
    )


def _payload_foreign_keys(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT count(*) FROM pg_constraint "
                f"WHERE conrelid = CAST('{SCHEMA}.document_payload' AS regclass) AND contype = 'f'"
            )
        ).scalar_one()


def _insert_payload(conn, document_id: str) -> None:
    conn.execute(
        text(
            f"INSERT INTO {SCHEMA}.document_payload (tenant_id, document_id, version, "
            "text_content, r2r_metadata) VALUES ('t', :d, 'v', 'body', '{}')"
        ),
        {"d": document_id},
    )


def test_0006_payloads_still_go_with_their_state_rows_without_the_foreign_key(scratch) -> None:
    migrate.upgrade(scratch, "0005_export_choice")
    assert _payload_foreign_keys(scratch) == 1
    with scratch.begin() as conn:
        conn.execute(
            text(
                f"INSERT INTO {SCHEMA}.document_state (tenant_id, document_id, desired_version, "
                "desired_labels, status) VALUES "
                "('t', 'kept', 'v', ARRAY['acl:PUBLIC'], 'pending'), "
                "('t', 'gone', 'v', ARRAY['acl:PUBLIC'], 'pending'), "
                "('t', 'gone2', 'v', ARRAY['acl:PUBLIC'], 'pending')"
            )
        )
        for document_id in ("kept", "gone", "gone2"):
            _insert_payload(conn, document_id)
    migrate.upgrade(scratch)
    assert migrate.current_revision(scratch) == _head()
    assert _payload_foreign_keys(scratch) == 0
    with scratch.begin() as conn:
        # deleting state rows (one statement, several rows) still deletes their payloads
        conn.execute(
            text(f"DELETE FROM {SCHEMA}.document_state WHERE document_id IN ('gone', 'gone2')")
        )
        assert _payload_ids(conn) == ["kept"]
        _insert_payload(conn, "orphan")  # no check on insert any more
        assert _payload_ids(conn) == ["kept", "orphan"]

    migrate.downgrade(scratch, "0005_export_choice")
    assert _payload_foreign_keys(scratch) == 1
    with scratch.begin() as conn:
        assert _payload_ids(conn) == ["kept"]  # the row the key would reject is gone
        conn.execute(text(f"DELETE FROM {SCHEMA}.document_state WHERE document_id = 'kept'"))
        assert _payload_ids(conn) == []  # the key's cascade is back
    with pytest.raises(IntegrityError), scratch.begin() as conn:
        _insert_payload(conn, "orphan")
