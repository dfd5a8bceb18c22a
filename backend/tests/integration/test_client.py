"""R2RClient against the REAL local R2R 3.6.6 server (``scripts/stack up``); no HTTP mocks.

Every test works in its own tenant (fresh document ids and collection names) and cleans up what
it created. Tests that flip the shared embedding stub (``/control``) always reset it in
``finally``; the R2R-outage test restarts R2R with ``scripts/stack up --quiet``.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from stack_helpers import run_stack

from onyx.r2r_sender import (
    R2RAlreadyExistsError,
    R2RAuthError,
    R2RBusyError,
    R2RClient,
    R2RCollection,
    R2RNotFoundError,
    R2RRetryableError,
    r2r_document_id,
    r2r_version_id,
)

pytestmark = pytest.mark.integration


STACK_SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "stack"

# ------------------------------------------------------------------------------- fixtures


class Created:
    """Tracks what a test created so it can be removed afterwards."""

    def __init__(self) -> None:
        self.documents: list[UUID] = []
        self.collections: list[UUID] = []

    def doc(self, document_id: UUID) -> UUID:
        self.documents.append(document_id)
        return document_id

    def col(self, collection: R2RCollection) -> R2RCollection:
        self.collections.append(collection.id)
        return collection


@pytest.fixture
def client(stack: dict[str, str]) -> Iterator[R2RClient]:
    with R2RClient(stack["R2R_BASE_URL"], stack["R2R_API_KEY"]) as r2r:
        yield r2r


@pytest.fixture
def created(stack: dict[str, str], client: R2RClient) -> Iterator[Created]:
    tracker = Created()
    yield tracker
    for document_id in tracker.documents:
        try:
            client.delete_document(document_id)
        except Exception as exc:  # cleanup must not hide the test's own failure
            logging.getLogger(__name__).warning("cleanup of %s failed: %s", document_id, exc)
    for collection_id in tracker.collections:
        # R2RClient deliberately has no delete_collection (it deletes chunks of shared docs).
        httpx.delete(
            f"{stack['R2R_BASE_URL']}/v3/collections/{collection_id}",
            headers={"x-api-key": stack["R2R_API_KEY"]},
            timeout=30,
        )


@pytest.fixture
def stub(stack: dict[str, str]) -> Iterator[Callable[..., None]]:
    """Set the embedding stub's failure/delay switches; always reset afterwards."""
    url = stack["EMBED_STUB_URL"]

    def control(**settings: Any) -> None:
        httpx.post(f"{url}/control", json=settings, timeout=5).raise_for_status()

    try:
        yield control
    finally:
        httpx.post(f"{url}/control/reset", timeout=5).raise_for_status()


