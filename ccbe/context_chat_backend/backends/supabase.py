"""Supabase: upstream's pgvector flow on a Supabase database.

Supabase is PostgreSQL with the ``vector`` extension, so with ``SUPABASE_DB_URL`` this
backend is upstream's own ``vectordb.pgvector.VectorDB`` (same tables, same SQL, same
semantics, CCBE's embedding client) on that database, reached through a **pooler-safe**
engine: psycopg's ``prepare_threshold=None``, so no statement is ever prepared on the
server. Supabase's connection strings usually go through its pooler (Supavisor; port 6543
in transaction mode), which hands each transaction to any server connection, where a
prepared statement of an earlier transaction does not exist. The session pooler (5432) and
direct connections work the same way.

Settings (environment):

* ``SUPABASE_DB_URL``: the connection string Supabase gives (``postgresql://`` or
  ``postgres://``; it is used with psycopg 3 as ``postgresql+psycopg://``). Secret: it holds
  the database password, and it is never shown.
* without it, ``SUPABASE_URL`` + ``SUPABASE_ANON_KEY`` (the REST API) make a scaffold: the
  app boots, storage answers 501 with a message saying that ``SUPABASE_DB_URL`` is needed,
  and ``check_connection`` is ``False``.

``config.yaml`` ``vectordb: supabase: {…}`` passes keyword arguments through to upstream's
pgvector (and so to langchain-postgres' ``PGVector``), except ``connection``.

Unlike upstream's pgvector (which creates its tables in its constructor), construction does
no I/O: upstream's class is built on first use, in the process that uses it.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from ..vectordb.base import BaseVectorDB
from .scaffold import ScaffoldBackend
from .settings import env_text, setting_error

__all__ = ["VectorDB", "normalise_db_url", "pooler_safe_engine"]

logger = logging.getLogger("ccb.backends")

BACKEND = "supabase"
DB_URL_VAR = "SUPABASE_DB_URL"
PROBE_TIMEOUT_SECONDS = 5
_DRIVERS = {"postgres", "postgresql", "postgresql+psycopg"}


def normalise_db_url(raw: str) -> Any:
    """*raw* (a Supabase connection string) as a ``postgresql+psycopg://`` SQLAlchemy ``URL``
    (whose ``repr``/``str`` mask the password).

    Raises CCBE's ``DbException`` naming ``SUPABASE_DB_URL`` (never its value) when it is not
    a PostgreSQL URL with a host and a database, or names another driver.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(raw)
    except ArgumentError:
        raise setting_error(
            BACKEND, f"{DB_URL_VAR} is not a postgresql:// connection string"
        ) from None
    if url.drivername not in _DRIVERS:
        raise setting_error(
            BACKEND,
            f"{DB_URL_VAR} must be a postgresql:// connection string (psycopg 3 is used),"
            f" not {url.drivername}://",
        )
    if not url.host or not url.database:
        raise setting_error(BACKEND, f"{DB_URL_VAR} must name a host and a database")
    return url.set(drivername="postgresql+psycopg")


def pooler_safe_engine(url: Any) -> Any:
    """A SQLAlchemy engine for *url* (a string or ``URL``) that never prepares statements on
    the server.

    ``prepare_threshold=None`` turns psycopg's automatic server-side prepared statements
    off (by default a query is prepared on its 5th execution on a connection), which is what
    transaction-mode poolers need. Connections are checked before use (``pool_pre_ping``):
    a pooler closes idle ones.
    """
    from sqlalchemy import create_engine

    return create_engine(url, connect_args={"prepare_threshold": None}, pool_pre_ping=True)


def _rest_scaffold_detail() -> str | None:
    """The 501 detail when only the REST settings are there; ``None`` when they are not."""
    url, key = env_text(None, "SUPABASE_URL"), env_text(None, "SUPABASE_ANON_KEY")
    if not (url and key):
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise setting_error(BACKEND, "SUPABASE_URL must be the project's https:// URL")
    return (
        f"{DB_URL_VAR} is not set; SUPABASE_URL and SUPABASE_ANON_KEY alone cannot hold the"
        f" vectors: set {DB_URL_VAR} to the database connection string from the Supabase"
        " dashboard (Connect)"
    )


def _why_not(error: BaseException, where: str, database: str | None) -> str:
    """A connection error of psycopg as one line for the admin (no server text is quoted:
    it may echo connection parameters)."""
    text = str(error).lower()
    if "authentication failed" in text or ('role "' in text and "does not exist" in text):
        return f"the database at {where} refused the credentials in {DB_URL_VAR}"
    if "does not exist" in text:
        return f"the database at {where} has no database {database!r}"
    if "refused" in text:
        return f"cannot reach the database at {where}: connection refused"
    if "timeout" in text or "timed out" in text:
        return f"cannot reach the database at {where}: timed out"
    if (
        "name or service not known" in text
        or "translate host name" in text
        or "name resolution" in text
    ):
        return f"cannot reach the database at {where}: unknown host"
    return f"cannot use the database at {where}: {type(error).__name__}"


class _RestScaffold(ScaffoldBackend):
    backend_name = BACKEND


