"""Search scopes: which mirrored chunks a retrieval may return, as an R2R filter and locally.

A :class:`SearchScope` states the rules in the engine's own terms (scope key, label
values, chunk-metadata values), before any collection id is known.
:meth:`SearchScope.resolve` turns its labels into collection ids and yields a
:class:`ResolvedScope`, which expresses the same rules twice: as an R2R filter
(:meth:`ResolvedScope.r2r_filter` plus :attr:`ResolvedScope.collection_ids`, for
searches) and as a predicate on one chunk's collections and metadata
(:meth:`ResolvedScope.matches`, for chunks fetched by document).  Both evaluate exactly
the same rules, all of which must hold (AND):

* **scope key**: the chunk's ``metadata.tenant_id`` (:data:`schema.TENANT`) equals
  :attr:`SearchScope.scope_key` (:attr:`onyx.r2r_sender.hosts.TenantScope.key`, host ×
  tenant).  Two hosts with equal tenant ids have different keys, so neither ever sees
  the other's chunks.
* **ACL**: ``principals=None`` means no ACL restriction; otherwise the chunk must be in
  the collection of at least one principal (label ``acl:<principal>``).  A principal
  without a collection (nobody was ever granted it) matches nothing; a scope none of
  whose principals has a collection matches nothing.
* **hidden**: chunks in the scope's ``flag:hidden`` collection are left out unless
  ``include_hidden``.
* **source types** (OR within): ``metadata.source_type`` is one of them (Onyx's
  ``DocumentSource``, a Nextcloud provider id).
* **tags** (OR within): ``metadata.source_metadata.<key>`` equals, or is a list holding,
  the value.  Tag keys are spliced into SQL by R2R: keys outside a safe set are refused
  (:func:`is_safe_metadata_key`).
* **forced sets**: the chunk is in at least one of these sets' collections (``set:<s>``).
* **knowledge scope** (when ``knowledge_scoped``): the chunk is in one of
  ``knowledge_sets`` OR its document id is one of ``knowledge_document_ids``; a knowledge
  scope none of whose parts can match matches nothing.
* **document ids**: ``document_ids`` (when not ``None``) restricts to those host document
  ids (``metadata.source_document_id``); an empty tuple matches nothing.
* **updated range**: ``metadata.updated_at`` (UTC ISO 8601) within ``[updated_start,
  updated_end]``; an undated document passes only with ``include_undated``.
* **impossible**: a scope with a reason set matches nothing (fail closed).

Pure: no R2R call, no clock, no I/O.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from onyx.r2r_sender import schema
from onyx.r2r_sender.payload import ACL_PREFIX, FLAG_PREFIX, SET_PREFIX

HIDDEN_FLAG = "hidden"
HIDDEN_LABEL = FLAG_PREFIX + HIDDEN_FLAG
"""The label of a scope's hidden documents (excluded from searches unless asked)."""

# characters that are safe inside R2R's spliced JSON path literal '{"a","b"}'
_SAFE_KEY = re.compile(r"^[^'\".,{}\\\x00-\x1f]{1,200}$")


def is_safe_metadata_key(key: str) -> bool:
    """Whether *key* may appear in an R2R metadata filter path (R2R splices it into SQL)."""
    return bool(_SAFE_KEY.match(key))


