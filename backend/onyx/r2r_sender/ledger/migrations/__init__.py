"""Alembic migrations of the ledger (own schema ``r2r_bridge``, own version table)."""
