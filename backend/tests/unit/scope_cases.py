"""Shared by the scope tests: one tenant's label → collection ids, and chunks in them."""

from __future__ import annotations

import uuid
from typing import Any

TENANT = "tenant_a"
IDS = {
    "tenant": uuid.uuid4(),
    "flag:hidden": uuid.uuid4(),
    "acl:PUBLIC": uuid.uuid4(),
    "acl:user_email:alice@x.io": uuid.uuid4(),
    "acl:group:eng": uuid.uuid4(),
    "set:handbook": uuid.uuid4(),
    "set:legal": uuid.uuid4(),
}


def cid(label: str) -> str:
    """The collection id of *label*, as a string."""
    return str(IDS[label])


def chunk(*labels: str, **metadata: Any) -> tuple[list[str], dict[str, Any]]:
    """(collections, metadata) of a chunk of document ``d1`` of :data:`TENANT` in *labels*."""
    return [cid(label) for label in labels], {
        "source_document_id": "d1",
        "tenant_id": TENANT,
        **metadata,
    }
