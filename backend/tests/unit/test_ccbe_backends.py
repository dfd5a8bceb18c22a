"""The CCBE overlay's registry, contract, scaffolds and generation seams, without CCBE.

Runs every test against both CCBE generations, shaped by ``tests/ccbe_shaped`` (v5.3.0 and
v5.4.0 names and signatures); ``tests/ccbe_contract`` runs the same overlay against the
real CCBE modules. Supabase against a real PostgreSQL: ``integration/test_ccbe_supabase.py``.
"""

from __future__ import annotations

import ast
import concurrent.futures
import importlib
import io
import logging
import multiprocessing
import pickle
import socket
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
from ccbe_shaped import GENERATIONS, load_generation, run_storage_call
from langchain_core.documents import Document
from starlette.datastructures import Headers, UploadFile

PINECONE_ENV = {"PINECONE_API_KEY": "pc-secret-key-123", "PINECONE_INDEX": "cc-index"}
REST_ENV = {"SUPABASE_URL": "https://abc.supabase.co", "SUPABASE_ANON_KEY": "anon-secret-456"}
SETTING_VARS = (
    "RAG_BACKEND",
    "R2R_BASE_URL",
    "R2R_API_KEY",
    "R2R_EMAIL",
    "R2R_PASSWORD",
    "CCBE_R2R_INSTANCE",
    "PINECONE_API_KEY",
    "PINECONE_INDEX",
    "SUPABASE_DB_URL",
    "SUPABASE_URL",
    "SUPABASE_ANON_KEY",
)
STORAGE_CALLS = {
    "add_indocuments": ({},),
    "check_sources": ({},),
    "update_access": ("allow", ["alice"], "files__default: 1"),
    "update_access_provider": ("allow", ["alice"], "files__default"),
    "decl_update_access": (["alice"], "files__default: 1"),
    "delete_source_ids": (["files__default: 1"],),
    "delete_provider": ("files__default",),
    "delete_user": ("alice",),
    "count_documents_by_provider": (),
    "doc_search": ("alice", "what is up", 5),
}


