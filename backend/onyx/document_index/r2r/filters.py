"""Onyx ``IndexFilters`` → R2R search filters, and the same rules evaluated locally.

Reads an ``IndexFilters``-shaped object by attribute name (no Onyx import) and
follows Onyx's filter semantics (``backend/onyx/document_index/FILTER_SEMANTICS.md``
at a7d66a8) with the mirror's collection model:

* **tenant**: chunk metadata ``tenant_id`` (every mirrored chunk carries it; a
  document is in its tenant's ACL/set collections, not in a tenant-wide one);
* **ACL**: ``access_control_list=None`` means no ACL restriction (admin/internal
  searches); otherwise a chunk must be in the collection of ``PUBLIC`` or of one
  of the listed principals (Onyx always lets public documents through) - the
  collections the engine maintains, so a user never receives a chunk their
  access list does not allow;
* **hidden**: documents in the ``flag:hidden`` collection are left out unless
  ``include_hidden``;
* **narrowing** (AND): ``source_type``, ``tags`` (OR within), ``updated_at_range``
  (undated documents kept only for an old open-ended lower bound, as Onyx does),
  ``forced_document_set``;
* **knowledge scope** (OR within, AND with the rest): ``document_set``,
  ``attached_document_ids`` - and ``hierarchy_node_ids``, ``persona_id_filter``,
  ``project_id_filter``, which the mirror does not hold: they contribute nothing
  (fail closed), so a scope made only of them matches nothing.
* ``created_at_range`` is not enforced: the mirror stores no creation time, and
  Onyx's rule keeps undated documents for it (Onyx's Vespa backend behaves the same).

:meth:`SearchScope.resolve` turns labels into collection ids; the resulting
:class:`ResolvedScope` builds the R2R filter (searches) and evaluates the same
rules on a chunk's collections and metadata (id-based and random retrieval).
R2R splices metadata keys into SQL, so tag keys with characters outside a safe
set are never sent (such a tag matches nothing).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from onyx.r2r_integration.onyx_shapes import PUBLIC_ACL, enum_value, field_of
from onyx.r2r_sender.payload import ACL_PREFIX, SET_PREFIX
from onyx.r2r_sender.search import HIDDEN_LABEL, tenant_filter

ASSUMED_DOCUMENT_AGE_DAYS = 90  # Onyx's opensearch/constants.py
# characters that are safe inside R2R's spliced JSON path literal '{"a","b"}'
_SAFE_KEY = re.compile(r"^[^'\".,{}\\\x00-\x1f]{1,200}$")


def iso_utc(value: datetime) -> str:
    """The engine's timestamp format in chunk metadata (UTC ISO 8601, see payload._iso)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def _strings(values: Iterable[Any] | None) -> tuple[str, ...] | None:
    if values is None:
        return None
    return tuple(str(v) for v in (enum_value(v) for v in values) if v is not None)


@dataclass(frozen=True)
class SearchScope:
    """What a retrieval may return, in labels (before collection ids are known)."""

    tenant_id: str
    principals: tuple[str, ...] | None  # None: no ACL restriction
    include_hidden: bool = False
    source_types: tuple[str, ...] | None = None
    tags: tuple[tuple[str, str], ...] | None = None
    forced_sets: tuple[str, ...] | None = None
    knowledge_sets: tuple[str, ...] = ()
    knowledge_document_ids: tuple[str, ...] = ()
    knowledge_scoped: bool = False  # a knowledge scope is in effect
    updated_start: datetime | None = None
    updated_end: datetime | None = None
    impossible: str | None = None  # why nothing can match (fail closed)

    @property
    def labels(self) -> list[str]:
        """Every label whose collection id :meth:`resolve` needs."""
        labels = [HIDDEN_LABEL]
        labels += [ACL_PREFIX + p for p in self.principals or ()]
        labels += [SET_PREFIX + s for s in (*(self.forced_sets or ()), *self.knowledge_sets)]
        return list(dict.fromkeys(labels))

    def resolve(self, known: Mapping[str, uuid.UUID]) -> ResolvedScope | None:
        """Collection ids for the labels; ``None`` when nothing can match."""
        if self.impossible is not None:
            return None
        allowed: tuple[str, ...] | None = None
        if self.principals is not None:
            allowed = tuple(
                sorted(
                    {str(known[ACL_PREFIX + p]) for p in self.principals if ACL_PREFIX + p in known}
                )
            )
            if not allowed:
                return None
        forced: tuple[str, ...] | None = None
        if self.forced_sets is not None:
            forced = tuple(
                sorted(
                    {
                        str(known[SET_PREFIX + s])
                        for s in self.forced_sets
                        if SET_PREFIX + s in known
                    }
                )
            )
            if not forced:
                return None
        knowledge_sets = tuple(
            sorted(
                {str(known[SET_PREFIX + s]) for s in self.knowledge_sets if SET_PREFIX + s in known}
            )
        )
        if self.knowledge_scoped and not knowledge_sets and not self.knowledge_document_ids:
            return None
        return ResolvedScope(
            scope=self,
            allowed=allowed,
            hidden_collection=str(known[HIDDEN_LABEL]) if HIDDEN_LABEL in known else None,
            forced=forced,
            knowledge_sets=knowledge_sets,
        )


