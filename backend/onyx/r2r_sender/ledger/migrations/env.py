"""Alembic environment for the ledger.

Runs with the URL and connection handed over by :mod:`onyx.r2r_sender.ledger.migrate`
(``config.attributes['connection']``), or from ``sqlalchemy.url``.  The version
table lives in the engine's own schema so it never touches the host's alembic.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text

from onyx.r2r_sender.ledger.models import SCHEMA, VERSION_TABLE, Base

config = context.config


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{SCHEMA}"'))
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        version_table_schema=SCHEMA,
        include_schemas=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported for the ledger")
run_migrations_online()
