"""What a version is: what changes R2R's chunks, not when the host fetched (issue 17).

Onyx's file connector stamps the fetch time into ``doc_updated_at``, so each full run gave
every document a new version and R2R re-embedded all of it.  The update time is not part of
the version: a full re-run of unchanged documents records nothing and makes zero R2R
writes (the worker's write counter, real R2R), a real change still re-embeds, and rows
recorded under the earlier version formula are recognised by their stored payload.
"""

from __future__ import annotations

import time

import pytest
from engine_checks import counters, onyx_doc, states, wait_settled
from sqlalchemy import text

from onyx.r2r_sender.ledger.models import SCHEMA

pytestmark = pytest.mark.integration

FIRST_FETCH = "2026-01-02T03:04:05Z"
SECOND_FETCH = "2026-03-04T05:06:07Z"


def _docs(fetched_at: str, n: int = 3) -> list[dict]:
    docs = [
        onyx_doc(f"file-{i}", f"file connector text number {i}.", acl=["PUBLIC"]) for i in range(n)
    ]
    for doc in docs:
        doc["doc_updated_at"] = fetched_at
    return docs


def _writes(settings, tenant_id: str) -> int:
    return int(counters(settings, tenant_id).get("r2r_writes", 0))


def _quiet(settings, tenant_id: str, writes: int, seconds: float = 4.0) -> None:
    """No R2R write for *seconds* (sweeps run every second)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert _writes(settings, tenant_id) == writes, counters(settings, tenant_id)
        time.sleep(0.25)


def test_a_full_rerun_with_new_fetch_times_makes_no_r2r_write(
    settings, purge, ledger, tenant_id, workers, make_sender
) -> None:
    purge.append(tenant_id)
    workers.start(concurrency=2)
    sender = make_sender(tenant_id)
    first = sender.send_batch(_docs(FIRST_FETCH))
    assert sorted(first.changed) == ["file-0", "file-1", "file-2"]
    wait_settled(ledger, tenant_id, 120, expect=first.changed)
    writes = _writes(settings, tenant_id)
    assert writes >= 3, counters(settings, tenant_id)
    versions = {d: r["applied_version"] for d, r in states(ledger, tenant_id).items()}

    rerun = sender.send_batch(_docs(SECOND_FETCH))
    assert rerun.changed == [] and sorted(rerun.unchanged) == ["file-0", "file-1", "file-2"]
    _quiet(settings, tenant_id, writes)
    assert {d: r["applied_version"] for d, r in states(ledger, tenant_id).items()} == versions

    # a real change of the text still reaches R2R
    edited = _docs(SECOND_FETCH)
    edited[1]["sections"][0]["text"] = "file connector text number 1, edited."
    report = sender.send_batch(edited)
    assert report.changed == ["file-1"]
    wait_settled(ledger, tenant_id, 120, expect=["file-1"])
    assert _writes(settings, tenant_id) > writes
    assert states(ledger, tenant_id)["file-1"]["applied_version"] != versions["file-1"]


def test_rows_of_the_earlier_version_formula_are_recognised_by_their_payload(
    settings, purge, ledger, tenant_id, workers, make_sender
) -> None:
    """A ledger written before this change holds versions that hashed the update time in;
    an unchanged document must not be re-embedded once because of the new formula."""
    purge.append(tenant_id)
    workers.start(concurrency=2)
    sender = make_sender(tenant_id)
    sender.send_batch(_docs(FIRST_FETCH, n=2))
    wait_settled(ledger, tenant_id, 120, expect=["file-0", "file-1"])
    with ledger.engine.begin() as conn:  # what the earlier formula left: other version strings
        for table, column in (
            ("document_state", "desired_version"),
            ("document_state", "applied_version"),
            ("document_payload", "version"),
        ):
            conn.execute(
                text(
                    f"UPDATE {SCHEMA}.{table} SET {column} = 'legacy-' || document_id "
                    "WHERE tenant_id = :t"
                ),
                {"t": tenant_id},
            )
    writes = _writes(settings, tenant_id)
    rerun = sender.send_batch(_docs(SECOND_FETCH, n=2))
    assert rerun.changed == [] and sorted(rerun.unchanged) == ["file-0", "file-1"]
    _quiet(settings, tenant_id, writes)
    rows = states(ledger, tenant_id)
    assert {r["desired_version"] for r in rows.values()} == {"legacy-file-0", "legacy-file-1"}
