"""tenant_config (per-tenant R2R credential, encrypted), sync_cursor, reconcile_run

Revision ID: 0002_tenant_config
Revises: 0001_ledger
Create Date: 2026-11-20
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0002_tenant_config"
down_revision = "0001_ledger"
branch_labels = None
depends_on = None

SCHEMA = "r2r_bridge"


def upgrade() -> None:
    # One row per tenant: where its R2R is, how to authenticate (secrets encrypted at
    # rest by the credentials module; never stored in clear), and the export switch.
    op.create_table(
        "tenant_config",
        sa.Column("tenant_id", sa.Text, primary_key=True),
        sa.Column("credential_type", sa.Text, nullable=False, server_default="r2r_api"),
        sa.Column("base_url", sa.Text, nullable=False),
        sa.Column("api_key_ciphertext", sa.LargeBinary),
        sa.Column("login_email", sa.Text),
        sa.Column("password_ciphertext", sa.LargeBinary),
        sa.Column("secret_hint", sa.Text),  # e.g. "key_Ab…9xQ", safe to show
        sa.Column("key_version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("export_enabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("export_mode", sa.Text, nullable=False, server_default="mirror"),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint("export_mode IN ('mirror', 'replace')", name="ck_tenant_config_mode"),
        schema=SCHEMA,
    )
    # Resumable cursors of long jobs (backfill, reconciliation), per tenant and job.
    op.create_table(
        "sync_cursor",
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("job", sa.Text, nullable=False),
        sa.Column("cursor", pg.JSONB, nullable=False, server_default="{}"),
        sa.Column("state", sa.Text, nullable=False, server_default="idle"),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("tenant_id", "job"),
        schema=SCHEMA,
    )
    # Results of reconciliation runs (what was found and repaired), newest first.
    op.create_table(
        "reconcile_run",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column(
            "started_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("outcome", sa.Text, nullable=False, server_default="running"),
        sa.Column("result", pg.JSONB, nullable=False, server_default="{}"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_reconcile_run_tenant", "reconcile_run", ["tenant_id", "started_at"], schema=SCHEMA
    )


def downgrade() -> None:
    op.drop_index("ix_reconcile_run_tenant", table_name="reconcile_run", schema=SCHEMA)
    op.drop_table("reconcile_run", schema=SCHEMA)
    op.drop_table("sync_cursor", schema=SCHEMA)
    op.drop_table("tenant_config", schema=SCHEMA)
