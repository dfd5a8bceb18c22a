"""Helpers for the R2RIndex / reconcile / backfill integration tests (real stack, no fakes)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from engine_checks import states, wait_until
from onyx_shaped import (
    Document,
    DocumentSource,
    IndexFilters,
    InferenceChunk,
    TextSection,
    access,
    chunks_of,
    indexing_metadata,
    insertion_record,
)

from onyx.document_index.r2r.index_core import R2RIndexCore
from onyx.r2r_integration.host import host_sender
from onyx.r2r_sender.config import BridgeSettings
from onyx.r2r_sender.doorbell import DRAIN_TASK
from onyx.r2r_sender.ledger import Ledger
from onyx.r2r_sender.plumbing import host_app, host_reader

UPDATED = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)

# users: their ACL as Onyx builds it for a search (without PUBLIC: the index adds it)
USERS: dict[str, list[str]] = {
    "alice": ["user_email:alice@x.io", "group:eng"],
    "bob": ["user_email:bob@x.io", "group:sales"],
    "carol": ["user_email:carol@x.io"],
    "dave": ["user_email:dave@partner.io", "external_group:partners"],
}

# documents: their Onyx ACL (DocumentAccess.to_acl())
DOC_ACLS: dict[str, list[str]] = {
    "pub": ["PUBLIC"],
    "alice": ["user_email:alice@x.io"],
    "bob": ["user_email:bob@x.io"],
    "eng": ["group:eng"],
    "sales": ["group:sales"],
    "partners": ["external_group:partners"],
    "alice-sales": ["user_email:alice@x.io", "group:sales"],
    "nobody": [],
}


def visible(user_acl: Sequence[str] | None, doc_acls: Mapping[str, Sequence[str]]) -> set[str]:
    """The documents a user may see, computed independently of the code under test."""
    if user_acl is None:
        return set(doc_acls)
    allowed = {"PUBLIC", *user_acl}
    return {doc for doc, acl in doc_acls.items() if allowed & set(acl)}


def make_core(
    settings: BridgeSettings, tenant_id: str, *, export: bool, writes: bool = True
) -> R2RIndexCore:
    """An R2RIndexCore on the host plumbing (bounded engine/Redis/Celery) of *settings*."""
    return R2RIndexCore(
        tenant_id=tenant_id,
        chunk_factory=InferenceChunk,
        record_factory=insertion_record,
        docfetching_export=export,
        writes_enabled=writes,
        settings=settings,
        sender_factory=lambda: host_sender(tenant_id, settings),
        reader_factory=lambda: host_reader(settings),
    )


def onyx_document(
    doc_id: str,
    text: str,
    *,
    source: DocumentSource = DocumentSource.CONFLUENCE,
    metadata: dict[str, Any] | None = None,
    updated: datetime | None = UPDATED,
    **kw: Any,
) -> Document:
    return Document(
        id=doc_id,
        sections=[TextSection(text, link=f"https://wiki.example.com/{doc_id}")],
        source=source,
        semantic_identifier=f"Doc {doc_id}",
        title=f"Title {doc_id}",
        metadata=metadata if metadata is not None else {"space": "ENG"},
        doc_updated_at=updated,
        **kw,
    )


def index_documents(
    core: R2RIndexCore,
    docs: Iterable[tuple[Document, Sequence[str], Sequence[str]]],
    *,
    tenant_id: str,
    parts_of=lambda d: [d.sections[0].text],
    large: bool = True,
) -> list[Any]:
    """Feed Onyx-shaped chunks (with a multipass chunk each) to ``core.index``."""
    chunks = []
    for doc, acl, sets in docs:
        chunks += chunks_of(
            doc, parts_of(doc), acl=access(*acl), sets=sets, tenant_id=tenant_id, large=large
        )
    return core.index(iter(chunks), indexing_metadata(chunks))


def hit_ids(chunks: Iterable[Any]) -> set[str]:
    return {c.document_id for c in chunks}


def search_as(core: R2RIndexCore, user: str | None, query: str, **filters: Any) -> set[str]:
    acl = None if user is None else USERS[user]
    return hit_ids(
        core.hybrid_retrieval(
            query, [0.0], None, "semantic", IndexFilters(access_control_list=acl, **filters), 100
        )
    )


def settle(
    ledger: Ledger,
    settings: BridgeSettings,
    tenant_id: str,
    timeout: float,
    expect: Sequence[str] = (),
) -> dict[str, dict[str, Any]]:
    """Wait until no row of *tenant_id* is pending and every *expect* id is synced.

    The tests' workers run without beat (a beat's sweep would drain every tenant of the
    shared test database).  While rows are pending this sends a drain of the tenant to
    the test's own queue every 2 s, which is what the sweep does for retries - sent
    directly, because the doorbell's per-tenant coalescing key may be held by a drain
    that another test's sweep queued on its own queue.  Fails at once on a dead letter.
    """
    app = host_app(settings)
    last_ring = [0.0]

    def settled() -> dict[str, dict[str, Any]] | None:
        rows = states(ledger, tenant_id)
        dead = {d: r["last_error"] for d, r in rows.items() if r["status"] == "dead"}
        if dead:
            raise AssertionError(f"dead letters in {tenant_id}: {dead}")
        if any(r["status"] == "pending" for r in rows.values()):
            if time.monotonic() - last_ring[0] > 2.0:
                last_ring[0] = time.monotonic()
                app.send_task(
                    DRAIN_TASK,
                    kwargs={"tenant_id": tenant_id},
                    queue=settings.queue,
                    expires=60,
                )
            return None
        if not all(d in rows and rows[d]["status"] == "synced" for d in expect):
            return None
        return rows

    return wait_until(settled, timeout, interval=0.5, what=f"tenant {tenant_id} settled")
