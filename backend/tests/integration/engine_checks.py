"""Helpers for the engine integration tests: read back what R2R and the ledger really hold.

Nothing here fakes R2R, PostgreSQL or Redis.  R2R is read through a real
:class:`~onyx.r2r_sender.client.R2RClient` built like the workers build theirs
(login → JWT when the settings carry an email/password, which is ~100x cheaper
than an API key per request on R2R 3.6.6).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r2r_purge import delete_collection
from redis import Redis
from sqlalchemy import text
from stack_helpers import wait_until

from onyx.r2r_sender.applier import SEQ_KEY, VERSION_KEY
from onyx.r2r_sender.celery_app import queue_key
from onyx.r2r_sender.client import R2RClient
from onyx.r2r_sender.collections import TENANT_LABEL, CollectionResolver
from onyx.r2r_sender.config import BridgeSettings
from onyx.r2r_sender.errors import R2RRetryableError
from onyx.r2r_sender.ids import r2r_version_id
from onyx.r2r_sender.ledger import Claim, Ledger, LockSession, Outcome
from onyx.r2r_sender.ledger.models import SCHEMA
from onyx.r2r_sender.metrics import Counters
from onyx.r2r_sender.payload import PreparedDocument, SourceDocument, prepare
from onyx.r2r_sender.r2r_types import R2RDocument
from onyx.r2r_sender.read_model import MirroredChunk, Retriever, SearchScope
from onyx.r2r_sender.reconcile import iter_tenant_documents

# ------------------------------------------------------------------ polling


# ------------------------------------------------------------------- ledger
def prepared(
    settings: BridgeSettings,
    tenant_id: str,
    document_id: str,
    body: str,
    *,
    acl: Iterable[str] = (),
    sets: Iterable[str] = (),
    **extra: Any,
) -> PreparedDocument:
    """A validated document as hosts record it (what ``send_batch`` would prepare)."""
    return prepare(
        SourceDocument(document_id=document_id, text=body, acl=list(acl), sets=list(sets), **extra),
        settings,
        tenant_id,
    )


def simulate_success(ledger: Ledger, locks: LockSession, claim: Claim) -> bool:
    """Finalise *claim* as if R2R now held exactly its desired state (ledger-only tests)."""
    return ledger.finalize_success(
        locks,
        claim,
        Outcome(
            r2r_id=claim.target_r2r_id,
            version=None if claim.desired_deleted else claim.desired_version,
            deleted=claim.desired_deleted,
            labels=claim.desired_labels,
            collections=[],
        ),
    )


def ledger_row_count(ledger: Ledger, tenant_id: str) -> int:
    with ledger.engine.connect() as conn:
        return int(
            conn.execute(
                text(f"SELECT count(*) FROM {SCHEMA}.document_state WHERE tenant_id = :t"),
                {"t": tenant_id},
            ).scalar()
        )


def states(ledger: Ledger, tenant_id: str) -> dict[str, dict[str, Any]]:
    """Every ledger row of *tenant_id* by document id."""
    return {row["document_id"]: row for row in ledger.iter_states(tenant_id)}


def wait_settled(
    ledger: Ledger, tenant_id: str, timeout: float, *, expect: Sequence[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Wait until no row of *tenant_id* is pending (and *expect* ids exist); return the rows."""

    def settled() -> dict[str, dict[str, Any]] | None:
        rows = states(ledger, tenant_id)
        if not rows or any(r["status"] == "pending" for r in rows.values()):
            return None
        if expect is not None and not set(expect) <= set(rows):
            return None
        return rows

    try:
        return wait_until(settled, timeout, interval=0.3, what=f"tenant {tenant_id} settled")
    except AssertionError:
        rows = states(ledger, tenant_id)
        summary = {
            d: (r["status"], r["attempts"], r["last_error_class"], (r["last_error"] or "")[:200])
            for d, r in rows.items()
            if r["status"] != "synced"
        }
        raise AssertionError(
            f"tenant {tenant_id} did not settle in {timeout:.0f}s: {summary}"
        ) from None


