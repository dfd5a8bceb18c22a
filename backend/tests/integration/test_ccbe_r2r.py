"""CCBE's R2R backend (``ccbe/…/backends/r2r.py``) against the stack's real R2R.

Driven with objects shaped like CCBE's (``tests/ccbe_shaped``: ``InDocument``,
``SourceItem``, v5.3 uploads, ``UpdateAccessOp``, scopes) in both generations' shapes, no
CCBE checkout needed (real CCBE code runs the same scenarios in ``tests/ccbe_contract``).
Every test has its own ``CCBE_R2R_INSTANCE``, whose documents and collections are deleted
afterwards.
"""

from __future__ import annotations

import importlib
import json
import pickle
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from ccbe_shaped import GENERATIONS, SHAPED_DIR, load_generation
from langchain_core.documents import Document
from r2r_purge import purge_scope

from onyx.r2r_sender import (
    NEXTCLOUD,
    ONYX,
    BridgeSettings,
    R2RClient,
    Retriever,
    SearchScope,
    SourceDocument,
    SyncApplier,
)
from onyx.r2r_sender.collections import label_from

pytestmark = pytest.mark.integration

FILES, NOTES, DECK = "files__default", "notes__default", "deck__cards"
ENV_VARS = ("R2R_BASE_URL", "R2R_API_KEY", "R2R_EMAIL", "R2R_PASSWORD", "CCBE_R2R_INSTANCE")


# ------------------------------------------------------------------ fixtures and helpers
@pytest.fixture
def admin(stack: dict[str, str]) -> Iterator[R2RClient]:
    with R2RClient(
        stack["R2R_BASE_URL"], email=stack["R2R_ADMIN_EMAIL"], password=stack["R2R_ADMIN_PASSWORD"]
    ) as client:
        yield client


class Shapes:
    """CCBE-shaped inputs of one generation (v5.3 lists and uploads, v5.4 mappings)."""

    def __init__(self, generation: str) -> None:
        self.generation = generation
        self.chain = importlib.import_module("context_chat_backend.chain.types")
        self.types = importlib.import_module("context_chat_backend.types")
        self.db_types = importlib.import_module("context_chat_backend.vectordb.types")
        self.pull = generation == "5.4"

    def allow(self) -> Any:
        return self.db_types.UpdateAccessOp["ALLOW" if self.pull else "allow"]

    def deny(self) -> Any:
        return self.db_types.UpdateAccessOp["DENY" if self.pull else "deny"]

    def scope(self, value: str) -> Any:
        """v5.3 hands ``doc_search`` the enum, v5.4 its value."""
        return self.chain.ScopeType(value) if not self.pull else value

    def indoc(
        self,
        ref: str,
        text: str | list[str],
        users: list[str],
        provider: str = FILES,
        modified: int = 1_700_000_000,
    ) -> Any:
        texts = [text] if isinstance(text, str) else text
        return self.chain.InDocument(
            documents=[
                Document(
                    page_content=t,
                    metadata={"source": ref, "title": f"{ref}.txt", "type": "text/plain"},
                )
                for t in texts
            ],
            userIds=users,
            source_id=ref,
            provider=provider,
            modified=modified,
        )

    def batch(self, *indocs: Any) -> Any:
        return {100 + i: d for i, d in enumerate(indocs)} if self.pull else list(indocs)

    def sources(self, *pairs: tuple[str, int]) -> Any:
        if self.pull:
            return {
                i: self.types.SourceItem(
                    userIds=["alice"],
                    reference=ref,
                    title=ref,
                    modified=modified,
                    type="text/plain",
                    provider=FILES,
                    size=1.0,
                    content="x",
                )
                for i, (ref, modified) in enumerate(pairs)
            }
        # v5.3: starlette UploadFiles, the reference in .filename, modified in a header
        return [
            SimpleNamespace(filename=ref, headers={"modified": str(modified)})
            for ref, modified in pairs
        ]

    def added(self, result: Any) -> set[str]:
        """The source ids an ``add_indocuments`` result reports as indexed."""
        if self.pull:
            raise AssertionError("use the mapping")
        return set(result[0])


@pytest.fixture(params=GENERATIONS)
def shapes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Shapes:
    load_generation(request.param, monkeypatch, unset=ENV_VARS)
    return Shapes(request.param)


