"""The division of labour between the docfetching sender and R2RIndex, and the env flags."""

from __future__ import annotations

import pytest

from onyx.r2r_integration.flags import EnvSwitches, R2RFlags
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
    ("env", "mode", "primary"),
    [
        # spellings the truth table (README, tests/unit/test_r2r_switches.py) does not list
        ({"ONYX_EXPORT_R2R": "1"}, "mirror", False),
        ({"ONYX_EXPORT_R2R": " YES ", "R2R_EXPORT_MODE": "REPLACE"}, "replace", True),
        ({"ONYX_EXPORT_R2R": "Tenant"}, "off", False),
        ({"ONYX_EXPORT_R2R": "0", "ONYX_INDEX_BACKEND": "R2R"}, "mirror", True),
        # a typo never drops Onyx's own index, and never switches the bridge on
        ({"ONYX_EXPORT_R2R": "true", "R2R_EXPORT_MODE": "replcae"}, "mirror", False),
        ({"ONYX_EXPORT_R2R": "treu", "R2R_EXPORT_MODE": "replace"}, "off", False),
    ],
)
def test_flags_from_env(env, mode, primary) -> None:
    flags = R2RFlags.from_env(env)
    assert flags.mode == mode and flags.source == "environment"
    assert flags.export is (mode != "off") and flags.in_fanout is flags.export
    assert flags.replace_mode is (mode == "replace")
    assert flags.r2r_primary is primary


def test_stored_choice_wins_unless_both_switches_are_off() -> None:
    env = EnvSwitches.from_env({"ONYX_EXPORT_R2R": "true", "ONYX_INDEX_BACKEND": "r2r"})
    assert env.resolve(None) == R2RFlags(mode="mirror", backend="r2r")
    off = env.resolve((False, "replace"))
    assert off.mode == "off" and off.source == "stored" and not off.r2r_primary
    replace = EnvSwitches.from_env({"ONYX_EXPORT_R2R": "tenant"}).resolve((True, "replace"))
    assert replace.replace_mode and replace.source == "stored"
    assert EnvSwitches.from_env({}).resolve((True, "replace")).mode == "off"
    assert env.resolve((True, "bogus")).mode == "mirror"
