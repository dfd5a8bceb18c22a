"""onyx-r2r: mirror Onyx documents into an R2R 3.6.6 server.

Public surface of the R2R side:

* :class:`R2RClient` - typed REST client (httpx + backoff) for R2R's ``/v3`` API;
* the error hierarchy rooted at :class:`R2RError` and the pure :func:`classify`;
* deterministic id derivation (:func:`r2r_document_id`, :func:`r2r_version_id`, ...);
* typed results (:class:`IngestResult`, :class:`R2RDocument`, :class:`R2RCollection`, :class:`SearchHit`,
  :class:`R2RChunk`).
"""

from onyx.r2r_sender.client import R2RClient, SearchMode
from onyx.r2r_sender.errors import (
    R2RAlreadyExistsError,
    R2RAuthError,
    R2RBusyError,
    R2RConfigError,
    R2RError,
    R2RFatalError,
    R2RNotFoundError,
    R2RRetryableError,
    classify,
)
from onyx.r2r_sender.ids import (
    BRIDGE_NAMESPACE,
    r2r_document_id,
    r2r_version_id,
    tenant_namespace,
)
from onyx.r2r_sender.r2r_types import (
    IngestResult,
    R2RChunk,
    R2RCollection,
    R2RDocument,
    SearchHit,
)

__all__ = [
    "BRIDGE_NAMESPACE",
    "IngestResult",
    "R2RAlreadyExistsError",
    "R2RAuthError",
    "R2RBusyError",
    "R2RChunk",
    "R2RClient",
    "R2RCollection",
    "R2RConfigError",
    "R2RDocument",
    "R2RError",
    "R2RFatalError",
    "R2RNotFoundError",
    "R2RRetryableError",
    "SearchHit",
    "SearchMode",
    "classify",
    "r2r_document_id",
    "r2r_version_id",
    "tenant_namespace",
]
