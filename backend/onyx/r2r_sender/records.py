"""The engine's own record format for documents (JSONL files, the CLI, backfill sources).

A record is a mapping (or an object with the same attribute names):

===========================  ===============================================================
``id``                       the host's document id (required)
``text`` or ``sections``     the content: a string, or a list of ``{"text", "link"}``
                             sections joined one per line (image-only sections skipped)
``title``                    falls back to ``semantic_identifier``
``semantic_identifier``      the name a host shows for the document
``link``                     falls back to the first section's link
``source``                   where it comes from (a string or an enum with ``.value``)
``updated_at``               ISO 8601 or a datetime (alias ``doc_updated_at``)
``modified``                 host-side modification stamp, epoch seconds
``metadata``                 ``{key: string | [strings]}``
``acl``                      access principals; absent = none (fail closed)
``document_sets``            other memberships (alias ``sets``); absent = keep
``flags``                    e.g. ``["hidden"]``; absent = keep
===========================  ===============================================================

Hosts with their own shapes (Onyx's ``Document``) map them in their adapter and may reuse
the helpers here.  Nothing raises but
:class:`~onyx.r2r_sender.payload.InvalidDocumentError` naming the document.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

from onyx.r2r_sender.payload import InvalidDocumentError, SourceDocument

_MISSING = object()


def field_of(obj: Any, name: str, default: Any = None) -> Any:
    """Return ``obj.name`` or ``obj[name]`` (dicts), else *default*.

    Pydantic models (Onyx's documents) are read from their fields directly: a missing
    attribute would otherwise cost pydantic's ``__getattr__`` an exception, several per
    document in ``send_batch``.  The result is the same as ``getattr``'s.
    """
    if isinstance(obj, dict):
        return obj.get(name, default)
    how = _access(type(obj), name)
    if how is _FIELD:
        value = obj.__dict__.get(name, _MISSING)
        if value is not _MISSING:
            return value
    elif how is _NOT_A_FIELD:
        extra = obj.__pydantic_extra__
        return extra.get(name, default) if extra else default
    value = getattr(obj, name, _MISSING)
    return default if value is _MISSING else value


_FIELD = "field"  # a pydantic field: in the instance's __dict__ (unless never set)
_NOT_A_FIELD = "extra"  # neither a field nor a class attribute: pydantic's extras or nothing
_GETATTR = "getattr"  # anything else: plain getattr


@functools.cache
def _access(cls: type, name: str) -> str:
    """How :func:`field_of` reads *name* from instances of *cls* (computed once per pair)."""
    fields = getattr(cls, "__pydantic_fields__", None)
    if (
        not isinstance(fields, dict)
        or not hasattr(cls, "__pydantic_extra__")
        or name.startswith("_")  # private attributes live behind pydantic's __getattr__
        or any(name in vars(klass) for klass in cls.__mro__)  # properties, methods, ...
    ):
        return _GETATTR
    return _FIELD if name in fields else _NOT_A_FIELD


def enum_value(value: Any) -> str | None:
    """Return an enum's ``value`` (e.g. Onyx's ``DocumentSource``), or the value as a string."""
    if value is None:
        return None
    inner = getattr(value, "value", value)
    return str(inner)


def parse_datetime(document_id: str, value: Any, what: str = "updated_at") -> datetime | None:
    """A datetime, an ISO 8601 string (``Z`` accepted) or ``None``; anything else is
    an :class:`InvalidDocumentError` naming the document and the field."""
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidDocumentError(
                document_id, f"{what} {value!r:.40} is not ISO 8601"
            ) from exc
    raise InvalidDocumentError(document_id, f"{what} has type {type(value).__name__}")


def section_text(sections: Iterable[Any] | None) -> str:
    """Texts of the sections in order, one per line (sections without text skipped)."""
    parts: list[str] = []
    for section in sections or ():
        text = field_of(section, "text")
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        if isinstance(text, str) and text:
            parts.append(text)
    return "\n".join(parts)


def first_link(sections: Iterable[Any] | None) -> str | None:
    """The first section link (what hosts show as the document's link)."""
    for section in sections or ():
        link = field_of(section, "link")
        if link:
            return str(link)
    return None


def string_list(document_id: str, value: Any, what: str) -> list[str] | None:
    """``None``, or a list from a non-string collection (``InvalidDocumentError`` otherwise)."""
    if value is None:
        return None
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidDocumentError(document_id, f"{what} must be a list of strings")
    return list(value)


def document_id_of(record: Any) -> str:
    """The record's ``id``; raises :class:`InvalidDocumentError` unless a non-empty string."""
    document_id = field_of(record, "id")
    if not isinstance(document_id, str) or not document_id:
        raise InvalidDocumentError(str(document_id), "document id must be a non-empty string")
    return document_id


def content_of(document_id: str, record: Any) -> tuple[str, str | None]:
    """(text, link) of a record: ``text``, else its ``sections`` joined one per line."""
    sections = field_of(record, "sections")
    if sections is not None and (
        isinstance(sections, str | bytes) or not isinstance(sections, Iterable)
    ):
        raise InvalidDocumentError(document_id, "sections must be a list")
    text = field_of(record, "text")
    if text is None:
        text = section_text(sections)
    link = field_of(record, "link") or first_link(sections)
    return text, link


def source_document_from_record(
    record: Any, *, default_acl: Collection[str] | None = ()
) -> SourceDocument:
    """Build a :class:`SourceDocument` from a record in the format above.

    A record without ``acl`` gets *default_acl* (``()``: visible to nobody until an
    access update arrives, fail closed; ``None``: keep what is recorded).
    """
    document_id = document_id_of(record)
    text, link = content_of(document_id, record)
    semantic_identifier = field_of(record, "semantic_identifier")
    updated = field_of(record, "updated_at")
    if updated is None:
        updated = field_of(record, "doc_updated_at")
    sets = field_of(record, "document_sets")
    if sets is None:
        sets = field_of(record, "sets")
    acl = string_list(document_id, field_of(record, "acl"), "acl")
    return SourceDocument(
        document_id=document_id,
        text=text,
        title=field_of(record, "title") or semantic_identifier,
        semantic_identifier=semantic_identifier,
        link=link,
        source_type=enum_value(field_of(record, "source")),
        updated_at=parse_datetime(document_id, updated, "doc_updated_at"),
        modified=field_of(record, "modified"),
        metadata=field_of(record, "metadata") or {},
        acl=acl if acl is not None else (None if default_acl is None else list(default_acl)),
        sets=string_list(document_id, sets, "document_sets"),
        flags=string_list(document_id, field_of(record, "flags"), "flags"),
    )
