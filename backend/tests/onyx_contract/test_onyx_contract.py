"""R2RIndex and the patches against a real Onyx checkout (run by ``scripts/onyx_contract``).

``onyx`` here is Onyx's own package (a copy of ONYX_SOURCE_DIR with onyx-r2r
installed by ``patches/apply``): the interface, the models and the factory are
Onyx's real ones.  No Onyx service is needed; writes go to a recording sender,
and the live check (ledger) runs only when the local stack is up.
"""

from __future__ import annotations

import ast
import inspect
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
import switch_table
from contract_env import MARKS, SRC, stack_env

pytestmark = MARKS

REPO = Path(__file__).resolve().parents[3]
UNREACHABLE_DB = "postgresql+psycopg2://postgres@127.0.0.1:9/none"


@pytest.fixture(autouse=True)
def _offline_tenant_store(monkeypatch):
    """Tenant lookups (stored export switch, credential) fail fast: the env decides."""
    from onyx.r2r_integration.flags import forget_tenant_cache

    monkeypatch.setenv("ONYX_R2R_DATABASE_URL", UNREACHABLE_DB)
    for name in ("ONYX_EXPORT_R2R", "R2R_EXPORT_MODE", "ONYX_INDEX_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    forget_tenant_cache()
    yield
    forget_tenant_cache()


# ---------------------------------------------------------------- recording
class RecordingSender:
    def __init__(self, known: set[str] | None = None) -> None:
        from onyx.r2r_sender.sender import BatchReport

        self.report = BatchReport
        self.known = known or set()
        self.sent: list = []
        self.access: list = []
        self.deleted: list = []

    def send_batch(self, docs):
        docs = list(docs)
        self.sent.extend(docs)
        return self.report(changed=[d.document_id for d in docs])

    def update_access(self, acl, *, sets_by_document=None, flags_by_document=None):
        self.access.append((acl, sets_by_document or {}, flags_by_document or {}))
        ids = set(acl) | set(sets_by_document or {}) | set(flags_by_document or {})
        return self.report(changed=sorted(ids & self.known), unknown=sorted(ids - self.known))

    def delete_documents(self, ids):
        self.deleted.extend(ids)
        return self.report(changed=list(ids))


def _r2r_index(sender=None, *, export: bool = False, search_settings=None):
    from onyx.document_index.r2r.r2r_index import R2RIndex
    from onyx.r2r_integration.flags import R2RFlags
    from onyx.r2r_sender.config import BridgeSettings

    index = R2RIndex(
        search_settings,
        tenant_id="public",
        flags=R2RFlags(mode="mirror" if export else "off"),
        settings=BridgeSettings(database_url=UNREACHABLE_DB),
    )
    if sender is not None:
        index._sender_factory = lambda: sender
    return index


def _onyx_chunks(doc, parts, access, document_sets=(), large=False):
    from onyx.indexing.models import ChunkEmbedding, DocMetadataAwareIndexChunk, IndexChunk

    def chunk(chunk_id, content, reference_ids):
        return DocMetadataAwareIndexChunk.from_index_chunk(
            IndexChunk(
                chunk_id=chunk_id,
                blurb=content[:30],
                content=content,
                source_links={0: doc.sections[0].link},
                image_file_id=None,
                section_continuation=False,
                source_document=doc,
                title_prefix="",
                metadata_suffix_semantic="",
                metadata_suffix_keyword="",
                contextual_rag_reserved_tokens=0,
                doc_summary="",
                chunk_context="",
                mini_chunk_texts=None,
                large_chunk_id=0 if reference_ids else None,
                large_chunk_reference_ids=reference_ids,
                embeddings=ChunkEmbedding(full_embedding=[0.1, 0.2], mini_chunk_embeddings=[]),
                title_embedding=None,
            ),
            access=access,
            document_sets=set(document_sets),
            user_project=[],
            personas=[],
            boost=0,
            aggregated_chunk_boost_factor=1.0,
            tenant_id="public",
        )

    chunks = [chunk(i, part, []) for i, part in enumerate(parts)]
    if large:
        chunks.append(chunk(len(parts), " ".join(parts) + " LARGE", list(range(len(parts)))))
    return chunks


def _onyx_document(doc_id, *, source=None, from_ingestion_api=False, external_access=None):
    from onyx.configs.constants import DocumentSource
    from onyx.connectors.models import Document, TextSection

    return Document(
        id=doc_id,
        sections=[TextSection(text=f"sections of {doc_id}", link=f"https://wiki/{doc_id}")],
        source=source or DocumentSource.CONFLUENCE,
        semantic_identifier=f"Doc {doc_id}",
        title=f"Title {doc_id}",
        metadata={"space": "ENG", "labels": ["a", "b"]},
        doc_updated_at=datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC),
        from_ingestion_api=from_ingestion_api,
        external_access=external_access,
    )