@pytest.fixture
def r2r_env(
    stack: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, admin: R2RClient
) -> Iterator[dict[str, str]]:
    """The backend's environment on the stack's R2R with a fresh instance (purged after)."""
    env = {
        "R2R_BASE_URL": stack["R2R_BASE_URL"],
        "R2R_EMAIL": stack["R2R_ADMIN_EMAIL"],
        "R2R_PASSWORD": stack["R2R_ADMIN_PASSWORD"],
        "CCBE_R2R_INSTANCE": f"test-{uuid.uuid4().hex[:10]}",
        "APP_PERSISTENT_STORAGE": str(tmp_path / "storage"),
    }
    for key in ENV_VARS:
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield env
    purge_scope(admin, NEXTCLOUD.scope(env["CCBE_R2R_INSTANCE"]))


def backend_module() -> ModuleType:
    return importlib.import_module("context_chat_backend.backends.r2r")


@pytest.fixture
def db(shapes: Shapes, r2r_env: dict[str, str]) -> Any:
    backend = importlib.import_module("context_chat_backend.backends").get_backend_class("r2r")(
        None
    )
    yield backend
    backend.close()


def sources(db: Any, user: str, query: str = "anything", k: int = 20, **scope: Any) -> list[str]:
    return [d.metadata["source"] for d in db.doc_search(user, query, k, **scope)]


def assert_indexed(shapes: Shapes, batch: Any, result: Any) -> None:
    if shapes.pull:
        assert result == dict.fromkeys(batch.keys()), result
    else:
        assert result == ([d.source_id for d in batch], []), result


def count_requests(db: Any) -> list[tuple[str, str]]:
    """(method, path) of every request *db*'s client sends from now on."""
    seen: list[tuple[str, str]] = []
    db._engine().client._transport._http.event_hooks["request"].append(
        lambda request: seen.append((request.method, request.url.path))
    )
    return seen


