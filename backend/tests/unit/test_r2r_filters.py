"""Onyx's rules: IndexFilters-shaped objects → the engine's SearchScope (then its filters).

The rules every host shares (ACL matching, hidden, sets, knowledge scope, document ids)
are tested on the engine's SearchScope in test_read_model.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from onyx_shaped import DocumentSource, IndexFilters, Tag, TimeRange
from scope_cases import IDS, TENANT, chunk, cid

from onyx.document_index.r2r.filters import scope_from_index_filters
from onyx.r2r_sender.read_model import iso_utc


def resolve(filters: IndexFilters, include_hidden: bool = False, known=None):
    scope = scope_from_index_filters(filters, tenant_id=TENANT, include_hidden=include_hidden)
    return scope, scope.resolve(IDS if known is None else known)


def test_acl_always_lets_public_through_and_resolves_known_principals() -> None:
    scope, rs = resolve(IndexFilters(access_control_list=["user_email:alice@x.io", "group:ops"]))
    assert scope.principals == ("PUBLIC", "user_email:alice@x.io", "group:ops")
    assert "acl:group:ops" in scope.labels
    assert "tenant" not in scope.labels  # the tenant is chunk metadata, not a collection
    # group:ops has no collection: nobody was ever granted it; it matches nothing
    assert set(rs.collection_ids) == {cid("acl:PUBLIC"), cid("acl:user_email:alice@x.io")}
    flt = rs.r2r_filter()["$and"]
    assert {"metadata.tenant_id": {"$eq": TENANT}} in flt
    assert {"collection_ids": {"$nin": [cid("flag:hidden")]}} in flt


def test_empty_acl_means_public_only() -> None:
    _, rs = resolve(IndexFilters(access_control_list=[]))
    assert rs.collection_ids == [cid("acl:PUBLIC")]


def test_source_types_and_tags() -> None:
    _, rs = resolve(
        IndexFilters(
            access_control_list=None,
            source_type=[DocumentSource.CONFLUENCE, DocumentSource.WEB],
            tags=[Tag("space", "ENG"), Tag("bad'key", "x"), Tag("labels", "b")],
        )
    )
    flt = rs.r2r_filter()["$and"]
    assert {"metadata.source_type": {"$in": ["confluence", "web"]}} in flt
    tag_clause = next(c for c in flt if "$or" in c)
    # the unsafe key is never sent to R2R (it splices keys into SQL)
    assert tag_clause == {
        "$or": [
            {"metadata.source_metadata.space": {"$in": ["ENG"]}},
            {"metadata.source_metadata.labels": {"$in": ["b"]}},
        ]
    }
    assert rs.matches(*chunk(source_type="web", source_metadata={"labels": ["a", "b"]}))
    assert rs.matches(*chunk(source_type="web", source_metadata={"space": "ENG"}))
    assert not rs.matches(*chunk(source_type="web", source_metadata={"space": "OPS"}))
    assert not rs.matches(*chunk(source_type="slack", source_metadata={"space": "ENG"}))


def test_only_unsafe_tags_match_nothing() -> None:
    scope, rs = resolve(IndexFilters(access_control_list=None, tags=[Tag('a"b', "x")]))
    assert scope.impossible and rs is None


def test_unsupported_knowledge_scope_fails_closed() -> None:
    # persona/project/hierarchy scopes are not mirrored: alone they match nothing ...
    for filters in (
        IndexFilters(access_control_list=None, persona_id_filter=4),
        IndexFilters(access_control_list=None, project_id_filter=7),
        IndexFilters(access_control_list=None, hierarchy_node_ids=[3]),
    ):
        assert resolve(filters)[1] is None
    # ... and never widen a scope they are OR'ed into
    _, rs = resolve(
        IndexFilters(access_control_list=None, document_set=["handbook"], project_id_filter=7)
    )
    assert rs.matches(*chunk("set:handbook"))
    assert not rs.matches(*chunk("set:legal"))


def test_updated_at_range() -> None:
    now = datetime.now(UTC)
    recent = TimeRange(start=now - timedelta(days=7))
    _, rs = resolve(IndexFilters(access_control_list=None, updated_at_range=recent))
    clause = rs.r2r_filter()["$and"][-1]
    assert clause == {"metadata.updated_at": {"$gte": iso_utc(recent.start)}}
    assert rs.matches(*chunk(updated_at=iso_utc(now - timedelta(days=1))))
    assert not rs.matches(*chunk(updated_at=iso_utc(now - timedelta(days=30))))
    assert not rs.matches(*chunk())  # undated excluded for a recent window
    # an old open-ended lower bound keeps undated documents (Onyx's rule)
    old = TimeRange(start=now - timedelta(days=365))
    _, rs = resolve(IndexFilters(access_control_list=None, updated_at_range=old))
    assert "$or" in rs.r2r_filter()["$and"][-1]
    assert rs.matches(*chunk())
    # bounded window
    window = TimeRange(start=now - timedelta(days=10), end=now - timedelta(days=5))
    _, rs = resolve(IndexFilters(access_control_list=None, updated_at_range=window))
    assert rs.matches(*chunk(updated_at=iso_utc(now - timedelta(days=7))))
    assert not rs.matches(*chunk(updated_at=iso_utc(now - timedelta(days=2))))
    # naive datetimes are UTC
    assert iso_utc(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05+00:00"
    # an empty window matches nothing
    empty = TimeRange(start=now, end=now - timedelta(days=1))
    assert resolve(IndexFilters(access_control_list=None, updated_at_range=empty))[1] is None


def test_created_at_range_is_not_enforced() -> None:
    # the mirror stores no creation time; Onyx keeps undated documents for it
    _, rs = resolve(
        IndexFilters(access_control_list=None, created_at_range=TimeRange(start=datetime.now(UTC)))
    )
    assert len(rs.r2r_filter()["$and"]) == 2  # tenant + hidden only


def test_other_tenant_in_filters_matches_nothing() -> None:
    scope, rs = resolve(IndexFilters(access_control_list=None, tenant_id="tenant_b"))
    assert scope.impossible and rs is None
    _, rs = resolve(IndexFilters(access_control_list=None, tenant_id=TENANT))
    assert rs is not None


def test_generic_rules_reach_the_engine_scope() -> None:
    scope = scope_from_index_filters(
        IndexFilters(
            access_control_list=None,
            document_set=["handbook"],
            attached_document_ids=["d9"],
            forced_document_set=["legal"],
        ),
        tenant_id=TENANT,
        include_hidden=True,
    )
    assert scope.scope_key == TENANT and scope.principals is None and scope.include_hidden
    assert scope.knowledge_scoped and scope.knowledge_sets == ("handbook",)
    assert scope.knowledge_document_ids == ("d9",) and scope.forced_sets == ("legal",)
    assert scope.document_ids is None and scope.impossible is None


def test_a_tenant_id_that_reads_as_another_hosts_scope_key_matches_nothing() -> None:
    # an Onyx tenant "nextcloud:x" would otherwise search a Nextcloud instance's chunks
    scope = scope_from_index_filters(
        IndexFilters(access_control_list=None), tenant_id="nextcloud:public"
    )
    assert scope.impossible and scope.resolve(IDS) is None


@pytest.mark.parametrize("key", ["a.b", "a'b", 'a"b', "a,b", "a{b", "a}b", "a\\b", "a\x01b", ""])
def test_unsafe_tag_keys_are_dropped(key) -> None:
    scope = scope_from_index_filters(
        IndexFilters(access_control_list=None, tags=[Tag(key, "v")]), tenant_id=TENANT
    )
    assert scope.tags is None and scope.impossible
