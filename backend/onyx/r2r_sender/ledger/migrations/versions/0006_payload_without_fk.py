"""document_payload: its rows go with their state rows by a delete trigger, not a foreign key

Revision ID: 0006_payload_without_fk
Revises: 0005_export_choice
Create Date: 2026-12-04

The foreign key ran PostgreSQL's referential-integrity trigger once per inserted payload
row: an index lookup and a ``FOR KEY SHARE`` lock (a WAL record) on the state row the same
transaction had just written.  In ``send_batch`` of 100 new documents that was 0.5-0.8 ms
of the payload insert's 2.1-2.5 ms of execution.  The ledger writes a payload only in the
transaction that writes its state row, so the check never had anything to catch; what the
key also did, deleting a document's payload with its state row (``ON DELETE CASCADE``:
an operator resetting a tenant by hand, the tests' clean-ups), a statement-level trigger on
``document_state`` now does, and it costs nothing on insert.
"""

from alembic import op

revision = "0006_payload_without_fk"
down_revision = "0005_export_choice"
branch_labels = None
depends_on = None

SCHEMA = "r2r_bridge"
FUNCTION = f"{SCHEMA}.delete_payloads_of_deleted_states"
TRIGGER = "document_state_deletes_payloads"
# the name PostgreSQL gave 0001's unnamed key
FOREIGN_KEY = "document_payload_tenant_id_document_id_fkey"


def upgrade() -> None:
    op.execute(
        f"CREATE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "BEGIN\n"
        f"  DELETE FROM {SCHEMA}.document_payload p USING deleted_states d\n"
        "   WHERE p.tenant_id = d.tenant_id AND p.document_id = d.document_id;\n"
        "  RETURN NULL;\n"
        "END $$"
    )
    op.execute(
        f"CREATE TRIGGER {TRIGGER} AFTER DELETE ON {SCHEMA}.document_state "
        "REFERENCING OLD TABLE AS deleted_states FOR EACH STATEMENT "
        f"EXECUTE FUNCTION {FUNCTION}()"
    )
    op.drop_constraint(FOREIGN_KEY, "document_payload", type_="foreignkey", schema=SCHEMA)


def downgrade() -> None:
    op.execute(f"DROP TRIGGER IF EXISTS {TRIGGER} ON {SCHEMA}.document_state")
    op.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}()")
    # rows the constraint would reject (a payload inserted without its state row)
    op.execute(
        f"DELETE FROM {SCHEMA}.document_payload p WHERE NOT EXISTS ("
        f"SELECT 1 FROM {SCHEMA}.document_state s "
        "WHERE s.tenant_id = p.tenant_id AND s.document_id = p.document_id)"
    )
    op.create_foreign_key(
        FOREIGN_KEY,
        "document_payload",
        "document_state",
        ["tenant_id", "document_id"],
        ["tenant_id", "document_id"],
        source_schema=SCHEMA,
        referent_schema=SCHEMA,
        ondelete="CASCADE",
    )