def _access(*, users=(), groups=(), ext_users=(), ext_groups=(), public=False):
    from onyx.access.models import DocumentAccess

    return DocumentAccess.build(
        user_emails=list(users),
        user_groups=list(groups),
        external_user_emails=list(ext_users),
        external_user_group_ids=list(ext_groups),
        is_public=public,
    )


# -------------------------------------------------------------- interface
def test_r2r_index_is_a_complete_document_index() -> None:
    from onyx.document_index.interfaces_new import DocumentIndex

    from onyx.document_index.r2r.index_core import R2RIndexCore
    from onyx.document_index.r2r.r2r_index import R2RIndex

    assert issubclass(R2RIndex, DocumentIndex)
    assert not R2RIndex.__abstractmethods__, sorted(R2RIndex.__abstractmethods__)
    required = {
        name
        for cls in DocumentIndex.__mro__
        for name, value in vars(cls).items()
        if getattr(value, "__isabstractmethod__", False)
    }
    assert len(required) == 9, sorted(required)
    for name in required:
        ours = getattr(R2RIndex, name)
        assert ours is getattr(R2RIndexCore, name), f"{name} not implemented by the core"
        theirs = inspect.signature(getattr(DocumentIndex, name))
        mine = inspect.signature(ours)
        # Onyx calls these with keywords: same names, same order, same defaults
        assert [(p.name, p.default) for p in mine.parameters.values()] == [
            (p.name, p.default) for p in theirs.parameters.values()
        ], f"{name}: {mine} != {theirs}"
    index = _r2r_index()
    assert isinstance(index, DocumentIndex)
    index.verify_and_create_index_if_necessary(384, None)  # never fails start-up


def test_index_with_onyx_models_returns_one_record_per_document() -> None:
    from onyx.configs.constants import DocumentSource
    from onyx.document_index.interfaces_new import DocumentInsertionRecord, IndexingMetadata

    sender = RecordingSender()
    index = _r2r_index(sender, export=False)
    a = _onyx_document("a")
    b = _onyx_document("b", source=DocumentSource.USER_FILE)
    chunks = _onyx_chunks(a, ["one", "two"], _access(public=True, groups=["eng"]), large=True)
    chunks += _onyx_chunks(b, ["bee"], _access(users=["o@x.io"]), document_sets=["s"])
    metadata = IndexingMetadata(
        doc_id_to_chunk_cnt_diff={
            "a": IndexingMetadata.ChunkCounts(old_chunk_cnt=2, new_chunk_cnt=3),
            "b": IndexingMetadata.ChunkCounts(old_chunk_cnt=0, new_chunk_cnt=1),
        }
    )
    records = index.index(iter(chunks), metadata)
    assert records == [
        DocumentInsertionRecord(document_id="a", already_existed=True),
        DocumentInsertionRecord(document_id="b", already_existed=False),
    ]
    sent = {d.document_id: d for d in sender.sent}
    assert sent["a"].text == "one\ntwo"  # the multipass chunk is skipped
    assert sorted(sent["a"].acl) == ["PUBLIC", "group:eng"]
    assert sent["b"].acl == ["user_email:o@x.io"] and sent["b"].sets == ["s"]
    assert sent["a"].source_type == "confluence" and sent["b"].source_type == "user_file"
    assert sent["a"].link == "https://wiki/a" and sent["a"].title == "Title a"


def test_division_of_labour_with_onyx_models() -> None:
    from onyx.configs.constants import DocumentSource

    sender = RecordingSender(known={"conn"})
    index = _r2r_index(sender, export=True)
    chunks = _onyx_chunks(_onyx_document("conn"), ["c"], _access(groups=["eng"]))
    chunks += _onyx_chunks(
        _onyx_document("api", source=DocumentSource.INGESTION_API, from_ingestion_api=True),
        ["i"],
        _access(public=True),
    )
    index.index(chunks, None)
    assert sender.access[0][0] == {"conn": ["group:eng"]}
    assert [d.document_id for d in sender.sent] == ["api"]