def iso_utc(value: datetime) -> str:
    """The engine's timestamp format in chunk metadata: UTC ISO 8601 (naive means UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def scope_key_filter(scope_key: str) -> dict[str, Any]:
    """The R2R filter clause that keeps the chunks of one scope (their ``tenant_id`` metadata)."""
    return {f"metadata.{schema.TENANT}": {"$eq": scope_key}}


@dataclass(frozen=True)
class SearchScope:
    """What a retrieval may return, in labels and metadata values (see the module rules).

    Values are label *values* (``"PUBLIC"``, ``"handbook"``), not labels: the engine
    adds the ``acl:``/``set:`` prefixes.  ``None`` means "no restriction of this kind";
    an empty tuple (where allowed) means "nothing matches".  Construction raises
    ``ValueError`` for an empty scope key or a tag key R2R cannot filter on safely.
    """

    scope_key: str
    principals: tuple[str, ...] | None  # None: no ACL restriction
    include_hidden: bool = False
    source_types: tuple[str, ...] | None = None
    tags: tuple[tuple[str, str], ...] | None = None
    forced_sets: tuple[str, ...] | None = None
    knowledge_sets: tuple[str, ...] = ()
    knowledge_document_ids: tuple[str, ...] = ()
    knowledge_scoped: bool = False  # a knowledge scope is in effect
    document_ids: tuple[str, ...] | None = None
    updated_start: datetime | None = None
    updated_end: datetime | None = None
    include_undated: bool = False  # undated documents pass an updated range
    impossible: str | None = None  # why nothing can match (fail closed)

    def __post_init__(self) -> None:
        if not isinstance(self.scope_key, str) or not self.scope_key:
            raise ValueError("scope_key must be a non-empty string")
        for key, _ in self.tags or ():
            if not is_safe_metadata_key(key):
                raise ValueError(f"tag key {key!r} cannot be expressed as an R2R filter")

    @classmethod
    def nothing(cls, scope_key: str, reason: str) -> SearchScope:
        """A scope that matches nothing, saying why (resolves to ``None`` at once)."""
        return cls(scope_key=scope_key, principals=(), impossible=reason)

    @property
    def labels(self) -> list[str]:
        """Every label whose collection id :meth:`resolve` needs (hidden flag first)."""
        labels = [HIDDEN_LABEL]
        labels += [ACL_PREFIX + p for p in self.principals or ()]
        labels += [SET_PREFIX + s for s in (*(self.forced_sets or ()), *self.knowledge_sets)]
        return list(dict.fromkeys(labels))

    def resolve(self, known: Mapping[str, uuid.UUID]) -> ResolvedScope | None:
        """Bind the labels to collection ids (*known*: label → id, missing = no collection).

        Returns ``None`` when nothing can match (fail closed): an impossible scope, no
        principal with a collection, no forced set with a collection, a knowledge scope
        with no set collection and no document id, an empty document-id restriction.
        """
        if self.impossible is not None:
            return None
        allowed: tuple[str, ...] | None = None
        if self.principals is not None:
            allowed = _collection_ids(known, ACL_PREFIX, self.principals)
            if not allowed:
                return None
        forced: tuple[str, ...] | None = None
        if self.forced_sets is not None:
            forced = _collection_ids(known, SET_PREFIX, self.forced_sets)
            if not forced:
                return None
        knowledge_sets = _collection_ids(known, SET_PREFIX, self.knowledge_sets)
        if self.knowledge_scoped and not knowledge_sets and not self.knowledge_document_ids:
            return None
        if self.document_ids is not None and not self.document_ids:
            return None
        hidden = known.get(HIDDEN_LABEL)
        return ResolvedScope(
            scope=self,
            allowed=allowed,
            hidden_collection=str(hidden) if hidden is not None else None,
            forced=forced,
            knowledge_sets=knowledge_sets,
        )


def _collection_ids(
    known: Mapping[str, uuid.UUID], prefix: str, values: Iterable[str]
) -> tuple[str, ...]:
    return tuple(sorted({str(known[prefix + v]) for v in values if prefix + v in known}))


@dataclass(frozen=True)
class ResolvedScope:
    """A :class:`SearchScope` bound to collection ids: an R2R filter and a local matcher."""

    scope: SearchScope
    allowed: tuple[str, ...] | None  # the principals' collections; None = no ACL restriction
    hidden_collection: str | None  # the scope's flag:hidden collection, if it has one
    forced: tuple[str, ...] | None
    knowledge_sets: tuple[str, ...]

    @property
    def hidden(self) -> str | None:
        """The collection to exclude (``None`` when hidden documents are included)."""
        return None if self.scope.include_hidden else self.hidden_collection

    # ----------------------------------------------------------------- R2R
    @property
    def collection_ids(self) -> list[str] | None:
        """The ``collection_ids`` argument of the client's search (ACL; ``None`` = no ACL)."""
        return list(self.allowed) if self.allowed is not None else None

    def r2r_filter(self) -> dict[str, Any]:
        """The R2R filter of every rule but the ACL overlap (which the client adds).

        Always ``{"$and": [scope-key clause, …]}``; the updated-range clause, when there
        is one, comes last.
        """
        scope = self.scope
        clauses: list[dict[str, Any]] = [scope_key_filter(scope.scope_key)]
        if self.hidden is not None:
            clauses.append({"collection_ids": {"$nin": [self.hidden]}})
        if self.forced is not None:
            clauses.append({"collection_ids": {"$overlap": list(self.forced)}})
        if scope.source_types is not None:
            clauses.append({f"metadata.{schema.SOURCE_TYPE}": {"$in": list(scope.source_types)}})
        if scope.tags is not None:
            clauses.append(
                {
                    "$or": [
                        {f"metadata.{schema.SOURCE_METADATA}.{key}": {"$in": [value]}}
                        for key, value in scope.tags
                    ]
                }
            )
        if scope.knowledge_scoped:
            options: list[dict[str, Any]] = []
            if self.knowledge_sets:
                options.append({"collection_ids": {"$overlap": list(self.knowledge_sets)}})
            if scope.knowledge_document_ids:
                options.append(
                    {
                        f"metadata.{schema.SOURCE_DOCUMENT_ID}": {
                            "$in": list(scope.knowledge_document_ids)
                        }
                    }
                )
            clauses.append({"$or": options})
        if scope.document_ids is not None:
            clauses.append(
                {f"metadata.{schema.SOURCE_DOCUMENT_ID}": {"$in": list(scope.document_ids)}}
            )
        time_clause = _updated_clause(scope)
        if time_clause is not None:
            clauses.append(time_clause)
        return {"$and": clauses}

    # --------------------------------------------------------------- local
    def matches(
        self, collection_ids: Iterable[uuid.UUID | str], metadata: Mapping[str, Any]
    ) -> bool:
        """Whether a chunk with these collections and metadata passes every rule."""
        scope = self.scope
        collections = {str(c) for c in collection_ids}
        if metadata.get(schema.TENANT) != scope.scope_key:
            return False
        if self.allowed is not None and not collections & set(self.allowed):
            return False
        if self.hidden is not None and self.hidden in collections:
            return False
        if self.forced is not None and not collections & set(self.forced):
            return False
        if (
            scope.source_types is not None
            and metadata.get(schema.SOURCE_TYPE) not in scope.source_types
        ):
            return False
        if scope.tags is not None:
            source_metadata = metadata.get(schema.SOURCE_METADATA) or {}
            if not any(_has_value(source_metadata.get(k), v) for k, v in scope.tags):
                return False
        document_id = metadata.get(schema.SOURCE_DOCUMENT_ID)
        if scope.knowledge_scoped:
            in_sets = bool(collections & set(self.knowledge_sets))
            attached = document_id in scope.knowledge_document_ids
            if not (in_sets or attached):
                return False
        if scope.document_ids is not None and document_id not in scope.document_ids:
            return False
        return _updated_matches(scope, metadata.get(schema.UPDATED_AT))


def _has_value(stored: Any, wanted: str) -> bool:
    if isinstance(stored, list | tuple):
        return wanted in [str(v) for v in stored]
    return stored is not None and str(stored) == wanted


def _updated_clause(scope: SearchScope) -> dict[str, Any] | None:
    start, end = scope.updated_start, scope.updated_end
    if start is None and end is None:
        return None
    key = f"metadata.{schema.UPDATED_AT}"
    bounds: list[dict[str, Any]] = []
    if start is not None:
        bounds.append({key: {"$gte": iso_utc(start)}})
    if end is not None:
        bounds.append({key: {"$lte": iso_utc(end)}})
    dated: dict[str, Any] = bounds[0] if len(bounds) == 1 else {"$and": bounds}
    if scope.include_undated:
        return {"$or": [dated, {key: {"$eq": None}}]}
    return dated


def _updated_matches(scope: SearchScope, stored: Any) -> bool:
    start, end = scope.updated_start, scope.updated_end
    if start is None and end is None:
        return True
    if not stored:
        return scope.include_undated
    if start is not None and str(stored) < iso_utc(start):
        return False
    return not (end is not None and str(stored) > iso_utc(end))
