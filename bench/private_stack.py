"""A private R2R instance for a benchmark: ``scripts/stack`` with its own directory, port and databases.

The shared local stack (R2R on 127.0.0.1:7272, database ``r2r_stack``) is never touched:
the instance gets its own ``STACK_DIR`` (under ``.bench-stacks/``), its own R2R port and
its own R2R, ledger and test databases on the same PostgreSQL, and its own embedding stub
on port + 1000 (the shared stub's ``/control`` outage switch, used by tests, must not
fail a benchmark's creates).  Its R2R virtualenv is a copy of an
existing one (``cp -a``, seconds) when there is one, else ``scripts/stack`` installs it.
On exit R2R is stopped and, unless ``keep``, the databases and the directory are removed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
from benchlib import REPO, read_stack_env, stack_dir

STACK = REPO / "scripts" / "stack"
PRIVATE_ROOT = REPO / ".bench-stacks"
ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


@dataclass
class PrivateStack:
    """One private instance: its facts (``stack.env``) and how to restart its R2R."""

    name: str
    port: int
    directory: Path
    env: dict[str, str] = field(default_factory=dict)
    patched: bool = True

    @property
    def r2r_db(self) -> str:
        return f"r2r_bench_{self.name}"

    @property
    def dsn(self) -> str:
        """libpq connection string of this instance's R2R database."""
        return f"host=127.0.0.1 port=5432 user=postgres dbname={self.r2r_db}"

    @property
    def databases(self) -> list[str]:
        return [self.r2r_db, f"onyx_r2r_bench_{self.name}", f"onyx_r2r_test_bench_{self.name}"]

    def stack_environ(self, *, patched: bool) -> dict[str, str]:
        """The environment that points ``scripts/stack`` at this instance."""
        r2r_db, ledger_db, test_db = self.databases
        return {
            **os.environ,
            "STACK_DIR": str(self.directory),
            "STACK_R2R_PORT": str(self.port),
            "STACK_R2R_DB": r2r_db,
            "STACK_LEDGER_DB": ledger_db,
            "STACK_TEST_DB": test_db,
            "STACK_STUB_PORT": str(self.port + 1000),
            "STACK_R2R_PATCHES": "on" if patched else "off",
            # the shared R2R keeps 50 of PostgreSQL's 100 connections: a second R2R with
            # the same pool would leave the tests and workers none
            "STACK_R2R_MAX_CONNECTIONS": "20",
        }

    def up(self, *, patched: bool) -> dict[str, str]:
        """Start (or restart, when the patch choice changed) this instance's R2R; its facts."""
        subprocess.run(
            [str(STACK), "up", "--quiet"], check=True, env=self.stack_environ(patched=patched)
        )
        self.patched = patched
        self.env = read_stack_env(self.directory)
        return self.env

    def stop(self) -> None:
        """Stop this instance's R2R and stub (``scripts/stack down``; PostgreSQL and Redis are external)."""
        subprocess.run(
            [str(STACK), "down"],
            check=False,
            env=self.stack_environ(patched=self.patched),
            stdout=subprocess.DEVNULL,
        )

    def drop_databases(self) -> None:
        """Drop this instance's three databases."""
        conn = psycopg2.connect(ADMIN_DSN)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                for db in self.databases:
                    cur.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        finally:
            conn.close()


def _seed_venv(directory: Path) -> None:
    """Copy an existing R2R venv into *directory* (scripts/stack keeps it when it matches)."""
    target = directory / "r2r-venv"
    if target.exists():
        return
    for source in (stack_dir() / "r2r-venv", REPO / ".stack" / "r2r-venv"):
        if (source / ".stack-constraints.sha256").is_file():
            subprocess.run(["cp", "-a", str(source), str(target)], check=True)
            return


@contextmanager
def private_stack(
    name: str, *, port: int, patched: bool = True, keep: bool = False, fresh: bool = True
) -> Iterator[PrivateStack]:
    """A private R2R instance for the block (see the module docstring).

    ``fresh`` drops leftovers of an earlier run of the same name first.  Raises
    ``ValueError`` for the shared stack's port or a name that is not a plain word.
    """
    if port == 7272 or not name.isidentifier() or name != name.lower():
        raise ValueError("a private stack needs a port other than 7272 and a lower-case name")
    stack = PrivateStack(name=name, port=port, directory=PRIVATE_ROOT / name)
    if fresh:
        stack.stop()
        stack.drop_databases()
        shutil.rmtree(stack.directory / "logs", ignore_errors=True)
        for leftover in ("secrets.env", "r2r_api_key", "stack.env", "r2r.toml"):
            (stack.directory / leftover).unlink(missing_ok=True)
    stack.directory.mkdir(parents=True, exist_ok=True)
    _seed_venv(stack.directory)
    try:
        stack.up(patched=patched)
        yield stack
    finally:
        stack.stop()
        if not keep:
            stack.drop_databases()
            shutil.rmtree(stack.directory, ignore_errors=True)
