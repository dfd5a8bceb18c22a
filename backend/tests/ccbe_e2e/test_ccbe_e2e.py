"""End to end: real CCBE (``main.py`` of a v5.3.x or v5.4.x checkout, patched) as an ExApp.

Run by ``scripts/ccbe_e2e CCBE_SOURCE_DIR`` (``CCBE_E2E_SOURCE``/``_VENV``/``_VERSION``).
Every scenario copies the checkout, installs overlay and patches with ``patches/apply
--host ccbe``, starts CCBE's ``main.py`` in its own session against the fake Nextcloud
(``tests/fake_nextcloud.py``) and drives it as AppAPI and Nextcloud do:

* v5.4 (pull): heartbeat → init (the fake sees progress 100, no error) → enabled=1 (the fake
  sees both TaskProcessing providers) → 60 documents of 3 users in 2 providers taken from the
  documents queue and acknowledged → chat tasks answered from each user's own documents →
  allow/deny/declarative/delete-source/delete-provider/delete-user actions applied → the
  store down: nothing taken from the queues; back: everything drains → 401 and 422.
* v5.3 (push): the same through ``/loadSources``, ``/query``, ``/docSearch`` and the
  update/delete endpoints, plus unchanged re-uploads, a newer ``modified`` and a bad header.
* both: a scaffold (``RAG_BACKEND=pinecone``) registers, stays up, answers 501, ``/init``
  reports it, and nothing queued is taken or lost.

Stores: ``pgvector`` (upstream's own module) on a scratch database of the stack's
PostgreSQL, embedding with CCBE's own client through a :class:`TcpGate` to a private
embedding stub (closing the gate = the store down), and ``r2r`` on the stack's R2R behind
a gate once ``backends/r2r.py`` is real (until then those scenarios skip, saying why).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from ccbe_exapp_harness import (
    CcbeProcess,
    EmbedStub,
    ExAppClient,
    TcpGate,
    prepared_checkout,
    running,
)
from ccbe_pg import scratch_vector_database
from ccbe_shaped import r2r_placeholder_reason
from fake_nextcloud import CONTEXT_CHAT_PROVIDERS, FakeNextcloud
from r2r_purge import purge_scope
from stack_helpers import wait_until

from onyx.r2r_sender import NEXTCLOUD, BridgeSettings, R2RClient, SyncApplier

from .corpus import CODES, FILES, NOTES, USERS, Doc, build_corpus

SOURCE = os.environ.get("CCBE_E2E_SOURCE", "")
if not SOURCE:
    pytest.skip(
        "end-to-end tests with real CCBE: run scripts/ccbe_e2e CCBE_SOURCE_DIR",
        allow_module_level=True,
    )

pytestmark = [pytest.mark.ccbe_e2e, pytest.mark.integration]

VENV = Path(os.environ["CCBE_E2E_VENV"])
VERSION = os.environ["CCBE_E2E_VERSION"]
GEN = ".".join(VERSION.split(".")[:2])
PULL = GEN == "5.4"
SECRET = f"e2e-secret-{uuid.uuid4().hex[:8]}"
SEARCH_TYPE, CHAT_TYPE = "context_chat:context_chat_search", "context_chat:context_chat"
LOOP = 30  # CCBE's POLLING_COOLDOWN: a worker thread sleeps this long when it may not work


# ------------------------------------------------------------------ the running ExApp
class ExAppScenario:
    """One patched CCBE process with its fake Nextcloud, store and corpus model."""

    def __init__(
        self,
        tmp: Path,
        backend: str,
        store_env: dict[str, str],
        gate: TcpGate | None,
        embedded: Callable[[], int] | None = None,
    ) -> None:
        self.backend = backend
        self.gate = gate
        self.embedded = embedded  # texts the store's embedding server embedded so far
        self.corpus = build_corpus()
        self.fake = FakeNextcloud(app_secret=SECRET)
        checkout = prepared_checkout(Path(SOURCE), tmp / "ccbe")
        self.store_env = store_env
        self.ccbe = CcbeProcess(checkout, VENV, tmp / "storage", {})
        self.client: ExAppClient | None = None
        self.timings: dict[str, float] = {}

    def start(self, url: str) -> None:
        self.ccbe.env = {
            **self.fake.exapp_env(url, VERSION),
            "RAG_BACKEND": self.backend,
            **self.store_env,
        }
        self.ccbe.env.pop("APP_PORT")  # the process' own port
        started = time.monotonic()
        self.ccbe.start()
        self.timings["start"] = time.monotonic() - started
        self.client = ExAppClient(self.ccbe.url, self.fake.app_id, VERSION, SECRET)

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        assert self.client is not None
        answer = self.client.request(method, path, **kwargs)
        assert answer.headers.get_list("EX-APP-VERSION") == [VERSION], (path, answer.headers)
        return answer

    def init_and_enable(self) -> None:
        answer = self.call("POST", "/init")
        assert answer.status_code == 200 and answer.json() == {}
        wait_until(
            lambda: any(r["progress"] == 100 or r["error"] for r in self.fake.init_reports),
            60,
            0.2,
            "the init job's last report",
        )
        answer = self.call("PUT", "/enabled", params={"enabled": 1})
        assert answer.json() == {"error": ""}, answer.text

    def trigger(self, task_type: str) -> None:
        self.call("POST", "/trigger", params={"providerId": task_type.replace(":", "-")})

    def task(
        self,
        task_type: str,
        user: str,
        prompt: str,
        scope: dict[str, Any] | None = None,
        timeout: float = 180,
    ) -> dict[str, Any]:
        task_input = {"prompt": prompt, "scopeType": "none", "scopeList": [], "scopeListMeta": ""}
        task_id = self.fake.schedule_task(
            task_type, user, {**task_input, "limit": 10, **(scope or {})}
        )
        self.trigger(task_type)  # after the first trigger CCBE polls only every 300 s
        wait_until(
            lambda: task_id in self.fake.task_results,
            timeout,
            0.5,
            f"task {task_id} ({task_type}, {user})",
        )
        return self.fake.task_results[task_id]

    def search(self, user: str, prompt: str = "anything at all", provider: str = "") -> set[str]:
        """The sources a search of *user* returns (all of them: at most 30, see corpus.py),
        in one *provider* if given."""
        scope = {"scopeType": "provider", "scopeList": [provider]} if provider else {}
        if PULL:
            result = self.task(SEARCH_TYPE, user, prompt, scope)
            assert result["errorMessage"] is None, result
            return {json.loads(source)["id"] for source in result["output"]["sources"]}
        answer = self.call(
            "POST", "/docSearch", json={"userId": user, "query": prompt, "ctxLimit": 30, **scope}
        )
        assert answer.status_code == 200, answer.text
        return {hit["source_id"] for hit in answer.json()}

    def counts(self) -> dict[str, int]:
        answer = self.call("POST", "/countIndexedDocuments")
        assert answer.status_code == 200, answer.text
        return answer.json()

    def assert_acl(self) -> None:
        for user in USERS:
            assert self.search(user) == self.corpus.visible(user), user
        assert self.counts() == self.corpus.counts()

    def log_messages(self, logger_prefix: str = "") -> list[str]:
        return [
            r.get("message", "")
            for r in self.ccbe.log_records()
            if r.get("logger", "").startswith(logger_prefix)
        ]


def pgvector_store(
    stack: dict[str, str], tag: str
) -> Iterator[tuple[dict[str, str], TcpGate, Callable[[], int]]]:
    """pgvector on a scratch database; CCBE's embedding client through a gate to a private stub."""
    with scratch_vector_database(stack, f"ccbe_e2e{tag}") as url:
        stub = EmbedStub().start()
        gate = TcpGate(("127.0.0.1", stub.port)).open()
        with running(stub, gate):
            env = {
                "CCB_DB_URL": url.replace("postgresql://", "postgresql+psycopg://"),
                "CC_EM_BASE_URL": f"{gate.url}/v1",
            }
            yield env, gate, stub.embedded_texts