@pytest.fixture(params=GENERATIONS)
def ccbe(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The shaped ``context_chat_backend`` of one generation, with a clean backend env."""
    return load_generation(request.param, monkeypatch, unset=SETTING_VARS)


def sub(package: ModuleType, name: str) -> ModuleType:
    return importlib.import_module(f"{package.__name__}.{name}")


def registry(package: ModuleType) -> ModuleType:
    return sub(package, "backends")


# --------------------------------------------------------------------------- registry
def test_registry_names_default_and_override(ccbe: ModuleType) -> None:
    reg = registry(ccbe)
    assert reg.backend_names() == ["r2r", "pgvector", "supabase", "pinecone"]
    assert reg.selected_name({}) == "r2r"
    assert reg.selected_name({"RAG_BACKEND": ""}) == "r2r"
    assert reg.selected_name({"RAG_BACKEND": "  PineCone "}) == "pinecone"
    for name in reg.backend_names():
        assert reg.selected_name({"RAG_BACKEND": name}) == name


def test_rag_backend_wins_over_the_persisted_vectordb_key(ccbe: ModuleType) -> None:
    reg = registry(ccbe)
    persisted = {"pgvector": {"connection": "postgresql+psycopg://u@h/db"}}
    # every existing install's config.yaml says pgvector: the default still is r2r
    assert reg.select_backend(persisted, {}) == ("r2r", {})
    assert reg.select_backend(persisted, {"RAG_BACKEND": "pgvector"}) == (
        "pgvector",
        {"connection": "postgresql+psycopg://u@h/db"},
    )
    assert reg.select_backend(persisted, {"RAG_BACKEND": "pinecone"}) == ("pinecone", {})
    assert reg.select_backend({"supabase": None}, {"RAG_BACKEND": "supabase"}) == ("supabase", {})
    assert reg.select_backend(None, {"RAG_BACKEND": "supabase"}) == ("supabase", {})
    section = {"pre_delete_collection": False}
    _, kwargs = reg.select_backend({"supabase": section}, {"RAG_BACKEND": "supabase"})
    kwargs["changed"] = True
    assert section == {"pre_delete_collection": False}, "the config must not be mutated"


def test_unknown_backend_fails_with_the_valid_names(ccbe: ModuleType) -> None:
    reg = registry(ccbe)
    with pytest.raises(reg.BackendSelectionError) as err:
        reg.selected_name({"RAG_BACKEND": "chroma"})
    message = str(err.value)
    assert "chroma" in message and "RAG_BACKEND" in message
    for name in ("r2r", "pgvector", "supabase", "pinecone"):
        assert name in message
    # an AssertionError, which CCBE's loader turns into LoaderException like its own errors
    assert isinstance(err.value, AssertionError)
    with pytest.raises(reg.BackendSelectionError):
        reg.get_backend_class("weaviate")
    with pytest.raises(reg.BackendSelectionError, match=r"vectordb\.pinecone must be a mapping"):
        reg.select_backend({"pinecone": "yes"}, {"RAG_BACKEND": "pinecone"})


def test_backend_classes_are_base_vector_dbs(ccbe: ModuleType) -> None:
    reg = registry(ccbe)
    base = sub(ccbe, "vectordb.base").BaseVectorDB
    for name in ("supabase", "pinecone", "r2r"):
        klass = reg.get_backend_class(name)
        assert issubclass(klass, base) and hasattr(klass, "client")
        assert klass.__module__ == f"context_chat_backend.backends.{name}"
    # r2r without settings: CCBE's DbException naming the variable (no I/O, no placeholder)
    with pytest.raises(sub(ccbe, "vectordb.types").DbException, match="R2R_BASE_URL is not set"):
        reg.get_backend_class("r2r")(None)
    # without a checkout there is no upstream pgvector module: an ImportError naming it
    with pytest.raises(ImportError, match="pgvector"):
        reg.get_backend_class("pgvector")


def test_embedder_and_contract_flags(ccbe: ModuleType) -> None:
    reg = registry(ccbe)
    uses = {name: reg.spec_for(name).uses_ccbe_embedder for name in reg.backend_names()}
    assert uses == {"r2r": False, "pgvector": True, "supabase": True, "pinecone": False}
    contract = {name: reg.spec_for(name).follows_contract for name in reg.backend_names()}
    assert contract == {"r2r": True, "pgvector": False, "supabase": True, "pinecone": True}


def test_load_backend_builds_what_the_config_names(
    ccbe: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = registry(ccbe)
    types = sub(ccbe, "types")
    for key, value in PINECONE_ENV.items():
        monkeypatch.setenv(key, value)
    backend = reg.load_backend(types.TConfig(vectordb=("pinecone", {})))
    assert type(backend).__module__.endswith(".pinecone") and backend.embedding is None
    with pytest.raises(types.LoaderException, match="unknown RAG backend 'faiss'"):
        reg.load_backend(types.TConfig(vectordb=("faiss", {})))
    with pytest.raises(types.LoaderException, match=r"vectordb\.pinecone\.namespace"):
        reg.load_backend(types.TConfig(vectordb=("pinecone", {"namespace": "x"})))
    monkeypatch.delenv("PINECONE_API_KEY")
    with pytest.raises(types.LoaderException, match="PINECONE_API_KEY is not set"):
        reg.load_backend(types.TConfig(vectordb=("pinecone", {})))


def test_check_connection_gates_without_raising(
    ccbe: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    reg = registry(ccbe)
    asked: list[str] = []

    class Embedder:
        def __init__(self, up: bool) -> None:
            self.up = up

        def check_connection(self, origin: str) -> bool:
            asked.append(origin)
            return self.up

    # upstream pgvector: upstream's probe of the embedding server, pgvector never built
    assert reg.check_connection("pgvector", {}, "files_indexing", Embedder(True)) is True
    assert reg.check_connection("pgvector", {}, "request_processing", Embedder(False)) is False
    assert asked == ["files_indexing", "request_processing"]
    assert reg.check_connection("pgvector", {}, "x", None) is False
    # v5.3's embedding client has no probe, and v5.3 gates nothing
    assert reg.check_connection("pgvector", {}, "x", SimpleNamespace()) is True
    # bad settings, unknown names and placeholders: False and a log line, never a raise
    with caplog.at_level(logging.WARNING, logger="ccb.backends"):
        assert reg.check_connection("pinecone", {}, "files_indexing") is False
        assert reg.check_connection("nope", {}, "files_indexing") is False
        assert reg.check_connection("r2r", {}, "files_indexing") is False
    assert "PINECONE_API_KEY is not set" in caplog.text
    for key, value in PINECONE_ENV.items():
        monkeypatch.setenv(key, value)
    assert reg.check_connection("pinecone", {}, "files_indexing") is False  # a scaffold


# ---------------------------------------------------------------------------- scaffolds
@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PINECONE_INDEX": "cc-index"}, "PINECONE_API_KEY is not set"),
        ({"PINECONE_API_KEY": "pc-secret-key-123"}, "PINECONE_INDEX is not set"),
        ({"PINECONE_API_KEY": "pc-secret-key-123", "PINECONE_INDEX": "CC_Index"}, "lowercase"),
        ({"PINECONE_API_KEY": "pc-secret-key-123", "PINECONE_INDEX": "a" * 46}, "1-45"),
        ({"PINECONE_API_KEY": "  ", "PINECONE_INDEX": "cc-index"}, "PINECONE_API_KEY is not set"),
    ],
)
def test_pinecone_validates_its_settings(
    ccbe: ModuleType, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    db_exception = sub(ccbe, "vectordb.types").DbException
    with pytest.raises(db_exception, match=message) as err:
        registry(ccbe).get_backend_class("pinecone")(None)
    assert str(err.value).startswith("RAG backend pinecone: ")
    assert "pc-secret-key-123" not in str(err.value)


def test_pinecone_boots_and_refuses_every_storage_call(
    ccbe: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for key, value in PINECONE_ENV.items():
        monkeypatch.setenv(key, value)
    safe = sub(ccbe, "vectordb.types").SafeDbException
    contract = sub(ccbe, "backends.contract")
    backend = registry(ccbe).get_backend_class("pinecone")(None)
    assert backend.index == "cc-index"
    assert set(STORAGE_CALLS) == set(contract.STORAGE_METHODS)
    for method, args in [*STORAGE_CALLS.items(), ("get_users", ()), ("get_instance", ())]:
        with pytest.raises(safe) as err:
            getattr(backend, method)(*args)
        # CCBE's handler answers JSONResponse(args[0], args[1]) = 501 {"error": args[0]}
        assert err.value.args == ("backend not implemented: pinecone", 501), method
        assert contract.is_not_implemented(err.value)
    with caplog.at_level(logging.WARNING, logger="ccb.backends"):
        assert backend.check_connection("files_indexing") is False
    assert "pinecone is a scaffold" in caplog.text
    assert "pc-secret-key-123" not in repr(vars(backend)) + caplog.text


def test_supabase_rest_only_is_a_scaffold_saying_what_is_missing(
    ccbe: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in REST_ENV.items():
        monkeypatch.setenv(key, value)
    safe = sub(ccbe, "vectordb.types").SafeDbException
    contract = sub(ccbe, "backends.contract")
    backend = registry(ccbe).get_backend_class("supabase")(None)
    for method, args in STORAGE_CALLS.items():
        with pytest.raises(safe) as err:
            getattr(backend, method)(*args)
        message, status = err.value.args
        assert status == 501 and message.startswith("backend not implemented: supabase (")
        assert "SUPABASE_DB_URL is not set" in message
        assert contract.is_not_implemented(err.value)
    assert backend.check_connection("updates_processing") is False
    assert "anon-secret-456" not in repr(vars(backend)) + repr(vars(backend.scaffold))


def test_supabase_settings_errors(ccbe: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    klass = registry(ccbe).get_backend_class("supabase")
    db_exception = sub(ccbe, "vectordb.types").DbException
    with pytest.raises(db_exception, match="SUPABASE_DB_URL is not set"):
        klass(None)
    monkeypatch.setenv("SUPABASE_URL", "abc.supabase.co")
    monkeypatch.setenv("SUPABASE_ANON_KEY", "anon")
    with pytest.raises(db_exception, match="SUPABASE_URL must be the project's https:// URL"):
        klass(None)
    monkeypatch.setenv("SUPABASE_DB_URL", "postgresql://u:pw-789@db.abc.supabase.co:5432/postgres")
    with pytest.raises(db_exception, match="needs CCBE's embedding client"):
        klass(None)
    with pytest.raises(
        db_exception, match=r"instead of config\.yaml vectordb\.supabase\.connection"
    ):
        klass(object(), connection="postgresql://elsewhere/db")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("not a url", "not a postgresql:// connection string"),
        ("mysql://u:pw-789@h/db", "not mysql://"),
        ("postgresql+psycopg2://u:pw-789@h/db", "psycopg 3 is used"),
        ("postgresql://u:pw-789@/db", "must name a host and a database"),
        ("postgresql://u:pw-789@h:5432", "must name a host and a database"),
    ],
)
def test_supabase_db_url_is_checked_without_showing_it(
    ccbe: ModuleType, raw: str, message: str
) -> None:
    supabase = sub(ccbe, "backends.supabase")
    with pytest.raises(sub(ccbe, "vectordb.types").DbException, match=message) as err:
        supabase.normalise_db_url(raw)
    assert "pw-789" not in str(err.value) and "SUPABASE_DB_URL" in str(err.value)


def test_supabase_db_url_becomes_psycopg3_and_hides_its_password(ccbe: ModuleType) -> None:
    supabase = sub(ccbe, "backends.supabase")
    pooler = "postgres.abcd:pw-789@aws-0-eu-central-1.pooler.supabase.com:6543/postgres"
    for scheme in ("postgres", "postgresql", "postgresql+psycopg"):
        url = supabase.normalise_db_url(f"{scheme}://{pooler}?sslmode=require")
        assert url.drivername == "postgresql+psycopg"
        assert url.password == "pw-789" and url.port == 6543 and url.query == {"sslmode": "require"}
        assert "pw-789" not in repr(url) + str(url) + f"{url}"


# -------------------------------------------------------------------- pickling, no I/O
def test_backends_results_and_errors_pickle(
    ccbe: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = registry(ccbe)
    contract = sub(ccbe, "backends.contract")
    for key, value in {**PINECONE_ENV, **REST_ENV}.items():
        monkeypatch.setenv(key, value)
    pinecone = pickle.loads(pickle.dumps(reg.get_backend_class("pinecone")(None)))
    assert pinecone.index == "cc-index" and pinecone.check_connection("x") is False
    rest = pickle.loads(pickle.dumps(reg.get_backend_class("supabase")(None)))
    with pytest.raises(sub(ccbe, "vectordb.types").SafeDbException, match="SUPABASE_DB_URL"):
        rest.count_documents_by_provider()
    monkeypatch.setenv("SUPABASE_DB_URL", "postgresql://u:pw-789@db.example.invalid:5432/postgres")
    real = reg.get_backend_class("supabase")(SimpleNamespace(dim=4))
    clone = pickle.loads(pickle.dumps(real))
    assert clone.db_url == real.db_url and clone.db_url.password == "pw-789"
    assert clone.embedding.dim == 4 and clone.scaffold is None
    error = pickle.loads(pickle.dumps(contract.not_implemented("pinecone")))
    assert error.args == ("backend not implemented: pinecone", 501)
    assert contract.is_not_implemented(error)
    assert not contract.is_not_implemented(sub(ccbe, "vectordb.types").SafeDbException("x", 404))
    db_error = pickle.loads(pickle.dumps(sub(ccbe, "vectordb.types").DbException("down")))
    assert db_error.args == ("down",)


def test_construction_opens_no_connection(
    ccbe: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every Python-level socket connect fails while the backends are built and pickled.

    (libpq connects below Python: that supabase builds no database connection is shown
    against a real database in integration/test_ccbe_supabase.py.)"""
    for key, value in {**PINECONE_ENV, **REST_ENV}.items():
        monkeypatch.setenv(key, value)
    reg = registry(ccbe)

    def refuse(self: socket.socket, *args: object) -> None:
        raise AssertionError(f"construction connected to {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    reg.get_backend_class("pinecone")(None)
    reg.get_backend_class("supabase")(None)
    monkeypatch.setenv("SUPABASE_DB_URL", "postgresql://u@db.example.invalid:6543/postgres")
    pickle.dumps(reg.get_backend_class("supabase")(SimpleNamespace()))


def test_a_storage_call_in_a_fresh_process_brings_its_501_back(ccbe: ModuleType) -> None:
    """CCBE runs every storage operation in a new process (forkserver in v5.4) and
    re-raises what comes back through a pipe: the scaffold's answer survives the trip."""
    generation = ccbe.GENERATION
    safe = sub(ccbe, "vectordb.types").SafeDbException
    context = multiprocessing.get_context("forkserver")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        future = pool.submit(
            run_storage_call, generation, "pinecone", "count_documents_by_provider", PINECONE_ENV
        )
        with pytest.raises(Exception) as err:
            future.result(timeout=120)
    # the child's SafeDbException class is this process's (same module path)
    assert type(err.value).__name__ == "SafeDbException"
    assert type(err.value).__module__ == safe.__module__
    assert err.value.args == ("backend not implemented: pinecone", 501)


# ------------------------------------------------------------------- generation seams
def test_op_and_scope_values_on_both_generations(ccbe: ModuleType) -> None:
    compat = sub(ccbe, "backends.compat")
    op = sub(ccbe, "vectordb.types").UpdateAccessOp
    scope = sub(ccbe, "chain.types").ScopeType
    assert [compat.op_value(member) for member in op] == ["allow", "deny"]
    assert compat.op_value("deny") == "deny"
    safe = sub(ccbe, "vectordb.types").SafeDbException
    with pytest.raises(safe) as err:
        compat.op_value("grant")
    assert err.value.args == ("invalid access operation: 'grant'", 400)
    # v5.3 hands doc_search the enum, v5.4 its value: both mean the same
    assert compat.scope_value(scope.PROVIDER) == compat.scope_value("provider") == "provider"
    assert compat.scope_value(scope.SOURCE) == compat.scope_value("source") == "source"
    for unscoped in (None, "", "none"):
        assert compat.scope_value(unscoped) is None
    with pytest.raises(safe, match="invalid scope type"):
        compat.scope_value("folder")


def _upload(reference: str, modified: str | None, user_ids: str = "alice") -> UploadFile:
    headers = {
        "userIds": user_ids,
        "title": "T",
        "type": "text/plain",
        "provider": "files__default",
    }
    if modified is not None:
        headers["modified"] = modified
    return UploadFile(io.BytesIO(b"text"), filename=reference, headers=Headers(headers))


def test_sources_of_both_generations(ccbe: ModuleType) -> None:
    compat = sub(ccbe, "backends.compat")
    if ccbe.GENERATION == "5.3":
        sources: object = [_upload("files__default: 1", "1700000000"), _upload("app__p: x", "12")]
        keys = [0, 1]
        bad = _upload("files__default: 2", "2023-11-14")
        with pytest.raises(ValueError, match="files__default: 2: header 'modified' must be unix"):
            compat.source_modified(bad)
        with pytest.raises(ValueError, match="files__default: 3: header 'modified'"):
            compat.source_modified(_upload("files__default: 3", None))
    else:
        types = sub(ccbe, "types")
        common = {"userIds": ["alice"], "title": "T", "type": "text/plain", "size": 4.0}
        sources = {
            41: types.ReceivedFileItem(
                reference="files__default: 1",
                modified=1700000000,
                provider="files__default",
                content=None,
                **common,
            ),
            42: types.SourceItem(
                reference="app__p: x", modified=12, provider="app__p", content="text", **common
            ),
        }
        keys = [41, 42]
    pairs = compat.source_items(sources)
    assert [key for key, _ in pairs] == keys
    assert [compat.source_reference(item) for _, item in pairs] == [
        "files__default: 1",
        "app__p: x",
    ]
    assert [compat.source_modified(item) for _, item in pairs] == [1700000000, 12]


def test_user_ids_arrive_as_lists_or_comma_joined(ccbe: ModuleType) -> None:
    compat = sub(ccbe, "backends.compat")
    assert compat.user_id_list("alice, bob ,,Zoë Ünicode ,alice") == ["alice", "bob", "Zoë Ünicode"]
    assert compat.user_id_list([" alice ", "", "bob"]) == ["alice", "bob"]
    assert compat.user_id_list("") == []
    with pytest.raises(ValueError, match="must be strings"):
        compat.user_id_list(["alice", 7])  # type: ignore[list-item]


def test_indexing_result_answers_in_the_shape_of_its_input(ccbe: ModuleType) -> None:
    compat = sub(ccbe, "backends.compat")
    in_document = sub(ccbe, "chain.types").InDocument

    def indoc(ref: str) -> object:
        chunk = Document(
            page_content="x", metadata={"source": ref, "title": "T", "type": "text/plain"}
        )
        return in_document(
            documents=[chunk],
            userIds=["alice"],
            source_id=ref,
            provider="files__default",
            modified=1,
        )

    refs = ["files__default: 1", "files__default: 2", "files__default: 3", "files__default: 4"]
    outcome = compat.Outcome
    if ccbe.GENERATION == "5.4":
        batch = {7: indoc(refs[0]), 8: indoc(refs[1]), 9: indoc(refs[2]), 10: indoc(refs[3])}
        outcomes = {7: outcome(), 8: outcome("R2R is down", retryable=True), 9: outcome("empty")}
        result = compat.indexing_result(batch, outcomes)
        indexing_error = sub(ccbe, "types").IndexingError
        assert result == {
            7: None,
            8: indexing_error(error="R2R is down", retryable=True),
            9: indexing_error(error="empty", retryable=False),
            10: indexing_error(error="not processed", retryable=True),
        }
        assert pickle.loads(pickle.dumps(result)) == result
        assert [key for key, _ in compat.indocument_items(batch)] == [7, 8, 9, 10]
    else:
        batch = [indoc(ref) for ref in refs]
        outcomes = {0: outcome(), 1: outcome("R2R is down", retryable=True), 2: outcome("empty")}
        # v5.3: (added, retry); a permanent error is in neither list; unreached: retry
        assert compat.indexing_result(batch, outcomes) == ([refs[0]], [refs[1], refs[3]])
        assert not hasattr(sub(ccbe, "types"), "IndexingError")


def test_probe_never_raises(ccbe: ModuleType, caplog: pytest.LogCaptureFixture) -> None:
    contract = sub(ccbe, "backends.contract")

    class Broken:
        def check_connection(self, origin: str) -> bool:
            raise RuntimeError(f"boom at {origin}")

    with caplog.at_level(logging.WARNING, logger="ccb.backends"):
        assert contract.probe(Broken(), "files_indexing") is False
    assert "boom at files_indexing" in caplog.text
    assert contract.probe(SimpleNamespace(check_connection=lambda origin: 1), "x") is True
    assert isinstance(SimpleNamespace(check_connection=lambda o: True), contract.RagBackend)


def test_overlay_imports_no_onyx_adapter() -> None:
    """The overlay imports CCBE relatively and, of this project, at most the engine's
    public package ``onyx.r2r_sender``; never an Onyx adapter nor Onyx itself."""
    overlay = Path(__file__).resolve().parents[3] / "ccbe"
    files = sorted(overlay.rglob("*.py"))
    assert len(files) >= 9
    absolute: set[str] = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                absolute.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                absolute.add(node.module)
    onyx = sorted(name for name in absolute if name == "onyx" or name.startswith("onyx."))
    assert all(name.startswith("onyx.r2r_sender") for name in onyx), onyx
    assert not [name for name in absolute if name.startswith("context_chat_backend")]