class VectorDB(BaseVectorDB):
    """The Supabase backend (see the module docstring).

    Every storage method runs upstream's pgvector method of the same name on the Supabase
    database (or raises the scaffold's 501).
    """

    client: Any = None

    def __init__(self, embedding: Any = None, **kwargs: Any) -> None:
        """Read ``SUPABASE_DB_URL`` (or the REST settings of the scaffold); no I/O.

        Raises CCBE's ``DbException`` naming the variable when neither is usable, when
        ``SUPABASE_DB_URL`` is set but CCBE passed no embedding client, or for a
        ``connection`` key in ``config.yaml`` (the URL comes from ``SUPABASE_DB_URL``).
        """
        super().__init__(embedding)
        if "connection" in kwargs:
            raise setting_error(
                BACKEND, f"set {DB_URL_VAR} instead of config.yaml vectordb.supabase.connection"
            )
        self.pg_kwargs = dict(kwargs)
        self.db_url: Any = None  # sqlalchemy URL: its repr/str hide the password
        self.scaffold: ScaffoldBackend | None = None
        self._pg: Any = None
        raw = env_text(None, DB_URL_VAR)
        if raw:
            if embedding is None:
                raise setting_error(
                    BACKEND, "needs CCBE's embedding client (it embeds like pgvector)"
                )
            self.db_url = normalise_db_url(raw)
            return
        detail = _rest_scaffold_detail()
        if detail is None:
            raise setting_error(
                BACKEND,
                f"{DB_URL_VAR} is not set (the database connection string Supabase gives,"
                " pooler included)",
            )
        self.scaffold = _RestScaffold(embedding, detail=detail)

    # ------------------------------------------------------------------ plumbing
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_pg"] = None  # connections stay in the process that opened them
        state.pop("client", None)
        return state

    def _target(self) -> Any:
        """The scaffold, or upstream's pgvector on the pooler-safe engine (built once)."""
        if self.scaffold is not None:
            return self.scaffold
        if self._pg is None:
            from ..vectordb.pgvector import VectorDB as PgVectorDB

            assert self.db_url is not None
            engine = pooler_safe_engine(self.db_url)
            self._pg = PgVectorDB(self.embedding, connection=engine, **self.pg_kwargs)
            self.client = self._pg.client
        return self._pg

    def check_connection(self, origin: str) -> bool:
        """The embedding client's own probe (when it has one) and a ``SELECT 1`` on the
        database with a 5 s connect timeout; ``False`` for the scaffold. Never raises."""
        if self.scaffold is not None:
            return self.scaffold.check_connection(origin)
        probe_embedder = getattr(self.embedding, "check_connection", None)
        if probe_embedder is not None and not probe_embedder(origin):
            return False
        problem = self._database_problem()
        if problem:
            logger.warning("[%s] %s", origin, problem)
            return False
        return True

    def diagnose(self, origin: str) -> str:
        """What keeps the database from working (the contract's optional hook): the
        scaffold's 501 message, or the database unreachable / refusing the credentials /
        missing; ``""`` when a ``SELECT 1`` works. CCBE's embedding server is not probed
        (the local one starts only once the app is enabled). Never raises."""
        if self.scaffold is not None:
            return self.scaffold.diagnose(origin)
        return self._database_problem()

    def _database_problem(self) -> str:
        """``""`` when ``SELECT 1`` works on the database, else why not (host and port, never
        the password)."""
        import psycopg

        assert self.db_url is not None
        where = f"{self.db_url.host}:{self.db_url.port or 5432}"
        conninfo = self.db_url.set(drivername="postgresql").render_as_string(hide_password=False)
        try:
            with psycopg.connect(
                conninfo,
                connect_timeout=PROBE_TIMEOUT_SECONDS,
                prepare_threshold=None,
            ) as conn:
                conn.execute("SELECT 1")
        except (psycopg.Error, OSError) as e:
            return f"RAG backend {BACKEND}: {_why_not(e, where, self.db_url.database)}"
        return ""

    # ------------------------------------------------------------ BaseVectorDB
    def get_users(self) -> list[str]:
        return self._target().get_users()

    def get_instance(self) -> Any:
        return self._target().get_instance()

    def add_indocuments(self, indocuments: Any) -> Any:
        return self._target().add_indocuments(indocuments)

    def check_sources(self, sources: Any) -> tuple[list[str], list[str]]:
        return self._target().check_sources(sources)

    def update_access(self, op: Any, user_ids: list[str], source_id: str) -> None:
        self._target().update_access(op, user_ids, source_id)

    def update_access_provider(self, op: Any, user_ids: list[str], provider_id: str) -> None:
        self._target().update_access_provider(op, user_ids, provider_id)

    def delete_source_ids(self, source_ids: list[str]) -> None:
        self._target().delete_source_ids(source_ids)

    def delete_provider(self, provider_key: str) -> None:
        self._target().delete_provider(provider_key)

    def decl_update_access(self, user_ids: list[str], source_id: str) -> None:
        self._target().decl_update_access(user_ids, source_id)

    def delete_user(self, user_id: str) -> None:
        self._target().delete_user(user_id)

    def count_documents_by_provider(self) -> dict[str, int]:
        return self._target().count_documents_by_provider()

    def doc_search(
        self,
        user_id: str,
        query: str,
        k: int,
        scope_type: Any = None,
        scope_list: list[str] | None = None,
    ) -> list[Any]:
        return self._target().doc_search(user_id, query, k, scope_type, scope_list)