VANISHED = (
    "the ledger rows of {tenant_id} vanished ({ids}): another test session started "
    "meanwhile and truncated the shared test ledger (conftest's ledger_engine)"
)


class LedgerVanished(AssertionError):
    """Rows recorded by the test are gone from the shared test ledger."""


def _row_summary(row: dict[str, Any] | None) -> str:
    if row is None:
        return "no ledger row"
    error = (row["last_error"] or "")[:160]
    return f"{row['status']} attempts={row['attempts']} [{row['last_error_class']}] {error}"


def wait_synced(
    ledger: Ledger, tenant_id: str, document_ids: Sequence[str], timeout: float
) -> dict[str, dict[str, Any]]:
    """Wait until every id in *document_ids* is ``synced``; fail early on a dead letter."""

    def synced() -> dict[str, dict[str, Any]] | None:
        rows = states(ledger, tenant_id)
        for doc_id in document_ids:
            row = rows.get(doc_id)
            if row is None:  # they were recorded before this wait began
                raise LedgerVanished(VANISHED.format(tenant_id=tenant_id, ids=document_ids))
            if row["status"] == "dead":
                raise AssertionError(
                    f"{doc_id} was dead-lettered: [{row['last_error_class']}] {row['last_error']}"
                )
        if all(d in rows and rows[d]["status"] == "synced" for d in document_ids):
            return rows
        return None

    try:
        return wait_until(synced, timeout, interval=0.3, what="documents synced")
    except LedgerVanished:
        raise
    except AssertionError:
        rows = states(ledger, tenant_id)
        lagging = {
            d: _row_summary(rows.get(d))
            for d in document_ids
            if d not in rows or rows[d]["status"] != "synced"
        }
        raise AssertionError(f"not synced after {timeout:.0f}s: {lagging}") from None


def counters(settings: BridgeSettings, tenant_id: str) -> dict[str, int]:
    """The per-tenant counters the worker keeps in Redis (``r2r_writes``, ``applied``, ...)."""
    redis = Redis.from_url(settings.broker_url)
    try:
        return Counters(redis).get(tenant_id)
    finally:
        redis.close()


def drop_queue(settings: BridgeSettings) -> None:
    """Delete the test's private Celery queue (drain tasks nobody will consume)."""
    redis = Redis.from_url(settings.broker_url)
    try:
        redis.delete(queue_key(settings.queue))
    finally:
        redis.close()


# ---------------------------------------------------------------------- R2R
def make_r2r(settings: BridgeSettings, *, patience: float = 180.0) -> R2RClient:
    """A real R2R client for the test's own reads, logged in like the workers' clients.

    Patient (retries transient failures for up to *patience* seconds): R2R is shared with
    other test sessions, some of which stop and restart it on purpose.  The workers keep
    the settings' short budget.
    """
    credentials = settings.credentials
    return R2RClient(
        credentials.base_url,
        credentials.api_key.get() or None,
        email=credentials.email or None,
        password=credentials.password.get() or None,
        connect_timeout=settings.connect_timeout,
        read_timeout=max(settings.read_timeout, 60.0),
        retry_max_time=patience,
        retry_max_tries=200,
    )


def collection_document_ids(client: R2RClient, collection_id: uuid.UUID) -> list[uuid.UUID]:
    """Ids of every document R2R lists in a collection (``GET /v3/collections/{id}/documents``)."""
    return [
        uuid.UUID(str(item["id"]))
        for item in client._transport.paged(  # the client has no public call for this listing
            f"/v3/collections/{collection_id}/documents",
            operation="list_collection_documents",
        )
    ]


def tenant_documents(client: R2RClient, ledger: Ledger, tenant_id: str) -> list[R2RDocument]:
    """Every R2R document whose metadata names the tenant, in whatever collections.

    Pages all of R2R's documents (as reconciliation does), so a copy that is in none of
    the tenant's collections, or in the wrong ones, is found too.
    """
    return list(iter_tenant_documents(client, tenant_id))