@dataclass(frozen=True)
class ResolvedScope:
    """A :class:`SearchScope` with collection ids: an R2R filter and a local matcher."""

    scope: SearchScope
    allowed: tuple[str, ...] | None
    hidden_collection: str | None  # the tenant's flag:hidden collection, if any
    forced: tuple[str, ...] | None
    knowledge_sets: tuple[str, ...]

    @property
    def hidden(self) -> str | None:
        """The collection to exclude (None when hidden documents are included)."""
        return None if self.scope.include_hidden else self.hidden_collection

    # ----------------------------------------------------------------- R2R
    @property
    def collection_ids(self) -> list[str] | None:
        """The ``collection_ids`` argument of the client's search (ACL; None = no ACL)."""
        return list(self.allowed) if self.allowed is not None else None

    def r2r_filter(self) -> dict[str, Any]:
        """The R2R filter (everything but the ACL overlap, which the client adds)."""
        scope = self.scope
        clauses: list[dict[str, Any]] = [tenant_filter(scope.tenant_id)]
        if self.hidden is not None:
            clauses.append({"collection_ids": {"$nin": [self.hidden]}})
        if self.forced is not None:
            clauses.append({"collection_ids": {"$overlap": list(self.forced)}})
        if scope.source_types is not None:
            clauses.append({"metadata.source_type": {"$in": list(scope.source_types)}})
        if scope.tags is not None:
            clauses.append(
                {
                    "$or": [
                        {f"metadata.source_metadata.{key}": {"$in": [value]}}
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
                    {"metadata.source_document_id": {"$in": list(scope.knowledge_document_ids)}}
                )
            clauses.append({"$or": options})
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
        if metadata.get("tenant_id") != scope.tenant_id:
            return False
        if self.allowed is not None and not collections & set(self.allowed):
            return False
        if self.hidden is not None and self.hidden in collections:
            return False
        if self.forced is not None and not collections & set(self.forced):
            return False
        if scope.source_types is not None and metadata.get("source_type") not in scope.source_types:
            return False
        if scope.tags is not None:
            source_metadata = metadata.get("source_metadata") or {}
            if not any(_has_value(source_metadata.get(k), v) for k, v in scope.tags):
                return False
        if scope.knowledge_scoped:
            in_sets = bool(collections & set(self.knowledge_sets))
            attached = metadata.get("source_document_id") in scope.knowledge_document_ids
            if not (in_sets or attached):
                return False
        return _updated_matches(scope, metadata.get("updated_at"))


def _has_value(stored: Any, wanted: str) -> bool:
    if isinstance(stored, list | tuple):
        return wanted in [str(v) for v in stored]
    return stored is not None and str(stored) == wanted


def _include_undated(scope: SearchScope) -> bool:
    start, end = scope.updated_start, scope.updated_end
    return (
        start is not None
        and end is None
        and start < datetime.now(UTC) - timedelta(days=ASSUMED_DOCUMENT_AGE_DAYS)
    )


def _updated_clause(scope: SearchScope) -> dict[str, Any] | None:
    start, end = scope.updated_start, scope.updated_end
    if start is None and end is None:
        return None
    bounds: list[dict[str, Any]] = []
    if start is not None:
        bounds.append({"metadata.updated_at": {"$gte": iso_utc(start)}})
    if end is not None:
        bounds.append({"metadata.updated_at": {"$lte": iso_utc(end)}})
    dated: dict[str, Any] = bounds[0] if len(bounds) == 1 else {"$and": bounds}
    if _include_undated(scope):
        return {"$or": [dated, {"metadata.updated_at": {"$eq": None}}]}
    return dated


def _updated_matches(scope: SearchScope, stored: Any) -> bool:
    start, end = scope.updated_start, scope.updated_end
    if start is None and end is None:
        return True
    if not stored:
        return _include_undated(scope)
    if start is not None and str(stored) < iso_utc(start):
        return False
    return not (end is not None and str(stored) > iso_utc(end))


# ------------------------------------------------------------- from Onyx
def _range_bounds(value: Any) -> tuple[datetime | None, datetime | None]:
    if value is None:
        return None, None
    return field_of(value, "start"), field_of(value, "end")


def _non_empty(values: Sequence[Any] | None) -> bool:
    return bool(values)


def scope_from_index_filters(
    filters: Any, *, tenant_id: str, include_hidden: bool = False
) -> SearchScope:
    """Translate an ``IndexFilters``-shaped object into a :class:`SearchScope`.

    *tenant_id* is the index's tenant; filters naming another tenant match nothing.
    """
    filter_tenant = field_of(filters, "tenant_id")
    impossible: str | None = None
    if filter_tenant and filter_tenant != tenant_id:
        impossible = f"filters name tenant {filter_tenant!r}, the index serves {tenant_id!r}"

    acl = field_of(filters, "access_control_list")
    principals: tuple[str, ...] | None = None
    if acl is not None:
        principals = tuple(dict.fromkeys([PUBLIC_ACL, *(str(a) for a in acl)]))

    tags: tuple[tuple[str, str], ...] | None = None
    raw_tags = field_of(filters, "tags")
    if raw_tags:
        usable = [
            (str(field_of(t, "tag_key")), str(field_of(t, "tag_value")))
            for t in raw_tags
            if _SAFE_KEY.match(str(field_of(t, "tag_key")))
        ]
        if usable:
            tags = tuple(usable)
        else:
            impossible = impossible or "no tag key can be expressed as an R2R filter"

    document_sets = field_of(filters, "document_set")
    attached = field_of(filters, "attached_document_ids")
    unsupported_scope = (
        _non_empty(field_of(filters, "hierarchy_node_ids"))
        or field_of(filters, "persona_id_filter") is not None
        or field_of(filters, "project_id_filter") is not None
    )
    knowledge_scoped = _non_empty(document_sets) or _non_empty(attached) or unsupported_scope

    forced = field_of(filters, "forced_document_set")
    updated_start, updated_end = _range_bounds(field_of(filters, "updated_at_range"))
    legacy_cutoff = field_of(
        filters, "time_cutoff"
    )  # folded by Onyx's validator; dicts may carry it
    if legacy_cutoff is not None and updated_start is None and updated_end is None:
        updated_start = legacy_cutoff
    if updated_start is not None and updated_end is not None and updated_start > updated_end:
        impossible = impossible or "updated_at_range is empty"
    source_types = field_of(filters, "source_type")
    return SearchScope(
        tenant_id=tenant_id,
        principals=principals,
        include_hidden=include_hidden,
        source_types=_strings(source_types) if source_types else None,
        tags=tags,
        forced_sets=tuple(str(s) for s in forced) if forced else None,
        knowledge_sets=tuple(str(s) for s in document_sets or ()),
        knowledge_document_ids=tuple(str(d) for d in attached or ()),
        knowledge_scoped=knowledge_scoped,
        updated_start=updated_start,
        updated_end=updated_end,
        impossible=impossible,
    )
