"""Reconciliation and backfill against the real ledger, worker and R2R."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import pytest
from engine_checks import make_r2r, states, wait_until
from r2r_index_checks import settle
from sqlalchemy import text

from onyx.r2r_integration.host import host_sender
from onyx.r2r_sender.applier import SEQ_KEY, VERSION_KEY
from onyx.r2r_sender.backfill import StaticBackfillSource, run_backfill_slice
from onyx.r2r_sender.celery_app import build_app
from onyx.r2r_sender.collections import TENANT_LABEL, CollectionResolver
from onyx.r2r_sender.doorbell import BACKFILL_TASK, RECONCILE_TASK
from onyx.r2r_sender.ids import r2r_version_id
from onyx.r2r_sender.ledger import ops as ledger_ops
from onyx.r2r_sender.ledger.models import SCHEMA
from onyx.r2r_sender.payload import SourceDocument
from onyx.r2r_sender.read_model import Retriever, SearchScope
from onyx.r2r_sender.reconcile import reconcile_tenant

pytestmark = pytest.mark.integration

SYNC = 180.0


def _docs(prefix: str, n: int, word: str) -> list[SourceDocument]:
    return [
        SourceDocument(f"{prefix}{i:02d}", text=f"{word} document number {i}", acl=["PUBLIC"])
        for i in range(n)
    ]


def _public_hits(settings, ledger, tenant_id: str, word: str) -> set[str]:
    with make_r2r(settings) as client:
        retriever = Retriever(client, CollectionResolver(client, ledger))
        scope = SearchScope(scope_key=tenant_id, principals=("PUBLIC",))
        hits = retriever.search(scope, word, limit=100, mode="fulltext")
    return {h.document_id for h in hits}


# ---------------------------------------------------------------- reconcile
def test_reconcile_repairs_orphans_missing_drift_and_dead(
    settings, ledger, purge, workers, tenant_id
) -> None:
    purge.append(tenant_id)
    workers.start(concurrency=4, beat=False)
    sender = host_sender(tenant_id, settings)
    docs = _docs("r", 6, "heron")
    sender.send_batch(docs)
    rows = settle(ledger, settings, tenant_id, SYNC, [d.document_id for d in docs])
    applied = {d: rows[d]["applied_r2r_id"] for d in rows}

    with make_r2r(settings) as client:
        resolver = CollectionResolver(client, ledger)
        labels = resolver.resolve(
            tenant_id, [TENANT_LABEL, "acl:PUBLIC", "acl:group:intruder"], create=True
        )
        # missing: someone deleted r00 in R2R
        client.delete_document(applied["r00"])
        # drift: r01 lost its PUBLIC membership, r02 gained an intruder's
        client.remove_document_from_collection(labels["acl:PUBLIC"], applied["r01"])
        client.add_document_to_collection(labels["acl:group:intruder"], applied["r02"])
        # orphans: a version of a document the ledger never knew, and an old version of r03
        ghost = r2r_version_id(tenant_id, "ghost", "v1")
        stale = r2r_version_id(tenant_id, "r03", "old-version")
        for r2r_id, doc_id in ((ghost, "ghost"), (stale, "r03")):
            client.create_document(
                document_id=r2r_id,
                raw_text=f"heron leftover of {doc_id}",
                metadata={
                    "tenant_id": tenant_id,
                    "source_document_id": doc_id,
                    VERSION_KEY: "old",
                    SEQ_KEY: 0,
                },
                collection_ids=[labels[TENANT_LABEL]],
            )
            client.add_document_to_collection(labels["acl:PUBLIC"], r2r_id)
        # failed: r04 exhausted its retries during an outage
        with ledger.engine.begin() as conn:
            conn.execute(
                text(
                    f"UPDATE {SCHEMA}.document_state SET status = 'dead', "
                    "last_error_class = 'r2r_unavailable', last_error = 'outage' "
                    "WHERE tenant_id = :t AND document_id = 'r04'"
                ),
                {"t": tenant_id},
            )
        assert _public_hits(settings, ledger, tenant_id, "heron") >= {"ghost"}

        result = reconcile_tenant(
            tenant_id, ledger=ledger, client=client, ring=sender.doorbell.ring
        )
        assert result.outcome == "ok", result.summary()
        assert set(result.orphans) == {str(ghost), str(stale)}
        assert result.deleted == 2
        assert result.missing == ["r00"]
        assert sorted(result.drift) == ["r01", "r02"]
        assert result.failed_requeued == ["r04"]

        rows = settle(ledger, settings, tenant_id, SYNC, [d.document_id for d in docs])
        assert client.get_document(rows["r00"]["applied_r2r_id"]).ingestion_status == "success"
        for doc_id in ("r01", "r02"):
            doc = client.get_document(rows[doc_id]["applied_r2r_id"])
            assert set(doc.collection_ids) == {labels["acl:PUBLIC"]}
        assert client.list_documents([ghost, stale]) == []
        assert _public_hits(settings, ledger, tenant_id, "heron") == {d.document_id for d in docs}

        again = reconcile_tenant(tenant_id, ledger=ledger, client=client)
    assert again.outcome == "ok"
    assert (again.orphans, again.missing, again.drift, again.failed_requeued) == ([], [], [], [])
    runs = ledger_ops.last_runs(ledger, tenant_id)
    assert [r["outcome"] for r in runs[:2]] == ["ok", "ok"]
    assert runs[1]["result"]["orphans_count"] == 2 and runs[1]["finished_at"] is not None


def test_reconcile_stops_on_mass_delete(settings, ledger, purge, workers, tenant_id) -> None:
    purge.append(tenant_id)
    workers.start(concurrency=4, beat=False)
    docs = _docs("m", 12, "egret")
    host_sender(tenant_id, settings).send_batch(docs)
    rows = settle(ledger, settings, tenant_id, SYNC, [d.document_id for d in docs])
    r2r_ids = [rows[d.document_id]["applied_r2r_id"] for d in docs]
    # a wiped (or wrong) ledger database: 11 of 12 documents look like orphans
    with ledger.engine.begin() as conn:
        conn.execute(
            text(
                f"DELETE FROM {SCHEMA}.document_state WHERE tenant_id = :t AND document_id <> 'm00'"
            ),
            {"t": tenant_id},
        )
    with make_r2r(settings) as client:
        result = reconcile_tenant(
            tenant_id, ledger=ledger, client=client, max_delete_share=0.2, delete_floor=0
        )
        assert result.outcome == "stopped"
        assert len(result.orphans) == 11 and result.deleted == 0
        assert "circuit breaker" in result.reason
        assert len(client.list_documents(r2r_ids)) == 12  # nothing was deleted
        dry = reconcile_tenant(
            tenant_id, ledger=ledger, client=client, max_delete_share=1.0, dry_run=True
        )
        assert dry.outcome == "dry_run" and len(dry.orphans) == 11
        assert len(client.list_documents(r2r_ids)) == 12
        # the floor lets small repairs through: 11 ≤ 20 deletions are allowed
        small = reconcile_tenant(tenant_id, ledger=ledger, client=client, delete_floor=20)
        assert small.outcome == "ok" and small.deleted == 11
        assert [d.id for d in client.list_documents(r2r_ids)] == [r2r_ids[0]]
    runs = ledger_ops.last_runs(ledger, tenant_id)
    assert [r["outcome"] for r in runs[:3]] == ["ok", "dry_run", "stopped"]


# ----------------------------------------------------------------- backfill
class CountingSource(StaticBackfillSource):
    def __init__(self, documents: Sequence[SourceDocument]) -> None:
        super().__init__(documents)
        self.listed: list[str | None] = []
        self.fetched: list[str] = []

    def list_ids(self, after, limit):
        self.listed.append(after)
        return super().list_ids(after, limit)

    def fetch(self, document_ids):
        self.fetched.extend(document_ids)
        return super().fetch(document_ids)


def test_backfill_resumes_from_its_cursor(settings, ledger, purge, workers, tenant_id) -> None:
    purge.append(tenant_id)
    docs = _docs("b", 25, "ibis")
    sender = host_sender(tenant_id, settings)
    sender.send_batch(docs[::5])  # the ledger already has b00, b05, b10, b15, b20
    source = CountingSource(docs)

    first = run_backfill_slice(tenant_id, source, sender=sender, batch_size=10, max_batches=1)
    assert (first.state, first.after, first.scanned, first.recorded) == ("running", "b09", 10, 8)
    assert "b00" not in source.fetched and "b05" not in source.fetched and len(source.fetched) == 8
    assert ledger_ops.get_cursor(ledger, tenant_id, "backfill").cursor == {"after": "b09"}

    # backpressure: with more than 5 documents waiting for the workers, the slice waits
    held = run_backfill_slice(tenant_id, source, sender=sender, batch_size=10, max_pending=5)
    assert held.scanned == 0 and held.stopped.startswith("backpressure")

    # a new process (new sender, same database) resumes after the cursor
    source.listed.clear()
    rest = run_backfill_slice(
        tenant_id, source, sender=host_sender(tenant_id, settings), batch_size=10, max_pending=0
    )
    assert source.listed[0] == "b09"
    assert (rest.state, rest.scanned, rest.recorded) == ("done", 15, 12)
    done = run_backfill_slice(tenant_id, source, sender=sender)
    assert done.scanned == 0 and "already done" in done.stopped
    again = run_backfill_slice(tenant_id, source, sender=sender, restart=True, max_pending=0)
    assert (again.state, again.scanned, again.recorded) == ("done", 25, 0)  # nothing lacking

    workers.start(concurrency=4, beat=False)
    settle(ledger, settings, tenant_id, SYNC, [d.document_id for d in docs])
    assert _public_hits(settings, ledger, tenant_id, "ibis") == {d.document_id for d in docs}


# ------------------------------------------------------- through the worker
def test_jobs_run_as_worker_tasks(
    settings, ledger, purge, workers, tenant_id, tmp_path: Path, monkeypatch
) -> None:
    purge.append(tenant_id)
    docs = [
        {
            "id": f"w{i}",
            "sections": [{"text": f"plover item {i}"}],
            "semantic_identifier": f"W{i}",
            "acl": ["PUBLIC"],
        }
        for i in range(4)
    ]
    jsonl = tmp_path / "backfill.jsonl"
    jsonl.write_text("\n".join(json.dumps(d) for d in docs))
    here = str(Path(__file__).parent)
    monkeypatch.setenv("ONYX_R2R_BACKFILL_SOURCE", "backfill_fixture_source:build_source")
    monkeypatch.setenv("ONYX_R2R_TEST_BACKFILL_JSONL", str(jsonl))
    monkeypatch.setenv("ONYX_R2R_BACKFILL_THROTTLE_SECONDS", "0")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([here, os.environ.get("PYTHONPATH", "")]))
    workers.start(concurrency=4, beat=False)
    app = build_app(settings)

    def send(task: str) -> None:
        app.send_task(
            task,
            kwargs={"tenant_id": tenant_id},
            queue=settings.queue,
            expires=settings.task_expires_seconds,
        )

    send(BACKFILL_TASK)  # what the admin page's "resync" sends
    wait_until(
        lambda: ledger_ops.get_cursor(ledger, tenant_id, "backfill").state == "done",
        SYNC,
        what="backfill pass done",
    )
    settle(ledger, settings, tenant_id, SYNC, [d["id"] for d in docs])
    send(RECONCILE_TASK)
    run = wait_until(
        lambda: next(
            (r for r in ledger_ops.last_runs(ledger, tenant_id) if r["finished_at"] is not None),
            None,
        ),
        SYNC,
        what="a reconcile run",
    )
    assert run["outcome"] == "ok" and run["result"]["r2r_documents"] == 4
    assert set(states(ledger, tenant_id)) == {d["id"] for d in docs}