def by_source(documents: Iterable[R2RDocument]) -> dict[str, list[R2RDocument]]:
    """Group R2R documents by the host document id they mirror."""
    out: dict[str, list[R2RDocument]] = {}
    for doc in documents:
        out.setdefault(str(doc.metadata.get("source_document_id")), []).append(doc)
    return out


def document_text(client: R2RClient, r2r_id: uuid.UUID) -> str:
    """The text R2R stored for a document (its chunks in order, overlap not removed)."""
    chunks = client.list_document_chunks(r2r_id)
    chunks.sort(key=lambda c: int(c.metadata.get("chunk_order", 0) or 0))
    return "\n".join(c.text for c in chunks)


def label_collections(ledger: Ledger, tenant_id: str, labels: Iterable[str]) -> set[uuid.UUID]:
    """The R2R collections of a document with *labels*; all must exist in the ledger.

    A document without labels is in its tenant's holding collection only.
    """
    wanted = list(labels) or [TENANT_LABEL]
    found = ledger.collection_ids(tenant_id, wanted)
    missing = set(wanted) - set(found)
    assert not missing, f"no collection recorded for {sorted(missing)[:5]}"
    return set(found.values())


def reap_strays(tmp_path: Path) -> list[int]:
    """SIGKILL worker processes of this test that outlived ``workers.stop()``.

    When a worker's main process has to be SIGKILLed (a drain still running after the
    SIGTERM grace period), its embedded beat child is orphaned and keeps sweeping.  Only
    processes whose command line names this test's own temporary directory are killed.
    """
    marker = f"{tmp_path}/beat"
    killed: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if "onyx.r2r_sender.cli" in cmdline and marker in cmdline:
            with contextlib.suppress(OSError):
                os.kill(int(entry), signal.SIGKILL)
                killed.append(int(entry))
    return killed


def purging(settings: BridgeSettings, ledger: Ledger, tmp_path: Path) -> Iterator[list[str]]:
    """Body of the tests' ``purge`` fixture: tenants appended to the yielded list lose
    their R2R documents and collections afterwards; the private Celery queue is dropped
    and stray worker processes of the test are reaped.

    Tests request ``purge`` before ``workers``, so it is torn down after the workers stopped.
    """
    tenants: list[str] = []
    yield tenants
    reap_strays(tmp_path)
    drop_queue(settings)
    if tenants:
        with make_r2r(settings) as client:
            for tenant in tenants:
                # ledger rows first: a row a failed test left pending would otherwise be
                # applied by every later worker's sweep (the test database is shared)
                forget_tenant(ledger, tenant)
                purge_tenant(client, ledger, tenant)


def forget_tenant(ledger: Ledger, tenant_id: str) -> None:
    """Stop the ledger from scheduling anything more for *tenant_id* (rows stay readable)."""
    with ledger.engine.begin() as conn:
        conn.execute(
            text(
                f"UPDATE {SCHEMA}.document_state SET status = 'synced' "
                "WHERE tenant_id = :t AND status = 'pending'"
            ),
            {"t": tenant_id},
        )


def purge_tenant(client: R2RClient, ledger: Ledger, tenant_id: str) -> None:
    """Delete what a test tenant left in R2R: its documents first, then its collections.

    Collections are deleted only once empty (R2R drops the chunks of every document in a
    deleted collection).  Best effort: cleanup never hides a test's own failure.
    """
    with ledger.engine.connect() as conn:
        collections = list(
            conn.execute(
                text(f"SELECT r2r_collection_id FROM {SCHEMA}.collection_map WHERE tenant_id = :t"),
                {"t": tenant_id},
            ).scalars()
        )
        r2r_ids: set[uuid.UUID] = set()
        for row in conn.execute(
            text(
                f"SELECT applied_r2r_id, pending_r2r_ids FROM {SCHEMA}.document_state "
                "WHERE tenant_id = :t"
            ),
            {"t": tenant_id},
        ):
            r2r_ids.update(u for u in [row.applied_r2r_id, *(row.pending_r2r_ids or [])] if u)
    with contextlib.suppress(Exception):
        r2r_ids |= {doc.id for doc in tenant_documents(client, ledger, tenant_id)}

    def delete_document(r2r_id: uuid.UUID) -> None:
        with contextlib.suppress(Exception):
            client.delete_document(r2r_id, retry=False)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(delete_document, r2r_ids))
        list(pool.map(lambda cid: delete_collection(client, cid), collections))


