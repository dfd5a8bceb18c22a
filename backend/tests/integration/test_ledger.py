"""The desired-state ledger against the real test database (no R2R, no Celery).

Every test works in its own tenant; rows are read back with plain SQL or
``Ledger.get_state`` so the assertions are on what PostgreSQL really holds.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from engine_checks import (
    ledger_row_count,
    prepared,
    simulate_success,
    wait_until,
)
from sqlalchemy import text

from onyx.r2r_sender.ids import r2r_version_id
from onyx.r2r_sender.ledger import DeadLetter, Ledger, LockSession, Outcome, migrate
from onyx.r2r_sender.ledger.models import SCHEMA

pytestmark = pytest.mark.integration


@pytest.fixture
def ledger(settings, tenant_id) -> Iterator[Ledger]:
    ledger = Ledger.from_settings(settings)
    yield ledger
    forget_tenant(ledger, tenant_id)


def forget_tenant(ledger: Ledger, tenant_id: str) -> None:
    """Remove the test tenant's rows: left pending, any worker's sweep (this suite's or a
    concurrent one's, the test database is shared) would otherwise mirror them into R2R."""
    with ledger.engine.begin() as conn:
        for table in ("document_state", "collection_map"):  # payload rows cascade
            conn.execute(
                text(f"DELETE FROM {SCHEMA}.{table} WHERE tenant_id = :t"), {"t": tenant_id}
            )


def _db_now(ledger: Ledger) -> datetime:
    with ledger.engine.connect() as conn:
        return conn.execute(text("SELECT now()")).scalar()


def _set_due(ledger: Ledger, tenant_id: str, document_id: str, when_sql: str) -> None:
    """Move a row's next_attempt_at (test set-up only; the engine never needs this)."""
    with ledger.engine.begin() as conn:
        conn.execute(
            text(
                f"UPDATE {SCHEMA}.document_state SET next_attempt_at = {when_sql} "
                "WHERE tenant_id = :t AND document_id = :d"
            ),
            {"t": tenant_id, "d": document_id},
        )


def _payload(ledger: Ledger, tenant_id: str, document_id: str) -> dict | None:
    with ledger.engine.connect() as conn:
        row = (
            conn.execute(
                text(
                    f"SELECT * FROM {SCHEMA}.document_payload "
                    "WHERE tenant_id = :t AND document_id = :d"
                ),
                {"t": tenant_id, "d": document_id},
            )
            .mappings()
            .first()
        )
    return dict(row) if row is not None else None


# ----------------------------------------------------------------- host side
def test_record_documents_gate(settings, ledger, tenant_id):
    a1 = prepared(settings, tenant_id, "a", "alpha text", acl=["PUBLIC"])
    b1 = prepared(settings, tenant_id, "b", "beta text", acl=["user_email:x@y.z"])
    first = ledger.record_documents(tenant_id, [a1, b1])
    assert sorted(first.changed) == ["a", "b"] and first.unchanged == []
    state_a = ledger.get_state(tenant_id, "a")
    assert state_a["status"] == "pending"
    assert state_a["desired_seq"] == 1
    assert state_a["desired_version"] == a1.version
    assert list(state_a["desired_labels"]) == ["acl:PUBLIC"]
    assert _payload(ledger, tenant_id, "a")["text_content"] == "alpha text"

    # mark both applied, so "unchanged" really means "nothing to do"
    with LockSession(ledger.engine) as locks:
        claims = ledger.claim(locks, tenant_id, 10)
        assert sorted(c.document_id for c in claims) == ["a", "b"]
        for claim in claims:
            assert simulate_success(ledger, locks, claim) is True

    # identical content and labels: unchanged, no write at all (seq/updated_at untouched)
    before = ledger.get_state(tenant_id, "a")
    again = ledger.record_documents(tenant_id, [a1, b1])
    assert again.changed == [] and sorted(again.unchanged) == ["a", "b"]
    after = ledger.get_state(tenant_id, "a")
    assert after["desired_seq"] == before["desired_seq"]
    assert after["updated_at"] == before["updated_at"]
    assert after["status"] == "synced"

    # content change: new version, seq bump, payload replaced, pending again
    a2 = prepared(settings, tenant_id, "a", "alpha text, edited", acl=["PUBLIC"])
    assert a2.version != a1.version
    changed = ledger.record_documents(tenant_id, [a2])
    assert changed.changed == ["a"]
    state = ledger.get_state(tenant_id, "a")
    assert state["desired_version"] == a2.version
    assert state["desired_seq"] == 2
    assert state["status"] == "pending"
    payload = _payload(ledger, tenant_id, "a")
    assert payload["version"] == a2.version
    assert payload["text_content"] == "alpha text, edited"

    # labels-only change: same version (the version hash excludes labels), payload untouched
    b_labels = prepared(settings, tenant_id, "b", "beta text", acl=["group:eng"], sets=["s1"])
    assert b_labels.version == b1.version
    payload_before = _payload(ledger, tenant_id, "b")
    result = ledger.record_documents(tenant_id, [b_labels])
    assert result.changed == ["b"]
    state_b = ledger.get_state(tenant_id, "b")
    assert state_b["desired_version"] == b1.version
    assert list(state_b["desired_labels"]) == ["acl:group:eng", "set:s1"]
    assert state_b["status"] == "pending"
    assert state_b["desired_seq"] == 2
    assert _payload(ledger, tenant_id, "b") == payload_before

    # a repeated id in one call: the last copy wins
    c1 = prepared(settings, tenant_id, "c", "first copy")
    c2 = prepared(settings, tenant_id, "c", "second copy")
    result = ledger.record_documents(tenant_id, [c1, c2])
    assert result.changed == ["c"]
    assert ledger.get_state(tenant_id, "c")["desired_version"] == c2.version
    assert _payload(ledger, tenant_id, "c")["text_content"] == "second copy"
    assert ledger_row_count(ledger, tenant_id) == 3


def test_record_deletes_and_unknown(settings, ledger, tenant_id):
    ledger.record_documents(
        tenant_id,
        [
            prepared(settings, tenant_id, "keep", "kept", acl=["PUBLIC"]),
            prepared(settings, tenant_id, "gone", "gone soon", acl=["PUBLIC"]),
        ],
    )
    result = ledger.record_deletes(tenant_id, ["gone", "never-seen", "gone"])
    assert result.changed == ["gone"]
    assert result.unknown == ["never-seen"]
    assert result.unchanged == []
    state = ledger.get_state(tenant_id, "gone")
    assert state["desired_deleted"] is True
    assert list(state["desired_labels"]) == []
    assert state["desired_seq"] == 2
    assert state["status"] == "pending"
    assert _payload(ledger, tenant_id, "gone") is None
    # no ledger row was invented for the unknown id
    assert ledger.get_state(tenant_id, "never-seen") is None
    assert ledger_row_count(ledger, tenant_id) == 2

    # deleting again is unchanged (already tombstoned), still no row for unknown ids
    again = ledger.record_deletes(tenant_id, ["gone", "also-unknown"])
    assert again.changed == [] and again.unchanged == ["gone"]
    assert again.unknown == ["also-unknown"]
    assert ledger.get_state(tenant_id, "gone")["desired_seq"] == 2
    assert ledger.record_deletes(tenant_id, []).changed == []

    # re-sending the same content after the tombstone brings it back
    back = ledger.record_documents(
        tenant_id, [prepared(settings, tenant_id, "gone", "gone soon", acl=["PUBLIC"])]
    )
    assert back.changed == ["gone"]
    state = ledger.get_state(tenant_id, "gone")
    assert state["desired_deleted"] is False and state["desired_seq"] == 3
    assert _payload(ledger, tenant_id, "gone")["text_content"] == "gone soon"


def test_record_labels_keeps_sets_when_only_acl_given(settings, ledger, tenant_id):
    doc = prepared(
        settings, tenant_id, "d", "labelled", acl=["user_email:a@x.io"], sets=["handbook"]
    )
    ledger.record_documents(tenant_id, [doc])
    ledger.record_documents(tenant_id, [prepared(settings, tenant_id, "t", "tomb")])
    ledger.record_deletes(tenant_id, ["t"])

    result = ledger.record_labels(
        tenant_id,
        {
            "d": (["acl:group:eng"], None),
            "t": (["acl:PUBLIC"], None),  # tombstoned: not touched
            "nope": (["acl:PUBLIC"], None),  # unknown
        },
    )
    assert result.changed == ["d"]
    assert sorted(result.unknown) == ["nope", "t"]
    state = ledger.get_state(tenant_id, "d")
    assert list(state["desired_labels"]) == ["acl:group:eng", "set:handbook"]
    assert state["desired_version"] == doc.version  # no content change
    assert state["desired_seq"] == 2
    assert ledger.get_state(tenant_id, "t")["desired_labels"] == []
    assert ledger.get_state(tenant_id, "nope") is None

    # sets only (acl None) keeps the acl; the same labels again are unchanged
    result = ledger.record_labels(tenant_id, {"d": (None, ["set:other"])})
    assert result.changed == ["d"]
    assert list(ledger.get_state(tenant_id, "d")["desired_labels"]) == [
        "acl:group:eng",
        "set:other",
    ]
    result = ledger.record_labels(tenant_id, {"d": (["acl:group:eng"], ["set:other"])})
    assert result.changed == [] and result.unchanged == ["d"]
    assert ledger.get_state(tenant_id, "d")["desired_seq"] == 3
    # an empty acl really empties it (fail closed), sets stay
    ledger.record_labels(tenant_id, {"d": ([], None)})
    assert list(ledger.get_state(tenant_id, "d")["desired_labels"]) == ["set:other"]


def test_record_invalid_then_valid_resend_requeues(settings, ledger, tenant_id):
    # a brand-new document that was rejected: dead, no desired version
    ledger.record_invalid(tenant_id, "bad", "document 'bad': metadata value for 'k' ...")
    state = ledger.get_state(tenant_id, "bad")
    assert state["status"] == "dead"
    assert state["last_error_class"] == "invalid_document"
    assert "'bad'" in state["last_error"]
    assert state["desired_version"] is None
    # replay cannot help a row that never had a valid version
    assert ledger.replay(tenant_id) == []
    assert ledger.get_state(tenant_id, "bad")["status"] == "dead"
    with LockSession(ledger.engine) as locks:
        assert ledger.claim(locks, tenant_id, 10) == []

    # a valid re-send re-queues it and clears the error
    fixed = prepared(settings, tenant_id, "bad", "now it is fine", acl=["PUBLIC"])
    result = ledger.record_documents(tenant_id, [fixed])
    assert result.changed == ["bad"]
    state = ledger.get_state(tenant_id, "bad")
    assert state["status"] == "pending"
    assert state["last_error_class"] is None and state["last_error"] is None
    assert state["attempts"] == 0
    assert state["desired_version"] == fixed.version

    # a previously valid document: the rejection keeps the valid desired version ...
    with LockSession(ledger.engine) as locks:
        (claim,) = ledger.claim(locks, tenant_id, 10)
        simulate_success(ledger, locks, claim)
    ledger.record_invalid(tenant_id, "bad", "document 'bad': text must be a string")
    state = ledger.get_state(tenant_id, "bad")
    assert state["status"] == "dead" and state["desired_version"] == fixed.version
    assert [d.document_id for d in ledger.dead_letters(tenant_id)] == ["bad"]
    # ... and re-sending that same valid version is not "unchanged": it re-queues
    result = ledger.record_documents(tenant_id, [fixed])
    assert result.changed == ["bad"]
    state = ledger.get_state(tenant_id, "bad")
    assert state["status"] == "pending" and state["last_error_class"] is None
    assert ledger.dead_letters(tenant_id) == []


# ----------------------------------------------------------------- worker side
def test_claim_order_and_skip_locked_exclusivity(settings, ledger, tenant_id):
    docs = [prepared(settings, tenant_id, f"doc-{i}", f"text {i}") for i in range(6)]
    ledger.record_documents(tenant_id, docs)
    # oldest due first: doc-5 is the most overdue, doc-3 next; the rest tie on now()
    _set_due(ledger, tenant_id, "doc-5", "now() - interval '1 hour'")
    _set_due(ledger, tenant_id, "doc-3", "now() - interval '10 minutes'")
    _set_due(ledger, tenant_id, "doc-4", "now() + interval '1 hour'")  # not due
    with ledger.engine.begin() as conn:  # the rest tie: then ordered by document id
        conn.execute(
            text(
                f"UPDATE {SCHEMA}.document_state SET next_attempt_at = now() - interval '1 minute' "
                "WHERE tenant_id = :t AND document_id IN ('doc-0', 'doc-1', 'doc-2')"
            ),
            {"t": tenant_id},
        )

    s1 = LockSession(ledger.engine)
    s2 = LockSession(ledger.engine)
    try:
        first = ledger.claim(s1, tenant_id, 2)
        assert [c.document_id for c in first] == ["doc-5", "doc-3"]
        # the claim recorded the target R2R id before anything was sent
        for claim in first:
            target = r2r_version_id(tenant_id, claim.document_id, claim.desired_version)
            assert claim.target_r2r_id == target
            assert claim.pending_r2r_ids == [target]
            assert list(ledger.get_state(tenant_id, claim.document_id)["pending_r2r_ids"]) == [
                target
            ]
            assert claim.text == f"text {claim.document_id[-1]}"
        # another session skips what s1 holds, and never sees rows that are not due
        second = ledger.claim(s2, tenant_id, 10)
        assert [c.document_id for c in second] == ["doc-0", "doc-1", "doc-2"]
        assert ledger.claim(s2, tenant_id, 10) == []
        assert ledger.claim(s1, tenant_id, 10) == []
        assert ledger.has_due(tenant_id) is False  # everything due is being applied

        # a released lock (no finalize) makes the row claimable by the other session
        s1.unlock(tenant_id, "doc-5")
        assert ledger.has_due(tenant_id) is True
        assert [c.document_id for c in ledger.claim(s2, tenant_id, 10)] == ["doc-5"]
        # the pending id is not duplicated by a second claim
        assert len(ledger.get_state(tenant_id, "doc-5")["pending_r2r_ids"]) == 1

        # crash: s1's connection dies without finalising -> doc-3 is claimable at once
        with s1.connection.begin():
            pid = s1.connection.execute(text("SELECT pg_backend_pid()")).scalar()
        with ledger.engine.connect() as other:
            assert other.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
        wait_until(
            lambda: [c.document_id for c in ledger.claim(s2, tenant_id, 10)] == ["doc-3"],
            10,
            what="doc-3 claimable after the claimer's connection died",
        )
        assert ledger.get_state(tenant_id, "doc-3")["status"] == "pending"
    finally:
        s2.close()
        with contextlib.suppress(Exception):  # its connection was terminated on purpose
            s1.close()


def test_synced_rows_are_not_claimed(settings, ledger, tenant_id):
    ledger.record_documents(tenant_id, [prepared(settings, tenant_id, "x", "x text")])
    with LockSession(ledger.engine) as locks:
        (claim,) = ledger.claim(locks, tenant_id, 5)
        assert simulate_success(ledger, locks, claim) is True
        assert ledger.claim(locks, tenant_id, 5) == []
    state = ledger.get_state(tenant_id, "x")
    assert state["status"] == "synced"
    assert state["applied_seq"] == 1
    assert state["applied_r2r_id"] == claim.target_r2r_id
    assert list(state["pending_r2r_ids"]) == []
    assert tenant_id not in ledger.due_tenants()


def test_finalize_success_is_fenced_by_desired_seq(settings, ledger, tenant_id):
    v1 = prepared(settings, tenant_id, "f", "version one")
    v2 = prepared(settings, tenant_id, "f", "version two")
    ledger.record_documents(tenant_id, [v1])
    with LockSession(ledger.engine) as locks:
        (old,) = ledger.claim(locks, tenant_id, 5)
        ledger.record_documents(tenant_id, [v2])  # the host moves on during the apply
        assert simulate_success(ledger, locks, old) is False
        locks.unlock(tenant_id, "f")
        state = ledger.get_state(tenant_id, "f")
        assert state["status"] == "pending"
        assert state["applied_version"] == v1.version and state["applied_seq"] == 1
        assert state["desired_version"] == v2.version and state["desired_seq"] == 2
        (new,) = ledger.claim(locks, tenant_id, 5)
        assert new.seq == 2 and new.desired_version == v2.version
        assert new.applied_version == v1.version and new.content_changed
        assert new.text == "version two"
        assert simulate_success(ledger, locks, new) is True
    assert ledger.get_state(tenant_id, "f")["status"] == "synced"

    # a synced tombstone drops the payload
    ledger.record_deletes(tenant_id, ["f"])
    with LockSession(ledger.engine) as locks:
        (tomb,) = ledger.claim(locks, tenant_id, 5)
        assert tomb.desired_deleted and tomb.target_r2r_id is None
        assert ledger.finalize_success(
            locks,
            tomb,
            Outcome(r2r_id=None, version=None, deleted=True, labels=[], collections=[]),
        )
    state = ledger.get_state(tenant_id, "f")
    assert state["status"] == "synced" and state["applied_deleted"] is True
    assert _payload(ledger, tenant_id, "f") is None
    counts = ledger.counts(tenant_id)[0]
    assert counts["deleted"] == 1 and counts["synced"] == 0


def test_finalize_failure_backoff_dead_and_superseded(settings, tenant_id, ledger):
    ledger = Ledger(ledger.engine, settings.with_overrides(max_attempts=3))
    ledger.record_documents(
        tenant_id,
        [
            prepared(settings, tenant_id, "retry", "r"),
            prepared(settings, tenant_id, "fatal", "f"),
            prepared(settings, tenant_id, "moved", "m1"),
        ],
    )
    with LockSession(ledger.engine) as locks:
        claims = {c.document_id: c for c in ledger.claim(locks, tenant_id, 10)}
        assert set(claims) == {"retry", "fatal", "moved"}

        # retryable: pending, attempts 1, due in the future (backoff), error recorded
        status = ledger.finalize_failure(
            locks,
            claims["retry"],
            error_class="r2r_unavailable",
            message="R2R create_document failed (no response): boom",
            retryable=True,
        )
        assert status == "pending"
        state = ledger.get_state(tenant_id, "retry")
        now = _db_now(ledger)
        assert state["attempts"] == 1
        assert state["last_error_class"] == "r2r_unavailable"
        assert "boom" in state["last_error"]
        assert state["next_attempt_at"] > now
        # base 0.5 s * 2**1 with jitter 0.5..1.0 -> at most 1 s (cap 5 s)
        assert state["next_attempt_at"] <= now + timedelta(seconds=settings.retry_cap_seconds)

        # not retryable: dead at once, with class and reason
        status = ledger.finalize_failure(
            locks,
            claims["fatal"],
            error_class="r2r_rejected",
            message="R2R said 422",
            retryable=False,
        )
        assert status == "dead"

        # the desired state changed during the failed apply: due again right away, fresh count
        ledger.record_documents(tenant_id, [prepared(settings, tenant_id, "moved", "m2")])
        status = ledger.finalize_failure(
            locks,
            claims["moved"],
            error_class="r2r_unavailable",
            message="old version failed",
            retryable=False,
        )
        assert status == "pending"
        state = ledger.get_state(tenant_id, "moved")
        assert state["attempts"] == 0
        assert state["next_attempt_at"] <= _db_now(ledger)
        for doc_id in claims:
            locks.unlock(tenant_id, doc_id)

        # the backed-off row is not claimable yet; the superseded one is
        assert [c.document_id for c in ledger.claim(locks, tenant_id, 10)] == ["moved"]
        locks.unlock(tenant_id, "moved")

        # retry until max_attempts (3): the third failure dead-letters it
        for expected_attempts, expected_status in ((2, "pending"), (3, "dead")):
            _set_due(ledger, tenant_id, "retry", "now() - interval '1 second'")
            (claim,) = [c for c in ledger.claim(locks, tenant_id, 10) if c.document_id == "retry"]
            assert claim.attempts == expected_attempts - 1
            status = ledger.finalize_failure(
                locks,
                claim,
                error_class="r2r_unavailable",
                message=f"attempt {expected_attempts}",
                retryable=True,
                retry_after=3.0,
            )
            locks.unlock(tenant_id, "retry")
            locks.unlock(tenant_id, "moved")
            assert status == expected_status
            state = ledger.get_state(tenant_id, "retry")
            assert state["attempts"] == expected_attempts
            if expected_status == "pending":  # Retry-After is honoured
                assert state["next_attempt_at"] >= _db_now(ledger) + timedelta(seconds=2.5)

    dead = {d.document_id: d for d in ledger.dead_letters(tenant_id)}
    assert set(dead) == {"retry", "fatal"}
    assert dead["fatal"].error_class == "r2r_rejected"
    assert dead["fatal"].error == "R2R said 422"
    assert dead["retry"].attempts == 3 and dead["retry"].error == "attempt 3"
    # retry_delay: exponential, capped, >= Retry-After (capped too)
    for attempts in range(1, 12):
        delay = ledger.retry_delay(attempts, None)
        base = min(settings.retry_cap_seconds, settings.retry_base_seconds * 2**attempts)
        assert base * 0.5 <= delay <= base
    assert ledger.retry_delay(1, 4.0) >= 4.0
    assert ledger.retry_delay(1, 10_000) <= settings.retry_cap_seconds


def test_replay(settings, ledger, tenant_id):
    ledger.record_documents(
        tenant_id,
        [prepared(settings, tenant_id, name, name) for name in ("d1", "d2", "d3", "ok")],
    )
    ledger.record_invalid(tenant_id, "invalid-only", "document 'invalid-only': no text")
    with LockSession(ledger.engine) as locks:
        for claim in ledger.claim(locks, tenant_id, 10):
            if claim.document_id == "ok":
                simulate_success(ledger, locks, claim)
            else:
                ledger.finalize_failure(
                    locks, claim, error_class="r2r_rejected", message="no", retryable=False
                )
    assert {d.document_id for d in ledger.dead_letters(tenant_id)} == {
        "d1",
        "d2",
        "d3",
        "invalid-only",
    }
    # by ids first (only dead rows with a valid desired state move)
    assert ledger.replay(tenant_id, ["d1", "ok", "invalid-only"]) == [(tenant_id, "d1")]
    state = ledger.get_state(tenant_id, "d1")
    assert state["status"] == "pending" and state["attempts"] == 0
    assert state["next_attempt_at"] <= _db_now(ledger)
    assert ledger.get_state(tenant_id, "ok")["status"] == "synced"
    # then the whole tenant
    assert sorted(ledger.replay(tenant_id)) == [(tenant_id, "d2"), (tenant_id, "d3")]
    assert [d.document_id for d in ledger.dead_letters(tenant_id)] == ["invalid-only"]
    assert ledger.replay(tenant_id) == []
    with LockSession(ledger.engine) as locks:
        assert sorted(c.document_id for c in ledger.claim(locks, tenant_id, 10)) == [
            "d1",
            "d2",
            "d3",
        ]


def test_counts_and_dead_letters_shapes(settings, ledger, tenant_id):
    ledger.record_documents(
        tenant_id,
        [prepared(settings, tenant_id, f"n{i}", f"text {i}") for i in range(5)],
    )
    ledger.record_invalid(tenant_id, "rejected", "document 'rejected': bad")
    with LockSession(ledger.engine) as locks:
        claims = {c.document_id: c for c in ledger.claim(locks, tenant_id, 10)}
        simulate_success(ledger, locks, claims["n0"])
        simulate_success(ledger, locks, claims["n1"])
        ledger.finalize_failure(
            locks, claims["n2"], error_class="r2r_unavailable", message="x", retryable=True
        )
        # n3, n4 stay pending (released without finalize)
    ledger.record_deletes(tenant_id, ["n1"])
    with LockSession(ledger.engine) as locks:
        for claim in ledger.claim(locks, tenant_id, 10):
            if claim.document_id == "n1":
                ledger.finalize_success(
                    locks,
                    claim,
                    Outcome(r2r_id=None, version=None, deleted=True, labels=[], collections=[]),
                )

    (row,) = ledger.counts(tenant_id)
    assert set(row) == {
        "tenant_id",
        "pending",
        "retrying",
        "synced",
        "deleted",
        "dead",
        "oldest_pending_seconds",
    }
    assert row["tenant_id"] == tenant_id
    assert (row["pending"], row["retrying"], row["synced"], row["deleted"], row["dead"]) == (
        3,
        1,
        1,
        1,
        1,
    )
    assert isinstance(row["oldest_pending_seconds"], float)
    assert row["oldest_pending_seconds"] >= 0
    # the all-tenants form contains this tenant's row with the same counts
    (same,) = [r for r in ledger.counts() if r["tenant_id"] == tenant_id]
    assert {k: v for k, v in same.items() if k != "oldest_pending_seconds"} == {
        k: v for k, v in row.items() if k != "oldest_pending_seconds"
    }
    assert ledger.pending_count(tenant_id) == 3
    assert ledger.pending_count(tenant_id, ["n0", "n3"]) == 1

    (dead,) = ledger.dead_letters(tenant_id)
    assert isinstance(dead, DeadLetter)
    assert dead.tenant_id == tenant_id and dead.document_id == "rejected"
    assert dead.error_class == "invalid_document" and dead.error == "document 'rejected': bad"
    assert dead.attempts == 1 and dead.desired_deleted is False
    assert isinstance(dead.last_attempt_at, datetime)
    assert dead.last_attempt_at.tzinfo is not None
    assert ledger.dead_letters(tenant_id, offset=1) == []
    # a tenant without rows: no row at all
    assert ledger.counts(f"{tenant_id}-none") == []
    # desired_of (dry runs) sees the recorded state
    desired = ledger.desired_of(tenant_id, ["n1", "n4", "missing"])
    assert set(desired) == {"n1", "n4"}
    assert desired["n1"].deleted is True and desired["n4"].status == "pending"


def test_migrations_are_idempotent(ledger_engine):
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
    migrate.upgrade(ledger_engine)
    migrate.upgrade(ledger_engine)
    assert migrate.current_revision(ledger_engine) == head
    with ledger_engine.connect() as conn:
        tables = set(
            conn.execute(
                text("SELECT table_name FROM information_schema.tables WHERE table_schema = :s"),
                {"s": SCHEMA},
            ).scalars()
        )
        versions = conn.execute(text(f"SELECT count(*) FROM {SCHEMA}.alembic_version")).scalar()
    assert {"document_state", "document_payload", "collection_map", "alembic_version"} <= tables
    assert versions == 1


def test_collection_map_round_trip(settings, ledger, tenant_id):
    cid = uuid.uuid4()
    assert ledger.collection_ids(tenant_id, ["acl:PUBLIC"]) == {}
    ledger.save_collection(tenant_id, "acl:PUBLIC", cid, "name-1")
    assert ledger.collection_ids(tenant_id, ["acl:PUBLIC", "acl:other"]) == {"acl:PUBLIC": cid}
    cid2 = uuid.uuid4()
    ledger.save_collection(tenant_id, "acl:PUBLIC", cid2, "name-2")  # stale mapping replaced
    assert ledger.collection_ids(tenant_id, ["acl:PUBLIC"]) == {"acl:PUBLIC": cid2}
    ledger.forget_collection(tenant_id, "acl:PUBLIC")
    assert ledger.collection_ids(tenant_id, ["acl:PUBLIC"]) == {}
