"""Onyx ``IndexFilters`` → the engine's :class:`~onyx.r2r_sender.read_model.SearchScope`.

Reads an ``IndexFilters``-shaped object by attribute name (no Onyx import) and follows
Onyx's filter semantics (``backend/onyx/document_index/FILTER_SEMANTICS.md`` at a7d66a8).
The engine evaluates the scope (:mod:`onyx.r2r_sender.read_model.scope` holds the
rules, as an R2R filter and locally); what is Onyx's is decided here:

* **tenant**: the index's tenant, Onyx's scope key (:data:`onyx.r2r_sender.hosts.ONYX`);
  filters naming another tenant, or a tenant id that reads as another host's scope key,
  match nothing;
* **ACL**: ``access_control_list=None`` means no ACL restriction (admin/internal
  searches); otherwise ``PUBLIC`` is always added (Onyx always lets public documents
  through);
* **hidden**: excluded unless the caller asks (``include_hidden``, Onyx's admin search);
* **narrowing**: ``source_type``, ``tags`` (a tag whose key R2R cannot filter on safely
  is dropped; only such tags: nothing matches), ``forced_document_set``, and
  ``updated_at_range`` (or the legacy ``time_cutoff`` as its lower bound; undated
  documents are kept only for a lower bound older than
  :data:`ASSUMED_DOCUMENT_AGE_DAYS` with no upper bound, as Onyx does);
* **knowledge scope**: ``document_set`` OR ``attached_document_ids`` - and
  ``hierarchy_node_ids``, ``persona_id_filter``, ``project_id_filter``, which the mirror
  does not hold: they contribute nothing (fail closed), so a scope made only of them
  matches nothing.
* ``created_at_range`` is not enforced: the mirror stores no creation time, and Onyx's
  rule keeps undated documents for it (Onyx's Vespa backend behaves the same).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from onyx.r2r_integration.onyx_shapes import PUBLIC_ACL, enum_value, field_of
from onyx.r2r_sender.hosts import ONYX
from onyx.r2r_sender.read_model import SearchScope, is_safe_metadata_key

ASSUMED_DOCUMENT_AGE_DAYS = 90  # Onyx's opensearch/constants.py


def _strings(values: Iterable[Any] | None) -> tuple[str, ...] | None:
    if values is None:
        return None
    return tuple(str(v) for v in (enum_value(v) for v in values) if v is not None)


def _range_bounds(value: Any) -> tuple[datetime | None, datetime | None]:
    if value is None:
        return None, None
    return field_of(value, "start"), field_of(value, "end")


def _non_empty(values: Sequence[Any] | None) -> bool:
    return bool(values)


def _include_undated(start: datetime | None, end: datetime | None) -> bool:
    """Onyx's rule: undated documents pass an old, open-ended lower bound."""
    return (
        start is not None
        and end is None
        and start < datetime.now(UTC) - timedelta(days=ASSUMED_DOCUMENT_AGE_DAYS)
    )


def _onyx_scope_key(tenant_id: str) -> tuple[str, str | None]:
    """The index tenant's scope key, and why nothing may match when it is not usable."""
    try:
        return ONYX.scope(tenant_id).key, None
    except ValueError as exc:
        return str(tenant_id) or "-", f"unusable tenant id: {exc}"


def scope_from_index_filters(
    filters: Any, *, tenant_id: str, include_hidden: bool = False
) -> SearchScope:
    """Translate an ``IndexFilters``-shaped object into the engine's :class:`SearchScope`.

    *tenant_id* is the index's tenant; filters naming another tenant match nothing
    (``impossible`` says why).  Never raises for filter content.
    """
    scope_key, impossible = _onyx_scope_key(tenant_id)
    filter_tenant = field_of(filters, "tenant_id")
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
            if is_safe_metadata_key(str(field_of(t, "tag_key")))
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
    # folded into updated_at_range by Onyx's validator; dicts may still carry it
    legacy_cutoff = field_of(filters, "time_cutoff")
    if legacy_cutoff is not None and updated_start is None and updated_end is None:
        updated_start = legacy_cutoff
    if updated_start is not None and updated_end is not None and updated_start > updated_end:
        impossible = impossible or "updated_at_range is empty"
    source_types = field_of(filters, "source_type")
    return SearchScope(
        scope_key=scope_key,
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
        include_undated=_include_undated(updated_start, updated_end),
        impossible=impossible,
    )