class ScopeSearch:
    """Searches one scope key as a set of principals through the engine's :class:`Retriever`.

    ``acl=None`` means no ACL restriction; ``document_sets`` (when given) restricts hits
    to those sets (the scope's forced sets).
    """

    def __init__(self, retriever: Retriever) -> None:
        self.retriever = retriever

    def search(
        self,
        tenant_id: str,
        query: str,
        *,
        acl: Sequence[str] | None,
        document_sets: Sequence[str] | None = None,
        include_hidden: bool = False,
        limit: int = 10,
        mode: Any = "semantic",
    ) -> list[MirroredChunk]:
        scope = SearchScope(
            scope_key=tenant_id,
            principals=None if acl is None else tuple(acl),
            include_hidden=include_hidden,
            forced_sets=None if document_sets is None else tuple(document_sets),
        )
        return self.retriever.search(scope, query, mode=mode, limit=limit)


class PatientSearch:
    """:class:`ScopeSearch` that waits out transient R2R errors (up to *patience* seconds).

    The embedding stub is shared by every test on the machine; another test may be
    simulating an embedding outage (semantic searches embed the query) at any moment.
    """

    def __init__(self, search: ScopeSearch, patience: float = 120.0) -> None:
        self.inner = search
        self.patience = patience

    def search(self, *args: Any, **kwargs: Any) -> list[MirroredChunk]:
        deadline = time.monotonic() + self.patience
        while True:
            try:
                return self.inner.search(*args, **kwargs)
            except R2RRetryableError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1.0)


def raw_mirror_search(client: R2RClient, ledger: Ledger) -> ScopeSearch:
    return ScopeSearch(Retriever(client, CollectionResolver(client, ledger)))


def mirror_search(client: R2RClient, ledger: Ledger) -> PatientSearch:
    return PatientSearch(raw_mirror_search(client, ledger))


def hit_sources(hits: Iterable[MirroredChunk]) -> set[str]:
    return {h.document_id for h in hits}


def versions_seen(hits: Iterable[MirroredChunk], document_id: str) -> set[str]:
    return {str(h.version) for h in hits if h.document_id == document_id}


def expected_r2r_id(ledger: Ledger, tenant_id: str, document_id: str) -> uuid.UUID:
    row = ledger.get_state(tenant_id, document_id)
    assert row is not None and row["desired_version"] is not None
    return r2r_version_id(tenant_id, document_id, row["desired_version"])


# ------------------------------------------------------- the embedding stub
def embed_count(embed_stub: Callable[..., dict]) -> int:
    return int(embed_stub()["embedded_texts"])


def assert_no_embedding(
    embed_stub: Callable[..., dict], action: Callable[[], None], *, tries: int = 5
) -> None:
    """Assert that *action* embeds nothing, tolerating other users of the shared stub.

    *action* must be repeatable and must itself be a case where the engine should
    embed nothing.  If the stub's counter moved during a run, the run is repeated: if
    the engine did embed, every run moves it.  When every run moved it, an idle window
    of the same length decides: quiet -> the engine embedded (fail); busy as well ->
    other tests are embedding right now and the check is inconclusive (a warning).
    """
    deltas: list[int] = []
    elapsed = 0.0
    for _ in range(tries):
        before = embed_count(embed_stub)
        started = time.monotonic()
        action()
        elapsed = time.monotonic() - started
        delta = embed_count(embed_stub) - before
        if delta == 0:
            return
        deltas.append(delta)
    before = embed_count(embed_stub)
    time.sleep(elapsed)
    idle = embed_count(embed_stub) - before
    if idle > 0:
        warnings.warn(
            f"the shared embedding stub is busy with other tests ({idle} texts in an idle "
            f"window); the no-embedding check was inconclusive (deltas {deltas})",
            stacklevel=2,
        )
        return
    raise AssertionError(f"the embedding stub embedded texts in every run: {deltas}")


