"""pgvector: upstream's own backend (``vectordb/pgvector.py``), unchanged.

``RAG_BACKEND=pgvector`` behaves exactly as upstream: CCBE's embedding client, the
``CCB_DB_URL`` or ``vectordb: pgvector: {connection: …}`` database, upstream's tables and
SQL. Its constructor creates the tables (I/O), so it is the one registry entry that does not
follow :mod:`.contract`; the worker threads keep upstream's probe of the embedding server
for it (:func:`context_chat_backend.backends.check_connection`).
"""

from ..vectordb.pgvector import VectorDB

__all__ = ["VectorDB"]
