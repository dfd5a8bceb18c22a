"""The chunk-metadata schema: every key the engine writes onto (or reads from) R2R chunks.

Each key is defined once, here.  :func:`onyx.r2r_sender.payload.prepare` writes the
document-level keys onto every chunk of a version (R2R copies a create's metadata onto
each chunk); the applier adds the version keys; R2R adds ``chunk_order`` itself.
Searches filter on these keys and the read model maps them back.

Changing a key or the set of keys an existing host writes changes every document's
version hash (and so re-embeds everything): new keys are written only when a host sets
them (``modified``), never as ``None`` for documents that did not have them.
"""

from __future__ import annotations

from typing import Final

SOURCE_DOCUMENT_ID: Final = "source_document_id"
"""The host's own document id (Onyx document id, Nextcloud source reference)."""
TENANT: Final = "tenant_id"
"""The scope key (:attr:`onyx.r2r_sender.hosts.TenantScope.key`): host × tenant."""
TITLE: Final = "title"
SEMANTIC_IDENTIFIER: Final = "semantic_identifier"
LINK: Final = "link"
SOURCE_TYPE: Final = "source_type"
"""Where the document comes from: Onyx's ``DocumentSource``, a Nextcloud provider id."""
UPDATED_AT: Final = "updated_at"
"""UTC ISO 8601 time the document was last updated at its source, or ``None``."""
SOURCE_METADATA: Final = "source_metadata"
"""The host's own key/value metadata (tags), nested so R2R never splices its keys into SQL."""
MODIFIED: Final = "modified"
"""A host-side modification stamp (Nextcloud's ``modified``, epoch seconds); only when set."""

VERSION: Final = "bridge_version"
"""The content version (hash of everything that lands in the chunks) the chunk belongs to."""
SEQ: Final = "bridge_seq"
"""A number that grows with each new version of a document: the newest version wins."""

CHUNK_ORDER: Final = "chunk_order"
"""R2R's own: the position of a chunk within its document."""

DOCUMENT_KEYS: Final = (
    SOURCE_DOCUMENT_ID,
    TENANT,
    TITLE,
    SEMANTIC_IDENTIFIER,
    LINK,
    SOURCE_TYPE,
    UPDATED_AT,
    SOURCE_METADATA,
)
"""The keys every version carries (``None`` where unknown); :data:`MODIFIED` is optional."""
