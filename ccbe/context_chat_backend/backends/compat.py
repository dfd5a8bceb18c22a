"""The seams where CCBE v5.3 and v5.4 differ, absorbed once for every backend.

| | v5.3 (push API) | v5.4 (queues) |
|---|---|---|
| ``add_indocuments`` input / result | ``list[InDocument]`` → ``(added_ids, retry_ids)`` | ``Mapping[int, InDocument]`` → ``Mapping[int, IndexingError \\| None]`` |
| ``check_sources`` input | ``list[UploadFile]``: ``.filename``, ``.headers['modified']`` (digits) | ``Mapping[int, SourceItem \\| ReceivedFileItem]``: ``.reference``, ``.modified`` |
| ``UpdateAccessOp`` members | ``allow`` / ``deny`` | ``ALLOW`` / ``DENY`` (same values) |
| scope reaching ``doc_search`` | ``ScopeType`` enum | plain string |
| ``IndexingError`` | absent | ``types.IndexingError`` |

A backend written against these helpers serves both generations with one code path: it
compares values (``"allow"``, ``"provider"``), never enum members, and builds its
``add_indocuments`` result with :func:`indexing_result`, which answers in the shape of the
input it was given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ..vectordb.types import SafeDbException

__all__ = [
    "ACCESS_OPS",
    "SCOPES",
    "Outcome",
    "indexing_result",
    "indocument_items",
    "op_value",
    "scope_value",
    "source_items",
    "source_modified",
    "source_reference",
    "user_id_list",
]

ACCESS_OPS = ("allow", "deny")
SCOPES = ("provider", "source")


def _enum_value(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def op_value(op: Any) -> str:
    """``"allow"`` or ``"deny"`` for an ``UpdateAccessOp`` of either generation (or its value).

    Raises ``SafeDbException("invalid access operation: …", 400)`` otherwise, as upstream's
    pgvector does for an unknown operation.
    """
    value = _enum_value(op)
    if value not in ACCESS_OPS:
        raise SafeDbException(f"invalid access operation: {value!r}", 400)
    return value


def scope_value(scope_type: Any) -> str | None:
    """``"provider"``, ``"source"`` or ``None`` (no scope) for a scope of either generation.

    v5.3 passes the ``ScopeType`` enum, v5.4 its value; ``None``, ``""`` and ``"none"`` mean
    unscoped (v5.4's task fetcher maps ``"none"`` to ``None`` itself). Raises
    ``SafeDbException("invalid scope type: …", 400)`` for anything else.
    """
    value = _enum_value(scope_type)
    if value is None or value in ("", "none"):
        return None
    if value not in SCOPES:
        raise SafeDbException(f"invalid scope type: {value!r}", 400)
    return value


def source_reference(item: Any) -> str:
    """The source id (``"files__default: 123"``) of a v5.4 queue item or a v5.3 upload."""
    reference = getattr(item, "reference", None)
    if reference is None:
        reference = getattr(item, "filename", None)
    if not isinstance(reference, str) or not reference.strip():
        raise ValueError(f"a source without a reference (source id): {item!r}")
    return reference


def source_modified(item: Any) -> int:
    """The source's ``modified`` time (epoch seconds) of either generation.

    v5.4 items carry an ``int``; v5.3 uploads a ``modified`` header of digits. Raises
    ``ValueError`` naming the source and the header when it is missing or not digits.
    """
    modified = getattr(item, "modified", None)
    if isinstance(modified, int) and not isinstance(modified, bool):
        return modified
    headers = getattr(item, "headers", None)
    raw = headers.get("modified") if headers is not None else None
    if not isinstance(raw, str) or not raw.isdigit():
        raise ValueError(
            f"{source_reference(item)}: header 'modified' must be unix epoch digits, not {raw!r}"
        )
    return int(raw)


def source_items(sources: Mapping[Any, Any] | Sequence[Any]) -> list[tuple[Any, Any]]:
    """``(key, item)`` pairs of a ``check_sources`` input: the queue's db ids in v5.4, list
    positions in v5.3."""
    return _keyed(sources)


def indocument_items(indocuments: Mapping[Any, Any] | Sequence[Any]) -> list[tuple[Any, Any]]:
    """``(key, InDocument)`` pairs of an ``add_indocuments`` input (db ids or positions)."""
    return _keyed(indocuments)


def _keyed(values: Mapping[Any, Any] | Sequence[Any]) -> list[tuple[Any, Any]]:
    if isinstance(values, Mapping):
        return list(values.items())
    return list(enumerate(values))


def user_id_list(user_ids: str | Iterable[str]) -> list[str]:
    """Nextcloud user ids as a list: trimmed, non-empty, first occurrence kept.

    Accepts a list or a comma-joined string (v5.3's ``userIds`` header). Raises
    ``ValueError`` for a non-string id.
    """
    raw = user_ids.split(",") if isinstance(user_ids, str) else list(user_ids)
    result: list[str] = []
    for uid in raw:
        if not isinstance(uid, str):
            raise ValueError(f"user ids must be strings, not {type(uid).__name__}")
        uid = uid.strip()
        if uid and uid not in result:
            result.append(uid)
    return result


@dataclass(frozen=True)
class Outcome:
    """What happened to one document of an ``add_indocuments`` batch: ``error=None`` is
    success; otherwise the reason and whether Nextcloud should retry it."""

    error: str | None = None
    retryable: bool = False


def indexing_result(
    indocuments: Mapping[Any, Any] | Sequence[Any], outcomes: Mapping[Any, Outcome]
) -> Any:
    """``add_indocuments``'s answer in the shape of its input.

    *outcomes* maps each key of :func:`indocument_items` to its :class:`Outcome`; a key
    without one counts as a retryable error (the document was not reached).

    * v5.4 (a mapping): ``{db_id: None | IndexingError(error, retryable)}``.
    * v5.3 (a list): ``(added_source_ids, retry_source_ids)``; a permanent error is in
      neither list, as upstream v5.3 treats a source it cannot use (it is not retried).
    """
    missing = Outcome("not processed", retryable=True)
    if isinstance(indocuments, Mapping):
        from ..types import IndexingError

        return {
            key: None
            if (o := outcomes.get(key, missing)).error is None
            else IndexingError(error=o.error, retryable=o.retryable)
            for key in indocuments
        }
    added: list[str] = []
    retry: list[str] = []
    for key, indoc in enumerate(indocuments):
        outcome = outcomes.get(key, missing)
        if outcome.error is None:
            added.append(indoc.source_id)
        elif outcome.retryable:
            retry.append(indoc.source_id)
    return added, retry
