"""Labels (ACL principals, document sets, flags) → R2R collections.

Every label of a tenant maps to one R2R collection with a stable, URL-safe
name; the mapping is resolved once (R2R get-or-create by name), remembered in
the ledger and cached in-process.  Collections are never deleted here: R2R
deletes the chunks of every document in a deleted collection, even documents
that are also in other collections.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from onyx.r2r_sender.client import R2RClient
from onyx.r2r_sender.errors import R2RAlreadyExistsError
from onyx.r2r_sender.hosts import TenantScope
from onyx.r2r_sender.r2r_types import R2RCollection

# The holding collection of a tenant's documents that have no label at all (no
# ACL, set or flag: visible to nobody).  Without one R2R would put them in the
# service account's "Default" collection.  Labelled documents are not in it:
# searches scope tenants by chunk metadata ``tenant_id``, so a membership write
# per document is saved.
TENANT_LABEL = "tenant"
DESCRIPTION_PREFIX = "onyx-r2r tenant="
BULK_LOOKUP = 32  # more unknown labels than this: list the account's collections once
CREATE_CONCURRENCY = 8  # concurrent get-or-creates of missing collections


def collection_name(tenant_id: str, label: str) -> str:
    """The R2R collection name of *label* in the scope whose key is *tenant_id* (see
    :meth:`~onyx.r2r_sender.hosts.TenantScope.collection_name`)."""
    return TenantScope.from_key(tenant_id).collection_name(label)


def collection_description(tenant_id: str, label: str) -> str:
    """The description a collection is created with: ``onyx-r2r tenant=<key> label=<label>``
    (at most 500 characters). It lets a hashed name be read back (:func:`label_from`)."""
    return f"{DESCRIPTION_PREFIX}{tenant_id} label={label}"[:500]


def label_from(scope: TenantScope, name: str, description: str | None) -> str | None:
    """The label of the collection called *name* in *scope*, or ``None`` when it is not one
    of the scope's: readable names are inverted (:meth:`TenantScope.label_of`), hashed ones
    are read from their description and checked by deriving the name again."""
    label = scope.label_of(name)
    if label is not None:
        return label
    prefix = f"{DESCRIPTION_PREFIX}{scope.key} label="
    if description and description.startswith(prefix):
        label = description[len(prefix) :]
        if label and scope.collection_name(label) == name:
            return label
    return None


class CollectionStore(Protocol):
    """Where resolved label → collection ids are remembered across processes (the ledger)."""

    def collection_ids(self, tenant_id: str, principals: Sequence[str]) -> dict[str, uuid.UUID]:
        """The remembered ids of those labels that have one."""
        ...

    def save_collection(
        self, tenant_id: str, principal: str, collection_id: uuid.UUID, name: str
    ) -> None:
        """Remember one label's collection id."""
        ...

    def save_collections(
        self, tenant_id: str, entries: Sequence[tuple[str, uuid.UUID, str]]
    ) -> None:
        """Remember many ``(label, collection id, name)`` at once (one transaction)."""
        ...

    def forget_collection(self, tenant_id: str, principal: str) -> None:
        """Forget one label's collection id (it no longer exists in R2R)."""
        ...


