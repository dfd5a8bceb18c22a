"""Onyx-side glue shared by the Onyx adapters of the R2R bridge.

The adapters (the docfetching hook in ``onyx.background.indexing.r2r_export``, the
backfill source in ``onyx.background.celery.tasks.r2r_mirror``, ``R2RIndex`` in
``onyx.document_index.r2r`` and the admin router in ``onyx.server.r2r``) never
import each other; what they share lives here: the switches and per-tenant flags
(``flags``), who owns a document's content and access (``policy``) and how a
process builds its sender, client and Redis (``host``).  Nothing here imports
Onyx; it depends only on the engine (``onyx.r2r_sender``).
"""
