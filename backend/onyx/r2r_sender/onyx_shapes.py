"""Read Onyx-shaped objects without importing Onyx.

Onyx's ``Document`` (``backend/onyx/connectors/models.py``) and
``DocumentAccess`` (``backend/onyx/access/models.py``) are read by attribute
name, and the same names are accepted as dict keys (JSONL files, Celery
payloads).  Only what the bridge needs is read; nothing here raises except
:class:`~onyx.r2r_sender.payload.InvalidDocumentError` for unusable values.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

from onyx.r2r_sender.payload import InvalidDocumentError, SourceDocument

# Onyx's ACL prefixes (backend/onyx/access/utils.py, configs/constants.py)
PUBLIC_ACL = "PUBLIC"
USER_EMAIL_PREFIX = "user_email:"
GROUP_PREFIX = "group:"
EXTERNAL_GROUP_PREFIX = "external_group:"
_MISSING = object()


def field_of(obj: Any, name: str, default: Any = None) -> Any:
    """Return ``obj.name`` or ``obj[name]`` (dicts), else *default*."""
    if isinstance(obj, dict):
        return obj.get(name, default)
    value = getattr(obj, name, _MISSING)
    return default if value is _MISSING else value


def enum_value(value: Any) -> str | None:
    """Return an enum's ``value`` (Onyx's DocumentSource), or the value as a string."""
    if value is None:
        return None
    inner = getattr(value, "value", value)
    return str(inner)


def _datetime(document_id: str, value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidDocumentError(
                document_id, f"doc_updated_at {value!r:.40} is not ISO 8601"
            ) from exc
    raise InvalidDocumentError(document_id, f"doc_updated_at has type {type(value).__name__}")


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


def section_text(sections: Iterable[Any] | None) -> str:
    """Texts of the sections in order, one per line (image/tabular sections without text skipped)."""
    parts: list[str] = []
    for section in sections or ():
        text = field_of(section, "text")
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        if isinstance(text, str) and text:
            parts.append(text)
    return "\n".join(parts)


def first_link(sections: Iterable[Any] | None) -> str | None:
    """The first section link, which is what Onyx shows as the document's link."""
    for section in sections or ():
        link = field_of(section, "link")
        if link:
            return str(link)
    return None


def _sets(document_id: str, value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidDocumentError(document_id, "document_sets must be a list of strings")
    return list(value)


def source_document_from_onyx(
    doc: Any, *, default_acl: Collection[str] | None = ()
) -> SourceDocument:
    """Build a :class:`SourceDocument` from an Onyx ``Document``-shaped object or dict.

    ACL: the document's ``external_access`` (permission-synced connectors) when
    present, else *default_acl* (e.g. ``["PUBLIC"]`` for a public connector;
    empty means nobody can see it through the bridge's searches until an
    access update arrives: fail closed; ``None`` keeps whatever ACL the ledger
    already has, for hosts where another path owns access).  Document sets
    likewise: the document's ``document_sets`` when present, else kept.
    """
    document_id = field_of(doc, "id")
    if not isinstance(document_id, str) or not document_id:
        raise InvalidDocumentError(str(document_id), "document id must be a non-empty string")
    sections = field_of(doc, "sections")
    if sections is not None and (
        isinstance(sections, str | bytes) or not isinstance(sections, Iterable)
    ):
        raise InvalidDocumentError(document_id, "sections must be a list")
    semantic_identifier = field_of(doc, "semantic_identifier")
    title = field_of(doc, "title")
    if not title:
        title = semantic_identifier
    metadata = field_of(doc, "metadata") or {}
    acl = external_access_acl(field_of(doc, "external_access"))
    explicit_acl = field_of(doc, "acl")  # JSONL convenience: an explicit list of ACL entries
    if explicit_acl is not None:
        if isinstance(explicit_acl, str) or not isinstance(explicit_acl, Iterable):
            raise InvalidDocumentError(document_id, "acl must be a list of strings")
        acl = list(explicit_acl)
    return SourceDocument(
        document_id=document_id,
        text=section_text(sections),
        title=title,
        semantic_identifier=semantic_identifier,
        link=first_link(sections),
        source_type=enum_value(field_of(doc, "source")),
        updated_at=_datetime(document_id, field_of(doc, "doc_updated_at")),
        metadata=metadata,
        acl=acl if acl is not None else (None if default_acl is None else list(default_acl)),
        sets=_sets(document_id, field_of(doc, "document_sets", None)),
    )
