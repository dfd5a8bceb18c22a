"""The backends overlay inside a real CCBE checkout (run by ``scripts/ccbe_contract``).

``context_chat_backend`` here is CCBE's own package (a copy of CCBE_SOURCE_DIR with the
overlay copied in): ``BaseVectorDB``, the loader, ``vectordb.service``, ``embed_sources``,
``do_doc_search``, ``exec_in_proc`` and upstream's pgvector are the real ones, at v5.3 or
v5.4 (told apart by ``task_fetcher.py``, new in 5.4). Storage runs in CCBE's own
subprocesses (forkserver for 5.4 as its ``main.py`` sets, fork for 5.3), embeddings through
CCBE's ``NetworkEmbeddings`` against the local stack's OpenAI-compatible embedding stub
(``CC_EM_BASE_URL``), pgvector and supabase on scratch databases of the stack's PostgreSQL.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import io
import json
import multiprocessing
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest

SRC = os.environ.get("CCBE_CONTRACT_SRC", "")
if not SRC:
    pytest.skip(
        "real-CCBE contract tests: run scripts/ccbe_contract CCBE_SOURCE_DIR",
        allow_module_level=True,
    )

from ccbe_pg import (  # noqa: E402
    drop_database,
    fresh_vector_database,
    public_tables,
    scratch_name,
    stack_server_url,
)

pytestmark = pytest.mark.ccbe_contract

GEN = "5.4" if (Path(SRC) / "context_chat_backend" / "task_fetcher.py").is_file() else "5.3"
STACK_ENV = Path(os.environ.get("STACK_DIR", "")) / "stack.env"


def _stack_value(key: str, default: str) -> str:
    if STACK_ENV.is_file():
        for line in STACK_ENV.read_text().splitlines():
            name, _, value = line.partition("=")
            if name.strip() == key:
                return value.strip()
    return default


EMBED_URL = _stack_value("EMBED_STUB_URL", "http://127.0.0.1:7999") + "/v1"
SERVER = stack_server_url()
TAG = GEN.replace(".", "")
PG_DB = scratch_name(f"ccbe_c{TAG}_pgvector")
SUPABASE_DB = scratch_name(f"ccbe_c{TAG}_supabase")
PINECONE_ENV = {"PINECONE_API_KEY": "pc-contract-key", "PINECONE_INDEX": "cc-contract"}
R2R_INSTANCE = f"contract-{TAG}-{os.getpid()}-{int(time.time())}"
R2R_ENV = {
    "R2R_BASE_URL": _stack_value("R2R_BASE_URL", "http://127.0.0.1:7272"),
    "R2R_EMAIL": _stack_value("R2R_ADMIN_EMAIL", ""),
    "R2R_PASSWORD": _stack_value("R2R_ADMIN_PASSWORD", ""),
    "CCBE_R2R_INSTANCE": R2R_INSTANCE,
    "APP_PERSISTENT_STORAGE": tempfile.mkdtemp(prefix="ccbe-contract-storage-"),
}

# What every storage subprocess sees. v5.4's forkserver children inherit the environment of
# the forkserver, fixed when it starts: set it before the first subprocess.
os.environ.update(
    {
        **PINECONE_ENV,
        **R2R_ENV,
        "SUPABASE_DB_URL": f"{SERVER}/{SUPABASE_DB}",
        "CC_EM_BASE_URL": EMBED_URL,
        "CC_EM_BATCH_SIZE": "100",
    }
)
for _name in (
    "RAG_BACKEND",
    "SUPABASE_URL",
    "SUPABASE_ANON_KEY",
    "CC_EM_APIKEY",
    "CC_EM_MODEL_NAME",
    "R2R_API_KEY",
):
    os.environ.pop(_name, None)
multiprocessing.set_start_method("forkserver" if GEN == "5.4" else "fork", force=True)
if GEN == "5.4":  # what CCBE's main.py preloads into its forkserver
    multiprocessing.set_forkserver_preload(
        [
            "context_chat_backend.chain.ingest.injest",
            "context_chat_backend.vectordb.pgvector",
            "langchain",
            "logging",
            "numpy",
            "sqlalchemy",
        ]
    )

from context_chat_backend import (  # noqa: E402
    backends,
    config_parser,
    dyn_loader,
    utils,
)
from context_chat_backend import types as ccbe_types  # noqa: E402
from context_chat_backend.backends import compat, contract  # noqa: E402
from context_chat_backend.chain import context  # noqa: E402
from context_chat_backend.chain import types as chain_types  # noqa: E402
from context_chat_backend.chain.ingest import injest  # noqa: E402
from context_chat_backend.vectordb import base, service  # noqa: E402
from context_chat_backend.vectordb import loader as vectordb_loader  # noqa: E402
from context_chat_backend.vectordb import types as vectordb_types  # noqa: E402

SafeDbException = vectordb_types.SafeDbException
DbException = vectordb_types.DbException
ALLOW, DENY = list(vectordb_types.UpdateAccessOp)  # allow/deny (5.3), ALLOW/DENY (5.4)
NOT_IMPLEMENTED = ("backend not implemented: pinecone", 501)


def run(target: Any, *args: Any) -> Any:
    """``target(*args)`` in a CCBE subprocess, exactly as CCBE runs storage operations."""
    return utils.exec_in_proc(target=target, args=args)


@pytest.fixture(scope="module")
def app_config() -> Any:
    """CCBE's config from the checkout's own config.cpu.yaml (its persisted ``vectordb:``
    says pgvector), embeddings from CC_EM_BASE_URL (the stack's stub)."""
    return config_parser.get_config(str(Path(SRC) / "config.cpu.yaml"))


def config_for(app_config: Any, name: str, section: dict[str, Any] | None = None) -> Any:
    """*app_config* with ``vectordb`` chosen by the registry for ``RAG_BACKEND=name``."""
    vectordb = backends.select_backend({name: section}, {"RAG_BACKEND": name})
    return app_config.model_copy(update={"vectordb": vectordb})


def registry_loader(config: Any) -> Any:
    """What a patched ``VectorDBLoader`` is: ``load()`` = the registry's ``load_backend``."""
    return SimpleNamespace(load=functools.partial(backends.load_backend, config))


# ------------------------------------------------------------------- upstream facts
def test_generation_is_what_the_overlay_expects() -> None:
    version = os.environ.get("CCBE_CONTRACT_VERSION", "")
    assert version.startswith(GEN), (version, GEN)
    assert [op.value for op in vectordb_types.UpdateAccessOp] == ["allow", "deny"]
    assert ALLOW.name == ("ALLOW" if GEN == "5.4" else "allow")
    assert hasattr(ccbe_types, "IndexingError") is (GEN == "5.4")
    assert [s.value for s in chain_types.ScopeType] == ["provider", "source"]


def test_base_vector_db_is_the_seam_the_overlay_implements() -> None:
    """Every backend implements exactly BaseVectorDB's abstract methods, with its names."""
    abstract = set(base.BaseVectorDB.__abstractmethods__)
    assert abstract == {"__init__", "get_users", "get_instance", *contract.STORAGE_METHODS}
    for name in ("pinecone", "supabase"):
        klass = backends.get_backend_class(name)
        assert issubclass(klass, base.BaseVectorDB) and not klass.__abstractmethods__
        for method in abstract - {"__init__"}:
            ours = list(inspect.signature(getattr(klass, method)).parameters)
            theirs = list(inspect.signature(getattr(base.BaseVectorDB, method)).parameters)
            assert ours == theirs, (name, method)
    assert (
        backends.get_backend_class("pgvector")
        is importlib.import_module("context_chat_backend.vectordb.pgvector").VectorDB
    )
    assert issubclass(backends.get_backend_class("r2r"), base.BaseVectorDB)
    r2r = backends.get_backend_class("r2r")(None)  # real: settings only, no I/O
    assert r2r.instance == R2R_INSTANCE and r2r.check_connection("contract") is True


def test_upstream_loader_knows_only_pgvector() -> None:
    """The seam issue 12's patch replaces: upstream's loader and config parser accept only
    the names in ``vector_dbs``."""
    assert vectordb_loader.vector_dbs == ["pgvector"]
    with pytest.raises(AssertionError, match="vector_db should be one of"):
        vectordb_loader.get_vector_db("pinecone")


def test_rag_backend_wins_over_the_checkouts_persisted_config(app_config: Any) -> None:
    from ruamel.yaml import YAML

    raw = YAML(typ="safe").load((Path(SRC) / "config.cpu.yaml").read_text())["vectordb"]
    assert app_config.vectordb == ("pgvector", {})  # upstream's parser: the persisted key
    assert raw == {"pgvector": None}
    assert backends.select_backend(raw, {}) == ("r2r", {})
    assert backends.select_backend(raw, {"RAG_BACKEND": "pgvector"}) == ("pgvector", {})
    with pytest.raises(AssertionError, match="r2r, pgvector, supabase, pinecone"):
        backends.select_backend(raw, {"RAG_BACKEND": "milvus"})


def test_safe_db_exception_becomes_the_501_answer() -> None:
    """CCBE's handler answers ``JSONResponse(exc.args[0], exc.args[1])`` for a
    SafeDbException with a status (read from controller.py), and JSONResponse turns a
    string with status >= 400 into ``{"error": …}``."""
    tree = ast.parse((Path(SRC) / "context_chat_backend" / "controller.py").read_text())
    handler = next(
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.AsyncFunctionDef)
        and any("exception_handler(SafeDbException)" in ast.unparse(d) for d in node.decorator_list)
    )
    assert "JSONResponse(exc.args[0], exc.args[1])" in ast.unparse(handler)
    exc = contract.not_implemented("pinecone")
    response = utils.JSONResponse(exc.args[0], exc.args[1])
    assert response.status_code == 501
    assert json.loads(response.body) == {"error": "backend not implemented: pinecone"}


