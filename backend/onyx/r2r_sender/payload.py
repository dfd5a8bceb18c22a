"""What a host says about one document, normalised into what R2R receives.

:class:`SourceDocument` is the host-agnostic input (Onyx adapters build it from
Onyx's ``Document``/chunks).  :func:`prepare` validates and normalises it into a
:class:`PreparedDocument` whose ``version`` is a hash of everything that lands
in R2R's chunks (text and chunk metadata).  Collection memberships (ACL
principals, document sets) are *labels*: they change without re-embedding, so
they are not part of the version.  Nor is the host's update time
(:data:`NOT_VERSIONED`): R2R keeps the update time of the content it holds.

Bad input never raises anything but :class:`InvalidDocumentError`, which names
the document and the reason.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from onyx.r2r_sender import schema
from onyx.r2r_sender.config import BridgeSettings
from onyx.r2r_sender.errors import BridgeError

ACL_PREFIX = "acl:"
SET_PREFIX = "set:"
# [issue-4] flags (e.g. "hidden") are labels too: a collection, no re-embedding
FLAG_PREFIX = "flag:"


class InvalidDocumentError(BridgeError, ValueError):
    """A document the engine cannot mirror; ``str()`` names the document and why."""

    def __init__(self, document_id: str, reason: str) -> None:
        self.document_id = document_id
        self.reason = reason
        super().__init__(f"document {document_id!r}: {reason}")


@dataclass(frozen=True)
class SourceDocument:
    """A host document as the engine needs it (no host types involved).

    ``text`` (whole document) or ``chunks`` (the host's own chunking) carries the
    content.  ``acl`` holds access principals; ``sets`` holds other memberships
    (e.g. Onyx document sets).  Both become R2R collections.  ``None`` means
    "unknown here: keep what the ledger has" (a new document then starts with
    none: fail closed), so one host path can own content and another access.
    """

    document_id: str
    text: str | None = None
    chunks: Sequence[str] | None = None
    title: str | None = None
    semantic_identifier: str | None = None
    link: str | None = None
    source_type: str | None = None
    updated_at: datetime | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    acl: Collection[str] | None = ()
    sets: Collection[str] | None = ()
    # [issue-4] flags such as "hidden"; None (the default) keeps the recorded ones
    flags: Collection[str] | None = None
    # a host-side modification stamp (Nextcloud's ``modified``, epoch seconds): part of the
    # version, stored as chunk metadata ``modified`` only when set
    modified: int | None = None


@dataclass(frozen=True)
class PreparedDocument:
    """A validated document: content, chunk metadata, labels and their version hash."""

    document_id: str
    version: str
    text: str | None
    chunks: list[str] | None
    r2r_metadata: dict[str, Any]
    r2r_metadata_json: str  # canonical JSON of r2r_metadata (hashed into the version)
    acl_labels: list[str] | None
    set_labels: list[str] | None
    flag_labels: list[str] | None = None  # [issue-4]

    @property
    def labels(self) -> list[str]:
        """ACL, set and flag labels together (a part that is None counts as empty)."""
        return sorted(
            [*(self.acl_labels or []), *(self.set_labels or []), *(self.flag_labels or [])]
        )

    def merged_labels(self, recorded: list[str]) -> list[str]:
        """The labels to record, keeping *recorded*'s part wherever this document has None."""
        acl = self.acl_labels
        if acl is None:
            acl = [label for label in recorded if label.startswith(ACL_PREFIX)]
        sets = self.set_labels
        if sets is None:
            sets = [label for label in recorded if label.startswith(SET_PREFIX)]
        flags = self.flag_labels
        if flags is None:
            flags = [label for label in recorded if label.startswith(FLAG_PREFIX)]
        return sorted({*acl, *sets, *flags})


def clean_text(value: str) -> str:
    """Return *value* without NUL bytes and with lone surrogates replaced.

    PostgreSQL text cannot hold NUL and UTF-8 cannot encode surrogates (what
    ``surrogateescape`` leaves behind for invalid UTF-8); both would otherwise
    fail the whole batch's transaction.
    """
    if "\x00" in value:
        value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # [fault-tests fix] was .encode("utf-8", "replace"), which turns lone surrogates
        # into "?" although prepare() documents U+FFFD for invalid UTF-8.
        value = "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in value)
    return value


def _as_text(document_id: str, name: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        raise InvalidDocumentError(
            document_id, f"{name} must be a string, got {type(value).__name__}"
        )
    return clean_text(value)


def _metadata_value(document_id: str, key: str, value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, bool) or isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidDocumentError(document_id, f"metadata value for {key!r} is {value}")
        return value
    if isinstance(value, list | tuple):
        items = []
        for item in value:
            if not isinstance(item, str):
                raise InvalidDocumentError(
                    document_id,
                    f"metadata value for {key!r} must be a string or a list of strings, "
                    f"got a list containing {type(item).__name__}",
                )
            items.append(clean_text(item))
        return items
    raise InvalidDocumentError(
        document_id,
        f"metadata value for {key!r} must be a string or a list of strings, "
        f"got {type(value).__name__}",
    )


def _labels(document_id: str, values: Collection[str], prefix: str, what: str) -> set[str]:
    # [fault-tests fix] non-iterables (None, numbers) used to raise TypeError, breaking
    # the "only InvalidDocumentError" contract of prepare().
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise InvalidDocumentError(document_id, f"{what} must be a collection of strings")
    out: set[str] = set()
    for value in values:
        if not isinstance(value, str) or not value.strip():
            raise InvalidDocumentError(
                document_id, f"{what} entries must be non-empty strings, got {value!r:.80}"
            )
        out.add(prefix + clean_text(value))
    return out


def _iso(document_id: str, value: datetime | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, datetime):  # [fault-tests fix] was an AttributeError
        raise InvalidDocumentError(
            document_id, f"updated_at must be a datetime, got {type(value).__name__}"
        )
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def _modified(document_id: str, value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidDocumentError(
            document_id,
            f"modified must be epoch seconds (a non-negative integer), got {value!r:.40}",
        )
    return value


# Chunk metadata that is not part of a version: written with a new version, never a reason
# for one.  The update time is the host's (Onyx's file connector stamps the fetch time into
# it): a re-run of unchanged documents must cost no R2R write (issue 17).
NOT_VERSIONED = (schema.UPDATED_AT,)


def content_version(
    r2r_metadata: Mapping[str, Any], *, text: str | None, chunks: Sequence[str] | None
) -> str:
    """The version of a document: a hash of what R2R's chunks are built from.

    The text (or the host's chunks) and the chunk metadata, except :data:`NOT_VERSIONED`
    keys, which are hashed as ``null`` (so a document without an update time keeps the
    version of the earlier formula).  Pure; used by :func:`prepare` and by the ledger to
    recognise an unchanged document in a stored payload.
    """
    versioned = dict(r2r_metadata)
    for key in NOT_VERSIONED:
        if key in versioned:
            versioned[key] = None
    hasher = hashlib.blake2b(digest_size=16)
    hasher.update(json.dumps(versioned, sort_keys=True, ensure_ascii=False).encode("utf-8"))
    if chunks is not None:
        for chunk in chunks:
            hasher.update(b"\x00c")
            hasher.update(chunk.encode("utf-8"))
    else:
        hasher.update(b"\x00t")
        hasher.update((text or "").encode("utf-8"))
    return hasher.hexdigest()


def prepare(doc: SourceDocument, settings: BridgeSettings, tenant_id: str) -> PreparedDocument:
    """Validate and normalise *doc*; raise :class:`InvalidDocumentError` on bad input.

    Normalisation (documented behaviour, not errors): NUL bytes are removed,
    invalid UTF-8 is replaced with U+FFFD, empty chunks are dropped, and a
    document with no text but a title is mirrored with its title as text.
    """
    document_id = doc.document_id
    if not isinstance(document_id, str) or not document_id.strip():
        raise InvalidDocumentError(str(document_id), "document id must be a non-empty string")
    if "\x00" in document_id:
        raise InvalidDocumentError(document_id.replace("\x00", "\\0"), "document id contains NUL")
    if clean_text(document_id) != document_id:
        # [fault-tests fix] an id with lone surrogates (invalid UTF-8 read with
        # surrogateescape) used to reach PostgreSQL and fail the whole batch's transaction.
        raise InvalidDocumentError(clean_text(document_id), "document id is not valid UTF-8")

    title = _as_text(document_id, "title", doc.title)
    text = _as_text(document_id, "text", doc.text)
    chunks: list[str] | None = None
    if doc.chunks is not None:
        # [fault-tests fix] non-iterable chunks used to raise TypeError
        if isinstance(doc.chunks, str | bytes) or not isinstance(doc.chunks, Iterable):
            raise InvalidDocumentError(document_id, "chunks must be a list of strings")
        chunks = [
            c for c in (_as_text(document_id, "chunk", c) for c in doc.chunks) if c and c.strip()
        ]
        if not chunks:
            chunks = None
    if chunks is None and not (text and text.strip()):
        if title and title.strip():
            text = title
        else:
            raise InvalidDocumentError(document_id, "document has no text, chunks or title")
    size = sum(len(c) for c in chunks) if chunks is not None else len(text or "")
    # [fault-tests fix] was `size > max_text_bytes` on the character count, so multi-byte
    # text up to 4x the byte limit slipped through; characters ≥ bytes/4 is the cheap bound.
    if size * 4 > settings.max_text_bytes:
        size = (
            sum(len(c.encode("utf-8")) for c in chunks)
            if chunks is not None
            else len((text or "").encode("utf-8"))
        )
    if size > settings.max_text_bytes:
        raise InvalidDocumentError(
            document_id,
            f"text is {size / 1_048_576:.1f} MiB, above the limit of "
            f"{settings.max_text_bytes / 1_048_576:.1f} MiB",
        )

    if not isinstance(doc.metadata, Mapping):
        raise InvalidDocumentError(document_id, "metadata must be a mapping")
    source_metadata: dict[str, Any] = {}
    for key, value in doc.metadata.items():
        # Keys are nested under "source_metadata", so R2R never splices them
        # into SQL; any non-empty string of sane length is fine.
        if not isinstance(key, str) or not key or len(key) > 256:
            raise InvalidDocumentError(
                document_id, f"metadata key {key!r:.80} must be a non-empty string (≤ 256 chars)"
            )
        source_metadata[clean_text(key)] = _metadata_value(document_id, key, value)

    acl_labels = (
        None if doc.acl is None else sorted(_labels(document_id, doc.acl, ACL_PREFIX, "acl"))
    )
    set_labels = (
        None if doc.sets is None else sorted(_labels(document_id, doc.sets, SET_PREFIX, "sets"))
    )
    flag_labels = (
        None if doc.flags is None else sorted(_labels(document_id, doc.flags, FLAG_PREFIX, "flags"))
    )
    entries = len(acl_labels or ()) + len(set_labels or ())
    if entries > settings.max_acl_entries:
        raise InvalidDocumentError(
            document_id,
            f"{entries} ACL/set entries, above the limit of {settings.max_acl_entries}",
        )

    r2r_metadata: dict[str, Any] = {
        schema.SOURCE_DOCUMENT_ID: document_id,
        schema.TENANT: tenant_id,
        schema.TITLE: title or document_id,
        schema.SEMANTIC_IDENTIFIER: _as_text(
            document_id, "semantic_identifier", doc.semantic_identifier
        ),
        schema.LINK: _as_text(document_id, "link", doc.link),
        schema.SOURCE_TYPE: _as_text(document_id, "source_type", doc.source_type),
        schema.UPDATED_AT: _iso(document_id, doc.updated_at),
        schema.SOURCE_METADATA: source_metadata,
    }
    if doc.modified is not None:
        r2r_metadata[schema.MODIFIED] = _modified(document_id, doc.modified)
    encoded_metadata = json.dumps(r2r_metadata, sort_keys=True, ensure_ascii=False)
    if len(encoded_metadata) > settings.max_metadata_bytes:
        raise InvalidDocumentError(
            document_id,
            f"metadata is {len(encoded_metadata)} bytes, above the limit of "
            f"{settings.max_metadata_bytes}",
        )
    return PreparedDocument(
        document_id=document_id,
        version=content_version(r2r_metadata, text=text, chunks=chunks),
        text=None if chunks is not None else text,
        chunks=chunks,
        r2r_metadata=r2r_metadata,
        r2r_metadata_json=encoded_metadata,
        acl_labels=acl_labels,
        set_labels=set_labels,
        flag_labels=flag_labels,
    )
