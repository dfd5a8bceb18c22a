"""Host namespaces: which host (Onyx, Nextcloud, …) and which of its tenants owns an R2R object.

One R2R server may serve several hosts at once: an Onyx deployment and a Nextcloud
instance side by side.  Everything the engine puts into R2R is derived from a
:class:`TenantScope` (host × tenant), so two hosts with equal tenant and document ids
never share an R2R document, collection or search result:

* **R2R ids** (:meth:`TenantScope.document_id`, :meth:`~TenantScope.version_id`,
  :meth:`~TenantScope.slot_id`): UUIDv5 under the scope's namespace.
* **Collection names** (:meth:`TenantScope.collection_name`): host × tenant × label.
* **The scope key** (:attr:`TenantScope.key`): what the ledger stores as ``tenant_id`` and
  what every chunk carries as ``metadata.tenant_id``; searches filter on it.

Onyx is the *legacy* host: its ids, names and keys are byte-for-byte those of the releases
before host namespaces (golden values pinned by ``tests/unit/test_ids.py`` and
``test_collections_naming.py``), so an upgraded deployment re-embeds nothing.  Every other
host is namespaced: ids under ``uuid5(uuid5(BRIDGE_NAMESPACE, "host:" + host), "tenant:" +
tenant)``, names ``r2r-bridge:<host>:<tenant>:<label>``, key ``<host>:<tenant>``.  An Onyx
tenant id that would read as another host's key (``nextcloud:…``) is refused, so keys stay
unambiguous.

Adding a host is one entry in :data:`KNOWN_HOSTS` (worker processes resolve a key back to
its host through it, so it must be static, not registered at run time).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from uuid import UUID, uuid5

from onyx.r2r_sender.ids import BRIDGE_NAMESPACE, tenant_namespace

_HOST_NAME = re.compile(r"^[a-z][a-z0-9_-]{1,31}$")
# characters kept as they are in namespaced collection names; everything else is escaped
_NAME_SAFE = re.compile(r"[A-Za-z0-9_.@+=\-]")
_MAX_READABLE_NAME = 200
LEGACY_NAME_PREFIX = "onyx-r2r"
NAME_PREFIX = "r2r-bridge"


@dataclass(frozen=True)
class HostNamespace:
    """One host product (``onyx``, ``nextcloud``) that mirrors documents through the engine."""

    name: str
    legacy: bool = False  # Onyx: ids and names of the releases before host namespaces

    def __post_init__(self) -> None:
        if not _HOST_NAME.match(self.name):
            raise ValueError(f"host name must match {_HOST_NAME.pattern}, got {self.name!r}")

    @property
    def namespace(self) -> UUID:
        """``uuid5(BRIDGE_NAMESPACE, "host:" + name)`` (unused by the legacy host's ids)."""
        return uuid5(BRIDGE_NAMESPACE, "host:" + self.name)

    def scope(self, tenant_id: str) -> TenantScope:
        """The scope of *tenant_id* in this host (raises ``ValueError`` on a bad tenant id)."""
        return TenantScope(self, tenant_id)


ONYX = HostNamespace("onyx", legacy=True)
NEXTCLOUD = HostNamespace("nextcloud")
KNOWN_HOSTS: dict[str, HostNamespace] = {host.name: host for host in (ONYX, NEXTCLOUD)}
"""Every host the engine knows; a new host adapter adds its namespace here (one line)."""


def host_namespace(name: str) -> HostNamespace:
    """The registered host called *name*; raises ``ValueError`` listing the known hosts."""
    try:
        return KNOWN_HOSTS[name]
    except KeyError:
        raise ValueError(
            f"unknown host {name!r}; known hosts: {', '.join(sorted(KNOWN_HOSTS))}"
        ) from None


def escape_name_part(value: str) -> str:
    """Escape *value* for a collection name: safe characters stay, every other UTF-8 byte
    becomes ``~HH`` (``~`` itself too).  Reversible with :func:`unescape_name_part`."""
    out: list[str] = []
    for ch in value:
        if _NAME_SAFE.match(ch):
            out.append(ch)
        else:
            out.extend(f"~{byte:02X}" for byte in ch.encode("utf-8", "surrogatepass"))
    return "".join(out)


def unescape_name_part(value: str) -> str:
    """Invert :func:`escape_name_part`."""
    raw = bytearray()
    i = 0
    while i < len(value):
        if value[i] == "~":
            raw.append(int(value[i + 1 : i + 3], 16))
            i += 3
        else:
            raw.extend(value[i].encode("ascii"))
            i += 1
    return raw.decode("utf-8", "surrogatepass")


_LEGACY_SAFE = re.compile(r"^[A-Za-z0-9_.@+=:\-]{1,120}$")


def onyx_collection_name(tenant_id: str, label: str) -> str:
    """The legacy (Onyx) collection name: readable when safe, hashed otherwise (pure, golden)."""
    if _LEGACY_SAFE.match(tenant_id) and _LEGACY_SAFE.match(label):
        return f"{LEGACY_NAME_PREFIX}:{tenant_id}:{label}"
    tenant_part = hashlib.sha256(tenant_id.encode("utf-8")).hexdigest()[:16]
    label_part = hashlib.sha256(label.encode("utf-8")).hexdigest()[:32]
    return f"{LEGACY_NAME_PREFIX}:h:{tenant_part}:{label_part}"


@dataclass(frozen=True)
class TenantScope:
    """One tenant of one host: the unit of isolation in R2R (ids, collections, searches).

    Construction validates: *tenant_id* is a non-empty string without NUL, and a legacy
    (Onyx) tenant id never looks like another host's key.  Raises ``ValueError``.
    """

    host: HostNamespace
    tenant_id: str

    def __post_init__(self) -> None:
        if not isinstance(self.tenant_id, str) or not self.tenant_id:
            raise ValueError("tenant_id must be a non-empty string")
        if "\x00" in self.tenant_id:
            raise ValueError("tenant_id must not contain NUL characters")
        if self.host.legacy:
            prefix, sep, _ = self.tenant_id.partition(":")
            if sep and prefix in KNOWN_HOSTS and not KNOWN_HOSTS[prefix].legacy:
                raise ValueError(
                    f"tenant id {self.tenant_id!r} of host {self.host.name!r} reads as a "
                    f"{prefix!r} scope key"
                )

    # ----------------------------------------------------------------- keys
    @property
    def key(self) -> str:
        """The ledger's ``tenant_id`` and every chunk's ``metadata.tenant_id`` for this scope."""
        return self.tenant_id if self.host.legacy else f"{self.host.name}:{self.tenant_id}"

    @classmethod
    def from_key(cls, key: str) -> TenantScope:
        """Invert :attr:`key`: ``<host>:<tenant>`` of a namespaced host, else an Onyx tenant."""
        prefix, sep, rest = key.partition(":")
        host = KNOWN_HOSTS.get(prefix) if sep else None
        if host is not None and not host.legacy and rest:
            return cls(host, rest)
        return cls(ONYX, key)

    # ------------------------------------------------------------------ ids
    @property
    def namespace(self) -> UUID:
        """The UUIDv5 namespace of every R2R id of this scope."""
        if self.host.legacy:
            return tenant_namespace(self.tenant_id)
        return uuid5(self.host.namespace, "tenant:" + self.tenant_id)

    def document_id(self, document_id: str) -> UUID:
        """``uuid5(namespace, "doc:" + id)``: a document's stable id (legacy: ``r2r_document_id``)."""
        return uuid5(self.namespace, "doc:" + _require_id(document_id))

    def version_id(self, document_id: str, version: str) -> UUID:
        """The R2R id of one content version (legacy: ``r2r_version_id``); see :mod:`ids`."""
        doc = _require_id(document_id)
        if not isinstance(version, str) or not version:
            raise ValueError("version must be a non-empty string")
        return uuid5(self.namespace, "docv:" + doc + "\x00" + version)

    def slot_id(self, document_id: str, slot: int) -> UUID:
        """One of the two R2R ids a document alternates between on the synchronous path.

        ``uuid5(namespace, "docslot<n>:" + id)`` for ``slot`` 0 or 1: a replace creates the
        new version in the free slot, then deletes the other, so the applied version is
        always found with one lookup of both ids (R2R itself is the record).
        """
        if slot not in (0, 1):
            raise ValueError(f"slot must be 0 or 1, got {slot!r}")
        return uuid5(self.namespace, f"docslot{slot}:" + _require_id(document_id))

    # ---------------------------------------------------------- collections
    def collection_name(self, label: str) -> str:
        """The R2R collection name of *label* in this scope: stable and URL-safe.

        Legacy (Onyx): ``onyx-r2r:<tenant>:<label>`` when both are short and safe, else
        ``onyx-r2r:h:<sha256(tenant)[:16]>:<sha256(label)[:32]>``.  Namespaced hosts:
        ``r2r-bridge:<host>:<tenant>:<kind>:<value>`` (a label is ``<kind>:<value>``, e.g.
        ``acl:alice``) where each of tenant, kind and value has every character outside
        ``[A-Za-z0-9_.@+=-]`` escaped as ``~HH`` per UTF-8 byte, so the name splits back
        into its parts at the first four colons (reversible, see
        :func:`unescape_name_part`); a name longer than 200 characters is hashed instead
        (``r2r-bridge:<host>:h:<…>:<…>``).
        """
        if not isinstance(label, str) or not label:
            raise ValueError("label must be a non-empty string")
        if self.host.legacy:
            return onyx_collection_name(self.tenant_id, label)
        kind, sep, value = label.partition(":")
        escaped_label = f"{escape_name_part(kind)}{sep}{escape_name_part(value)}"
        name = f"{NAME_PREFIX}:{self.host.name}:{escape_name_part(self.tenant_id)}:{escaped_label}"
        if len(name) <= _MAX_READABLE_NAME:
            return name
        tenant_part = hashlib.sha256(self.tenant_id.encode("utf-8")).hexdigest()[:16]
        label_part = hashlib.sha256(label.encode("utf-8")).hexdigest()[:32]
        return f"{NAME_PREFIX}:{self.host.name}:h:{tenant_part}:{label_part}"

    def label_of(self, collection_name: str) -> str | None:
        """Invert :meth:`collection_name`: the label, or ``None`` for a hashed name or a
        name of another scope (the result is checked by deriving the name again)."""
        if self.host.legacy:
            prefix = f"{LEGACY_NAME_PREFIX}:{self.tenant_id}:"
            label = collection_name[len(prefix) :] if collection_name.startswith(prefix) else ""
        else:
            parts = collection_name.split(":", 4)
            if len(parts) == 5:
                try:
                    kind, value = unescape_name_part(parts[3]), unescape_name_part(parts[4])
                except (ValueError, UnicodeDecodeError):
                    return None
                label = f"{kind}:{value}"
            elif len(parts) == 4:
                try:
                    label = unescape_name_part(parts[3])
                except (ValueError, UnicodeDecodeError):
                    return None
            else:
                return None
        if not label or self.collection_name(label) != collection_name:
            return None
        return label

    def __str__(self) -> str:
        return self.key


def _require_id(document_id: str) -> str:
    if not isinstance(document_id, str) or not document_id:
        raise ValueError("document id must be a non-empty string")
    if "\x00" in document_id:
        raise ValueError("document id must not contain NUL characters")
    return document_id
