"""The engine's read model: what hosts search and read in R2R, and what they get back.

* :mod:`.scope`: :class:`SearchScope` (the rules, host-neutral) and
  :class:`ResolvedScope` (bound to collection ids: an R2R filter and a local matcher);
* :mod:`.chunks`: :class:`MirroredChunk` (a typed chunk, from R2R hits and stored
  chunks) and :func:`newest_versions` (with :func:`raw_version` for unmapped hits);
* :mod:`.retriever`: :class:`Retriever` (search, chunks of given documents).

Every chunk-metadata key comes from :mod:`onyx.r2r_sender.schema`.  A host adapter
builds a :class:`SearchScope` from its own filters and maps :class:`MirroredChunk` to its
own result type.
"""

from onyx.r2r_sender.read_model.chunks import MirroredChunk, newest_versions, raw_version
from onyx.r2r_sender.read_model.retriever import MAX_RESULTS, Retriever, fetch_limit
from onyx.r2r_sender.read_model.scope import (
    HIDDEN_FLAG,
    HIDDEN_LABEL,
    ResolvedScope,
    SearchScope,
    is_safe_metadata_key,
    iso_utc,
    scope_key_filter,
)

__all__ = [
    "HIDDEN_FLAG",
    "HIDDEN_LABEL",
    "MAX_RESULTS",
    "MirroredChunk",
    "ResolvedScope",
    "Retriever",
    "SearchScope",
    "fetch_limit",
    "is_safe_metadata_key",
    "iso_utc",
    "newest_versions",
    "raw_version",
    "scope_key_filter",
]