class CollectionResolver:
    """Resolve labels to R2R collection ids: in-process cache → store → R2R.

    ``tenant_id`` arguments are scope keys (:attr:`~onyx.r2r_sender.hosts.TenantScope.key`):
    the collection name comes from the scope's host namespace.  Without a *store* (the
    synchronous path, which has no ledger) a label is looked up in R2R by name once per
    resolver.  Thread-safe.  ``resolve(create=False)`` never writes to R2R (used by
    searches: a label nobody was ever granted has no collection, so it matches nothing).
    """

    def __init__(self, client: R2RClient, ledger: CollectionStore | None = None) -> None:
        self._client = client
        self._ledger = ledger
        self._cache: dict[tuple[str, str], uuid.UUID] = {}
        self._labels: dict[uuid.UUID, tuple[str, str]] = {}  # collection id -> (key, label)
        # labels being looked up in R2R by a thread of this process: others wait for it
        # instead of racing it (a fresh tenant's first documents share most principals)
        self._inflight: dict[tuple[str, str], threading.Event] = {}
        self._lock = threading.Lock()

    def resolve(
        self, tenant_id: str, labels: Sequence[str], *, create: bool
    ) -> dict[str, uuid.UUID]:
        """Map each label to its collection id; missing ones are created when *create*.

        Raises R2R client errors when creating fails.
        """
        found: dict[str, uuid.UUID] = {}
        missing: list[str] = []
        with self._lock:
            for label in labels:
                cid = self._cache.get((tenant_id, label))
                if cid is None:
                    missing.append(label)
                else:
                    found[label] = cid
        if missing:
            stored = self._ledger.collection_ids(tenant_id, missing) if self._ledger else {}
            found.update(stored)
            unknown = [label for label in missing if label not in stored]
            with self._lock:
                for label in missing:
                    if label in found:
                        self._remember(tenant_id, label, found[label])
            if unknown and (create or self._ledger is None):
                found.update(self._single_flight(tenant_id, unknown, create=create))
        return found

    def _remember(self, tenant_id: str, label: str, cid: uuid.UUID) -> None:
        self._cache[(tenant_id, label)] = cid
        self._labels[cid] = (tenant_id, label)

    def _single_flight(
        self, tenant_id: str, labels: Sequence[str], *, create: bool, again: bool = True
    ) -> dict[str, uuid.UUID]:
        """:meth:`_from_r2r` for the labels no other thread is looking up; wait for the
        others.  What such a thread did not find (it failed) is looked up once more the
        same way (*again*), then directly."""
        with self._lock:
            mine: list[str] = []
            theirs: dict[str, threading.Event] = {}
            for label in labels:
                key = (tenant_id, label)
                if key in self._cache:
                    continue
                event = self._inflight.get(key)
                if event is None:
                    self._inflight[key] = threading.Event()
                    mine.append(label)
                else:
                    theirs[label] = event
        found: dict[str, uuid.UUID] = {}
        try:
            if mine:
                found.update(self._from_r2r(tenant_id, mine, create=create))
        finally:
            with self._lock:
                for label in mine:
                    if label in found:
                        self._remember(tenant_id, label, found[label])
                    self._inflight.pop((tenant_id, label)).set()
        leftover: list[str] = []
        for label, event in theirs.items():
            event.wait(timeout=120)
            with self._lock:
                cid = self._cache.get((tenant_id, label))
            if cid is None:
                leftover.append(label)  # the other thread failed or created nothing
            else:
                found[label] = cid
        for label in labels:  # cached meanwhile by a thread that finished first
            if label not in found:
                with self._lock:
                    cid = self._cache.get((tenant_id, label))
                if cid is not None:
                    found[label] = cid
                elif label not in leftover and label not in mine:
                    leftover.append(label)
        if leftover and again:
            found.update(self._single_flight(tenant_id, leftover, create=create, again=False))
        elif leftover:
            extra = self._from_r2r(tenant_id, leftover, create=create)
            with self._lock:
                for label, cid in extra.items():
                    self._remember(tenant_id, label, cid)
            found.update(extra)
        return found

    def _from_r2r(
        self, tenant_id: str, labels: Sequence[str], *, create: bool
    ) -> dict[str, uuid.UUID]:
        """Look *labels* up in R2R by name (creating missing ones when *create*) and
        remember what was found in the store.

        A few labels cost one lookup each; many (a document with thousands of principals)
        cost one listing of the account's collections, 1,000 per request, and concurrent
        creates of the missing ones, so a label costs about one request at most.
        """
        scope = TenantScope.from_key(tenant_id)
        names = {scope.collection_name(label): label for label in labels}
        found: dict[str, uuid.UUID] = {}
        listed = len(labels) > BULK_LOOKUP  # one listing instead of a lookup per label
        if listed:
            for collection in self._client.iter_collections():
                label = names.get(collection.name)
                if label is not None:
                    found.setdefault(label, collection.id)
        # after a listing, a missing label exists nowhere: only creating is left to do
        todo = [] if listed and not create else [n for n, lb in names.items() if lb not in found]

        def fetch(name: str) -> tuple[str, uuid.UUID | None]:
            label = names[name]
            if create:
                description = collection_description(tenant_id, label)
                if not listed:
                    return name, self._client.ensure_collection(name, description=description).id
                # the listing showed it missing: create straight away (one request), and
                # read it back only if another process created it meanwhile
                try:
                    return name, self._client.create_collection(name, description).id
                except R2RAlreadyExistsError:
                    existing = self._client.get_collection_by_name(name)
                    if existing is None:
                        raise
                    return name, existing.id
            collection = self._client.get_collection_by_name(name)
            return name, None if collection is None else collection.id

        if len(todo) > 1:
            with ThreadPoolExecutor(max_workers=min(CREATE_CONCURRENCY, len(todo))) as pool:
                results = list(pool.map(fetch, todo))
        else:
            results = [fetch(name) for name in todo]
        for name, cid in results:
            if cid is not None:
                found[names[name]] = cid
        if self._ledger is not None and found:
            by_label = {label: name for name, label in names.items()}
            self._ledger.save_collections(
                tenant_id, [(label, cid, by_label[label]) for label, cid in found.items()]
            )
        return found

    def labels_of(
        self, tenant_id: str, collection_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, str]:
        """The labels of those *collection_ids* that are collections of this scope.

        Known ids come from this resolver's cache; the rest are read from R2R in one
        request per 100 ids and their names inverted (:func:`label_from`: hashed names are
        read back from their description).  A collection of another scope or a vanished
        collection is left out.
        Raises R2R client errors.
        """
        out: dict[uuid.UUID, str] = {}
        unknown: list[uuid.UUID] = []
        with self._lock:
            for cid in collection_ids:
                entry = self._labels.get(cid)
                if entry is None:
                    unknown.append(cid)
                elif entry[0] == tenant_id:
                    out[cid] = entry[1]
        if unknown:
            scope = TenantScope.from_key(tenant_id)
            for collection in self._client.list_collections(unknown):
                label = label_from(scope, collection.name, collection.description)
                if label is None:
                    continue
                out[collection.id] = label
                with self._lock:
                    self._cache[(tenant_id, label)] = collection.id
                    self._labels[collection.id] = (tenant_id, label)
        return out

    def labelled(self, tenant_id: str, prefix: str) -> dict[str, R2RCollection]:
        """Every collection of the scope whose label starts with *prefix* (``"set:"``):
        label → collection (with R2R's ``document_count``).

        One listing of the account's collections (1,000 per request); hashed names are read
        back from their description (:func:`label_from`). Found ids are cached. Raises R2R
        client errors.
        """
        scope = TenantScope.from_key(tenant_id)
        found: dict[str, R2RCollection] = {}
        for collection in self._client.iter_collections():
            label = label_from(scope, collection.name, collection.description)
            if label is None or not label.startswith(prefix):
                continue
            found.setdefault(label, collection)
        with self._lock:
            for label, collection in found.items():
                self._cache[(tenant_id, label)] = collection.id
                self._labels[collection.id] = (tenant_id, label)
        return found

    def invalidate(self, tenant_id: str, label: str) -> None:
        """Forget a mapping whose collection no longer exists in R2R."""
        with self._lock:
            self._cache.pop((tenant_id, label), None)
        if self._ledger is not None:
            self._ledger.forget_collection(tenant_id, label)
