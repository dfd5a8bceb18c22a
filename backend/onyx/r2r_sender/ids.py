"""Deterministic R2R ids for Onyx documents.

R2R document ids must be UUIDs while Onyx ids are arbitrary strings (often URLs), so the bridge
derives them with UUIDv5 (SHA-1 based, RFC 4122/9562). Every function here is a pure function of
its arguments: the same inputs give the same UUID in every process, on every machine and in every
release of this package. Changing any derivation below would orphan every mirrored document, so
the unit tests pin golden values.

Hierarchy::

    BRIDGE_NAMESPACE                        fixed constant (below)
    └── tenant_namespace(tenant)            uuid5(BRIDGE_NAMESPACE, "tenant:" + tenant)
        ├── r2r_document_id(tenant, doc)    uuid5(tenant_ns, "doc:" + doc)
        └── r2r_version_id(tenant, doc, v)  uuid5(tenant_ns, "docv:" + doc + "\\x00" + v)

Tenants get separate namespaces, so the same Onyx document id in two tenants never collides.
"""

from __future__ import annotations

from uuid import UUID, uuid5

BRIDGE_NAMESPACE: UUID = UUID("7d9c5678-d5f1-58dc-bc29-bd121a0de49a")
"""Root namespace of every id the bridge derives. Hard-coded; never change it.

It was computed once as
``uuid.uuid5(uuid.NAMESPACE_URL, "https://onyx-r2r.invalid/namespaces/bridge/v1")``
(``.invalid`` is a reserved TLD, so the URL can never belong to anyone else).
"""


def _require(value: str, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{what} must not be empty")
    return value


def tenant_namespace(tenant_id: str) -> UUID:
    """Return the UUIDv5 namespace of one tenant: ``uuid5(BRIDGE_NAMESPACE, "tenant:" + id)``.

    Stable across processes and releases. Raises ``ValueError`` when ``tenant_id`` is empty or
    not a string.
    """
    return uuid5(BRIDGE_NAMESPACE, "tenant:" + _require(tenant_id, "tenant_id"))


def r2r_document_id(tenant_id: str, onyx_document_id: str) -> UUID:
    """Return the R2R document id of an Onyx document: ``uuid5(tenant_ns, "doc:" + doc_id)``.

    Stable across processes and releases; different tenants give different ids for the same
    Onyx id. Raises ``ValueError`` when either argument is empty or not a string.
    """
    namespace = tenant_namespace(tenant_id)
    return uuid5(namespace, "doc:" + _require(onyx_document_id, "onyx_document_id"))


def r2r_version_id(tenant_id: str, onyx_document_id: str, version: str) -> UUID:
    """Return the R2R id of one content version of an Onyx document.

    ``uuid5(tenant_ns, "docv:" + doc_id + "\\x00" + version)``. Each content version (e.g. a
    content hash) gets its own R2R id, so a new version can be ingested before the old one is
    deleted (replace without a gap in search). The NUL separator keeps ``("a", "b:c")`` and
    ``("a:b", "c")`` apart; the ``"docv:"`` prefix keeps version ids disjoint from
    :func:`r2r_document_id`. Stable across processes and releases. Raises ``ValueError`` when an
    argument is empty or not a string, or when ``onyx_document_id`` contains a NUL character
    (it would make the encoding ambiguous).
    """
    namespace = tenant_namespace(tenant_id)
    doc = _require(onyx_document_id, "onyx_document_id")
    if "\x00" in doc:
        raise ValueError("onyx_document_id must not contain NUL characters")
    return uuid5(namespace, "docv:" + doc + "\x00" + _require(version, "version"))
