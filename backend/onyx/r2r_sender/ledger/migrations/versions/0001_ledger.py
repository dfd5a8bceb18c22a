"""ledger: document_state, document_payload, collection_map

Revision ID: 0001_ledger
Revises:
Create Date: 2026-11-20
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0001_ledger"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "r2r_bridge"


def upgrade() -> None:
    op.execute(f'CREATE SCHEMA IF NOT EXISTS "{SCHEMA}"')
    op.create_table(
        "document_state",
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("document_id", sa.Text, nullable=False),
        sa.Column("desired_seq", sa.BigInteger, nullable=False, server_default="1"),
        sa.Column("desired_version", sa.Text),
        sa.Column("desired_deleted", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("desired_labels", pg.ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column(
            "desired_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("applied_seq", sa.BigInteger),
        sa.Column("applied_version", sa.Text),
        sa.Column("applied_deleted", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("applied_r2r_id", pg.UUID(as_uuid=True)),
        sa.Column("applied_labels", pg.ARRAY(sa.Text)),
        sa.Column("applied_collections", pg.ARRAY(pg.UUID(as_uuid=True))),
        sa.Column("applied_at", sa.DateTime(timezone=True)),
        sa.Column(
            "pending_r2r_ids", pg.ARRAY(pg.UUID(as_uuid=True)), nullable=False, server_default="{}"
        ),
        sa.Column("status", sa.Text, nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.Column("last_error_class", sa.Text),
        sa.Column("last_error", sa.Text),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True)),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("tenant_id", "document_id"),
        sa.CheckConstraint(
            "status IN ('pending', 'synced', 'dead')", name="ck_document_state_status"
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_document_state_due",
        "document_state",
        ["tenant_id", "next_attempt_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_document_state_status", "document_state", ["tenant_id", "status"], schema=SCHEMA
    )
    op.create_index("ix_document_state_applied_at", "document_state", ["applied_at"], schema=SCHEMA)
    op.create_table(
        "document_payload",
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("document_id", sa.Text, nullable=False),
        sa.Column("version", sa.Text, nullable=False),
        sa.Column("text_content", sa.Text),
        sa.Column("chunks", pg.JSONB),
        sa.Column("r2r_metadata", pg.JSONB, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "document_id"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "document_id"],
            [f"{SCHEMA}.document_state.tenant_id", f"{SCHEMA}.document_state.document_id"],
            ondelete="CASCADE",
        ),
        schema=SCHEMA,
    )
    op.create_table(
        "collection_map",
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("principal", sa.Text, nullable=False),
        sa.Column("r2r_collection_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("tenant_id", "principal"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("collection_map", schema=SCHEMA)
    op.drop_table("document_payload", schema=SCHEMA)
    op.drop_index("ix_document_state_applied_at", table_name="document_state", schema=SCHEMA)
    op.drop_index("ix_document_state_status", table_name="document_state", schema=SCHEMA)
    op.drop_index("ix_document_state_due", table_name="document_state", schema=SCHEMA)
    op.drop_table("document_state", schema=SCHEMA)
