"""document_state: the due index also orders by document_id (claims stop early)

Revision ID: 0004_due_index_order
Revises: 0003_payload_lz4
Create Date: 2026-11-21

Claims take due rows ``ORDER BY next_attempt_at, document_id LIMIT n``.  With the
index on (tenant_id, next_attempt_at) only, rows recorded by one batch share a
``next_attempt_at`` and had to be sorted; with document_id in the index the scan
returns them in claim order and stops after *n*.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_due_index_order"
down_revision = "0003_payload_lz4"
branch_labels = None
depends_on = None

SCHEMA = "r2r_bridge"


def upgrade() -> None:
    op.drop_index("ix_document_state_due", table_name="document_state", schema=SCHEMA)
    op.create_index(
        "ix_document_state_due",
        "document_state",
        ["tenant_id", "next_attempt_at", "document_id"],
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index("ix_document_state_due", table_name="document_state", schema=SCHEMA)
    op.create_index(
        "ix_document_state_due",
        "document_state",
        ["tenant_id", "next_attempt_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'pending'"),
    )
