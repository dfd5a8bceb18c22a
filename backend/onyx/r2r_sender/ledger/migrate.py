"""Run the ledger's alembic migrations from code (also behind ``onyx-r2r migrate``).

The ledger keeps its own schema (``r2r_bridge``) and its own version table
(``r2r_bridge.alembic_version``), so it can share a database with Onyx without
touching Onyx's migrations.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

from onyx.r2r_sender.ledger.models import SCHEMA

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Serialises concurrent `migrate` calls (several workers starting at once).
_MIGRATE_LOCK_KEY = 0x52325242  # "R2RB"


def alembic_config() -> Config:
    """Return an alembic Config pointing at the packaged migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade the ledger schema to *revision* (idempotent, safe to run concurrently)."""
    cfg = alembic_config()
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATE_LOCK_KEY})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Downgrade the ledger schema to *revision* (``base`` drops every table)."""
    cfg = alembic_config()
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATE_LOCK_KEY})
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    """Return the ledger's applied revision, or None when never migrated."""
    with engine.connect() as conn:
        exists = conn.execute(
            text("SELECT to_regclass(:t)"), {"t": f"{SCHEMA}.alembic_version"}
        ).scalar()
        if exists is None:
            return None
        return conn.execute(text(f"SELECT version_num FROM {SCHEMA}.alembic_version")).scalar()
