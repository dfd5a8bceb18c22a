"""The division of labour between the docfetching sender and R2RIndex, and the env flags."""

from __future__ import annotations

import pytest

from onyx.r2r_integration.flags import R2RFlags
from onyx.r2r_integration.policy import docfetching_acl, index_owns_content


@pytest.mark.parametrize(
    ("source", "from_api", "export", "owns"),
    [
        # docfetching export on: connector documents' content belongs to docfetching
        ("confluence", False, True, False),
        ("web", False, True, False),
        (None, False, True, False),
        # ... except documents that never pass through docfetching
        ("ingestion_api", True, True, True),
        ("web", True, True, True),  # ingestion API document with another source
        ("user_file", False, True, True),
        # export off but R2RIndex active (ONYX_INDEX_BACKEND=r2r / replace): everything
        ("confluence", False, False, True),
        ("user_file", False, False, True),
        ("ingestion_api", True, False, True),
    ],
)
def test_index_owns_content(source, from_api, export, owns) -> None:
    assert (
        index_owns_content(source=source, from_ingestion_api=from_api, docfetching_export=export)
        is owns
    )


def test_docfetching_acl_keeps_unless_new_with_external_access() -> None:
    # no external access: keep whatever R2RIndex recorded (None)
    assert docfetching_acl(None, known_to_ledger=False) is None
    assert docfetching_acl(None, known_to_ledger=True) is None
    # permission-synced connector, first sight: the connector's ACL, sorted
    assert docfetching_acl(["user_email:b@x", "PUBLIC"], known_to_ledger=False) == [
        "PUBLIC",
        "user_email:b@x",
    ]
    # known document: R2RIndex owns access; a re-fetch never revokes internal grants
    assert docfetching_acl(["user_email:b@x"], known_to_ledger=True) is None
    # an empty external ACL on a new document is still an explicit (empty) ACL
    assert docfetching_acl([], known_to_ledger=False) == []


@pytest.mark.parametrize(
    ("env", "export", "replace", "primary", "fanout"),
    [
        ({}, False, False, False, False),
        ({"ONYX_EXPORT_R2R": "true"}, True, False, False, True),
        ({"ONYX_EXPORT_R2R": "1", "R2R_EXPORT_MODE": "mirror"}, True, False, False, True),
        ({"ONYX_EXPORT_R2R": "true", "R2R_EXPORT_MODE": "replace"}, True, True, True, True),
        ({"R2R_EXPORT_MODE": "REPLACE"}, False, True, True, True),
        ({"ONYX_INDEX_BACKEND": "r2r"}, False, False, True, True),
        ({"ONYX_INDEX_BACKEND": "opensearch"}, False, False, False, False),
        # a typo never drops Onyx's own index
        ({"ONYX_EXPORT_R2R": "true", "R2R_EXPORT_MODE": "replcae"}, True, False, False, True),
        ({"ONYX_EXPORT_R2R": "false"}, False, False, False, False),
    ],
)
def test_flags_from_env(env, export, replace, primary, fanout) -> None:
    flags = R2RFlags.from_env(env)
    assert flags.export is export
    assert flags.replace_mode is replace
    assert flags.r2r_primary is primary
    assert flags.in_fanout is fanout


def test_tenant_state_wins_over_env() -> None:
    env = R2RFlags.from_env({"ONYX_EXPORT_R2R": "true", "ONYX_INDEX_BACKEND": "r2r"})
    assert env.with_tenant_state(None) == env
    off = env.with_tenant_state((False, "mirror"))
    assert not off.export and off.backend == "r2r"  # the backend switch stays env-only
    replace = R2RFlags.from_env({}).with_tenant_state((True, "replace"))
    assert replace.export and replace.replace_mode
    assert R2RFlags.from_env({}).with_tenant_state((True, "bogus")).mode == "mirror"
