"""Flags (``hidden``) are labels like ACL principals and document sets: kept unless sent."""

from __future__ import annotations

from onyx.r2r_sender.config import BridgeSettings
from onyx.r2r_sender.payload import SourceDocument, prepare
from onyx.r2r_sender.read_model import HIDDEN_LABEL

SETTINGS = BridgeSettings()


def test_flags_default_to_keep() -> None:
    doc = prepare(SourceDocument("d", text="t", acl=["PUBLIC"]), SETTINGS, "t1")
    assert doc.flag_labels is None
    recorded = ["acl:group:old", "flag:hidden", "set:s"]
    # ACL replaced, sets replaced (empty), flags kept
    assert doc.merged_labels(recorded) == ["acl:PUBLIC", "flag:hidden"]


def test_flags_sent_replace_the_recorded_ones() -> None:
    hidden = prepare(SourceDocument("d", text="t", flags=["hidden"]), SETTINGS, "t1")
    assert hidden.flag_labels == [HIDDEN_LABEL]
    assert hidden.labels == [HIDDEN_LABEL]
    shown = prepare(SourceDocument("d", text="t", acl=None, sets=None, flags=[]), SETTINGS, "t1")
    assert shown.merged_labels(["acl:PUBLIC", "flag:hidden", "set:s"]) == ["acl:PUBLIC", "set:s"]


def test_flags_are_not_part_of_the_content_version() -> None:
    a = prepare(SourceDocument("d", text="t", flags=["hidden"]), SETTINGS, "t1")
    b = prepare(SourceDocument("d", text="t"), SETTINGS, "t1")
    assert a.version == b.version  # hiding never re-embeds