def r2r_store(stack: dict[str, str]) -> Iterator[tuple[dict[str, str], TcpGate, None]]:
    reason = r2r_placeholder_reason()
    if reason:
        pytest.skip(reason)
    host, _, port = stack["R2R_BASE_URL"].rpartition(":")
    gate = TcpGate((host.rsplit("/", 1)[-1], int(port))).open()
    env = {
        "R2R_BASE_URL": gate.url,
        "R2R_EMAIL": stack["R2R_ADMIN_EMAIL"],
        "R2R_PASSWORD": stack["R2R_ADMIN_PASSWORD"],
        "CCBE_R2R_INSTANCE": f"e2e-{uuid.uuid4().hex[:10]}",
    }
    try:
        with running(gate):
            yield env, gate, None
    finally:
        with r2r_admin({**env, "R2R_BASE_URL": stack["R2R_BASE_URL"]}) as client:
            purge_scope(client, NEXTCLOUD.scope(env["CCBE_R2R_INSTANCE"]))


def r2r_admin(store_env: dict[str, str]) -> R2RClient:
    return R2RClient(
        store_env["R2R_BASE_URL"], email=store_env["R2R_EMAIL"], password=store_env["R2R_PASSWORD"]
    )


def r2r_versions(store_env: dict[str, str]) -> list[tuple[str, str]]:
    """(R2R document id, content version) of every document of the scenario's instance."""
    scope = NEXTCLOUD.scope(store_env["CCBE_R2R_INSTANCE"])
    with r2r_admin(store_env) as client:
        sync = SyncApplier(client, BridgeSettings(r2r_base_url=client.base_url))
        held = sync.lookup(scope, [ref for ref in _r2r_refs(sync, scope)])
    return sorted((str(d.r2r_id), str(d.version)) for d in held.values())


