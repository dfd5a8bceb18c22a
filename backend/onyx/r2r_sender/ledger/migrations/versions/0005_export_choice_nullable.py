"""tenant_config.export_enabled: NULL = the tenant's admin stored no export choice

Revision ID: 0005_export_choice
Revises: 0004_due_index_order
Create Date: 2026-11-22

Saving a credential created the tenant's row with ``export_enabled = false``, which read as
"the admin switched the export off" and overrode the environment's switch.  A row now
holds an export choice only when the admin stored one (``set_export``); NULL means the
environment decides.  Existing rows keep their value (an old ``false`` cannot be told apart
from a real "off"); the admin page's "use the environment's setting" clears it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_export_choice"
down_revision = "0004_due_index_order"
branch_labels = None
depends_on = None

SCHEMA = "r2r_bridge"


def upgrade() -> None:
    op.alter_column(
        "tenant_config",
        "export_enabled",
        existing_type=sa.Boolean(),
        nullable=True,
        server_default=None,
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.execute(
        f"UPDATE {SCHEMA}.tenant_config SET export_enabled = false WHERE export_enabled IS NULL"
    )
    op.alter_column(
        "tenant_config",
        "export_enabled",
        existing_type=sa.Boolean(),
        nullable=False,
        server_default=sa.false(),
        schema=SCHEMA,
    )
