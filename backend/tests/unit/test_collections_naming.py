"""Onyx (legacy host) collection names: readable when safe, hashed otherwise, always stable."""

from __future__ import annotations

import re
import urllib.parse

import pytest

from onyx.r2r_sender.collections import TENANT_LABEL
from onyx.r2r_sender.hosts import LEGACY_NAME_PREFIX as NAME_PREFIX
from onyx.r2r_sender.hosts import onyx_collection_name as collection_name


@pytest.mark.parametrize(
    ("tenant", "label", "expected"),
    [
        ("public", TENANT_LABEL, "onyx-r2r:public:tenant"),
        ("public", "acl:PUBLIC", "onyx-r2r:public:acl:PUBLIC"),
        (
            "tenant_a",
            "acl:user_email:alice@example.com",
            "onyx-r2r:tenant_a:acl:user_email:alice@example.com",
        ),
        ("t-1.x", "set:hand+book=v2", "onyx-r2r:t-1.x:set:hand+book=v2"),
    ],
)
def test_safe_names_are_readable(tenant: str, label: str, expected: str) -> None:
    assert collection_name(tenant, label) == expected


# Golden hashed names: changing the derivation would orphan every ACL collection.
@pytest.mark.parametrize(
    ("tenant", "label", "expected"),
    [
        (
            "public",
            "acl:group:Sales Team",
            "onyx-r2r:h:efa1f375d76194fa:f464d6bfa4a512302ca59ce0e6eb5e9c",
        ),
        (
            "tenant/with/slash",
            "tenant",
            "onyx-r2r:h:e26a957b15b3fd3c:e9da86d351cf9a7642d8c50195c3f466",
        ),
    ],
)
def test_hashed_names_golden(tenant: str, label: str, expected: str) -> None:
    assert collection_name(tenant, label) == expected


@pytest.mark.parametrize(
    ("tenant", "label"),
    [
        ("public", "acl:group:Sales Team"),  # space
        ("public", "acl:external_group:drive/folder"),  # slash breaks R2R's name route
        ("public", "acl:user_email:ünïcode@example.com"),
        ("public", "set:" + "x" * 200),  # too long
        ("public", "set:a?b#c%d"),
        ("tenant/with/slash", "tenant"),
        ("", "tenant"),
        ("public", ""),
    ],
)
def test_unsafe_parts_are_hashed_to_a_url_safe_name(tenant: str, label: str) -> None:
    name = collection_name(tenant, label)
    assert re.fullmatch(r"onyx-r2r:h:[0-9a-f]{16}:[0-9a-f]{32}", name), name
    assert urllib.parse.quote(name, safe=":") == name  # nothing to escape in a URL path
    assert "/" not in name


def test_names_are_stable_and_distinct() -> None:
    labels = [
        "tenant",
        "acl:PUBLIC",
        "acl:group:eng",
        "acl:group:Eng",
        "acl:group:a b",
        "acl:group:a  b",
        "set:a b",
        "acl:a b",
    ]
    names = [collection_name("public", label) for label in labels]
    assert names == [collection_name("public", label) for label in labels]
    assert len(set(names)) == len(names)


def test_same_label_in_two_tenants_differs() -> None:
    assert collection_name("a", "acl:PUBLIC") != collection_name("b", "acl:PUBLIC")
    assert collection_name("a b", "acl:x y") != collection_name("a c", "acl:x y")
    assert collection_name("a b", "acl:x y") != collection_name("a b", "acl:x z")


def test_all_names_start_with_the_prefix_and_fit_r2r() -> None:
    for tenant, label in [("public", "tenant"), ("p q", "x" * 5000)]:
        name = collection_name(tenant, label)
        assert name.startswith(NAME_PREFIX + ":")
        assert len(name) <= 255


def test_readable_names_of_engine_labels_never_look_hashed() -> None:
    """Engine labels are 'tenant', 'acl:…' or 'set:…', so even tenant 'h' cannot produce a
    readable name of the hashed form onyx-r2r:h:<16 hex>:<32 hex>."""
    hashed = re.compile(r"onyx-r2r:h:[0-9a-f]{16}:[0-9a-f]{32}")
    for label in ["tenant", "acl:PUBLIC", "acl:0123456789abcdef", "set:0123456789abcdef"]:
        name = collection_name("h", label)
        assert name == f"onyx-r2r:h:{label}"
        assert not hashed.fullmatch(name)