def _r2r_refs(sync: SyncApplier, scope: Any) -> list[str]:
    labels = sync.label_counts(scope, "set:")
    return [ref for label in labels for ref in sync.labelled(scope, label)]


@pytest.fixture(scope="module", params=["pgvector", "r2r"])
def scenario(
    request: pytest.FixtureRequest,
    stack: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ExAppScenario]:
    backend = request.param
    tag = GEN.replace(".", "")
    stores: Iterator[tuple[dict[str, str], TcpGate, Any]] = (
        pgvector_store(stack, tag) if backend == "pgvector" else r2r_store(stack)
    )
    env, gate, embedded = next(stores)
    try:
        scene = ExAppScenario(
            tmp_path_factory.mktemp(f"ccbe-{backend}"), backend, env, gate, embedded
        )
        if PULL:  # the files thread sleeps 30 s when the queue is empty: queue first
            for doc in scene.corpus.docs.values():
                scene.fake.enqueue_document(
                    doc.queue_item(), doc.text.encode() if doc.is_file else None
                )
        with scene.fake.serve() as url:
            scene.start(url)
            with running(scene.ccbe):
                yield scene
            print(
                f"\n[ccbe_e2e] {VERSION} {backend}: timings {json.dumps({k: round(v, 1) for k, v in scene.timings.items()})}"
            )
    finally:
        stores.close()


# ------------------------------------------------------------------ lifecycle (both)
def test_heartbeat_init_and_enable(scenario: ExAppScenario) -> None:
    beat = httpx.get(f"{scenario.ccbe.url}/heartbeat")
    assert beat.status_code == 200 and beat.json() == {"status": "ok"}
    assert beat.headers.get_list("EX-APP-VERSION") == [VERSION]
    started = time.monotonic()
    scenario.init_and_enable()
    scenario.timings["init+enable"] = time.monotonic() - started
    assert scenario.fake.init_reports[-1] == {"progress": 100, "error": ""}, (
        scenario.fake.init_reports
    )
    assert [r["progress"] for r in scenario.fake.init_reports] == [5, 20, 100]
    if PULL:
        assert sorted(scenario.fake.providers) == sorted(CONTEXT_CHAT_PROVIDERS)
    assert scenario.fake.versions_seen == {VERSION} and not scenario.fake.auth_failures


# ------------------------------------------------------------------ v5.4: the pull path
@pytest.mark.skipif(not PULL, reason="the documents queue is v5.4's")
def test_queued_documents_are_indexed_and_acknowledged(scenario: ExAppScenario) -> None:
    started = time.monotonic()
    wait_until(
        lambda: scenario.fake.pending_documents() == 0, 300, 1, "the documents queue to drain"
    )
    scenario.timings["index 60"] = time.monotonic() - started
    acked = scenario.fake.acked_documents
    assert len(acked["files"]) + len(acked["content_providers"]) == 60
    assert len(acked["content_providers"]) == sum(
        1 for d in scenario.corpus.docs.values() if not d.is_file
    )
    downloaded = {file_id for file_id, _ in scenario.fake.file_downloads}
    assert downloaded == {d.file_id for d in scenario.corpus.docs.values() if d.is_file}
    scenario.assert_acl()


