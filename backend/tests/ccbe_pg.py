"""Scratch pgvector databases on the local stack's PostgreSQL, for the CCBE backend tests.

Used by ``integration/test_ccbe_supabase.py`` (project venv) and ``ccbe_contract`` (the CCBE
venv): psycopg 3 only. A scratch database is named after the test ledger database
(``ONYX_R2R_TEST_DB``, default ``onyx_r2r_test``) plus a purpose, so two checkouts never
share one; it is dropped and created again by whoever asks for it.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import psycopg

PG_SERVER = "postgresql://postgres@127.0.0.1:5432"


def stack_server_url(stack_dir: str | Path | None = None) -> str:
    """The server part of the stack's test database URL (``scripts/stack up`` writes it),
    as a libpq ``postgresql://`` URL without a database; :data:`PG_SERVER` without a stack file."""
    stack_env = Path(stack_dir or os.environ.get("STACK_DIR", "")) / "stack.env"
    if stack_env.is_file():
        for line in stack_env.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "ONYX_R2R_TEST_DATABASE_URL":
                url = re.sub(r"^postgresql\+\w+://", "postgresql://", value.strip())
                return url.rpartition("/")[0]
    return PG_SERVER


def scratch_name(purpose: str) -> str:
    """``<test ledger database>_<purpose>`` (at most 63 characters, PostgreSQL's limit)."""
    base = os.environ.get("ONYX_R2R_TEST_DB") or "onyx_r2r_test"
    name = f"{base}_{purpose}"
    if not re.fullmatch(r"[a-z0-9_]{1,63}", name):
        raise ValueError(f"unusable scratch database name {name!r}")
    return name


def fresh_vector_database(server_url: str, name: str) -> str:
    """Drop and create the database *name* with the ``vector`` extension; its libpq URL."""
    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{server_url}/{name}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    return url


def drop_database(server_url: str, name: str) -> None:
    """Drop the scratch database *name* (connections to it are ended)."""
    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def public_tables(url: str) -> list[str]:
    """The tables in the ``public`` schema of the database at *url*, sorted."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        ).fetchall()
    return [row[0] for row in rows]


@contextlib.contextmanager
def scratch_vector_database(stack: Mapping[str, str], purpose: str) -> Iterator[str]:
    """A fresh pgvector database on the stack's PostgreSQL for the duration of the block
    (named by :func:`scratch_name`); yields its ``postgresql://`` URL, drops it after."""
    server = stack["ONYX_R2R_TEST_DATABASE_URL"].replace("+psycopg2", "").rpartition("/")[0]
    name = scratch_name(purpose)
    url = fresh_vector_database(server, name)
    try:
        yield url
    finally:
        drop_database(server, name)
