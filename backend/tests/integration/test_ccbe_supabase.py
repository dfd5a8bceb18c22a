"""The supabase backend against a real PostgreSQL with pgvector (the local stack's).

Without a CCBE checkout upstream's pgvector class is not here, so this covers what the
overlay adds around it: a ``SUPABASE_DB_URL`` on a real database, no I/O at construction,
the connectivity probe, and the pooler-safe engine under langchain-postgres' ``PGVector``
(the store upstream's pgvector builds on, called the way upstream calls it). Upstream's own
pgvector flow on that engine (CCBE's ``embed_sources``, ``vectordb.service``,
``do_doc_search``) runs in ``tests/ccbe_contract``.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator
from types import ModuleType, SimpleNamespace

import psycopg
import pytest
from ccbe_pg import public_tables, scratch_vector_database
from ccbe_shaped import GENERATIONS, load_generation
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_postgres import PGVector
from sqlalchemy import create_engine, text

pytestmark = pytest.mark.integration

# a statement repeated past psycopg's default prepare_threshold (5)
REPEATS = 8


@pytest.fixture(scope="module")
def scratch(stack: dict[str, str]) -> Iterator[str]:
    """A fresh database with the vector extension; its ``postgresql://`` URL."""
    with scratch_vector_database(stack, "ccbe_supabase") as url:
        yield url