@pytest.mark.skipif(not PULL, reason="TaskProcessing chat tasks are v5.4's")
def test_chat_answers_from_each_users_own_documents(scenario: ExAppScenario) -> None:
    started = time.monotonic()
    for user in USERS:
        result = scenario.task(CHAT_TYPE, user, "What is the vault combination?")
        assert result["errorMessage"] is None, result
        output = result["output"]["output"]
        assert CODES[user] in output, (user, output[:500])
        assert not [code for other, code in CODES.items() if other != user and code in output]
        sources = {json.loads(s)["id"] for s in result["output"]["sources"]}
        assert sources <= scenario.corpus.visible(user)
    scenario.timings["3 chats"] = time.monotonic() - started
    # the LLM is Nextcloud's text2text task, scheduled as the asking user
    assert {user for user, _ in scenario.fake.llm_prompts} == set(USERS)


@pytest.mark.skipif(not PULL, reason="the actions queue is v5.4's")
def test_access_and_delete_actions_are_applied(scenario: ExAppScenario) -> None:
    corpus, special = scenario.corpus, scenario.corpus.special
    started = time.monotonic()

    def act(action: str, payload: dict[str, Any]) -> int:
        return scenario.fake.enqueue_action(action, payload)

    wave = [
        act(
            "update_access_source_id",
            {"op": "allow", "userIds": ["bob"], "sourceId": special["allow"]},
        ),
        act(
            "update_access_source_id",
            {"op": "deny", "userIds": ["alice"], "sourceId": special["deny"]},
        ),
        act("update_access_decl_source_id", {"userIds": ["carol"], "sourceId": special["declare"]}),
        act("delete_source_ids", {"sourceIds": [special["delete"]]}),
    ]
    corpus.allow(special["allow"], ["bob"])
    corpus.deny(special["deny"], ["alice"])
    corpus.declare(special["declare"], ["carol"])
    corpus.delete_sources([special["delete"]])
    wait_until(
        lambda: set(wave) <= set(scenario.fake.acked_actions), 3 * LOOP + 30, 1, "the first actions"
    )
    scenario.assert_acl()
    wave = [
        act("delete_provider_id", {"providerId": NOTES}),
        act("delete_user_id", {"userId": "bob"}),
    ]
    corpus.delete_provider(NOTES)
    corpus.delete_user("bob")
    wait_until(
        lambda: set(wave) <= set(scenario.fake.acked_actions),
        3 * LOOP + 30,
        1,
        "the second actions",
    )
    assert scenario.search("bob") == set()
    scenario.assert_acl()
    assert NOTES not in scenario.counts() and special["orphan"] not in corpus.docs
    scenario.timings["6 actions"] = time.monotonic() - started


@pytest.mark.skipif(not PULL, reason="the worker threads' gate is v5.4's")
def test_store_down_nothing_is_taken_then_everything_drains(scenario: ExAppScenario) -> None:
    fake, corpus = scenario.fake, scenario.corpus
    assert scenario.gate is not None
    scenario.gate.close()
    try:
        time.sleep(2)
        fetches = (fake.document_fetches, fake.action_fetches)
        acked = (dict(fake.acked_documents), list(fake.acked_actions))
        new = [
            Doc(
                f"{FILES}: {1900 + i}",
                FILES,
                f"late-{i}.txt",
                f"Late memo {i} about the harbour crane.",
                {"carol"},
            )
            for i in range(3)
        ]
        for doc in new:
            corpus.add(doc)
            fake.enqueue_document(doc.queue_item(), doc.text.encode())
        gated_actions = scenario.backend != "pgvector"  # upstream never gated the actions thread
        if gated_actions:
            # an indexed document: after the outage the actions thread may run before the
            # files thread, and an access change of a document not indexed yet is a 404 that
            # CCBE acknowledges (upstream's semantics), so a new one would race
            target = next(d.ref for d in corpus.docs.values() if d.users and "alice" not in d.users)
            action = fake.enqueue_action(
                "update_access_source_id",
                {"op": "allow", "userIds": ["alice"], "sourceId": target},
            )
            corpus.allow(target, ["alice"])
        task_id = fake.schedule_task(
            SEARCH_TYPE, "carol", {"prompt": "harbour crane", "scopeType": "none", "scopeList": []}
        )
        scenario.trigger(SEARCH_TYPE)
        time.sleep(LOOP + 20)  # at least one full loop of every thread while the store is down
        assert fake.document_fetches == fetches[0] and fake.pending_documents() == len(new)
        assert (fake.acked_documents, fake.acked_actions) == (acked[0], acked[1])
        assert (
            task_id not in fake.task_results and fake.tasks[task_id]["status"] == "STATUS_SCHEDULED"
        )
        if gated_actions:
            assert fake.action_fetches == fetches[1] and action in fake.actions
        closed = [m for m in scenario.log_messages("ccb.exapp") if "cannot take work now" in m]
        threads = ["files_indexing", "request_processing"] + (
            ["updates_processing"] if gated_actions else []
        )
        for thread in threads:
            assert any(
                m.startswith(f"[{thread}] RAG backend {scenario.backend} cannot") for m in closed
            ), thread
    finally:
        scenario.gate.open()
    started = time.monotonic()
    wait_until(
        lambda: fake.pending_documents() == 0 and task_id in fake.task_results,
        3 * LOOP + 60,
        1,
        "the queues to drain",
    )
    if gated_actions:
        wait_until(lambda: action in fake.acked_actions, 3 * LOOP + 30, 1, "the action")
    scenario.timings["drain after outage"] = time.monotonic() - started
    # the held task was answered (the files thread may index the new documents after it);
    # every user's search now sees exactly what the model says, the new documents included
    assert fake.task_results[task_id]["errorMessage"] is None
    scenario.assert_acl()