def test_update_and_delete_with_onyx_requests() -> None:
    from onyx.document_index.interfaces_new import MetadataUpdateRequest

    sender = RecordingSender(known={"a"})
    index = _r2r_index(sender)
    index.update(
        [
            MetadataUpdateRequest(
                document_ids=["a"],
                doc_id_to_chunk_cnt={"a": 2},
                access=_access(users=["u@x.io"], ext_groups=["confluence_team"]),
                document_sets={"handbook"},
                boost=1.5,
                hidden=True,
                project_ids={1},
            )
        ]
    )
    acl, sets, flags = sender.access[0]
    assert acl == {"a": ["external_group:confluence_team", "user_email:u@x.io"]}
    assert sets == {"a": ["handbook"]} and flags == {"a": ["hidden"]}
    assert index.delete("a", chunk_count=2) == 0 and sender.deleted == ["a"]


def test_writes_never_raise_with_the_ledger_unreachable() -> None:
    index = _r2r_index(export=False)  # real host sender on an unreachable database
    chunks = _onyx_chunks(_onyx_document("a"), ["x"], _access(public=True))
    assert [r.document_id for r in index.index(chunks, None)] == ["a"]
    assert index.delete("a") == 0
    index.update([])
    assert index.stats.errors >= 2


def test_future_search_settings_skip_writes() -> None:
    from onyx.db.enums import IndexModelStatus
    from onyx.db.models import SearchSettings

    sender = RecordingSender()
    index = _r2r_index(sender, search_settings=SearchSettings(status=IndexModelStatus.FUTURE))
    assert index.writes_enabled is False
    chunks = _onyx_chunks(_onyx_document("a"), ["x"], _access(public=True))
    assert [r.document_id for r in index.index(chunks, None)] == ["a"]
    assert sender.sent == [] and sender.access == []