# ------------------------------------------------------------ Onyx shapes
def onyx_doc(
    document_id: Any,
    body: str | bytes | None,
    *,
    acl: Sequence[str] | None = None,
    external_access: dict[str, Any] | None = None,
    title: Any = None,
    semantic_identifier: str | None = None,
    metadata: dict[str, Any] | None = None,
    document_sets: Sequence[str] | None = None,
    link: str | None = None,
) -> dict[str, Any]:
    """An Onyx ``Document``-shaped dict (what Onyx's docfetching hands the sender)."""
    doc: dict[str, Any] = {
        "id": document_id,
        "sections": [{"text": body, "link": link or f"https://wiki.example.com/{document_id}"}],
        "semantic_identifier": semantic_identifier
        if semantic_identifier is not None
        else f"Doc {document_id}",
        "source": "web",
        "metadata": metadata or {},
        "doc_updated_at": "2026-01-02T03:04:05Z",
    }
    if title is not None:
        doc["title"] = title
    if acl is not None:
        doc["acl"] = list(acl)
    if external_access is not None:
        doc["external_access"] = external_access
    if document_sets is not None:
        doc["document_sets"] = list(document_sets)
    return doc


# ----------------------------------------------------- a recording proxy
@dataclass
class RecordingClient:
    """Forwards every call to the real R2R client and records (method, args) in order.

    Only observes: R2R's behaviour is untouched.
    """

    real: R2RClient
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.real, name)
        if not callable(attr) or name.startswith("_"):
            return attr

        def recorded(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls.append((name, args, kwargs))
            return attr(*args, **kwargs)

        return recorded

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


# --------------------------------------------------------- search polling
@dataclass
class Poll:
    started: float
    ended: float
    principal: str
    versions: set[str]
    error: str | None = None
    transient: bool = False  # the error was R2R being unreachable/overloaded (retryable)


@contextmanager
def polling(search: Callable[[str], set[str]], principals: Sequence[str]) -> Iterator[list[Poll]]:
    """Search as each principal in turn, in a tight loop on a thread, while the block runs."""
    polls: list[Poll] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            for principal in principals:
                started = time.monotonic()
                try:
                    versions = search(principal)
                    error, transient = None, False
                except Exception as exc:  # recorded, asserted on by the test
                    versions, error = set(), f"{type(exc).__name__}: {exc}"
                    transient = isinstance(exc, R2RRetryableError)
                polls.append(Poll(started, time.monotonic(), principal, versions, error, transient))

    thread = threading.Thread(target=loop, name="search-poller", daemon=True)
    thread.start()
    try:
        yield polls
    finally:
        stop.set()
        thread.join(timeout=60)


__all__ = [
    "SEQ_KEY",
    "VANISHED",
    "VERSION_KEY",
    "LedgerVanished",
    "PatientSearch",
    "Poll",
    "RecordingClient",
    "ScopeSearch",
    "assert_no_embedding",
    "by_source",
    "collection_document_ids",
    "counters",
    "document_text",
    "drop_queue",
    "embed_count",
    "expected_r2r_id",
    "forget_tenant",
    "hit_sources",
    "label_collections",
    "ledger_row_count",
    "make_r2r",
    "mirror_search",
    "onyx_doc",
    "polling",
    "prepared",
    "purge_tenant",
    "purging",
    "raw_mirror_search",
    "reap_strays",
    "simulate_success",
    "states",
    "tenant_documents",
    "versions_seen",
    "wait_settled",
    "wait_synced",
    "wait_until",
]