# ------------------------------------------------------------------ v5.3: the push path
def load(scenario: ExAppScenario, docs: list[Doc], **kwargs: Any) -> httpx.Response:
    return scenario.call("PUT", "/loadSources", files=[d.push_part() for d in docs], **kwargs)


@pytest.mark.skipif(PULL, reason="/loadSources is v5.3's")
def test_load_sources_indexes_documents_for_three_users_and_two_providers(
    scenario: ExAppScenario,
) -> None:
    docs = list(scenario.corpus.docs.values())
    started = time.monotonic()
    loaded: list[str] = []
    for batch in (docs[i : i + 15] for i in range(0, len(docs), 15)):
        answer = load(scenario, batch)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["sources_to_retry"] == [] and sorted(body["loaded_sources"]) == sorted(
            d.ref for d in batch
        )
        loaded += body["loaded_sources"]
    scenario.timings["index 60"] = time.monotonic() - started
    assert len(set(loaded)) == 60
    if scenario.backend == "r2r":  # the R2R backend logs each document it creates
        created = [m for m in scenario.log_messages() if "document created with id" in m]
        assert len(created) == 60, created[:5]
    scenario.assert_acl()


@pytest.mark.skipif(PULL, reason="/loadSources is v5.3's")
def test_unchanged_re_upload_writes_nothing_and_a_newer_modified_reindexes(
    scenario: ExAppScenario,
) -> None:
    docs = list(scenario.corpus.docs.values())[:20]
    embedded = scenario.embedded() if scenario.embedded else None
    created = len([m for m in scenario.log_messages() if "document created with id" in m])
    rows = stored_chunks(scenario)
    answer = load(scenario, docs)
    assert answer.status_code == 200 and sorted(answer.json()["loaded_sources"]) == sorted(
        d.ref for d in docs
    )
    assert stored_chunks(scenario) == rows
    if scenario.embedded:
        assert scenario.embedded() == embedded
    else:  # R2R embeds: no document was created again
        assert created == len(
            [m for m in scenario.log_messages() if "document created with id" in m]
        )
    changed = docs[1]
    changed.text, changed.modified = (
        "Revised: the pelican bridge inspection moved to spring.",
        changed.modified + 60,
    )
    answer = load(scenario, [changed])
    assert answer.status_code == 200 and answer.json()["loaded_sources"] == [changed.ref]
    owner = next(iter(changed.users))
    assert changed.ref in scenario.search(owner, "pelican bridge inspection")
    assert all("pelican bridge" in text for text in chunk_texts(scenario, changed.ref))


