"""Host namespaces: Onyx keeps its ids and names byte for byte; other hosts never share them."""

from __future__ import annotations

import re
import urllib.parse
import uuid

import pytest

from onyx.r2r_sender.hosts import (
    KNOWN_HOSTS,
    NEXTCLOUD,
    ONYX,
    HostNamespace,
    TenantScope,
    escape_name_part,
    host_namespace,
    onyx_collection_name,
    unescape_name_part,
)
from onyx.r2r_sender.ids import r2r_document_id, r2r_version_id, tenant_namespace


def test_onyx_scope_is_the_legacy_derivation() -> None:
    scope = ONYX.scope("public")
    assert scope.key == "public"
    assert scope.namespace == tenant_namespace("public")
    assert scope.document_id("doc-1") == r2r_document_id("public", "doc-1")
    assert scope.version_id("doc-1", "v1") == r2r_version_id("public", "doc-1", "v1")
    assert scope.collection_name("acl:PUBLIC") == "onyx-r2r:public:acl:PUBLIC"
    assert scope.collection_name("acl:group:a b") == onyx_collection_name("public", "acl:group:a b")


# Golden values of the Nextcloud namespace: changing them would orphan every document.
def test_nextcloud_golden_values() -> None:
    scope = NEXTCLOUD.scope("public")
    assert scope.key == "nextcloud:public"
    assert NEXTCLOUD.namespace == uuid.uuid5(
        uuid.UUID("7d9c5678-d5f1-58dc-bc29-bd121a0de49a"), "host:nextcloud"
    )
    assert scope.namespace == uuid.uuid5(NEXTCLOUD.namespace, "tenant:public")
    assert scope.document_id("files__default: 12") == uuid.uuid5(
        scope.namespace, "doc:files__default: 12"
    )
    assert scope.slot_id("files__default: 12", 1) == uuid.uuid5(
        scope.namespace, "docslot1:files__default: 12"
    )
    assert scope.collection_name("acl:alice") == "r2r-bridge:nextcloud:public:acl:alice"


def test_equal_tenant_and_document_ids_never_meet_across_hosts() -> None:
    onyx, nextcloud = ONYX.scope("public"), NEXTCLOUD.scope("public")
    assert onyx.key != nextcloud.key
    assert onyx.namespace != nextcloud.namespace
    doc = "files__default: 12"
    ids_onyx = {onyx.document_id(doc), onyx.version_id(doc, "v"), onyx.slot_id(doc, 0)}
    ids_nc = {nextcloud.document_id(doc), nextcloud.version_id(doc, "v"), nextcloud.slot_id(doc, 0)}
    assert not ids_onyx & ids_nc
    for label in ["tenant", "acl:PUBLIC", "acl:user x", "set:files__default"]:
        assert onyx.collection_name(label) != nextcloud.collection_name(label)


def test_slots_are_distinct_from_each_other_and_from_other_ids() -> None:
    scope = NEXTCLOUD.scope("i")
    ids = [scope.slot_id("d", 0), scope.slot_id("d", 1), scope.document_id("d")]
    assert len(set(ids)) == 3
    with pytest.raises(ValueError, match="slot"):
        scope.slot_id("d", 2)


@pytest.mark.parametrize("key", ["public", "tenant_abc", "nextcloud:public", "nextcloud:a:b"])
def test_from_key_inverts_key(key: str) -> None:
    assert TenantScope.from_key(key).key == key


def test_from_key_resolves_hosts() -> None:
    assert TenantScope.from_key("nextcloud:x") == NEXTCLOUD.scope("x")
    assert TenantScope.from_key("public") == ONYX.scope("public")
    # an unknown prefix is an Onyx tenant id that happens to contain a colon
    assert TenantScope.from_key("other:x") == ONYX.scope("other:x")


def test_an_onyx_tenant_cannot_pose_as_another_hosts_key() -> None:
    with pytest.raises(ValueError, match="reads as a 'nextcloud' scope key"):
        ONYX.scope("nextcloud:public")


@pytest.mark.parametrize("bad", ["", "a\x00b"])
def test_bad_tenant_ids_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="tenant_id"):
        NEXTCLOUD.scope(bad)


def test_host_registry() -> None:
    assert host_namespace("nextcloud") is NEXTCLOUD
    assert set(KNOWN_HOSTS) >= {"onyx", "nextcloud"}
    with pytest.raises(ValueError, match="known hosts: nextcloud, onyx"):
        host_namespace("sharepoint")
    with pytest.raises(ValueError, match="host name"):
        HostNamespace("Bad Name")


@pytest.mark.parametrize(
    "value",
    ["alice", "Alice Smith", "ünïcødé", "a,b", "a:b/c?d#e%f~g", "emoji 🙂", "x" * 50],
)
def test_name_escape_is_reversible_and_url_safe(value: str) -> None:
    escaped = escape_name_part(value)
    assert unescape_name_part(escaped) == value
    assert re.fullmatch(r"[A-Za-z0-9_.@+=~\-]*", escaped)
    name = NEXTCLOUD.scope("inst").collection_name("acl:" + value)
    assert urllib.parse.quote(name, safe=":~") == name


def test_escaping_keeps_distinct_labels_distinct() -> None:
    scope = NEXTCLOUD.scope("inst")
    labels = ["acl:a b", "acl:a~20b", "acl:a_b", "acl:a:b", "acl:a~3Ab"]
    names = [scope.collection_name(label) for label in labels]
    assert len(set(names)) == len(names)


def test_long_names_are_hashed() -> None:
    name = NEXTCLOUD.scope("inst").collection_name("acl:" + "ü" * 300)
    assert re.fullmatch(r"r2r-bridge:nextcloud:h:[0-9a-f]{16}:[0-9a-f]{32}", name)


def test_namespaced_names_split_back_into_their_parts() -> None:
    scope = NEXTCLOUD.scope("cloud:1 ü")
    name = scope.collection_name("acl:bob, the: builder")
    prefix, host, tenant, kind, value = name.split(":", 4)
    assert (prefix, host) == ("r2r-bridge", "nextcloud")
    assert unescape_name_part(tenant) == "cloud:1 ü"
    assert (unescape_name_part(kind), unescape_name_part(value)) == ("acl", "bob, the: builder")


@pytest.mark.parametrize(
    ("scope", "label"),
    [
        (ONYX.scope("public"), "acl:PUBLIC"),
        (ONYX.scope("tenant_1"), "acl:user_email:a@example.com"),
        (NEXTCLOUD.scope("inst"), "acl:alice"),
        (NEXTCLOUD.scope("in st"), "acl:bob, the: builder ü"),
        (NEXTCLOUD.scope("inst"), "set:files__default"),
        (NEXTCLOUD.scope("inst"), "tenant"),
    ],
)
def test_label_of_inverts_collection_name(scope: TenantScope, label: str) -> None:
    assert scope.label_of(scope.collection_name(label)) == label


def test_label_of_refuses_hashed_and_foreign_names() -> None:
    scope = NEXTCLOUD.scope("inst")
    assert scope.label_of(scope.collection_name("acl:" + "x" * 400)) is None
    assert scope.label_of(NEXTCLOUD.scope("other").collection_name("acl:a")) is None
    assert scope.label_of(ONYX.scope("inst").collection_name("acl:a")) is None
    assert ONYX.scope("public").label_of(ONYX.scope("public").collection_name("acl:a b")) is None
    assert scope.label_of("r2r-bridge:nextcloud:inst:acl:~ZZ") is None