def free_closed_port() -> int:
    """A local TCP port with nothing listening on it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def doc_id(tenant_id: str, name: str) -> UUID:
    return r2r_document_id(tenant_id, name)


# ------------------------------------------------------------------------------- system


def test_health_and_check_settings_pass_on_the_stack(client: R2RClient) -> None:
    assert client.health() is None
    assert client.check_settings() is None


def test_wrong_key_gives_a_clear_auth_error_without_the_key(stack: dict[str, str]) -> None:
    wrong_key = "key_WRONGpublic.wrong-secret-" + uuid.uuid4().hex
    with R2RClient(stack["R2R_BASE_URL"], wrong_key) as bad:
        with pytest.raises(R2RAuthError) as info:
            bad.get_document(uuid.uuid4())
        assert bad.health() is None  # /v3/health needs no credentials
        with pytest.raises(R2RAuthError) as settings_info:
            bad.check_settings()
    error = info.value
    assert error.status_code == 401
    assert "rejected the API key" in str(error)
    assert stack["R2R_BASE_URL"] in str(error)
    for text in (str(error), repr(error), error.message, str(settings_info.value)):
        assert wrong_key not in text
        assert stack["R2R_API_KEY"] not in text


def test_unreachable_server_raises_retryable_after_bounded_budget(stack: dict[str, str]) -> None:
    attempts: list[str] = []
    hooks = {"request": [lambda request: attempts.append(str(request.url))]}
    port = free_closed_port()
    with R2RClient(
        f"http://127.0.0.1:{port}", stack["R2R_API_KEY"], retry_max_time=3, event_hooks=hooks
    ) as dead:
        started = time.monotonic()
        with pytest.raises(R2RRetryableError) as info:
            dead.get_document(uuid.uuid4())
        elapsed = time.monotonic() - started
    assert 2.5 <= elapsed < 8, elapsed
    assert len(attempts) >= 2  # it really retried
    assert info.value.status_code is None
    assert f"127.0.0.1:{port}" in str(info.value)
    assert stack["R2R_API_KEY"] not in str(info.value)


@pytest.mark.slow
def test_stopped_r2r_raises_retryable_then_recovers(stack: dict[str, str]) -> None:
    with R2RClient(stack["R2R_BASE_URL"], stack["R2R_API_KEY"], retry_max_time=3) as r2r:
        r2r.health()
        try:
            run_stack("stop-r2r")
            started = time.monotonic()
            with pytest.raises(R2RRetryableError) as info:
                r2r.health()
            assert time.monotonic() - started < 10
            assert info.value.status_code is None
            with pytest.raises(R2RRetryableError):
                r2r.list_documents([uuid.uuid4()], retry=False)
        finally:
            run_stack("up", "--quiet")
        r2r.health()
        assert r2r.list_documents([uuid.uuid4()]) == []


# ------------------------------------------------------------------------------- documents


def test_ingest_document_reports_a_synchronous_ingestion(
    client: R2RClient, created: Created, tenant_id: str
) -> None:
    """Simple orchestration ingests inside the request: no task id, and it is ``success``."""
    first = created.col(client.ensure_collection(f"{tenant_id}-ingest-a"))
    second = created.col(client.ensure_collection(f"{tenant_id}-ingest-b"))
    raw_id = created.doc(doc_id(tenant_id, "ingest-raw"))
    chunk_id = created.doc(doc_id(tenant_id, "ingest-chunks"))

    raw = client.ingest_document(
        document_id=raw_id,
        raw_text="Herons stand still in shallow water.",
        metadata={"k": "v"},
        collection_ids=[first.id, second.id],
    )
    chunked = client.ingest_document(
        document_id=chunk_id,
        chunks=["Herons stand still.", "Then they strike."],
        metadata={"k": "v"},
        collection_ids=[first.id, second.id],
    )
    assert (raw.document_id, raw.completed, raw.task_id) == (raw_id, True, None)
    assert (chunked.document_id, chunked.completed, chunked.task_id) == (chunk_id, True, None)
    # what the applier relies on when it skips the read-back
    assert client.get_document(raw_id).ingestion_status == "success"
    assert client.get_document(raw_id).collection_ids == [first.id]  # only the first (#2028)
    held = client.get_document(chunk_id)
    assert held.ingestion_status == "success"
    assert set(held.collection_ids) == {first.id, second.id}


def test_raw_text_document_lifecycle(client: R2RClient, created: Created, tenant_id: str) -> None:
    collection = created.col(client.ensure_collection(f"{tenant_id}-lifecycle"))
    document_id = created.doc(doc_id(tenant_id, "lifecycle"))
    text = "Aardvarks dig burrows at night.\n\nThey eat ants and termites."
    metadata = {"onyx_document_id": "lifecycle", "source_type": "web", "n": 3}

    returned = client.create_document(
        document_id=str(document_id),
        raw_text=text,
        metadata=metadata,
        collection_ids=[collection.id],
    )
    assert returned == document_id

    document = client.get_document(document_id)
    assert document.id == document_id
    assert document.ingestion_status == "success"
    assert document.collection_ids == [collection.id]
    assert {k: document.metadata[k] for k in metadata} == metadata
    assert document.created_at is not None

    chunks = client.list_document_chunks(document_id)
    assert chunks, "raw text must produce chunks"
    assert all(chunk.document_id == document_id for chunk in chunks)
    assert "Aardvarks dig burrows" in " ".join(chunk.text for chunk in chunks)
    assert chunks[0].metadata["onyx_document_id"] == "lifecycle"

    missing = uuid.uuid4()
    listed = client.list_documents([document_id, missing])
    assert [d.id for d in listed] == [document_id]

    assert client.delete_document(document_id) is True
    assert client.delete_document(document_id) is False
    with pytest.raises(R2RNotFoundError) as info:
        client.get_document(document_id)
    assert info.value.status_code == 404
    assert info.value.document_id == str(document_id)
    with pytest.raises(R2RNotFoundError):
        client.list_document_chunks(document_id)
    assert client.list_documents([document_id]) == []


def test_chunks_document_is_stored_verbatim_in_all_collections(
    client: R2RClient, created: Created, tenant_id: str
) -> None:
    first = created.col(client.ensure_collection(f"{tenant_id}-c1"))
    second = created.col(client.ensure_collection(f"{tenant_id}-c2"))
    document_id = created.doc(doc_id(tenant_id, "chunks"))
    client.create_document(
        document_id=document_id,
        chunks=["alpha chunk one", "", "  ", "beta chunk two"],
        metadata={"kind": "chunked"},
        collection_ids=[str(first.id), second.id],
    )
    document = client.get_document(document_id)
    assert document.ingestion_status == "success"
    assert sorted(document.collection_ids) == sorted([first.id, second.id])
    chunks = client.list_document_chunks(document_id)
    assert sorted(c.text for c in chunks) == ["alpha chunk one", "beta chunk two"]
    assert {frozenset(c.collection_ids) for c in chunks} == {frozenset([first.id, second.id])}

    collections = client.list_document_collections(document_id)
    assert sorted(c.id for c in collections) == sorted([first.id, second.id])
    assert {c.name for c in collections} == {first.name, second.name}
    # R2R answers 200 [] (not 404) for an unknown document here.
    assert client.list_document_collections(uuid.uuid4()) == []


def test_raw_text_with_two_collections_lands_only_in_the_first(
    client: R2RClient, created: Created, tenant_id: str
) -> None:
    """R2R 3.6.6 bug (#2028): raw_text/file ingestion assigns only the first collection id.

    If this test starts failing because both are assigned, R2R fixed the bug; the sender's
    membership repair step is then harmless but could be simplified.
    """
    first = created.col(client.ensure_collection(f"{tenant_id}-first"))
    second = created.col(client.ensure_collection(f"{tenant_id}-second"))
    document_id = created.doc(doc_id(tenant_id, "two-collections"))
    client.create_document(
        document_id=document_id,
        raw_text="Text that should be in two collections.",
        metadata={},
        collection_ids=[first.id, second.id],
    )
    document = client.get_document(document_id)
    assert document.ingestion_status == "success"
    assert document.collection_ids == [first.id]
    # The repair step the sender uses restores the intended membership.
    assert client.add_document_to_collection(second.id, document_id) is True
    assert sorted(client.get_document(document_id).collection_ids) == sorted([first.id, second.id])


def test_duplicate_ids_raise_already_exists_on_both_paths(
    client: R2RClient, created: Created, tenant_id: str
) -> None:
    raw_id = created.doc(doc_id(tenant_id, "dup-raw"))
    client.create_document(
        document_id=raw_id, raw_text="first text", metadata={}, collection_ids=[]
    )
    with pytest.raises(R2RAlreadyExistsError) as raw_info:
        client.create_document(
            document_id=raw_id, raw_text="second text", metadata={}, collection_ids=[]
        )
    assert raw_info.value.status_code == 409
    assert raw_info.value.document_id == str(raw_id)
    assert "already exists" in raw_info.value.message

    chunk_id = created.doc(doc_id(tenant_id, "dup-chunks"))
    client.create_document(document_id=chunk_id, chunks=["one"], metadata={}, collection_ids=[])
    with pytest.raises(R2RAlreadyExistsError) as chunk_info:
        client.create_document(document_id=chunk_id, chunks=["two"], metadata={}, collection_ids=[])
    assert chunk_info.value.status_code == 500  # R2R reports the chunk-path duplicate as 500
    assert "already ingested" in chunk_info.value.message
    assert [c.text for c in client.list_document_chunks(chunk_id)] == ["one"]


@pytest.mark.parametrize("payload", ["raw_text", "chunks"])
def test_failed_ingestion_is_retryable_and_can_be_recreated(
    client: R2RClient,
    created: Created,
    tenant_id: str,
    stub: Callable[..., None],
    payload: str,
) -> None:
    document_id = created.doc(doc_id(tenant_id, f"failing-{payload}"))
    content: dict[str, Any] = (
        {"raw_text": "Embedding outage text."}
        if payload == "raw_text"
        else {"chunks": ["Embedding outage chunk."]}
    )
    stub(fail_embeddings=True)
    try:
        with pytest.raises(R2RRetryableError) as info:
            client.create_document(
                document_id=document_id,
                metadata={"v": 1},
                collection_ids=[],
                retry=False,
                **content,
            )
        assert "error getting embeddings" in info.value.message.lower()
        # The reference saw 400 on the raw-text path with litellm; with the stack's `openai`
        # provider both paths answer 500 "... Error getting embeddings ...".
        assert info.value.status_code in ((400, 500) if payload == "raw_text" else (500,))
    finally:
        stub(fail_embeddings=False)

    failed = client.get_document(document_id)
    assert failed.ingestion_status == "failed"
    assert "failure" in failed.metadata

    assert (
        client.create_document(
            document_id=document_id, metadata={"v": 2}, collection_ids=[], **content
        )
        == document_id
    )
    recovered = client.get_document(document_id)
    assert recovered.ingestion_status == "success"
    assert recovered.metadata["v"] == 2
    assert client.list_document_chunks(document_id)


def test_create_while_ingesting_raises_busy(
    client: R2RClient, created: Created, tenant_id: str, stub: Callable[..., None]
) -> None:
    document_id = created.doc(doc_id(tenant_id, "busy"))
    outcome: dict[str, Any] = {}

    def first_create() -> None:
        try:
            outcome["id"] = client.create_document(
                document_id=document_id,
                raw_text="Slow embedding text.",
                metadata={},
                collection_ids=[],
                retry=False,
            )
        except Exception as exc:
            outcome["error"] = exc

    stub(delay_seconds=3)
    worker = threading.Thread(target=first_create)
    try:
        worker.start()
        deadline = time.monotonic() + 10
        status = None
        while time.monotonic() < deadline:
            try:
                status = client.get_document(document_id).ingestion_status
            except R2RNotFoundError:
                status = None
            if status not in (None, "success", "failed"):
                break
            time.sleep(0.05)
        assert status not in (None, "success", "failed"), status
        with pytest.raises(R2RBusyError) as info:
            client.create_document(
                document_id=document_id, raw_text="again", metadata={}, collection_ids=[]
            )
        assert info.value.status_code == 409
        assert "currently ingesting" in info.value.message
    finally:
        stub(delay_seconds=0)
        worker.join(timeout=60)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["id"] == document_id
    assert client.get_document(document_id).ingestion_status == "success"


def test_large_payload_is_sent_urlencoded(
    client: R2RClient, created: Created, tenant_id: str
) -> None:
    """> 1 MiB in one form field: multipart would get 400 "Part exceeded maximum size"."""
    document_id = created.doc(doc_id(tenant_id, "large"))
    chunks = [f"chunk {i} " + ("lorem ipsum dolor " * 220) for i in range(320)]
    assert sum(len(c) for c in chunks) > 1024 * 1024
    client.create_document(document_id=document_id, chunks=chunks, metadata={}, collection_ids=[])
    assert client.get_document(document_id).ingestion_status == "success"
    assert len(client.list_document_chunks(document_id)) == len(chunks)


def test_list_documents_batches_and_iter_all_documents(
    client: R2RClient, created: Created, tenant_id: str
) -> None:
    ids = [created.doc(doc_id(tenant_id, f"list-{i}")) for i in range(5)]
    for i, document_id in enumerate(ids):
        client.create_document(
            document_id=document_id, chunks=[f"list doc {i}"], metadata={}, collection_ids=[]
        )
    listed = client.list_documents([*ids, uuid.uuid4(), ids[0]], page_size=2)
    assert sorted(d.id for d in listed) == sorted(ids)

    # The shared server holds thousands of documents and other test runs keep adding more
    # (R2R lists created_at descending, so pages shift while we read): walk page by page until
    # ours were seen, then make one complete pass.
    seen: list[UUID] = []
    for document in client.iter_all_documents(page_size=100):
        seen.append(document.id)
        if set(ids) <= set(seen):
            break
    assert len(seen) == len(set(seen))
    assert set(ids) <= set(seen)
    everything = [d.id for d in client.iter_all_documents(page_size=1000)]
    assert len(everything) == len(set(everything))
    assert set(ids) <= set(everything)

    with pytest.raises(ValueError, match="not a valid UUID"):
        client.list_documents(["not-a-uuid"])


def test_versioned_ids_allow_gap_free_replace(
    client: R2RClient, created: Created, tenant_id: str
) -> None:
    old = created.doc(r2r_version_id(tenant_id, "page", "v1"))
    new = created.doc(r2r_version_id(tenant_id, "page", "v2"))
    client.create_document(document_id=old, chunks=["old text"], metadata={}, collection_ids=[])
    client.create_document(document_id=new, chunks=["new text"], metadata={}, collection_ids=[])
    assert {d.id for d in client.list_documents([old, new])} == {old, new}
    assert client.delete_document(old) is True
    assert [d.id for d in client.list_documents([old, new])] == [new]


def test_document_without_chunks_lists_empty(
    stack: dict[str, str], client: R2RClient, created: Created, tenant_id: str
) -> None:
    """R2R answers 404 for "no chunks"; the client returns [] when the document exists."""
    doomed = client.ensure_collection(f"{tenant_id}-doomed")
    document_id = created.doc(doc_id(tenant_id, "chunkless"))
    client.create_document(
        document_id=document_id, chunks=["soon gone"], metadata={}, collection_ids=[doomed.id]
    )
    assert len(client.list_document_chunks(document_id)) == 1
    # Deleting a collection deletes its documents' chunks but keeps the document rows (§5.4).
    httpx.delete(
        f"{stack['R2R_BASE_URL']}/v3/collections/{doomed.id}",
        headers={"x-api-key": stack["R2R_API_KEY"]},
        timeout=30,
    ).raise_for_status()
    assert client.get_document(document_id).id == document_id
    assert client.list_document_chunks(document_id) == []
    with pytest.raises(R2RNotFoundError):
        client.list_document_chunks(uuid.uuid4())


# ------------------------------------------------------------------------------- collections


def test_collection_get_create_and_duplicate_name(
    client: R2RClient, created: Created, tenant_id: str
) -> None:
    name = f"{tenant_id} group eng"  # a space: the name must be URL-encoded in the path
    assert client.get_collection_by_name(name) is None
    made = created.col(client.create_collection(name, "engineering"))
    assert made.name == name
    assert made.description == "engineering"
    fetched = client.get_collection_by_name(name)
    assert fetched is not None
    assert fetched.id == made.id
    with pytest.raises(R2RAlreadyExistsError) as info:
        client.create_collection(name)
    assert info.value.status_code == 409
    assert client.ensure_collection(name).id == made.id


def test_list_collections_returns_the_existing_ones_among_ids(
    client: R2RClient, created: Created, tenant_id: str
) -> None:
    first = created.col(client.create_collection(f"{tenant_id}-list-a"))
    second = created.col(client.create_collection(f"{tenant_id}-list-b"))
    missing = uuid.uuid4()
    listed = client.list_collections([first.id, missing, str(second.id).upper(), first.id])
    assert {c.id for c in listed} == {first.id, second.id}
    assert {c.name for c in listed} == {first.name, second.name}
    # batches of one id per request give the same answer
    assert {c.id for c in client.list_collections([first.id, second.id], page_size=1)} == {
        first.id,
        second.id,
    }
    assert client.list_collections([missing]) == []


def test_ensure_collection_is_race_safe(
    stack: dict[str, str], client: R2RClient, created: Created, tenant_id: str
) -> None:
    name = f"{tenant_id}-race"
    barrier = threading.Barrier(10)

    def ensure(_: int) -> UUID:
        barrier.wait()
        return client.ensure_collection(name).id

    with ThreadPoolExecutor(max_workers=10) as pool:
        ids = list(pool.map(ensure, range(10)))
    for collection_id in set(ids):
        created.collections.append(collection_id)
    assert len(set(ids)) == 1

    response = httpx.get(
        f"{stack['R2R_BASE_URL']}/v3/collections",
        params={"limit": 1000, "owner_only": "true"},
        headers={"x-api-key": stack["R2R_API_KEY"]},
        timeout=30,
    )
    response.raise_for_status()
    same_name = [c for c in response.json()["results"] if c["name"] == name]
    assert [UUID(c["id"]) for c in same_name] == [ids[0]]


def test_add_and_remove_membership_are_idempotent(
    client: R2RClient, created: Created, tenant_id: str
) -> None:
    home = created.col(client.ensure_collection(f"{tenant_id}-home"))
    extra = created.col(client.ensure_collection(f"{tenant_id}-extra"))
    document_id = created.doc(doc_id(tenant_id, "member"))
    client.create_document(
        document_id=document_id,
        chunks=["membership text"],
        metadata={},
        collection_ids=[home.id],
    )
    assert client.add_document_to_collection(extra.id, document_id) is True
    assert client.add_document_to_collection(extra.id, document_id) is False
    assert sorted(client.get_document(document_id).collection_ids) == sorted([home.id, extra.id])
    hits = client.search("membership text", collection_ids=[extra.id])
    assert {h.document_id for h in hits} == {document_id}

    assert client.remove_document_from_collection(extra.id, document_id) is True
    assert client.remove_document_from_collection(extra.id, document_id) is False
    assert client.get_document(document_id).collection_ids == [home.id]
    assert client.search("membership text", collection_ids=[extra.id]) == []

    with pytest.raises(R2RNotFoundError):
        client.add_document_to_collection(extra.id, uuid.uuid4())


# ------------------------------------------------------------------------------- search


def test_search_never_returns_documents_outside_the_allowed_collections(
    client: R2RClient, created: Created, tenant_id: str
) -> None:
    col_a = created.col(client.ensure_collection(f"{tenant_id}-a"))
    col_b = created.col(client.ensure_collection(f"{tenant_id}-b"))
    col_c = created.col(client.ensure_collection(f"{tenant_id}-c"))
    layout = {
        "in-a": [col_a.id],
        "in-b": [col_b.id],
        "in-c": [col_c.id],
        "in-a-b": [col_a.id, col_b.id],
    }
    ids = {}
    for name, collections in layout.items():
        ids[name] = created.doc(doc_id(tenant_id, name))
        client.create_document(
            document_id=ids[name],
            chunks=[f"zebra migration report {name}", f"zebra stripes pattern {name}"],
            metadata={"title": f"Zebra {name}", "onyx_document_id": name, "team": name[3:]},
            collection_ids=collections,
        )

    def found(allowed: list[UUID], **kwargs: Any) -> set[UUID]:
        hits = client.search("zebra migration", collection_ids=allowed, limit=100, **kwargs)
        for hit in hits:
            assert set(hit.collection_ids) & set(allowed), hit
        return {hit.document_id for hit in hits}

    for mode in ("semantic", "hybrid", "fulltext"):
        assert found([col_a.id], mode=mode) == {ids["in-a"], ids["in-a-b"]}, mode
        assert found([col_b.id, col_c.id], mode=mode) == {
            ids["in-b"],
            ids["in-c"],
            ids["in-a-b"],
        }, mode
    assert found([col_c.id]) == {ids["in-c"]}

    # metadata filter narrows within the allowed collections
    assert found([col_a.id, col_b.id], filters={"team": {"$eq": "b"}}) == {ids["in-b"]}
    assert found([col_a.id], filters={"team": {"$eq": "b"}}) == set()

    # the title prefix R2R adds is stripped; metadata comes back
    hits = client.search("zebra migration", collection_ids=[col_c.id], limit=10)
    assert hits
    assert {h.text for h in hits} == {
        "zebra migration report in-c",
        "zebra stripes pattern in-c",
    }
    assert all(h.metadata["title"] == "Zebra in-c" for h in hits)
    assert all("associated_query" not in h.metadata for h in hits)
    assert hits[0].text == "zebra migration report in-c"  # best match first
    assert hits[0].score > hits[-1].score

    # empty allowed list: nothing, and no request
    assert client.search("zebra", collection_ids=[]) == []


def test_string_collection_ids_are_rejected_before_any_request(
    stack: dict[str, str], tenant_id: str
) -> None:
    sent: list[str] = []
    hooks = {"request": [lambda request: sent.append(f"{request.method} {request.url.path}")]}
    with R2RClient(stack["R2R_BASE_URL"], stack["R2R_API_KEY"], event_hooks=hooks) as r2r:
        some_collection = str(uuid.uuid4())
        with pytest.raises(ValueError, match="collection_ids must be a list of UUID strings"):
            r2r.create_document(
                document_id=doc_id(tenant_id, "string-collections"),
                raw_text="never sent",
                metadata={},
                collection_ids=some_collection,  # type: ignore[arg-type]
            )
        with pytest.raises(ValueError, match="collection_ids must be a list of UUID strings"):
            r2r.search("never sent", collection_ids=some_collection)  # type: ignore[arg-type]
        assert sent == []
        r2r.health()  # the hook does see real requests
        assert sent == ["GET /v3/health"]


# ------------------------------------------------------------------------------- secrecy


def test_api_key_never_logged_or_in_exceptions(
    stack: dict[str, str], tenant_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    key = stack["R2R_API_KEY"]
    key_secret = key.split(".", 1)[-1]
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "backoff", "onyx"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    errors: list[BaseException] = []
    with R2RClient(stack["R2R_BASE_URL"], key) as r2r:
        assert key not in repr(r2r) and key not in str(vars(r2r))
        document_id = doc_id(tenant_id, "secret")
        r2r.create_document(
            document_id=document_id, chunks=["secret test"], metadata={}, collection_ids=[]
        )
        r2r.search("secret test", collection_ids=[uuid.uuid4()])
        for call in (
            lambda: r2r.create_document(
                document_id=document_id, chunks=["dup"], metadata={}, collection_ids=[]
            ),
            lambda: r2r.get_document(uuid.uuid4()),
            lambda: r2r.add_document_to_collection(uuid.uuid4(), document_id),
        ):
            with pytest.raises(Exception) as info:
                call()
            errors.append(info.value)
        assert r2r.delete_document(document_id) is True
    with R2RClient(f"http://127.0.0.1:{free_closed_port()}", key, retry_max_time=1) as dead:
        with pytest.raises(R2RRetryableError) as dead_info:
            dead.health()
        errors.append(dead_info.value)

    assert any(r.name.startswith("httpcore") for r in caplog.records), "DEBUG capture works"
    assert any(r.name.startswith("onyx.r2r_sender") for r in caplog.records)
    assert key not in caplog.text and key_secret not in caplog.text
    for record in caplog.records:
        assert key_secret not in record.getMessage()
    for error in errors:
        for text in (str(error), repr(error), str(error.__cause__), str(error.__context__)):
            assert key_secret not in text