@pytest.mark.skipif(PULL, reason="/loadSources is v5.3's")
def test_a_bad_header_is_a_400_naming_source_and_header_and_the_rest_is_indexed(
    scenario: ExAppScenario,
) -> None:
    good = Doc(
        f"{FILES}: 1950", FILES, "ok.txt", "A perfectly fine memo about the tram depot.", {"alice"}
    )
    bad = Doc(f"{FILES}: 1951", FILES, "bad.txt", "A memo with a broken date.", {"alice"})
    name, (ref, content, mime, headers) = bad.push_part()
    parts = [good.push_part(), (name, (ref, content, mime, {**headers, "modified": "2024-05-01"}))]
    answer = scenario.call("PUT", "/loadSources", files=parts)
    assert answer.status_code == 400
    body = answer.json()
    assert (
        body["error"] == f"{bad.ref}: header 'modified' must be unix epoch digits, not '2024-05-01'"
    )
    assert body["loaded_sources"] == [good.ref] and body["sources_to_retry"] == []
    scenario.corpus.add(good)
    assert good.ref in scenario.search("alice", "tram depot")


@pytest.mark.skipif(PULL, reason="/query is v5.3's")
def test_query_and_doc_search_answer_from_each_users_own_documents(scenario: ExAppScenario) -> None:
    for user in USERS:
        answer = scenario.call(
            "POST", "/query", json={"userId": user, "query": "What is the vault combination?"}
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert set(body) == {"output", "sources"}
        assert CODES[user] in body["output"]
        assert not [
            code for other, code in CODES.items() if other != user and code in body["output"]
        ]
        hits = scenario.call(
            "POST", "/docSearch", json={"userId": user, "query": "vault combination", "ctxLimit": 3}
        ).json()
        assert hits and all(set(hit) == {"source_id", "title"} for hit in hits)
        assert hits[0]["source_id"] == next(
            r for r, d in scenario.corpus.docs.items() if d.title == f"{user}-vault.txt"
        )


@pytest.mark.skipif(PULL, reason="the update/delete endpoints are v5.3's")
def test_update_and_delete_endpoints_reach_the_backend(scenario: ExAppScenario) -> None:
    corpus, special = scenario.corpus, scenario.corpus.special

    def post(path: str, payload: dict[str, Any]) -> None:
        answer = scenario.call("POST", path, json=payload)
        assert answer.status_code == 200, (path, answer.text)

    post("/updateAccess", {"op": "allow", "userIds": ["bob"], "sourceId": special["allow"]})
    corpus.allow(special["allow"], ["bob"])
    post("/updateAccess", {"op": "deny", "userIds": ["alice"], "sourceId": special["deny"]})
    corpus.deny(special["deny"], ["alice"])
    post("/updateAccessDeclarative", {"userIds": ["carol"], "sourceId": special["declare"]})
    corpus.declare(special["declare"], ["carol"])
    post("/updateAccessProvider", {"op": "allow", "userIds": ["carol"], "providerId": NOTES})
    for doc in corpus.docs.values():
        if doc.provider == NOTES:
            doc.users.add("carol")
    post("/deleteSources", {"sourceIds": [special["delete"]]})
    corpus.delete_sources([special["delete"]])
    # carol now sees more than the 30 sources a search returns: check her notes in their scope
    assert scenario.search("carol", provider=NOTES) == corpus.visible("carol", NOTES)
    for user in ("alice", "bob"):
        assert scenario.search(user) == corpus.visible(user), user
    assert scenario.counts() == corpus.counts()
    post("/deleteProvider", {"providerKey": NOTES})
    corpus.delete_provider(NOTES)
    post("/deleteUser", {"userId": "bob"})
    corpus.delete_user("bob")
    assert scenario.search("bob") == set()
    scenario.assert_acl()


def stored_chunks(scenario: ExAppScenario) -> list[tuple[str, str]]:
    """(chunk id, source) of every stored chunk, or (R2R document id, version) of every R2R
    document: unchanged = nothing was written."""
    if scenario.backend == "r2r":
        return r2r_versions(scenario.store_env)
    with psycopg.connect(scenario.store_env["CCB_DB_URL"].replace("+psycopg", "")) as conn:
        rows = conn.execute(
            "SELECT id::text, cmetadata->>'source' FROM langchain_pg_embedding ORDER BY 1"
        ).fetchall()
    return [(r[0], r[1]) for r in rows]


def chunk_texts(scenario: ExAppScenario, ref: str) -> list[str]:
    if scenario.backend == "r2r":
        scope = NEXTCLOUD.scope(scenario.store_env["CCBE_R2R_INSTANCE"])
        with r2r_admin(scenario.store_env) as client:
            sync = SyncApplier(client, BridgeSettings(r2r_base_url=client.base_url))
            held = sync.lookup(scope, [ref])
            return [c.text for d in held.values() for c in client.list_document_chunks(d.r2r_id)]
    with psycopg.connect(scenario.store_env["CCB_DB_URL"].replace("+psycopg", "")) as conn:
        rows = conn.execute(
            "SELECT document FROM langchain_pg_embedding WHERE cmetadata->>'source' = %s", (ref,)
        ).fetchall()
    return [r[0] for r in rows]


# ------------------------------------------------------------------ auth, validation, logs (both)
def test_wrong_secret_or_app_id_is_401_and_bad_parameters_are_422(scenario: ExAppScenario) -> None:
    assert scenario.client is not None
    for changes in (
        {"AUTHORIZATION-APP-API": "Ondyb25n"},
        {"EX-APP-ID": "not_context_chat"},
        {"EX-APP-VERSION": ""},
    ):
        answer = scenario.client.http.post(
            "/countIndexedDocuments", headers=scenario.client.headers(**changes)
        )
        assert answer.status_code == 401, changes
        assert answer.headers.get_list("EX-APP-VERSION") == [VERSION]
    invalid = scenario.call("PUT", "/enabled", params={"enabled": "maybe"})
    assert invalid.status_code == 422 and invalid.json()["detail"][0]["loc"] == ["query", "enabled"]
    if not PULL:
        empty_user = scenario.call("POST", "/query", json={"userId": "", "query": "x"})
        assert empty_user.status_code == 422 and empty_user.json()["detail"][0]["loc"] == [
            "body",
            "userId",
        ]


def test_lifecycle_headers_are_logged_at_debug_without_credentials(scenario: ExAppScenario) -> None:
    logged = [m for m in scenario.log_messages("ccb.exapp") if " headers: " in m]
    assert any(m.startswith("PUT /enabled headers:") for m in logged)
    assert any(m.startswith("POST /init headers:") for m in logged)
    assert all(
        "'authorization-app-api': '<redacted>'" in m for m in logged if "authorization-app-api" in m
    )
    token = scenario.client.headers()["AUTHORIZATION-APP-API"] if scenario.client else ""
    everything = scenario.ccbe.output() + json.dumps(scenario.ccbe.log_records())
    assert SECRET not in json.dumps(scenario.ccbe.log_records()) and token not in everything


# ------------------------------------------------------------------ the scaffold (both)
@pytest.fixture(scope="module")
def scaffold(
    stack: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ExAppScenario]:
    scene = ExAppScenario(
        tmp_path_factory.mktemp("ccbe-pinecone"),
        "pinecone",
        {"PINECONE_API_KEY": "pc-e2e-secret-key", "PINECONE_INDEX": "cc-e2e"},
        None,
    )
    docs = list(scene.corpus.docs.values())[:5]
    if PULL:
        for doc in docs:
            scene.fake.enqueue_document(
                doc.queue_item(), doc.text.encode() if doc.is_file else None
            )
        scene.fake.enqueue_action("delete_user_id", {"userId": "alice"})
        scene.fake.schedule_task(
            SEARCH_TYPE, "alice", {"prompt": "anything", "scopeType": "none", "scopeList": []}
        )
    with scene.fake.serve() as url:
        scene.start(url)
        with running(scene.ccbe):
            yield scene


def test_a_scaffold_registers_stays_up_answers_501_and_takes_nothing(
    scaffold: ExAppScenario,
) -> None:
    fake = scaffold.fake
    assert scaffold.call("POST", "/init").json() == {}
    wait_until(
        lambda: any(r["error"] for r in fake.init_reports), 60, 0.2, "/init to report the scaffold"
    )
    assert fake.init_reports[-1] == {"progress": 5, "error": "backend not implemented: pinecone"}
    fake.enabled = True  # an admin enables it anyway (AppAPI would not after an init error)
    assert scaffold.call("PUT", "/enabled", params={"enabled": 1}).json() == {"error": ""}
    if PULL:
        assert sorted(fake.providers) == sorted(CONTEXT_CHAT_PROVIDERS)
    not_implemented = {"error": "backend not implemented: pinecone"}
    counts = scaffold.call("POST", "/countIndexedDocuments")
    assert (counts.status_code, counts.json()) == (501, not_implemented)
    if not PULL:
        docs = list(scaffold.corpus.docs.values())[:3]
        for path, kwargs in (
            ("/loadSources", {"files": [d.push_part() for d in docs]}),
            ("/deleteSources", {"json": {"sourceIds": [docs[0].ref]}}),
            ("/deleteUser", {"json": {"userId": "alice"}}),
            ("/docSearch", {"json": {"userId": "alice", "query": "vault"}}),
        ):
            method = "PUT" if path == "/loadSources" else "POST"
            answer = scaffold.call(method, path, **kwargs)
            assert (answer.status_code, answer.json()) == (501, not_implemented), path
        return
    scaffold.trigger(SEARCH_TYPE)
    expected = (
        "[files_indexing] RAG backend pinecone is a scaffold",
        "[updates_processing] RAG backend pinecone is a scaffold",
        "[request_processing] RAG backend pinecone is a scaffold",
    )
    wait_until(
        lambda: all(
            any(m.startswith(e) for m in scaffold.log_messages("ccb.backends")) for e in expected
        ),
        3 * LOOP + 30,
        1,
        "every worker thread to ask the scaffold",
    )
    time.sleep(2)
    assert (fake.document_fetches, fake.action_fetches) == (0, 0)
    assert fake.pending_documents() == 5 and len(fake.actions) == 1 and not fake.task_results
    assert (
        fake.acked_documents == {"files": [], "content_providers": []} and fake.acked_actions == []
    )
    beat = httpx.get(f"{scaffold.ccbe.url}/heartbeat")
    assert (
        beat.json() == {"status": "ok"}
        and scaffold.ccbe.proc is not None
        and scaffold.ccbe.proc.poll() is None
    )


# ------------------------------------------------------------------ what R2R does not need
def test_the_patched_checkout_needs_no_torch_no_local_embedder_no_bundled_postgres(
    tmp_path: Path,
) -> None:
    """torch is optional (imported lazily), the local embedding server exits for R2R, and the
    bundled PostgreSQL is skipped for R2R even under a k8s role (which upstream refuses
    without EXTERNAL_DB)."""
    import subprocess

    checkout = prepared_checkout(Path(SOURCE), tmp_path / "ccbe")
    python = str(VENV / "bin" / "python")
    no_torch = subprocess.run(
        [
            python,
            "-c",
            "import sys; sys.modules['torch'] = None\n"
            "from context_chat_backend import dyn_loader; dyn_loader.clear_gpu_cache(); print('no torch: ok')",
        ],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": os.environ["PATH"], "HF_HUB_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert no_torch.returncode == 0 and "no torch: ok" in no_torch.stdout, no_torch.stderr[-2000:]
    storage = tmp_path / "storage"
    storage.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "APP_ID": "context_chat_backend",
        "APP_SECRET": SECRET,
        "APP_VERSION": VERSION,
        "APP_HOST": "127.0.0.1",
        "APP_PORT": "9",
        "APP_PERSISTENT_STORAGE": str(storage),
        "COMPUTE_DEVICE": "CPU",
        "HF_HUB_OFFLINE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "NEXTCLOUD_URL": "http://127.0.0.1:9",
    }
    embedder = subprocess.run(
        [python, "main_em.py"],
        cwd=checkout,
        env={**env, "RAG_BACKEND": "r2r"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert embedder.returncode == 0, embedder.stderr[-2000:]
    assert "Exiting embedding server: the RAG backend r2r does not use it." in embedder.stdout
    setup = ["bash", str(checkout / "dockerfile_scripts" / "pgsql" / "setup.sh")]
    for rag_backend in ("", "r2r", " R2R ", "pinecone"):
        skipped = subprocess.run(
            setup,
            env={**env, "APP_ROLE": "indexing", "RAG_BACKEND": rag_backend},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert skipped.returncode == 0, (rag_backend, skipped.stderr)
        assert "the bundled PostgreSQL is not used, skipping its setup" in skipped.stdout
    if PULL:  # upstream's k8s refusal is untouched for pgvector
        refused = subprocess.run(
            setup,
            env={**env, "APP_ROLE": "indexing", "RAG_BACKEND": "pgvector"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (
            refused.returncode == 1
            and "Refusing to start the internal postgresql" in refused.stderr
        )