@pytest.fixture(params=GENERATIONS)
def supabase(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    load_generation(
        request.param, monkeypatch, unset=("SUPABASE_DB_URL", "SUPABASE_URL", "SUPABASE_ANON_KEY")
    )
    return importlib.import_module("context_chat_backend.backends.supabase")


def prepared_statements(conn: object) -> int:
    return conn.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar_one()  # type: ignore[attr-defined]


def test_construction_touches_no_database(
    supabase: ModuleType, scratch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upstream's pgvector creates its tables when constructed; the supabase backend waits
    for its first storage call, so constructing (and pickling) it leaves the database as
    it was, and costs no connection in CCBE's per-operation subprocesses."""
    monkeypatch.setenv("SUPABASE_DB_URL", scratch)
    backend = supabase.VectorDB(DeterministicFakeEmbedding(size=8))
    assert backend.db_url.drivername == "postgresql+psycopg"
    assert backend.db_url.database == scratch.rpartition("/")[2]
    assert backend.check_connection("files_indexing") is True
    assert public_tables(scratch) == []


def test_check_connection_reports_an_unreachable_database_without_its_password(
    supabase: ModuleType,
    scratch: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    embedder = DeterministicFakeEmbedding(size=8)
    with caplog.at_level(logging.WARNING, logger="ccb.backends"):
        monkeypatch.setenv("SUPABASE_DB_URL", "postgresql://postgres:pw-789@127.0.0.1:1/postgres")
        assert supabase.VectorDB(embedder).check_connection("files_indexing") is False
        server = scratch.rpartition("/")[0].replace("postgres@", "postgres:pw-789@")
        monkeypatch.setenv("SUPABASE_DB_URL", f"{server}/no_such_database_ccbe")
        assert supabase.VectorDB(embedder).check_connection("request_processing") is False
    assert (
        "[files_indexing] RAG backend supabase: cannot reach the database at 127.0.0.1:1: connection refused"
        in caplog.text
    )
    assert (
        "[request_processing] RAG backend supabase: the database at 127.0.0.1:5432 has no database 'no_such_database_ccbe'"
        in caplog.text
    )
    assert "pw-789" not in caplog.text
    # the embedding client is asked first (CCBE's NetworkEmbeddings has a probe)
    monkeypatch.setenv("SUPABASE_DB_URL", scratch)
    asked: list[str] = []
    down = SimpleNamespace(check_connection=lambda origin: asked.append(origin) or False)
    assert supabase.VectorDB(down).check_connection("files_indexing") is False
    assert asked == ["files_indexing"]


def test_diagnose_names_what_keeps_the_database_from_working(
    supabase: ModuleType, scratch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The contract's optional hook, reported by the ExApp's /init job: one line naming the
    problem, never the password; the embedding server is not asked (the local one starts
    only once the app is enabled)."""
    never = SimpleNamespace(check_connection=lambda origin: pytest.fail("embedder probed"))
    server = scratch.rpartition("/")[0]
    cases = {
        "postgresql://postgres:pw-789@127.0.0.1:1/postgres": "cannot reach the database at 127.0.0.1:1: connection refused",
        server.replace("postgres@", "no_such_role_ccbe:pw-789@")
        + "/postgres": "the database at 127.0.0.1:5432 refused the credentials in SUPABASE_DB_URL",
        server.replace("postgres@", "postgres:pw-789@")
        + "/no_such_database_ccbe": "the database at 127.0.0.1:5432 has no database 'no_such_database_ccbe'",
        scratch: "",
    }
    for url, expected in cases.items():
        monkeypatch.setenv("SUPABASE_DB_URL", url)
        problem = supabase.VectorDB(never).diagnose("init")
        assert problem == (f"RAG backend supabase: {expected}" if expected else ""), url
        assert "pw-789" not in problem
    monkeypatch.delenv("SUPABASE_DB_URL")
    monkeypatch.setenv("SUPABASE_URL", "https://abc.supabase.co")
    monkeypatch.setenv("SUPABASE_ANON_KEY", "anon-key")
    assert (
        supabase.VectorDB(None)
        .diagnose("init")
        .startswith("backend not implemented: supabase (SUPABASE_DB_URL is not set;")
    )


def test_pooler_safe_engine_prepares_nothing_on_the_server(
    supabase: ModuleType, scratch: str
) -> None:
    """A transaction-mode pooler hands every transaction to any server connection, where a
    statement prepared in an earlier one does not exist. psycopg prepares a statement on its
    5th execution by default (the control); the supabase engine never does."""
    url = supabase.normalise_db_url(scratch)
    default = create_engine(url)
    safe = supabase.pooler_safe_engine(url)
    try:
        for engine, expect_prepared in ((default, True), (safe, False)):
            with engine.connect() as conn:
                for i in range(REPEATS):
                    conn.execute(text("SELECT :v + 1"), {"v": i})
                assert (prepared_statements(conn) > 0) is expect_prepared
    finally:
        default.dispose()
        safe.dispose()


def test_pgvector_store_runs_on_the_pooler_safe_engine(supabase: ModuleType, scratch: str) -> None:
    """langchain-postgres' PGVector, given the engine as upstream's pgvector gives it its
    ``connection``: tables, inserts and similarity search over the store's own sessions,
    whose connections never prepare (the previous test shows what that means)."""
    embedding = DeterministicFakeEmbedding(size=8)
    engine = supabase.pooler_safe_engine(supabase.normalise_db_url(scratch))
    try:  # the tables go again at the end: construction tests expect an empty database
        store = PGVector(embedding, collection_name="ccb_store", connection=engine)
        texts = ["the heating manual", "quarterly numbers", "holiday rota"]
        docs = [
            Document(page_content=t, metadata={"source": f"files__default: {i}", "title": t})
            for i, t in enumerate(texts)
        ]
        assert len(store.add_documents(docs)) == 3
        assert {"langchain_pg_collection", "langchain_pg_embedding"} <= set(public_tables(scratch))
        hits = store.similarity_search("quarterly numbers", k=2)
        assert hits[0].metadata == {"source": "files__default: 1", "title": "quarterly numbers"}
        with store.session_maker() as session:
            assert session.connection().connection.dbapi_connection.prepare_threshold is None
            count = session.execute(text("SELECT count(*) FROM langchain_pg_embedding"))
            assert count.scalar_one() == 3
    finally:
        engine.dispose()
        with psycopg.connect(scratch, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS langchain_pg_embedding, langchain_pg_collection")
