"""The host-facing ledger contract, as checks that run against every implementation.

``tests/unit/test_memory_ledger.py`` runs them on the in-memory twin; the integration
module ``test_ledger_contract.py`` runs the same checks on the PostgreSQL ledger, so the
twin cannot drift from what runs.  Each check takes a fresh ledger, a fresh tenant id and
``apply(ledger, tenant, doc_id, r2r_id)``: how that implementation marks a document as
applied (a real claim + finalise on PostgreSQL, ``mark_applied`` in memory).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from onyx.r2r_sender.config import BridgeSettings
from onyx.r2r_sender.desired_state import DesiredStateLedger
from onyx.r2r_sender.payload import SourceDocument, prepare

Apply = Callable[[Any, str, str, "uuid.UUID | None"], None]
SETTINGS = BridgeSettings()


def _doc(tenant: str, doc_id: str, text: str, acl=("PUBLIC",), sets=(), flags=None):
    source = SourceDocument(
        document_id=doc_id,
        text=text,
        acl=None if acl is None else list(acl),
        sets=None if sets is None else list(sets),
        flags=flags,
    )
    return prepare(source, SETTINGS, tenant)


def check_is_the_protocol(ledger: DesiredStateLedger, tenant: str, apply: Apply) -> None:
    assert isinstance(ledger, DesiredStateLedger)


def check_record_gate(ledger: DesiredStateLedger, tenant: str, apply: Apply) -> None:
    first = ledger.record_documents(tenant, [_doc(tenant, "a", "one"), _doc(tenant, "b", "two")])
    assert (sorted(first.changed), first.unchanged) == (["a", "b"], [])
    again = ledger.record_documents(tenant, [_doc(tenant, "a", "one"), _doc(tenant, "b", "2")])
    assert (again.changed, again.unchanged) == (["b"], ["a"])
    labels_only = ledger.record_documents(tenant, [_doc(tenant, "a", "one", acl=["x"])])
    assert labels_only.changed == ["a"]
    assert ledger.desired_of(tenant, ["a"])["a"].labels == ["acl:x"]
    # the last copy of a repeated id wins
    twice = ledger.record_documents(tenant, [_doc(tenant, "c", "v1"), _doc(tenant, "c", "v2")])
    assert twice.changed == ["c"]
    assert ledger.desired_of(tenant, ["c"])["c"].version == _doc(tenant, "c", "v2").version
    assert ledger.pending_count(tenant) == 3
    assert ledger.pending_count(tenant, ["a", "zzz"]) == 1


def check_none_keeps_recorded_labels(ledger: DesiredStateLedger, tenant: str, apply: Apply) -> None:
    ledger.record_documents(tenant, [_doc(tenant, "a", "t", acl=["u1"], sets=["s1"])])
    ledger.record_documents(tenant, [_doc(tenant, "a", "t2", acl=None, sets=None)])
    assert ledger.desired_of(tenant, ["a"])["a"].labels == ["acl:u1", "set:s1"]
    result = ledger.record_labels(tenant, {"a": (["acl:u2"], None), "ghost": (["acl:x"], None)})
    assert (result.changed, result.unknown) == (["a"], ["ghost"])
    assert ledger.desired_of(tenant, ["a"])["a"].labels == ["acl:u2", "set:s1"]
    same = ledger.record_labels(tenant, {"a": (["acl:u2"], ["set:s1"], None)})
    assert same.unchanged == ["a"]
    flags = ledger.record_labels(tenant, {"a": (None, None, ["flag:hidden"])})
    assert flags.changed == ["a"]
    assert ledger.desired_of(tenant, ["a"])["a"].labels == ["acl:u2", "flag:hidden", "set:s1"]


def check_tombstones(ledger: DesiredStateLedger, tenant: str, apply: Apply) -> None:
    ledger.record_documents(tenant, [_doc(tenant, "a", "t"), _doc(tenant, "b", "t")])
    result = ledger.record_deletes(tenant, ["a", "a", "never"])
    assert (result.changed, result.unchanged, result.unknown) == (["a"], [], ["never"])
    again = ledger.record_deletes(tenant, ["a"])
    assert (again.changed, again.unchanged) == ([], ["a"])
    assert ledger.known_live(tenant, ["a", "b", "never"]) == {"b"}
    state = ledger.desired_of(tenant, ["a"])["a"]
    assert (state.deleted, state.labels) == (True, [])
    assert ledger.record_labels(tenant, {"a": (["acl:x"], None)}).unknown == ["a"]
    revived = ledger.record_documents(tenant, [_doc(tenant, "a", "t")])
    assert revived.changed == ["a"]
    assert ledger.known_live(tenant, ["a"]) == {"a"}


def check_invalid_then_valid(ledger: DesiredStateLedger, tenant: str, apply: Apply) -> None:
    ledger.record_invalid(tenant, "bad", "document 'bad': no text")
    state = ledger.desired_of(tenant, ["bad"])["bad"]
    assert (state.status, state.version) == ("dead", None)
    assert ledger.known_live(tenant, ["bad"]) == set()
    fixed = ledger.record_documents(tenant, [_doc(tenant, "bad", "now fine")])
    assert fixed.changed == ["bad"]
    assert ledger.desired_of(tenant, ["bad"])["bad"].status == "pending"
    # an earlier valid version stays recorded when a later copy is rejected
    ledger.record_invalid(tenant, "bad", "document 'bad': too big")
    assert (
        ledger.desired_of(tenant, ["bad"])["bad"].version == _doc(tenant, "bad", "now fine").version
    )


def check_applied_lookups(ledger: DesiredStateLedger, tenant: str, apply: Apply) -> None:
    ledger.record_documents(tenant, [_doc(tenant, d, d) for d in ("a", "b", "c")])
    assert ledger.applied_r2r_ids(tenant, ["a", "b"]) == {}
    assert ledger.sample_applied(tenant, 5) == {}
    ra, rb = uuid.uuid4(), uuid.uuid4()
    apply(ledger, tenant, "a", ra)
    apply(ledger, tenant, "b", rb)
    assert ledger.applied_r2r_ids(tenant, ["a", "b", "c", "zzz"]) == {"a": ra, "b": rb}
    assert ledger.sample_applied(tenant, 10) == {"a": ra, "b": rb}
    assert len(ledger.sample_applied(tenant, 1)) == 1
    assert ledger.pending_count(tenant) == 1
    ledger.record_deletes(tenant, ["a"])
    apply(ledger, tenant, "a", None)
    assert ledger.applied_r2r_ids(tenant, ["a", "b"]) == {"b": rb}


def check_collections(ledger: DesiredStateLedger, tenant: str, apply: Apply) -> None:
    c1 = uuid.uuid4()
    assert ledger.collection_ids(tenant, ["acl:x"]) == {}
    ledger.save_collection(tenant, "acl:x", c1, "name-x")
    assert ledger.collection_ids(tenant, ["acl:x", "acl:y"]) == {"acl:x": c1}
    assert ledger.collection_ids(tenant + "-other", ["acl:x"]) == {}
    ledger.forget_collection(tenant, "acl:x")
    assert ledger.collection_ids(tenant, ["acl:x"]) == {}
    many = {f"acl:u{i}": uuid.uuid4() for i in range(50)}
    ledger.save_collections(tenant, [(label, cid, label) for label, cid in many.items()])
    ledger.save_collections(tenant, [("acl:u0", c1, "acl:u0")])  # an update wins
    assert ledger.collection_ids(tenant, list(many)) == {**many, "acl:u0": c1}


def check_tenants_are_separate(ledger: DesiredStateLedger, tenant: str, apply: Apply) -> None:
    other = tenant + "-b"
    ledger.record_documents(tenant, [_doc(tenant, "a", "t")])
    assert ledger.known_live(other, ["a"]) == set()
    assert ledger.record_deletes(other, ["a"]).unknown == ["a"]
    assert ledger.desired_of(other, ["a"]) == {}


CHECKS = [
    check_is_the_protocol,
    check_record_gate,
    check_none_keeps_recorded_labels,
    check_tombstones,
    check_invalid_then_valid,
    check_applied_lookups,
    check_collections,
    check_tenants_are_separate,
]
