"""document_payload: lz4 TOAST compression for payload text (cheaper host writes)

Revision ID: 0003_payload_lz4
Revises: 0002_tenant_config
Create Date: 2026-11-20

pglz (PostgreSQL's default) compresses at roughly a tenth of lz4's speed and the
host pays for it inside ``send_batch``; lz4 is built into Debian's and the
official PostgreSQL 14+ packages.  Servers built without lz4 keep pglz.
"""

from alembic import op
from sqlalchemy import text

revision = "0003_payload_lz4"
down_revision = "0002_tenant_config"
branch_labels = None
depends_on = None

SCHEMA = "r2r_bridge"
COLUMNS = ("text_content", "chunks", "r2r_metadata")


def _has_lz4() -> bool:
    bind = op.get_bind()
    version = bind.execute(text("SHOW server_version_num")).scalar()
    if int(version) < 140000:
        return False
    try:
        with bind.begin_nested():
            bind.execute(text("SET LOCAL default_toast_compression = 'lz4'"))
        return True
    except Exception:  # noqa: BLE001 - built without lz4
        return False


def upgrade() -> None:
    if not _has_lz4():
        return
    for column in COLUMNS:
        op.execute(
            f'ALTER TABLE "{SCHEMA}".document_payload ALTER COLUMN {column} SET COMPRESSION lz4'
        )


def downgrade() -> None:
    if not _has_lz4():
        return
    for column in COLUMNS:
        op.execute(
            f'ALTER TABLE "{SCHEMA}".document_payload ALTER COLUMN {column} SET COMPRESSION pglz'
        )