def writes(requests: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [r for r in requests if r[0] != "GET" and not r[1].endswith("/users/login")]


# ------------------------------------------------------------------ indexing and ACL
def test_acl_isolation_scopes_and_results_in_both_shapes(shapes: Shapes, db: Any) -> None:
    batch = shapes.batch(
        shapes.indoc(f"{FILES}: 1", "Alice's vault combination is 1-2-3 pelican.", ["alice"]),
        shapes.indoc(f"{FILES}: 2", "Bob's vault combination is 4-5-6 heron.", ["bob"]),
        shapes.indoc(
            f"{NOTES}: 3", "Shared note about the vault for owls.", ["alice", "bob"], NOTES
        ),
        shapes.indoc(f"{NOTES}: 4", "Carol's diary mentions the vault.", ["carol"], NOTES),
    )
    result = db.add_indocuments(batch)
    assert_indexed(shapes, batch, result)
    assert sorted(sources(db, "alice", "vault")) == [f"{FILES}: 1", f"{NOTES}: 3"]
    assert sorted(sources(db, "bob", "vault")) == [f"{FILES}: 2", f"{NOTES}: 3"]
    assert sources(db, "carol", "vault") == [f"{NOTES}: 4"]
    found = db.doc_search("alice", "pelican combination", 1)
    assert len(found) == 1 and found[0].metadata["source"] == f"{FILES}: 1"  # best first
    assert found[0].metadata["title"] == f"{FILES}: 1.txt" and "pelican" in found[0].page_content
    assert found[0].metadata["type"] == "text/plain" and found[0].metadata["provider"] == FILES
    # scopes: the provider's metadata, or the source ids; v5.3 passes the enum
    provider = shapes.scope("provider")
    assert sources(db, "alice", "vault", scope_type=provider, scope_list=[NOTES]) == [f"{NOTES}: 3"]
    source = shapes.scope("source")
    assert sources(db, "bob", "vault", scope_type=source, scope_list=[f"{FILES}: 1"]) == []
    assert sources(db, "bob", "vault", scope_type=source, scope_list=[f"{FILES}: 2"]) == [
        f"{FILES}: 2"
    ]
    assert (
        sources(db, "alice", "vault", scope_type=provider, scope_list=["no_such__provider"]) == []
    )
    assert sources(db, "alice", "vault", scope_type=provider, scope_list=[]) == []
    safe = importlib.import_module("context_chat_backend.vectordb.types").SafeDbException
    with pytest.raises(safe) as err:
        db.doc_search("alice", "vault", 5, scope_type=provider, scope_list=None)
    assert err.value.args[1] == 400
    # a user with no collection: [] without a search request
    requests = count_requests(db)
    assert db.doc_search("nobody-here", "vault", 5) == []
    assert not [r for r in requests if r[1] == "/v3/retrieval/search"]
    assert db.count_documents_by_provider() == {FILES: 2, NOTES: 2}


def test_check_sources_same_modified_writes_nothing_and_newer_reindexes(
    shapes: Shapes, db: Any
) -> None:
    ref, other = f"{FILES}: 10", f"{FILES}: 11"
    db.add_indocuments(
        shapes.batch(shapes.indoc(ref, "old text about cranes", ["alice"], modified=500))
    )
    requests = count_requests(db)
    existing, to_embed = db.check_sources(shapes.sources((ref, 500), (other, 1)))
    assert (existing, to_embed) == ([ref], [other])
    assert db.check_sources(shapes.sources((ref, 499))) == ([ref], [])
    # CCBE then re-allows the existing source's users: already there, so still no write
    db.update_access(shapes.allow(), ["alice"], ref)
    assert writes(requests) == [], requests
    assert db.check_sources(shapes.sources((ref, 501))) == ([], [ref])
    assert sources(db, "alice", "cranes") == [ref]  # check_sources deleted nothing
    db.add_indocuments(
        shapes.batch(shapes.indoc(ref, "new text about herons", ["alice"], modified=501))
    )
    (hit,) = db.doc_search("alice", "herons", 5)
    assert hit.page_content == "new text about herons" and hit.metadata["modified"] == 501
    assert db.check_sources(shapes.sources((ref, 501))) == ([ref], [])


def test_gap_free_reindex_a_search_loop_never_misses_and_never_sees_two_versions(
    shapes: Shapes, db: Any
) -> None:
    if not shapes.pull:
        pytest.skip("one generation is enough: the replace is the same code")
    ref = f"{FILES}: 20"
    db.add_indocuments(
        shapes.batch(
            shapes.indoc(
                ref, ["v0 lighthouse part a", "v0 lighthouse part b"], ["alice"], modified=1
            )
        )
    )
    reader = importlib.import_module("context_chat_backend.backends").get_backend_class("r2r")(None)
    seen: list[list[str]] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            hits = reader.doc_search("alice", "lighthouse", 10)
            seen.append([h.page_content for h in hits if h.metadata["source"] == ref])

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        for version in range(1, 5):
            texts = [f"v{version} lighthouse part a", f"v{version} lighthouse part b"]
            result = db.add_indocuments(
                shapes.batch(shapes.indoc(ref, texts, ["alice"], modified=1 + version))
            )
            assert list(result.values()) == [None]
    finally:
        stop.set()
        thread.join(30)
        reader.close()
    assert len(seen) >= 5, len(seen)
    for texts in seen:
        assert texts, "a search missed the document during a replace"
        assert len({t.split()[0] for t in texts}) == 1, texts  # one version at a time
    assert {t.split()[0] for t in seen[-1]} == {"v4"}


# ------------------------------------------------------------------ access changes and deletes
def test_allow_deny_declarative_provider_and_orphans(shapes: Shapes, db: Any) -> None:
    a, b, c = f"{FILES}: 31", f"{FILES}: 32", f"{DECK}: 33"
    db.add_indocuments(
        shapes.batch(
            shapes.indoc(a, "quarterly report on otters", ["alice"]),
            shapes.indoc(b, "minutes about otters", ["alice", "bob"]),
            shapes.indoc(c, "deck card about otters", ["carol"], DECK),
        )
    )
    db.update_access(shapes.allow(), ["bob", "dave"], a)
    assert sorted(sources(db, "bob", "otters")) == [a, b] and sources(db, "dave", "otters") == [a]
    db.update_access(shapes.deny(), ["alice"], b)
    assert sources(db, "alice", "otters") == [a] and sorted(sources(db, "bob", "otters")) == [a, b]
    db.decl_update_access(["carol"], a)  # replaces alice, bob, dave
    assert sources(db, "alice", "otters") == [] and sources(db, "dave", "otters") == []
    assert sorted(sources(db, "carol", "otters")) == sorted([a, c])
    db.update_access_provider(shapes.allow(), ["erin"], DECK)
    assert sources(db, "erin", "otters") == [c]
    db.update_access_provider(shapes.deny(), ["carol", "erin"], DECK)  # c is left with nobody
    assert db.count_documents_by_provider() == {FILES: 2}  # the orphan was deleted
    assert db.check_sources(shapes.sources((c, 1_700_000_000)))[1] == [c]
    db.update_access(shapes.deny(), ["bob"], b)  # orphan through a plain deny
    db.decl_update_access([], a)  # and through an empty declaration
    assert db.count_documents_by_provider() == {}
    safe = importlib.import_module("context_chat_backend.vectordb.types").SafeDbException
    for call in (
        lambda: db.update_access(shapes.allow(), ["bob"], f"{FILES}: 404"),
        lambda: db.update_access(shapes.deny(), ["bob"], f"{FILES}: 404"),
        lambda: db.decl_update_access(["bob"], f"{FILES}: 404"),
    ):
        with pytest.raises(safe) as err:
            call()
        assert err.value.args[1] == 404
    with pytest.raises(safe) as err:
        db.update_access("maybe", ["bob"], a)
    assert err.value.args[1] == 400
    db.update_access_provider(shapes.allow(), ["bob"], "no_such__provider")  # nothing to do


def test_deletes_keep_shared_collections_and_other_users_documents(
    shapes: Shapes, db: Any, admin: R2RClient, r2r_env: dict[str, str]
) -> None:
    shared, own, note = f"{FILES}: 41", f"{FILES}: 42", f"{NOTES}: 43"
    db.add_indocuments(
        shapes.batch(
            shapes.indoc(shared, "shared harbour plan", ["alice", "bob"]),
            shapes.indoc(own, "bob's own harbour notes", ["bob"]),
            shapes.indoc(note, "a harbour note for alice and bob", ["alice", "bob"], NOTES),
        )
    )
    scope = NEXTCLOUD.scope(r2r_env["CCBE_R2R_INSTANCE"])
    collections_before = {
        label_from(scope, c.name, c.description) for c in admin.iter_collections()
    } - {None}
    db.delete_user("bob")
    assert sources(db, "bob", "harbour") == []
    assert sorted(sources(db, "alice", "harbour")) == sorted([shared, note])  # chunks kept
    assert db.count_documents_by_provider() == {FILES: 1, NOTES: 1}  # bob's own one is gone
    db.delete_provider(NOTES)
    assert sources(db, "alice", "harbour") == [shared]
    assert db.count_documents_by_provider() == {FILES: 1}
    db.delete_source_ids([shared, f"{FILES}: never-indexed"])
    assert db.count_documents_by_provider() == {} and sources(db, "alice", "harbour") == []
    collections_after = {
        label_from(scope, c.name, c.description) for c in admin.iter_collections()
    } - {None}
    assert collections_after == collections_before  # no collection was deleted
    db.delete_provider("no_such__provider")
    db.delete_user("nobody-at-all")


def test_counts_always_contain_files_default(shapes: Shapes, db: Any) -> None:
    assert db.count_documents_by_provider() == {}
    db.add_indocuments(shapes.batch(shapes.indoc(f"{NOTES}: 51", "a note", ["alice"], NOTES)))
    assert db.count_documents_by_provider() == {FILES: 0, NOTES: 1}


# ------------------------------------------------------------------ hosts and instances
def test_two_hosts_and_two_instances_with_equal_ids_never_see_each_other(
    shapes: Shapes,
    db: Any,
    r2r_env: dict[str, str],
    admin: R2RClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not shapes.pull:
        pytest.skip("the scope does not depend on the generation")
    instance, ref = r2r_env["CCBE_R2R_INSTANCE"], f"{FILES}: 61"
    db.add_indocuments(shapes.batch(shapes.indoc(ref, "nextcloud albatross text", ["alice"])))
    # another Nextcloud instance with the same reference and user
    monkeypatch.setenv("CCBE_R2R_INSTANCE", f"{instance}-other")
    other = backend_module().VectorDB(None)
    onyx = ONYX.scope(instance)  # and an Onyx tenant with the instance's name
    settings = BridgeSettings(r2r_base_url=admin.base_url)
    sync = SyncApplier(admin, settings)
    try:
        assert other.doc_search("alice", "albatross", 5) == []
        other.add_indocuments(shapes.batch(shapes.indoc(ref, "other albatross text", ["alice"])))
        outcome = sync.apply_documents(
            onyx, [SourceDocument(document_id=ref, text="onyx albatross text", acl=["alice"])]
        )
        assert outcome[ref].ok
        assert [d.page_content for d in db.doc_search("alice", "albatross", 5)] == [
            "nextcloud albatross text"
        ]
        assert [d.page_content for d in other.doc_search("alice", "albatross", 5)] == [
            "other albatross text"
        ]
        onyx_hits = Retriever(admin, sync.resolver).search(
            SearchScope(scope_key=onyx.key, principals=("alice",)), "albatross", mode="semantic"
        )
        assert [h.text for h in onyx_hits] == ["onyx albatross text"]
        db.delete_user("alice")
        assert len(other.doc_search("alice", "albatross", 5)) == 1
        assert db.count_documents_by_provider() == {} and other.count_documents_by_provider() == {
            FILES: 1
        }
    finally:
        other.close()
        purge_scope(admin, NEXTCLOUD.scope(f"{instance}-other"))
        sync.delete_documents(onyx, [ref])
        purge_scope(admin, onyx)


# ------------------------------------------------------------------ processes
def test_backend_results_and_errors_pickle(
    shapes: Shapes, db: Any, r2r_env: dict[str, str]
) -> None:
    ref = f"{FILES}: 71"
    result = db.add_indocuments(
        shapes.batch(
            shapes.indoc(ref, "pickled puffin", ["alice"]),
            shapes.indoc(f"{FILES}: 72", "  ", ["alice"]),
        )
    )
    assert pickle.loads(pickle.dumps(result)) == result
    if shapes.pull:
        error = result[101]
        assert error.retryable is False and f"{FILES}: 72" in error.error
    found = db.doc_search("alice", "puffin", 3)
    assert pickle.loads(pickle.dumps(found)) == found
    blob = pickle.dumps(db)
    assert r2r_env["R2R_PASSWORD"].encode() not in blob
    again = pickle.loads(blob)
    assert sources(again, "alice", "puffin") == [ref]  # the copy reconnects on first use
    again.close()
    types = importlib.import_module("context_chat_backend.vectordb.types")
    with pytest.raises(types.SafeDbException) as err:
        db.update_access(shapes.allow(), ["bob"], f"{FILES}: 404")
    copy = pickle.loads(pickle.dumps(err.value))
    assert type(copy) is types.SafeDbException and copy.args == err.value.args


CHILD = r"""
import json, os, sys, time
sys.path.insert(0, {shaped!r})
started = time.perf_counter()
from ccbe_shaped import load_generation
load_generation({generation!r})
from context_chat_backend.backends import get_backend_class
imported = time.perf_counter()
klass = get_backend_class("r2r")
t0 = time.perf_counter()
db = klass(None)
constructed = time.perf_counter() - t0
t1 = time.perf_counter()
counts = db.count_documents_by_provider() if {operate!r} else None
operated = time.perf_counter() - t1
print(json.dumps({{"construct": constructed, "import": imported - started,
                   "operate": operated, "logins": db.logins, "counts": counts}}))
"""


def run_child(generation: str, env: dict[str, str], operate: bool) -> dict[str, Any]:
    import json
    import os

    code = CHILD.format(shaped=str(SHAPED_DIR.parent), generation=generation, operate=operate)
    child_env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**child_env, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_construction_in_a_fresh_process_is_cheap_and_one_login_serves_every_process(
    shapes: Shapes, r2r_env: dict[str, str]
) -> None:
    if not shapes.pull:
        pytest.skip("the process model does not depend on the generation")
    # no I/O at construction: an unreachable R2R constructs just as fast
    closed = run_child("5.4", {**r2r_env, "R2R_BASE_URL": "http://127.0.0.1:9"}, operate=False)
    assert closed["construct"] < 0.05, closed
    first = run_child("5.4", r2r_env, operate=True)
    second = run_child("5.4", r2r_env, operate=True)
    assert first["construct"] < 0.05 and second["construct"] < 0.05
    assert first["logins"] == 1 and second["logins"] == 0, (first, second)  # the stored token
    token_file = Path(r2r_env["APP_PERSISTENT_STORAGE"]) / "r2r" / "tokens.json"
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert r2r_env["R2R_PASSWORD"] not in token_file.read_text()
    print(f"\n[ccbe r2r] fresh process: {first} then {second}")


def test_check_connection_and_diagnose_name_the_problem(
    shapes: Shapes, r2r_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    module = backend_module()
    assert module.VectorDB(None).check_connection("files_indexing") is True
    assert module.VectorDB(None).diagnose("init") == ""
    monkeypatch.setenv("R2R_BASE_URL", "http://127.0.0.1:9")
    down = module.VectorDB(None)
    assert down.check_connection("files_indexing") is False
    assert "unreachable" in down.diagnose("init")
    monkeypatch.setenv("R2R_BASE_URL", r2r_env["R2R_BASE_URL"])
    monkeypatch.setenv("R2R_PASSWORD", "wrong-password-r2r-7")
    monkeypatch.setenv("APP_PERSISTENT_STORAGE", r2r_env["APP_PERSISTENT_STORAGE"] + "-other")
    refused = module.VectorDB(None).diagnose("init")
    assert "credentials refused" in refused and "wrong-password-r2r-7" not in refused
    db_exception = importlib.import_module("context_chat_backend.vectordb.types").DbException
    for changes, message in (
        ({"R2R_BASE_URL": ""}, "R2R_BASE_URL is not set"),
        ({"R2R_BASE_URL": "ftp://x"}, "http:// or https://"),
        ({"R2R_PASSWORD": ""}, "together"),
        ({"R2R_TIMEOUT": "soon"}, "R2R_TIMEOUT"),
    ):
        with monkeypatch.context() as m:
            for key, value in changes.items():
                m.setenv(key, value)
            with pytest.raises(db_exception, match=message) as err:
                module.VectorDB(None)
            assert "wrong-password-r2r-7" not in str(err.value)
    with pytest.raises(db_exception, match=r"vectordb\.r2r\.connection"):
        module.VectorDB(None, connection="x")


def test_default_instance_is_derived_from_app_id_and_nextcloud_url(shapes: Shapes) -> None:
    module = backend_module()
    env = {"APP_ID": "context_chat_backend", "NEXTCLOUD_URL": "https://cloud.example.com:8443/nc/"}
    assert module.default_instance(env) == "context_chat_backend@cloud.example.com-8443-nc"
    assert module.default_instance({}) == "context_chat_backend@default"


# ------------------------------------------------------------------ bad input
def test_bad_input_is_refused_per_document_naming_the_source(shapes: Shapes, db: Any) -> None:
    if not shapes.pull:
        pytest.skip("per-document errors are v5.4's shape (v5.3 reports the retry list)")
    good, kept = f"{FILES}: 81", f"{FILES}: 82"
    db.add_indocuments(shapes.batch(shapes.indoc(kept, "kept kingfisher text", ["alice"])))
    odd_ref = f"{FILES}: Überweisung, März ✓ 83"
    odd_users = ["ali ce", "Zoë", "comma,user"]
    bad = {
        1: shapes.indoc(good, "good kingfisher text", ["alice"]),
        2: shapes.indoc(f"{FILES}: 84", ["", "   "], ["alice"]),  # empty document
        3: shapes.indoc(f"{FILES}: 85", "x" * (50 * 1024 * 1024), ["alice"]),  # 50 MB
        4: shapes.indoc(odd_ref, "odd kingfisher reference", odd_users),
        5: shapes.indoc(f"{FILES}: 86", "no provider kingfisher", ["alice"], provider=" "),
        7: shapes.indoc(f"{FILES}: 88", [f"c{i}" for i in range(102_401)], ["alice"]),  # R2R: 400
        8: shapes.indoc(kept, [f"c{i}" for i in range(102_401)], ["alice"], modified=1_800_000_000),
    }
    result = db.add_indocuments(bad)
    assert result[1] is None and result[4] is None, result
    for key, fragment in {2: "no text", 3: "MiB", 5: "provider", 7: "102400", 8: "102400"}.items():
        error = result[key]
        assert error is not None and error.retryable is False, (key, error)
        assert bad[key].source_id in error.error and fragment in error.error, (key, error.error)
    assert sorted(sources(db, "alice", "kingfisher")) == sorted([good, kept])
    assert db.doc_search("alice", "kingfisher kept", 5)[0].page_content in (
        "kept kingfisher text",
        "good kingfisher text",
    )
    assert [
        d.page_content
        for d in db.doc_search("alice", "kingfisher", 5, scope_type="source", scope_list=[kept])
    ] == ["kept kingfisher text"]  # nothing lost
    for user in odd_users:
        assert sources(db, user, "kingfisher") == [odd_ref], user
    assert sources(db, "comma", "kingfisher") == []  # never split
    db.update_access(shapes.deny(), odd_users[:2], odd_ref)
    assert sources(db, "Zoë", "kingfisher") == [] and sources(db, "comma,user", "kingfisher") == [
        odd_ref
    ]


@pytest.mark.slow
def test_thousands_of_users_on_one_document(shapes: Shapes, db: Any) -> None:
    """2,000 users: one collection each (created 8 at a time after one listing), one create
    with every membership; access changes and the orphan deletion stay membership diffs."""
    if not shapes.pull:
        pytest.skip("the collections do not depend on the generation")
    ref, many = f"{FILES}: 87", [f"user-{i:05d}" for i in range(2000)]
    started = time.monotonic()
    result = db.add_indocuments(shapes.batch(shapes.indoc(ref, "crowded kingfisher", many)))
    indexed = time.monotonic() - started
    assert list(result.values()) == [None], result
    for user in (many[0], many[999], many[-1]):
        assert sources(db, user, "kingfisher") == [ref]
    db.decl_update_access(many[:1], ref)
    assert sources(db, many[1], "kingfisher") == [] and sources(db, many[0], "kingfisher") == [ref]
    db.delete_user(many[0])  # the last user: the document is deleted
    assert db.check_sources(shapes.sources((ref, 1))) == ([], [ref])
    print(f"\n[ccbe r2r] one document for 2,000 users indexed in {indexed:.1f} s")


def fresh_backend() -> Any:
    """A new backend, as CCBE builds one per operation (its in-process caches empty)."""
    return importlib.import_module("context_chat_backend.backends").get_backend_class("r2r")(None)


def test_searches_remember_the_users_collection_across_processes(
    shapes: Shapes, db: Any, r2r_env: dict[str, str]
) -> None:
    """The first search of a user looks the user's collection up; later searches, in any
    fresh backend, send the search alone (the id is remembered in APP_PERSISTENT_STORAGE,
    under a hashed key: no user id on disk)."""
    if not shapes.pull:
        pytest.skip("the cache does not depend on the generation")
    batch = shapes.batch(shapes.indoc(f"{FILES}: 1", "The heron nests by the lake.", ["dora"]))
    assert_indexed(shapes, batch, db.add_indocuments(batch))
    first = fresh_backend()
    seen = count_requests(first)
    assert sources(first, "dora", "heron") == [f"{FILES}: 1"]
    assert ("POST", "/v3/retrieval/search") in seen and len(
        [r for r in seen if not r[1].endswith("/users/login")]
    ) == 2, seen
    first.close()
    second = fresh_backend()
    seen = count_requests(second)
    assert sources(second, "dora", "heron") == [f"{FILES}: 1"]
    assert [r for r in seen if not r[1].endswith("/users/login")] == [
        ("POST", "/v3/retrieval/search")
    ], seen
    second.close()
    cache = Path(r2r_env["APP_PERSISTENT_STORAGE"]) / "r2r" / "collections.json"
    assert cache.stat().st_mode & 0o777 == 0o600
    assert "dora" not in cache.read_text()


def test_a_stale_remembered_collection_is_looked_up_again(
    shapes: Shapes, db: Any, r2r_env: dict[str, str]
) -> None:
    """A remembered id that no longer names the user's collection (R2R's collections were
    changed behind the backend's back) finds nothing: the search looks the collection up
    again, searches with it and remembers it."""
    if not shapes.pull:
        pytest.skip("the cache does not depend on the generation")
    batch = shapes.batch(shapes.indoc(f"{FILES}: 7", "The owl hunts at dusk.", ["emil"]))
    assert_indexed(shapes, batch, db.add_indocuments(batch))
    assert sources(fresh_backend(), "emil", "owl") == [f"{FILES}: 7"]  # remembered now
    cache = Path(r2r_env["APP_PERSISTENT_STORAGE"]) / "r2r" / "collections.json"
    remembered = json.loads(cache.read_text())
    assert len(remembered) == 1
    (key, right) = next(iter(remembered.items()))
    cache.write_text(json.dumps({key: str(uuid.uuid4())}))  # a collection that does not exist
    backend = fresh_backend()
    seen = count_requests(backend)
    assert sources(backend, "emil", "owl") == [f"{FILES}: 7"]
    assert len([r for r in seen if r == ("POST", "/v3/retrieval/search")]) == 2, seen
    assert json.loads(cache.read_text()) == {key: right}
    backend.close()
