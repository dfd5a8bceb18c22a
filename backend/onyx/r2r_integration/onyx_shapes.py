"""Read Onyx-shaped objects without importing Onyx (the Onyx adapters' side of the mapping).

Onyx's ``Document`` (``backend/onyx/connectors/models.py``) and
``DocumentAccess`` (``backend/onyx/access/models.py``) are read by attribute
name, and the same names are accepted as dict keys (JSONL files, Celery
payloads).  The engine's record helpers (:mod:`onyx.r2r_sender.records`) do the
host-neutral part; this module adds Onyx's access model.  Nothing here raises
except :class:`~onyx.r2r_sender.payload.InvalidDocumentError` for unusable values.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from onyx.r2r_sender.payload import SourceDocument
from onyx.r2r_sender.records import (
    enum_value,
    field_of,
    source_document_from_record,
)

# Onyx's ACL prefixes (backend/onyx/access/utils.py, configs/constants.py)
PUBLIC_ACL = "PUBLIC"
USER_EMAIL_PREFIX = "user_email:"
GROUP_PREFIX = "group:"
EXTERNAL_GROUP_PREFIX = "external_group:"

__all__ = [
    "EXTERNAL_GROUP_PREFIX",
    "GROUP_PREFIX",
    "PUBLIC_ACL",
    "USER_EMAIL_PREFIX",
    "document_access_acl",
    "enum_value",
    "external_access_acl",
    "field_of",
    "source_document_from_onyx",
]


def external_access_acl(access: Any) -> list[str] | None:
    """ACL entries of an ``ExternalAccess``-shaped value (None when absent)."""
    if access is None:
        return None
    acl: set[str] = set()
    if field_of(access, "is_public", False):
        acl.add(PUBLIC_ACL)
    for email in field_of(access, "external_user_emails", None) or ():
        if email:
            acl.add(USER_EMAIL_PREFIX + str(email))
    for group in field_of(access, "external_user_group_ids", None) or ():
        if group:
            acl.add(EXTERNAL_GROUP_PREFIX + str(group))
    return sorted(acl)


def document_access_acl(access: Any) -> list[str]:
    """ACL entries of a ``DocumentAccess``-shaped value, as Onyx's ``to_acl()`` builds them.

    Uses the object's own ``to_acl()`` when it has one (real Onyx objects), so
    the bridge follows Onyx if its prefixes ever change.
    """
    to_acl = getattr(access, "to_acl", None)
    if callable(to_acl):
        return sorted(str(entry) for entry in to_acl())
    acl = set(external_access_acl(access) or [])
    for email in field_of(access, "user_emails", None) or ():
        if email:
            acl.add(USER_EMAIL_PREFIX + str(email))
    for group in field_of(access, "user_groups", None) or ():
        if group:
            acl.add(GROUP_PREFIX + str(group))
    return sorted(acl)


def source_document_from_onyx(
    doc: Any, *, default_acl: Collection[str] | None = ()
) -> SourceDocument:
    """Build a :class:`SourceDocument` from an Onyx ``Document``-shaped object or dict.

    A :class:`SourceDocument` passes through unchanged.  ACL: the document's
    ``external_access`` (permission-synced connectors) when present, an explicit
    ``acl`` list (JSONL convenience) over that, else *default_acl* (e.g. ``["PUBLIC"]``
    for a public connector; empty means nobody can see it through the bridge's searches
    until an access update arrives: fail closed; ``None`` keeps whatever ACL the ledger
    already has, for hosts where another path owns access).  Document sets likewise:
    the document's ``document_sets`` when present, else kept.  Content, title, link,
    source and times follow the engine's record format
    (:func:`~onyx.r2r_sender.records.source_document_from_record`).
    """
    if isinstance(doc, SourceDocument):
        return doc
    external = external_access_acl(field_of(doc, "external_access"))
    if field_of(doc, "acl") is None and external is not None:
        default_acl = external
    return source_document_from_record(doc, default_acl=default_acl)