def test_search_with_r2r_unreachable_answers_503_with_a_detail() -> None:
    """Issue 17: the engine's errors carried ``status_code=None``, which Onyx's 500 handler
    compares with 400, so Onyx answered a bare plain-text 500.  Through Onyx's own handlers
    (``register_onyx_exception_handlers``, and ``onyx.main``'s 500 handler when importable)
    the search now answers 503 JSON with an actionable detail."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from onyx.context.search.models import IndexFilters
    from onyx.error_handling.exceptions import OnyxError, register_onyx_exception_handlers

    from onyx.document_index.r2r.r2r_index import R2RIndex
    from onyx.r2r_integration.flags import R2RFlags
    from onyx.r2r_sender.client import R2RClient
    from onyx.r2r_sender.config import BridgeSettings

    filters = IndexFilters(access_control_list=["user_email:a@x.io"], tenant_id="public")
    secret = "contract-secret-key"
    settings = BridgeSettings(database_url=UNREACHABLE_DB, r2r_base_url="http://127.0.0.1:9")
    index = R2RIndex(None, tenant_id="public", flags=R2RFlags(mode="replace"), settings=settings)

    class Reader:
        """The real retriever and resolver on an R2R nobody listens to."""

        def __init__(self) -> None:
            from onyx.r2r_sender.collections import CollectionResolver
            from onyx.r2r_sender.read_model import Retriever

            client = R2RClient("http://127.0.0.1:9", secret, retry_max_time=0.5)
            self.retriever = Retriever(client, CollectionResolver(client))

    index._reader_factory = Reader
    index._breaker_factory = lambda: type("B", (), {"wait_seconds": lambda self: 0.0})()
    with pytest.raises(OnyxError) as info:
        index.keyword_retrieval("anything", filters, 5)
    assert isinstance(info.value.status_code, int) and info.value.status_code == 503

    app = FastAPI()
    try:
        from onyx.main import log_http_error
    except Exception:
        log_http_error = None
    if log_http_error is not None:
        app.add_exception_handler(500, log_http_error)
    register_onyx_exception_handlers(app)

    @app.get("/search")
    def search() -> list:
        return index.keyword_retrieval("anything", filters, 5)

    answer = TestClient(app, raise_server_exceptions=False).get("/search")
    assert answer.status_code == 503, answer.text
    body = answer.json()
    assert body["error_code"] == "SERVICE_UNAVAILABLE"
    assert "unreachable" in body["detail"] and "127.0.0.1:9" in body["detail"]
    assert secret not in answer.text


# ------------------------------------------------------ retrieval mapping
def test_hits_map_to_onyx_inference_chunks() -> None:
    import uuid

    from onyx.configs.constants import DocumentSource
    from onyx.context.search.models import InferenceChunk

    from onyx.document_index.r2r.chunk_mapping import inference_chunk_fields
    from onyx.document_index.r2r.r2r_index import _inference_chunk
    from onyx.r2r_sender.read_model import MirroredChunk

    hidden = uuid.uuid4()
    chunk = _inference_chunk(
        **inference_chunk_fields(
            MirroredChunk.from_metadata(
                r2r_document_id=uuid.uuid4(),
                text="Quokkas. More text.",
                metadata={
                    "source_document_id": "d1",
                    "title": "T",
                    "semantic_identifier": "S",
                    "link": "https://x",
                    "source_type": "confluence",
                    "updated_at": "2026-05-06T07:08:09+00:00",
                    "source_metadata": {"k": "v", "n": 1},
                    "chunk_order": 3,
                },
                collection_ids=[hidden],
                score=0.02,
                hidden_collection=str(hidden),
            )
        )
    )
    assert isinstance(chunk, InferenceChunk)
    assert chunk.source_type is DocumentSource.CONFLUENCE and chunk.chunk_id == 3
    assert chunk.unique_id == "d1__3" and chunk.hidden and chunk.metadata == {"k": "v", "n": "1"}
    odd = _inference_chunk(
        **inference_chunk_fields(
            MirroredChunk.from_metadata(
                r2r_document_id=uuid.uuid4(),
                text="x",
                metadata={"source_document_id": "d2", "source_type": "not-a-source"},
                collection_ids=[],
                score=None,
                hidden_collection=None,
            )
        )
    )
    assert odd.source_type is DocumentSource.NOT_APPLICABLE


def test_onyx_index_filters_translate() -> None:
    from onyx.configs.constants import DocumentSource
    from onyx.context.search.models import IndexFilters, Tag

    from onyx.document_index.r2r.filters import scope_from_index_filters

    cutoff = datetime(2026, 1, 1, tzinfo=UTC)
    filters = IndexFilters(
        access_control_list=["user_email:a@x.io"],
        tenant_id="public",
        source_type=[DocumentSource.WEB],
        document_set=["handbook"],
        tags=[Tag(tag_key="space", tag_value="ENG")],
        time_cutoff=cutoff,  # the deprecated alias Onyx folds into updated_at_range
        forced_document_set=["legal"],
        attached_document_ids=["d9"],
    )
    scope = scope_from_index_filters(filters, tenant_id="public")
    assert scope.impossible is None
    assert scope.principals == ("PUBLIC", "user_email:a@x.io")
    assert scope.source_types == ("web",) and scope.tags == (("space", "ENG"),)
    assert scope.updated_start == cutoff and scope.forced_sets == ("legal",)
    assert scope.knowledge_sets == ("handbook",) and scope.knowledge_document_ids == ("d9",)
    assert scope_from_index_filters(
        IndexFilters(access_control_list=None, persona_id_filter=3), tenant_id="public"
    ).knowledge_scoped


def test_semantic_retrieval_is_never_called_by_onyx() -> None:
    """The documented reason semantic_retrieval may raise: Onyx's application code
    (``onyx/``, ``ee/``; not its debugging scripts) never calls it outside the indices."""
    app = [str(SRC / "backend/onyx"), str(SRC / "backend/ee")]
    callers = subprocess.run(
        ["grep", "-rln", "--include=*.py", r"\.semantic_retrieval(", *app],
        capture_output=True,
        text=True,
    ).stdout.split()
    callers = [c for c in callers if "/document_index/" not in c]
    assert callers == [], callers


# ------------------------------------------------------------ the patches
class _Sentinel:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


@pytest.fixture
def factory(monkeypatch):
    import onyx.document_index.factory as factory

    monkeypatch.setattr(factory, "DISABLE_VECTOR_DB", False)
    monkeypatch.setattr(factory, "ONYX_DISABLE_VESPA", True)
    monkeypatch.setattr(factory, "ENABLE_OPENSEARCH_INDEXING_FOR_ONYX", True)
    monkeypatch.setattr(factory, "_build_opensearch_pair", lambda *a, **k: _Sentinel("opensearch"))
    monkeypatch.setattr(factory, "get_opensearch_retrieval_state", lambda db: True)
    return factory


def _settings(status):
    from onyx.db.enums import IndexModelStatus
    from onyx.db.models import SearchSettings

    return SearchSettings(status=getattr(IndexModelStatus, status), index_name="danswer_chunk")


def _names(indices):
    return [type(i).__name__ if not isinstance(i, _Sentinel) else i.name for i in indices]


def _expected_writes(case) -> list[str]:
    return {"own": ["opensearch"], "own+r2r": ["opensearch", "R2RIndex"], "r2r": ["R2RIndex"]}[
        case.writes
    ]


@pytest.mark.parametrize("case", switch_table.cases(), ids=str)
def test_every_row_of_the_truth_table_through_onyxs_factory(factory, monkeypatch, case) -> None:
    """The README's table, each concrete combination, through Onyx's real factory and the
    real docfetching module (the stored choice from a replaced loader: no database here)."""
    import onyx.background.indexing.run_docfetching as run_docfetching

    from onyx.r2r_integration import flags

    for name, value in case.environ.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(flags._choices, "load", lambda tenant_id, settings: case.stored)
    monkeypatch.setattr(
        run_docfetching.r2r_export, "build_sender", lambda tenant_id, settings: object()
    )
    flags.tenant_flags("public", budget=10.0)  # fill the cache (no 50 ms race here)

    present, future = _settings("PRESENT"), _settings("FUTURE")
    indices = factory.get_all_document_indices(present, None)
    assert _names(indices) == _expected_writes(case)
    if case.writes != "own":
        assert indices[-1].writes_enabled and indices[-1].docfetching_export
    default = factory.get_default_document_index(present, None, None)
    assert _names([default]) == (["R2RIndex"] if case.search == "r2r" else ["opensearch"])
    exporter = run_docfetching.r2r_export.exporter_for_attempt("public", is_primary=True)
    assert (exporter is not None) is case.exporter
    assert run_docfetching.r2r_export.exporter_for_attempt("public", is_primary=False) is None
    during_swap = factory.get_all_document_indices(future, None)
    if case.writes == "r2r":
        assert _names(during_swap) == ["R2RIndex"] and not during_swap[0].writes_enabled
    else:
        assert _names(during_swap) == ["opensearch"]


def test_factory_disable_vector_db_wins(factory, monkeypatch) -> None:
    monkeypatch.setattr(factory, "DISABLE_VECTOR_DB", True)
    monkeypatch.setenv("ONYX_EXPORT_R2R", "true")
    monkeypatch.setenv("R2R_EXPORT_MODE", "replace")
    assert _names(factory.get_all_document_indices(_settings("PRESENT"), None)) == [
        "DisabledDocumentIndex"
    ]


def _function(path: Path, name: str) -> ast.FunctionDef:
    tree = ast.parse(path.read_text())
    return next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name)


def test_docfetching_patch_records_each_batch_before_it_is_stored() -> None:
    import onyx.background.indexing.run_docfetching as run_docfetching

    assert run_docfetching.r2r_export.exporter_for_attempt("public", is_primary=True) is None
    fn = _function(Path(run_docfetching.__file__), "connector_document_extraction")
    src = ast.unparse(fn)
    build = src.index(
        "r2r_exporter = r2r_export.exporter_for_attempt(tenant_id, is_primary=is_primary)"
    )
    loop = src.index("while checkpoint.has_more:")
    export = src.index("r2r_exporter.export_batch(doc_batch_cleaned)")
    store = src.index("batch_storage.store_batch(batch_num, doc_batch_cleaned)")
    assert build < loop < export < store
    # once per task, not per batch: the build is outside the loop
    assert src.count("exporter_for_attempt(") == 1


def test_main_patch_mounts_the_admin_router_safely() -> None:
    """``get_application`` mounts the router through ``mount`` inside a try block (the
    application itself is built by ``test_onyx_imports``, which needs the full venv)."""
    from onyx.server.r2r.api import router
    from onyx.server.r2r.mount import include_r2r_admin_router

    assert router.prefix == "/admin/r2r" and router.routes
    main_py = SRC / "backend/onyx/main.py"
    tree = ast.parse(main_py.read_text())
    assert not any(  # no module-level import of the router: it may fail to build
        isinstance(n, ast.ImportFrom) and (n.module or "").startswith("onyx.server.r2r")
        for n in tree.body
    )
    fn = _function(main_py, "get_application")
    tries = [n for n in ast.walk(fn) if isinstance(n, ast.Try)]
    guarded = [t for t in tries if "include_r2r_admin_router(application" in ast.unparse(t)]
    assert len(guarded) == 1
    assert [ast.unparse(h.type) for h in guarded[0].handlers] == ["Exception"]
    assert callable(include_r2r_admin_router)


def test_admin_route_patch() -> None:
    text = (SRC / "web/src/lib/admin-routes.ts").read_text()
    assert 'path: "/admin/r2r"' in text and "R2R_MIRROR" in text


def test_backfill_source_fits_the_protocol() -> None:
    from onyx.background.celery.tasks.r2r_mirror.backfill_source import OnyxBackfillSource
    from onyx.r2r_sender.backfill import BackfillSource

    assert isinstance(OnyxBackfillSource("public"), BackfillSource)


def test_patches_apply_is_idempotent_and_names_drift(tmp_path) -> None:
    pristine = Path(os.environ["ONYX_CONTRACT_PRISTINE"])
    target = tmp_path / "onyx"
    subprocess.run(["cp", "-r", str(pristine), str(target)], check=True)
    apply = str(REPO / "patches/apply")
    first = subprocess.run([apply, str(target)], capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    again = subprocess.run([apply, str(target)], capture_output=True, text=True)
    assert again.returncode == 0 and "(0 new or changed)" in again.stdout
    assert again.stdout.count(": applied") == len(list((REPO / "patches").glob("*.patch")))
    # upstream drift: a context line of the factory changed
    drift = tmp_path / "drift"
    subprocess.run(["cp", "-r", str(pristine), str(drift)], check=True)
    factory = drift / "backend/onyx/document_index/factory.py"
    factory.write_text(factory.read_text().replace("return [DisabledDocumentIndex()]", "return []"))
    failed = subprocess.run([apply, str(drift)], capture_output=True, text=True)
    assert failed.returncode == 1
    assert "document_index_factory.patch" in failed.stderr
    assert "backend/onyx/document_index/factory.py: hunk @@" in failed.stderr
    assert "return [DisabledDocumentIndex()]" in failed.stderr
    assert not (drift / "backend/onyx/document_index/r2r").exists()  # nothing changed


# ------------------------------------------------------------ live ledger
def test_onyx_chunks_reach_the_ledger() -> None:
    """With the local stack up: real Onyx chunks → R2RIndex → the real ledger.  Leaves
    nothing behind: the rows, the drain task, its queue's broker binding, the doorbell key."""
    import uuid

    from redis import Redis
    from sqlalchemy import text

    from onyx.document_index.r2r.r2r_index import R2RIndex
    from onyx.r2r_integration.flags import R2RFlags
    from onyx.r2r_sender import BridgeSettings, Ledger

    env = stack_env()
    if not env.get("ONYX_R2R_TEST_DATABASE_URL"):
        pytest.skip(
            "the local stack is not set up: no ONYX_R2R_TEST_DATABASE_URL in "
            f"{os.environ.get('ONYX_CONTRACT_STACK_ENV')} (STACK_DIR=… scripts/stack up)"
        )
    queue = f"r2r_contract_{uuid.uuid4().hex[:8]}"
    settings = BridgeSettings(
        database_url=env["ONYX_R2R_TEST_DATABASE_URL"],
        broker_url=env["ONYX_R2R_BROKER_URL"],
        queue=queue,
    )
    tenant = f"contract_{uuid.uuid4().hex[:10]}"
    index = R2RIndex(None, tenant_id=tenant, flags=R2RFlags(mode="mirror"), settings=settings)
    chunks = _onyx_chunks(_onyx_document("live"), ["live text"], _access(groups=["eng"]))
    ledger = Ledger.from_settings(settings)
    redis = Redis.from_url(settings.broker_url)
    try:
        assert [r.document_id for r in index.index(chunks, None)] == ["live"]
        assert index.stats.errors == 0
        row = ledger.get_state(tenant, "live")
        assert row["status"] == "pending" and row["desired_labels"] == ["acl:group:eng"]
        left = sorted(k.decode() for k in redis.scan_iter(match=f"*{queue}*"))
        assert left, "the doorbell rang no drain (nothing to clean up would prove nothing)"
    finally:  # no worker runs here: leave nothing for other test workers to apply
        with ledger.engine.begin() as conn:
            conn.execute(
                text("DELETE FROM r2r_bridge.document_state WHERE tenant_id = :t"), {"t": tenant}
            )
        for key in redis.scan_iter(match=f"*{queue}*"):  # drain task, binding, doorbell
            redis.delete(key)
    assert list(redis.scan_iter(match=f"*{queue}*")) == []
    with ledger.engine.connect() as conn:
        assert not conn.execute(
            text("SELECT 1 FROM r2r_bridge.document_state WHERE tenant_id = :t"), {"t": tenant}
        ).first()
