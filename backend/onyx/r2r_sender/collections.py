"""Labels (ACL principals, document sets, flags) → R2R collections.

Every label of a tenant maps to one R2R collection with a stable, URL-safe
name; the mapping is resolved once (R2R get-or-create by name), remembered in
the ledger and cached in-process.  Collections are never deleted here: R2R
deletes the chunks of every document in a deleted collection, even documents
that are also in other collections.
"""

from __future__ import annotations

import hashlib
import re
import threading
import uuid
from collections.abc import Sequence

from onyx.r2r_sender.client import R2RClient
from onyx.r2r_sender.ledger import Ledger

# The holding collection of a tenant's documents that have no label at all (no
# ACL, set or flag: visible to nobody).  Without one R2R would put them in the
# service account's "Default" collection.  Labelled documents are not in it:
# searches scope tenants by chunk metadata ``tenant_id``, so a membership write
# per document is saved.
TENANT_LABEL = "tenant"
NAME_PREFIX = "onyx-r2r"
_SAFE = re.compile(r"^[A-Za-z0-9_.@+=:\-]{1,120}$")


def collection_name(tenant_id: str, label: str) -> str:
    """Return the R2R collection name of *label* in *tenant_id* (stable, URL-safe).

    Readable (``onyx-r2r:<tenant>:<label>``) when both parts are made of safe
    characters and short; otherwise hashed (``onyx-r2r:h:<hash>:<hash>``).
    """
    if _SAFE.match(tenant_id) and _SAFE.match(label):
        return f"{NAME_PREFIX}:{tenant_id}:{label}"
    tenant_part = hashlib.sha256(tenant_id.encode("utf-8")).hexdigest()[:16]
    label_part = hashlib.sha256(label.encode("utf-8")).hexdigest()[:32]
    return f"{NAME_PREFIX}:h:{tenant_part}:{label_part}"


class CollectionResolver:
    """Resolve labels to R2R collection ids: in-process cache → ledger → R2R.

    Thread-safe.  ``resolve(create=False)`` never writes to R2R (used by
    searches: a label nobody was ever granted has no collection, so it
    matches nothing).
    """

    def __init__(self, client: R2RClient, ledger: Ledger) -> None:
        self._client = client
        self._ledger = ledger
        self._cache: dict[tuple[str, str], uuid.UUID] = {}
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
            stored = self._ledger.collection_ids(tenant_id, missing)
            for label, cid in stored.items():
                found[label] = cid
            for label in missing:
                if label in stored or not create:
                    continue
                name = collection_name(tenant_id, label)
                collection = self._client.ensure_collection(
                    name, description=f"onyx-r2r tenant={tenant_id} label={label}"[:500]
                )
                self._ledger.save_collection(tenant_id, label, collection.id, name)
                found[label] = collection.id
            with self._lock:
                for label in missing:
                    if label in found:
                        self._cache[(tenant_id, label)] = found[label]
        return found

    def invalidate(self, tenant_id: str, label: str) -> None:
        """Forget a mapping whose collection no longer exists in R2R."""
        with self._lock:
            self._cache.pop((tenant_id, label), None)
        self._ledger.forget_collection(tenant_id, label)