# --------------------------------------------------------------- registry and loader
def test_load_backend_builds_ccbe_embedder_only_where_needed(app_config: Any) -> None:
    from context_chat_backend.network_em import NetworkEmbeddings

    pinecone = backends.load_backend(config_for(app_config, "pinecone"))
    assert pinecone.embedding is None
    supabase = backends.load_backend(config_for(app_config, "supabase"))
    assert isinstance(supabase.embedding, NetworkEmbeddings)
    with pytest.raises(ccbe_types.LoaderException, match="unknown RAG backend"):
        backends.load_backend(app_config.model_copy(update={"vectordb": ("qdrant", {})}))


def test_check_connection_through_the_real_embedding_client(
    app_config: Any, supabase_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from context_chat_backend.network_em import NetworkEmbeddings

    embedder = NetworkEmbeddings(app_config=app_config)
    assert backends.check_connection("pgvector", {}, "files_indexing", embedder) is True
    assert backends.check_connection("supabase", {}, "files_indexing", embedder) is True
    assert backends.check_connection("pinecone", {}, "files_indexing") is False
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    if GEN == "5.4":  # v5.3's embedding client has no probe (and v5.3 gates nothing)
        down = app_config.model_copy(deep=True)
        down.embedding.base_url = f"http://127.0.0.1:{port}/v1"
        unreachable = NetworkEmbeddings(app_config=down)
        assert backends.check_connection("pgvector", {}, "files_indexing", unreachable) is False
        assert backends.check_connection("supabase", {}, "files_indexing", unreachable) is False
    else:
        assert not hasattr(NetworkEmbeddings, "check_connection")
    monkeypatch.setenv("SUPABASE_DB_URL", f"{SERVER.rpartition(':')[0]}:{port}/x")
    assert backends.check_connection("supabase", {}, "files_indexing", embedder) is False


# ------------------------------------------------------------------------- scaffolds
def test_pinecone_scaffold_through_ccbe_services(app_config: Any) -> None:
    loader = registry_loader(config_for(app_config, "pinecone"))
    calls = [
        (service.count_documents_by_provider,),
        (service.delete_by_provider, "files__default"),
        (service.delete_user, "alice"),
        (service.update_access, ALLOW, ["alice"], "files__default: 1"),
        (service.update_access_provider, DENY, ["alice"], "files__default"),
        (service.decl_update_access, ["alice"], "files__default: 1"),
    ]
    for target, *args in calls:
        with pytest.raises(SafeDbException) as err:
            run(target, loader, *args)
        assert err.value.args == NOT_IMPLEMENTED, target.__name__
    with pytest.raises((SafeDbException, DbException)) as err:
        run(service.delete_by_source, loader, ["files__default: 1"])
    if GEN == "5.4":
        assert err.value.args == NOT_IMPLEMENTED
    else:  # v5.3's service wraps delete errors: the 501 becomes a plain DbException
        assert type(err.value) is DbException
        assert err.value.args == ("Error: Vectordb delete_source_ids error",)
    with pytest.raises(SafeDbException) as err:
        run(context.do_doc_search, "alice", "anything", loader, 5, None, None)
    assert err.value.args == NOT_IMPLEMENTED
    # ingestion wraps check_sources' error: CCBE keeps (5.4: retries) the documents
    with pytest.raises(DbException, match=r"checking existing sources|sources_to_embed"):
        run(injest.embed_sources, loader, app_config, make_sources([DOC_A]))


def test_supabase_without_db_url_is_a_scaffold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SUPABASE_DB_URL")
    monkeypatch.setenv("SUPABASE_URL", "https://abc.supabase.co")
    monkeypatch.setenv("SUPABASE_ANON_KEY", "anon")
    backend = backends.get_backend_class("supabase")(None)
    with pytest.raises(SafeDbException) as err:
        backend.count_documents_by_provider()
    assert contract.is_not_implemented(err.value)
    assert "SUPABASE_DB_URL is not set" in err.value.args[0]
    assert backend.check_connection("files_indexing") is False


# --------------------------------------------------------------- generation seams
def test_compat_reads_the_real_objects() -> None:
    assert [compat.op_value(op) for op in vectordb_types.UpdateAccessOp] == ["allow", "deny"]
    assert [compat.scope_value(s) for s in chain_types.ScopeType] == ["provider", "source"]
    sources = make_sources([DOC_A, DOC_C])
    pairs = compat.source_items(sources)
    assert [compat.source_reference(s) for _, s in pairs] == [DOC_A["ref"], DOC_C["ref"]]
    assert [compat.source_modified(s) for _, s in pairs] == [DOC_A["modified"], DOC_C["modified"]]
    outcomes = {key: compat.Outcome() for key, _ in pairs}
    indocs = {k: _indoc(s) for k, s in pairs} if GEN == "5.4" else [_indoc(s) for _, s in pairs]
    result = compat.indexing_result(indocs, outcomes)
    if GEN == "5.4":
        assert result == {key: None for key, _ in pairs}
        failed = compat.indexing_result(indocs, {})
        assert all(isinstance(e, ccbe_types.IndexingError) and e.retryable for e in failed.values())
    else:
        assert result == ([DOC_A["ref"], DOC_C["ref"]], [])


def _indoc(source: Any) -> Any:
    from langchain_core.documents import Document

    return chain_types.InDocument(
        documents=[
            Document(page_content="x", metadata={"source": compat.source_reference(source)})
        ],
        userIds=["alice"],
        source_id=compat.source_reference(source),
        provider="files__default",
        modified=compat.source_modified(source),
    )


# ------------------------------------------------ pgvector / supabase: CCBE's own flow
DOC_A = {
    "ref": "files__default: 101",
    "provider": "files__default",
    "users": ["alice"],
    "title": "heating.txt",
    "modified": 1_700_000_000,
    "text": "The heating manual: bleed the radiators every autumn before the boiler restarts.",
}
DOC_B = {
    "ref": "files__default: 102",
    "provider": "files__default",
    "users": ["bob"],
    "title": "numbers.txt",
    "modified": 1_700_000_000,
    "text": "Quarterly numbers: revenue grew by twelve percent, costs stayed flat.",
}
DOC_C = {
    "ref": "notes__app: 7",
    "provider": "notes__app",
    "users": ["alice", "bob"],
    "title": "Holiday rota",
    "modified": 1_700_000_000,
    "text": "Holiday rota: Alice is away in August, Bob covers the radiators and the boiler.",
}


def make_sources(docs: list[dict[str, Any]]) -> Any:
    """CCBE's ingest input for *docs*: queue items keyed by db id (5.4), uploads (5.3)."""
    if GEN == "5.4":
        return {
            i: ccbe_types.SourceItem(
                userIds=doc["users"],
                reference=doc["ref"],
                title=doc["title"],
                modified=doc["modified"],
                type="text/plain",
                provider=doc["provider"],
                size=float(len(doc["text"])),
                content=doc["text"],
            )
            for i, doc in enumerate(docs, start=1)
        }
    from starlette.datastructures import Headers, UploadFile

    return [
        UploadFile(
            io.BytesIO(doc["text"].encode()),
            filename=doc["ref"],
            headers=Headers(
                {
                    "userIds": ",".join(doc["users"]),
                    "title": doc["title"],
                    "type": "text/plain",
                    "modified": str(doc["modified"]),
                    "provider": doc["provider"],
                }
            ),
        )
        for doc in docs
    ]


def assert_indexed(result: Any, docs: list[dict[str, Any]]) -> None:
    if GEN == "5.4":
        assert result == dict.fromkeys(range(1, len(docs) + 1)), result
    else:
        loaded, retry = result
        assert sorted(loaded) == sorted(d["ref"] for d in docs) and retry == [], result


def scope(kind: str) -> Any:
    """The scope as each generation hands it to doc_search: the enum (5.3), its value (5.4)."""
    member = chain_types.ScopeType(kind)
    return member if GEN == "5.3" else member.value


def search(
    loader: Any, user: str, query: str, kind: str | None = None, items: list[str] | None = None
) -> list[tuple[str, str]]:
    hits = run(context.do_doc_search, user, query, loader, 10, scope(kind) if kind else None, items)
    return [(hit["source_id"], hit["title"]) for hit in hits]


def visible(
    loader: Any, user: str, query: str = "radiators boiler heating numbers rota"
) -> set[str]:
    return {source for source, _ in search(loader, user, query)}


@pytest.fixture(scope="module")
def pgvector_db() -> Iterator[str]:
    url = fresh_vector_database(SERVER, PG_DB)
    yield url
    drop_database(SERVER, PG_DB)


@pytest.fixture(scope="module")
def supabase_db() -> Iterator[str]:
    url = fresh_vector_database(SERVER, SUPABASE_DB)
    yield url
    drop_database(SERVER, SUPABASE_DB)


def test_supabase_construction_waits_for_the_first_storage_call(
    app_config: Any, supabase_db: str
) -> None:
    """Upstream's pgvector creates its tables in its constructor; supabase builds it on
    first use, in the process that uses it."""
    backend = backends.load_backend(config_for(app_config, "supabase"))
    assert public_tables(supabase_db) == []
    assert backend.count_documents_by_provider() == {}
    assert {"docs", "access_list", "langchain_pg_embedding"} <= set(public_tables(supabase_db))
    parsed = urlsplit(str(backend.db_url))
    assert parsed.scheme == "postgresql+psycopg" and parsed.path == f"/{SUPABASE_DB}"


@pytest.fixture(scope="module")
def r2r_instance() -> Iterator[str]:
    """The R2R backend's instance of this run; its documents and collections are purged."""
    from r2r_purge import purge_scope

    from onyx.r2r_sender import NEXTCLOUD, R2RClient

    yield R2R_INSTANCE
    with R2RClient(
        R2R_ENV["R2R_BASE_URL"], email=R2R_ENV["R2R_EMAIL"], password=R2R_ENV["R2R_PASSWORD"]
    ) as client:
        purge_scope(client, NEXTCLOUD.scope(R2R_INSTANCE))


@pytest.mark.parametrize("backend", ["pgvector", "supabase", "r2r"])
def test_pgvector_flow_through_ccbe(
    backend: str, app_config: Any, pgvector_db: str, supabase_db: str, r2r_instance: str
) -> None:
    """The same scenario through CCBE's embed_sources, vectordb.service and do_doc_search:
    upstream's pgvector via upstream's own loader, supabase via the registry on its own
    database, r2r via the registry on the stack's R2R. All must behave like upstream's
    pgvector (supabase *is* upstream's pgvector flow); r2r differs in one documented place:
    an access change of an unknown source raises ``SafeDbException(…, 404)``."""
    if backend == "pgvector":
        connection = pgvector_db.replace("postgresql://", "postgresql+psycopg://")
        pg_config = config_for(app_config, "pgvector", {"connection": connection})
        loader: Any = dyn_loader.VectorDBLoader(pg_config)
    else:
        loader = registry_loader(config_for(app_config, backend))
    config = app_config

    # index three sources (two providers), each user sees only what they may
    assert_indexed(
        run(injest.embed_sources, loader, config, make_sources([DOC_A, DOC_B, DOC_C])),
        [DOC_A, DOC_B, DOC_C],
    )
    assert run(service.count_documents_by_provider, loader) == {
        "files__default": 2,
        "notes__app": 1,
    }
    assert visible(loader, "alice") == {DOC_A["ref"], DOC_C["ref"]}
    assert visible(loader, "bob") == {DOC_B["ref"], DOC_C["ref"]}
    assert visible(loader, "mallory") == set()
    assert search(loader, "alice", "bleed the radiators")[0] == (DOC_A["ref"], DOC_A["title"])
    assert {s for s, _ in search(loader, "alice", "radiators", "provider", ["notes__app"])} == {
        DOC_C["ref"]
    }
    assert {
        s for s, _ in search(loader, "bob", "radiators", "source", [DOC_C["ref"], DOC_A["ref"]])
    } == {DOC_C["ref"]}

    # unchanged re-upload: nothing to embed, access only widened; newer modified: re-indexed
    assert_indexed(run(injest.embed_sources, loader, config, make_sources([DOC_A])), [DOC_A])
    newer = {**DOC_A, "modified": DOC_A["modified"] + 60, "title": "heating-v2.txt"}
    assert_indexed(run(injest.embed_sources, loader, config, make_sources([newer])), [newer])
    assert search(loader, "alice", "bleed the radiators")[0] == (DOC_A["ref"], "heating-v2.txt")
    assert run(service.count_documents_by_provider, loader) == {
        "files__default": 2,
        "notes__app": 1,
    }

    # access changes
    run(service.update_access, loader, ALLOW, ["carol"], DOC_B["ref"])
    assert visible(loader, "carol") == {DOC_B["ref"]}
    run(service.update_access, loader, DENY, ["bob"], DOC_B["ref"])
    assert visible(loader, "bob") == {DOC_C["ref"]}
    run(service.decl_update_access, loader, ["dave"], DOC_C["ref"])
    assert visible(loader, "dave") == {DOC_C["ref"]}
    assert visible(loader, "alice") == {DOC_A["ref"]}
    if backend == "r2r":  # the contract: CCBE acknowledges a SafeDbException
        with pytest.raises(SafeDbException) as err:
            run(service.update_access, loader, ALLOW, ["alice"], "files__default: 999")
        assert err.value.args[1] == 404
    else:  # upstream's pgvector logs and swallows the 404 of an unknown source
        run(service.update_access, loader, ALLOW, ["alice"], "files__default: 999")
    # denying the last user deletes the orphan
    run(service.update_access_provider, loader, DENY, ["dave"], "notes__app")
    assert run(service.count_documents_by_provider, loader) == {"files__default": 2}

    # deletes
    run(service.delete_user, loader, "carol")  # DOC_B's last user: an orphan, deleted
    assert run(service.count_documents_by_provider, loader) == {"files__default": 1}
    assert_indexed(run(injest.embed_sources, loader, config, make_sources([DOC_C])), [DOC_C])
    run(service.delete_by_provider, loader, "notes__app")
    run(service.delete_by_source, loader, [DOC_A["ref"]])
    assert run(service.count_documents_by_provider, loader) == {}
    assert visible(loader, "alice") == set()


# ------------------------------------------------------------------- venv recipe
def test_the_engine_client_imports_beside_ccbe() -> None:
    module: ModuleType = importlib.import_module("onyx.r2r_sender.client")
    assert hasattr(module, "R2RClient")


def test_gpt2_tokenizer_stand_in_loads_offline() -> None:
    from transformers import GPT2Tokenizer

    tokenizer = GPT2Tokenizer.from_pretrained("gpt2", local_files_only=True)
    text = "Zoë's heating manual"
    assert len(tokenizer.encode(text)) == len(text.encode("utf-8"))
    assert tokenizer.decode(tokenizer.encode(text)) == text
