"""The engine's read model: SearchScope → R2R filter and the same rules locally; Retriever.

Host-neutral rules (every host's adapter builds a SearchScope; Onyx's own rules are in
test_r2r_filters.py).  The Retriever runs here against a recording stand-in client (no
HTTP); against the real R2R it runs in integration/test_read_model.py.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from scope_cases import IDS, TENANT, chunk, cid

from onyx.r2r_sender import schema
from onyx.r2r_sender.errors import R2RNotFoundError
from onyx.r2r_sender.hosts import NEXTCLOUD, ONYX
from onyx.r2r_sender.r2r_types import R2RChunk, SearchHit
from onyx.r2r_sender.read_model import (
    HIDDEN_LABEL,
    Retriever,
    SearchScope,
    fetch_limit,
    iso_utc,
    scope_key_filter,
)


def scope(**rules: Any) -> SearchScope:
    rules.setdefault("principals", None)
    return SearchScope(scope_key=TENANT, **rules)


def resolve(s: SearchScope, known=None):
    return s.resolve(IDS if known is None else known)


# -------------------------------------------------------------- the rules
def test_acl_matching_locally() -> None:
    rs = resolve(scope(principals=("PUBLIC", "user_email:alice@x.io")))
    assert rs.matches(*chunk("acl:user_email:alice@x.io"))
    assert rs.matches(*chunk("acl:PUBLIC"))
    assert not rs.matches(*chunk("acl:group:eng"))
    assert not rs.matches(*chunk())  # in no ACL collection: nobody sees it (fail closed)
    # another tenant's document (or one without the tenant in its metadata)
    assert not rs.matches(*chunk("acl:PUBLIC", tenant_id="tenant_b"))
    assert not rs.matches([cid("acl:PUBLIC")], {"source_document_id": "x"})


def test_the_engine_adds_no_principal_of_its_own() -> None:
    s = scope(principals=("user_email:alice@x.io",))
    assert s.labels == [HIDDEN_LABEL, "acl:user_email:alice@x.io"]
    rs = resolve(s)
    assert rs.collection_ids == [cid("acl:user_email:alice@x.io")]
    assert not rs.matches(*chunk("acl:PUBLIC"))


def test_no_acl_restriction_is_tenant_only() -> None:
    rs = resolve(scope())
    assert rs.collection_ids is None  # no ACL restriction: the tenant filter only
    assert {"metadata.tenant_id": {"$eq": TENANT}} in rs.r2r_filter()["$and"]
    assert rs.matches(*chunk("acl:group:eng"))
    assert rs.matches(*chunk())
    assert not rs.matches(*chunk("acl:group:eng", tenant_id="tenant_b"))


def test_unknown_principals_match_nothing() -> None:
    known = {k: v for k, v in IDS.items() if k != "acl:PUBLIC"}
    assert resolve(scope(principals=("PUBLIC", "user_email:nobody@x.io")), known) is None
    assert resolve(scope(principals=())) is None
    # a tenant with no collection yet: no ACL collection can match, the tenant filter still applies
    rs = resolve(scope(), known={})
    assert rs is not None and rs.collection_ids is None
    assert not rs.matches([], {"source_document_id": "d1", "tenant_id": "tenant_b"})


def test_hidden_excluded_unless_included() -> None:
    rs = resolve(scope())
    assert {"collection_ids": {"$nin": [cid("flag:hidden")]}} in rs.r2r_filter()["$and"]
    assert not rs.matches(*chunk("flag:hidden"))
    rs = resolve(scope(include_hidden=True))
    assert rs.matches(*chunk("flag:hidden"))
    assert all("$nin" not in str(c) for c in rs.r2r_filter()["$and"])
    assert rs.hidden_collection == cid("flag:hidden")  # still known (for the hidden field)
    # a tenant that never hid anything has no hidden collection: nothing to exclude
    known = {k: v for k, v in IDS.items() if k != "flag:hidden"}
    assert resolve(scope(), known=known).hidden is None


def test_knowledge_scope_is_an_or_of_sets_and_attached_documents() -> None:
    rs = resolve(
        scope(knowledge_scoped=True, knowledge_sets=("handbook",), knowledge_document_ids=("d9",))
    )
    clause = next(c for c in rs.r2r_filter()["$and"] if "$or" in c)
    assert clause == {
        "$or": [
            {"collection_ids": {"$overlap": [cid("set:handbook")]}},
            {"metadata.source_document_id": {"$in": ["d9"]}},
        ]
    }
    assert rs.matches(*chunk("set:handbook"))
    assert rs.matches(*chunk(source_document_id="d9"))
    assert not rs.matches(*chunk("set:legal"))
    # a knowledge scope none of whose parts exists matches nothing
    assert resolve(scope(knowledge_scoped=True, knowledge_sets=("none",))) is None


def test_forced_document_set_is_an_and_clause() -> None:
    rs = resolve(scope(knowledge_scoped=True, knowledge_sets=("handbook",), forced_sets=("legal",)))
    flt = rs.r2r_filter()["$and"]
    assert {"collection_ids": {"$overlap": [cid("set:legal")]}} in flt
    assert not rs.matches(*chunk("set:handbook"))
    assert rs.matches(*chunk("set:handbook", "set:legal"))
    # a forced set nobody is in: nothing matches
    assert resolve(scope(forced_sets=("none",))) is None


def test_document_id_restriction() -> None:
    """A plain AND on host document ids (Nextcloud's "source" scope)."""
    rs = resolve(scope(principals=("PUBLIC",), document_ids=("files__default: 1", "d1")))
    assert {"metadata.source_document_id": {"$in": ["files__default: 1", "d1"]}} in (
        rs.r2r_filter()["$and"]
    )
    assert rs.matches(*chunk("acl:PUBLIC"))  # d1
    assert rs.matches(*chunk("acl:PUBLIC", source_document_id="files__default: 1"))
    assert not rs.matches(*chunk("acl:PUBLIC", source_document_id="d2"))
    assert not rs.matches(*chunk(source_document_id="d1"))  # still needs the ACL
    # it narrows a knowledge scope instead of widening it
    rs = resolve(scope(knowledge_scoped=True, knowledge_document_ids=("d9",), document_ids=("d1",)))
    assert not rs.matches(*chunk(source_document_id="d9"))
    assert resolve(scope(document_ids=())) is None  # an empty restriction: nothing
    assert resolve(scope(document_ids=None)) is not None  # none: no restriction


def test_provider_scope_for_a_nextcloud_instance() -> None:
    """Nextcloud's "provider" scope: source types, with a user principal and no PUBLIC."""
    key = NEXTCLOUD.scope("cloud1").key
    known = {"flag:hidden": uuid.uuid4(), "acl:alice": uuid.uuid4()}
    s = SearchScope(
        scope_key=key, principals=("alice",), source_types=("files__default", "mail__mail")
    )
    rs = s.resolve(known)
    flt = rs.r2r_filter()["$and"]
    assert flt[0] == {"metadata.tenant_id": {"$eq": "nextcloud:cloud1"}}
    assert {"metadata.source_type": {"$in": ["files__default", "mail__mail"]}} in flt
    assert rs.collection_ids == [str(known["acl:alice"])]
    meta = {"tenant_id": key, "source_document_id": "files__default: 5"}
    alice = [known["acl:alice"]]
    assert rs.matches(alice, {**meta, "source_type": "files__default"})
    assert not rs.matches(alice, {**meta, "source_type": "deck__cards"})
    assert not rs.matches(alice, {**meta, "tenant_id": "cloud1", "source_type": "files__default"})


def test_equal_tenant_ids_of_two_hosts_never_match_each_others_chunks() -> None:
    onyx_key, nextcloud_key = ONYX.scope("public").key, NEXTCLOUD.scope("public").key
    assert onyx_key != nextcloud_key
    # even if both were (wrongly) given the same collections, the scope key keeps them apart
    onyx = SearchScope(scope_key=onyx_key, principals=("PUBLIC",)).resolve(IDS)
    nextcloud = SearchScope(scope_key=nextcloud_key, principals=("PUBLIC",)).resolve(IDS)
    assert onyx.r2r_filter()["$and"][0] == scope_key_filter("public")
    assert nextcloud.r2r_filter()["$and"][0] == scope_key_filter("nextcloud:public")
    collections = [cid("acl:PUBLIC")]
    onyx_chunk = {"tenant_id": onyx_key, "source_document_id": "same"}
    nextcloud_chunk = {"tenant_id": nextcloud_key, "source_document_id": "same"}
    assert onyx.matches(collections, onyx_chunk) and not onyx.matches(collections, nextcloud_chunk)
    assert nextcloud.matches(collections, nextcloud_chunk)
    assert not nextcloud.matches(collections, onyx_chunk)


def test_updated_range_and_undated_documents() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = start + timedelta(days=10)
    rs = resolve(scope(updated_start=start, updated_end=end))
    assert rs.r2r_filter()["$and"][-1] == {
        "$and": [
            {"metadata.updated_at": {"$gte": iso_utc(start)}},
            {"metadata.updated_at": {"$lte": iso_utc(end)}},
        ]
    }
    assert rs.matches(*chunk(updated_at=iso_utc(start + timedelta(days=1))))
    assert not rs.matches(*chunk(updated_at=iso_utc(end + timedelta(days=1))))
    assert not rs.matches(*chunk())
    rs = resolve(scope(updated_start=start, include_undated=True))
    assert rs.r2r_filter()["$and"][-1] == {
        "$or": [
            {"metadata.updated_at": {"$gte": iso_utc(start)}},
            {"metadata.updated_at": {"$eq": None}},
        ]
    }
    assert rs.matches(*chunk())
    assert not rs.matches(*chunk(updated_at=iso_utc(start - timedelta(days=1))))


def test_tags_match_values_and_lists() -> None:
    rs = resolve(scope(tags=(("space", "ENG"), ("labels", "b"))))
    assert rs.matches(*chunk(source_metadata={"labels": ["a", "b"]}))
    assert rs.matches(*chunk(source_metadata={"space": "ENG"}))
    assert not rs.matches(*chunk(source_metadata={"space": "OPS"}))
    assert not rs.matches(*chunk())


@pytest.mark.parametrize("key", ["a.b", "a'b", "a}b", ""])
def test_an_unsafe_tag_key_is_refused(key) -> None:
    with pytest.raises(ValueError, match="cannot be expressed"):
        scope(tags=((key, "v"),))


def test_an_impossible_scope_and_an_empty_scope_key() -> None:
    nothing = SearchScope.nothing(TENANT, "no such tenant")
    assert nothing.impossible == "no such tenant" and nothing.resolve(IDS) is None
    with pytest.raises(ValueError):
        SearchScope(scope_key="", principals=None)


def test_every_key_comes_from_the_schema() -> None:
    rs = resolve(
        scope(
            principals=("PUBLIC",),
            source_types=("web",),
            tags=(("k", "v"),),
            knowledge_scoped=True,
            knowledge_document_ids=("d",),
            document_ids=("d",),
            updated_start=datetime(2026, 1, 1, tzinfo=UTC),
        )
    )
    used = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key.startswith("metadata."):
                    used.add(key.split(".")[1])
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(rs.r2r_filter())
    assert used == {
        schema.TENANT,
        schema.SOURCE_TYPE,
        schema.SOURCE_METADATA,
        schema.SOURCE_DOCUMENT_ID,
        schema.UPDATED_AT,
    }


# -------------------------------------------------------------- Retriever
class StandInClient:
    """Records the calls a Retriever makes; answers from fixed hits and chunks (no HTTP)."""

    def __init__(self, hits=(), chunks=None) -> None:
        self.hits = list(hits)
        self.chunks = chunks or {}
        self.searches: list[dict] = []
        self.fetched: list[uuid.UUID] = []

    def search(self, query, **kwargs):
        self.searches.append({"query": query, **kwargs})
        return self.hits[: kwargs["limit"]]

    def list_document_chunks(self, document_id):
        self.fetched.append(document_id)
        if document_id not in self.chunks:
            raise R2RNotFoundError("not found", operation="list_document_chunks", status_code=404)
        return self.chunks[document_id]


class StandInResolver:
    def __init__(self, known) -> None:
        self.known = known
        self.calls: list[tuple] = []

    def resolve(self, scope_key, labels, *, create):
        self.calls.append((scope_key, list(labels), create))
        return {label: self.known[label] for label in labels if label in self.known}


def _meta(doc: str, seq: int, order: int = 0, **extra) -> dict:
    return {
        "source_document_id": doc,
        "tenant_id": TENANT,
        schema.SEQ: seq,
        schema.CHUNK_ORDER: order,
        **extra,
    }


def _search_hit(doc: str, seq: int, *labels: str) -> SearchHit:
    return SearchHit(
        chunk_id=uuid.uuid4(),
        document_id=uuid.uuid4(),
        collection_ids=[IDS[label] for label in labels],
        score=0.5,
        text=f"{doc}@{seq}",
        metadata=_meta(doc, seq),
    )


def retriever(client, known=None) -> tuple[Retriever, StandInResolver]:
    resolver = StandInResolver(IDS if known is None else known)
    return Retriever(client, resolver), resolver  # type: ignore[arg-type]


def test_search_resolves_without_creating_sends_the_filter_and_dedupes() -> None:
    hits = [_search_hit("a", 1, "acl:PUBLIC"), _search_hit("b", 1, "acl:PUBLIC", "flag:hidden")]
    hits += [_search_hit("a", 2, "acl:PUBLIC"), _search_hit("c", 1, "acl:PUBLIC")]
    client = StandInClient(hits)
    r, resolver = retriever(client)
    s = scope(principals=("PUBLIC",), include_hidden=True)
    found = r.search(s, "query", mode="fulltext", limit=2)
    assert [c.text for c in found] == ["b@1", "a@2"]  # a@1 is an older version of a
    assert found[0].hidden and not found[1].hidden
    assert resolver.calls == [(TENANT, s.labels, False)]
    (call,) = client.searches
    rs = resolve(s)
    assert call == {
        "query": "query",
        "collection_ids": rs.collection_ids,
        "filters": rs.r2r_filter(),
        "limit": fetch_limit(2),
        "mode": "fulltext",
    }
    assert fetch_limit(2) == 12 and fetch_limit(100) == 200 and fetch_limit(900) == 1000


def test_search_without_query_limit_or_possible_scope_sends_nothing() -> None:
    client = StandInClient([_search_hit("a", 1, "acl:PUBLIC")])
    r, resolver = retriever(client)
    assert r.search(scope(), "", limit=5) == []
    assert r.search(scope(), "   ", limit=5) == []
    assert r.search(scope(), "q", limit=0) == []
    assert resolver.calls == []
    assert r.search(SearchScope.nothing(TENANT, "why"), "q") == []
    assert resolver.calls == []  # an impossible scope is not even looked up
    assert r.search(scope(principals=("group:none",)), "q") == []
    assert client.searches == []
    assert len(r.search(scope(), "q", limit=5)) == 1


def test_document_chunks_in_order_filtered_and_404_as_empty() -> None:
    doc, gone, empty = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

    def stored(order: int, *labels: str, **extra) -> R2RChunk:
        return R2RChunk(
            id=uuid.uuid4(),
            document_id=doc,
            text=f"part {order}",
            metadata=_meta("d1", 1, order, **extra),
            collection_ids=[IDS[label] for label in labels],
        )

    client = StandInClient(
        chunks={
            doc: [
                stored(2, "acl:PUBLIC"),
                stored(0, "acl:PUBLIC"),
                stored(1, "acl:group:eng"),  # not visible to PUBLIC alone
                stored(3, "acl:PUBLIC", tenant_id="tenant_b"),
            ],
            empty: [],
        }
    )
    r, _ = retriever(client)
    result = r.document_chunks(scope(principals=("PUBLIC",)), [doc, gone, empty])
    assert [[c.text for c in chunks] for chunks in result] == [["part 0", "part 2"], [], []]
    assert all(c.score is None and c.r2r_document_id == doc for c in result[0])
    assert sorted(client.fetched) == sorted([doc, gone, empty])
    # a scope that matches nothing reads nothing
    client.fetched.clear()
    assert r.document_chunks(scope(principals=("group:none",)), [doc]) == [[]]
    assert client.fetched == []
