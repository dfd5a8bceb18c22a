"""Id derivation: golden values (a changed derivation would orphan every mirrored document)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from uuid import UUID

import pytest

from onyx.r2r_sender.ids import (
    BRIDGE_NAMESPACE,
    r2r_document_id,
    r2r_version_id,
    tenant_namespace,
)


def test_bridge_namespace_is_the_documented_constant() -> None:
    assert UUID("7d9c5678-d5f1-58dc-bc29-bd121a0de49a") == BRIDGE_NAMESPACE
    # The documented derivation reproduces it.
    assert BRIDGE_NAMESPACE == uuid.uuid5(
        uuid.NAMESPACE_URL, "https://onyx-r2r.invalid/namespaces/bridge/v1"
    )


@pytest.mark.parametrize(
    ("tenant", "expected"),
    [
        ("public", "aa539f52-f421-5eb0-9da1-5b46f71df127"),
        ("tenant_a", "fd0d7a6a-bce9-59de-9cfb-9e62522f8939"),
    ],
)
def test_tenant_namespace_golden(tenant: str, expected: str) -> None:
    assert tenant_namespace(tenant) == UUID(expected)


@pytest.mark.parametrize(
    ("tenant", "doc", "expected"),
    [
        ("public", "https://example.com/page?id=1", "642e0dc7-320b-53e7-91e9-6f4f1ae2ad75"),
        ("tenant_a", "CONFLUENCE__12345", "086841fa-6d67-5a0d-afac-53cc3b649aec"),
    ],
)
def test_document_id_golden(tenant: str, doc: str, expected: str) -> None:
    assert r2r_document_id(tenant, doc) == UUID(expected)


def test_version_id_golden() -> None:
    assert r2r_version_id("public", "https://example.com/page?id=1", "sha256:abc") == UUID(
        "868102a5-25cd-5fec-bb61-bf6a1ad4d44a"
    )


def test_ids_are_uuid5() -> None:
    assert r2r_document_id("t", "d").version == 5
    assert r2r_version_id("t", "d", "v").version == 5


def test_same_document_in_two_tenants_gets_different_ids() -> None:
    assert r2r_document_id("tenant_a", "doc-1") != r2r_document_id("tenant_b", "doc-1")
    assert r2r_version_id("tenant_a", "doc-1", "v1") != r2r_version_id("tenant_b", "doc-1", "v1")
    assert tenant_namespace("tenant_a") != tenant_namespace("tenant_b")


def test_versions_are_distinct_from_each_other_and_from_the_document_id() -> None:
    v1 = r2r_version_id("t", "doc-1", "v1")
    v2 = r2r_version_id("t", "doc-1", "v2")
    assert v1 != v2
    assert r2r_document_id("t", "doc-1") not in (v1, v2)
    assert v1 == r2r_version_id("t", "doc-1", "v1")


def test_version_separator_is_unambiguous() -> None:
    assert r2r_version_id("t", "a", "b:c") != r2r_version_id("t", "a:b", "c")
    assert r2r_version_id("t", "ab", "c") != r2r_version_id("t", "a", "bc")


def test_tenant_prefix_prevents_cross_level_collisions() -> None:
    # A document id that looks like a tenant label must not reproduce a tenant namespace.
    assert r2r_document_id("t", "tenant:x") != tenant_namespace("x")


def test_stable_across_processes() -> None:
    code = (
        "from onyx.r2r_sender.ids import r2r_document_id, r2r_version_id;"
        "print(r2r_document_id('tenant_a', 'CONFLUENCE__12345'));"
        "print(r2r_version_id('public', 'https://example.com/page?id=1', 'sha256:abc'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [
        "086841fa-6d67-5a0d-afac-53cc3b649aec",
        "868102a5-25cd-5fec-bb61-bf6a1ad4d44a",
    ]


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda: tenant_namespace(""), "tenant_id must not be empty"),
        (lambda: r2r_document_id("", "doc"), "tenant_id must not be empty"),
        (lambda: r2r_document_id("t", ""), "onyx_document_id must not be empty"),
        (lambda: r2r_version_id("t", "", "v"), "onyx_document_id must not be empty"),
        (lambda: r2r_version_id("t", "d", ""), "version must not be empty"),
        (lambda: r2r_version_id("", "d", "v"), "tenant_id must not be empty"),
        (lambda: r2r_version_id("t", "a\x00b", "v"), "NUL"),
        (lambda: r2r_document_id("t", None), "onyx_document_id must be a string"),
        (lambda: tenant_namespace(123), "tenant_id must be a string"),
    ],
)
def test_invalid_inputs_raise_value_error_naming_the_problem(call, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        call()
