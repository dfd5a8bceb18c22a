"""Grow an R2R 3.6.6 database to N chunks in minutes, with rows R2R then treats as its own.

Filling R2R to a million chunks through its API takes hours on two cores (~40 creates/s
at best).  The growth benchmark fills it in bulk instead, as *copies of rows R2R wrote
itself*:

1. **Templates through the real path.**  A few hundred sample documents are mirrored
   into R2R by the bridge (ledger → worker → R2R's pre-chunked create), so their
   ``documents`` and ``chunks`` rows (text, embedding from the stub through R2R, metadata,
   ``fts``, status, sizes, version) are exactly what R2R writes for a bridge document.
2. **Collections through the API.**  A pool of collections is created with
   ``POST /v3/collections`` by the service account, so the ``collections`` and ``graphs``
   rows and the account's ``users.collection_ids`` are R2R's own.
3. **Clones in bulk.**  ``INSERT … SELECT`` (server-side, in batches) copies the template
   rows with what differs between two bridge documents replaced: a new document id
   (uuid5), new random chunk ids (R2R gives pre-chunked chunks random ids), metadata
   ``tenant_id``/``source_document_id`` of a fill tenant, and 1–3 collections from the
   pool in place of the template's (the same set on the document row and its chunks, as
   R2R's create leaves them); ``collections.document_count`` is incremented as R2R's
   assignment does.  Every column R2R's own INSERTs set is set; generated columns
   (``chunks.fts``, ``documents.raw_tsvector``) and R2R's indexes are maintained by
   PostgreSQL as for R2R's own writes.  The owner is the service account.
4. ``VACUUM ANALYZE`` of the three tables afterwards, as autovacuum would do on a server
   that grew over weeks.

How faithful: R2R reads these rows like its own (list, retrieve, search, delete,
collection membership all work on them; the benchmark's creates run against them).
Differences from an organically grown R2R: chunk texts and vectors repeat (each template
chunk is copied ``N / templates`` times), so the full-text and GIN indexes hold fewer
distinct keys than a real corpus's and vector search would find many equal neighbours
(not measured here); rows are physically ordered by fill batch; no ``files`` rows (R2R
stores none for pre-chunked creates either).  Nothing in R2R's create path reads another
document's text or vector, so for create cost the difference is the size of the text
indexes, which grow logarithmically in the insert path.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import psycopg2
from benchlib import onyx_documents, wait_synced, worker_process
from private_stack import PrivateStack

from onyx.r2r_integration.sender import R2RDocumentSender
from onyx.r2r_sender.client import R2RClient
from onyx.r2r_sender.collections import collection_name
from onyx.r2r_sender.config import BridgeSettings

HELPER_SCHEMA = "growth_fill"
FILL_NAMESPACE = uuid.UUID("6d1f6a0e-3a43-4c1e-9d3e-0b7f0e3c2a11")
FILL_TENANT = "growth_fill"


@dataclass
class FillResult:
    """What one :meth:`R2RFiller.grow_to` call did."""

    documents: int
    chunks: int
    seconds: float
    vacuum_seconds: float
    owner_chunks: int
    owner_documents: int


class R2RFiller:
    """Clones template rows into R2R's tables (see the module docstring).

    *dsn* is a libpq connection string to R2R's database, *project* R2R's schema
    (``R2R_PROJECT_NAME``), *owner_id* the service account's user id.
    """

    def __init__(self, dsn: str, project: str, owner_id: uuid.UUID | str) -> None:
        if not project.isidentifier():
            raise ValueError(f"not a plain schema name: {project!r}")
        self.project = project
        self.owner_id = str(owner_id)
        self.conn = psycopg2.connect(dsn)
        self.conn.autocommit = True
        self._templates = 0
        self._pool = 0

    def close(self) -> None:
        """Drop the helper schema and close the connection."""
        self._exec(f"DROP SCHEMA IF EXISTS {HELPER_SCHEMA} CASCADE")
        self.conn.close()

    def _exec(self, sql: str, params: dict | Sequence | None = None) -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def load_templates(self, tenant_id: str, collection_pool: Sequence[uuid.UUID]) -> int:
        """Take the R2R rows of *tenant_id*'s documents as templates; return their number.

        *collection_pool* are the collections clones are put into (1–3 each, as many as
        their template had).  Raises ``RuntimeError`` when the tenant has no documents.
        """
        p = self.project
        self._exec(f"DROP SCHEMA IF EXISTS {HELPER_SCHEMA} CASCADE")
        self._exec(f"CREATE SCHEMA {HELPER_SCHEMA}")
        self._exec(
            f"CREATE TABLE {HELPER_SCHEMA}.tpl_docs AS "
            "SELECT (row_number() OVER (ORDER BY id)) - 1 AS n, "
            "greatest(1, least(3, coalesce(cardinality(collection_ids), 1))) AS ncoll, d.* "
            f"FROM {p}.documents d WHERE owner_id = %(o)s AND metadata->>'tenant_id' = %(t)s "
            "AND ingestion_status = 'success'",
            {"o": self.owner_id, "t": tenant_id},
        )
        self._exec(f"CREATE UNIQUE INDEX ON {HELPER_SCHEMA}.tpl_docs (n)")
        self._exec(
            f"CREATE TABLE {HELPER_SCHEMA}.tpl_chunks AS "
            "SELECT t.n AS doc_n, c.vec, c.text, c.metadata "
            f"FROM {p}.chunks c JOIN {HELPER_SCHEMA}.tpl_docs t ON c.document_id = t.id"
        )
        self._exec(f"CREATE INDEX ON {HELPER_SCHEMA}.tpl_chunks (doc_n)")
        self._exec(f"CREATE TABLE {HELPER_SCHEMA}.pool (k int PRIMARY KEY, id uuid NOT NULL)")
        self._pool = 0
        self.extend_pool(collection_pool)
        self._exec(f"ANALYZE {HELPER_SCHEMA}.tpl_docs, {HELPER_SCHEMA}.tpl_chunks")
        self._templates = self._exec(f"SELECT count(*) FROM {HELPER_SCHEMA}.tpl_docs")[0][0]
        if not self._templates or not self._pool:
            raise RuntimeError(f"no template documents of tenant {tenant_id} (or no collections)")
        return self._templates

    def extend_pool(self, collection_pool: Sequence[uuid.UUID]) -> None:
        """Let later clones use *collection_pool* (a longer list than before: the new tail)."""
        new = [(k, str(cid)) for k, cid in enumerate(collection_pool) if k >= self._pool]
        with self.conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {HELPER_SCHEMA}.pool VALUES (%s, %s)", new)
        self._pool = len(collection_pool)

    def owner_counts(self) -> tuple[int, int]:
        """(chunks, documents) the service account owns now."""
        p = self.project
        chunks = self._exec(f"SELECT count(*) FROM {p}.chunks WHERE owner_id = %s", [self.owner_id])
        docs = self._exec(
            f"SELECT count(*) FROM {p}.documents WHERE owner_id = %s", [self.owner_id]
        )
        return chunks[0][0], docs[0][0]

    def _next_doc(self) -> int:
        p = self.project
        rows = self._exec(
            f"SELECT count(*) FROM {p}.documents WHERE metadata->>'tenant_id' = %s", [FILL_TENANT]
        )
        return rows[0][0]

    def clone_batch(self, start: int, count: int) -> int:
        """Clone documents number *start* … *start+count-1*; return the chunks written."""
        p, h = self.project, HELPER_SCHEMA
        sql = f"""
        WITH src AS (
            SELECT g AS i,
                   uuid_generate_v5(%(ns)s::uuid, 'growth-fill/' || g) AS new_id,
                   t.*,
                   ARRAY(SELECT pl.id FROM generate_series(0, t.ncoll - 1) j
                         JOIN {h}.pool pl ON pl.k = (g * 7 + j * 7919) %% %(pool)s
                         ORDER BY j) AS cids
            FROM generate_series(%(a)s, %(a)s + %(n)s - 1) g
            JOIN {h}.tpl_docs t ON t.n = g %% %(k)s
        ), docs AS (
            INSERT INTO {p}.documents
                (id, collection_ids, owner_id, type, metadata, title, summary,
                 summary_embedding, version, size_in_bytes, ingestion_status,
                 extraction_status, ingestion_attempt_number, total_tokens)
            SELECT new_id, cids, %(owner)s::uuid, type,
                   metadata || jsonb_build_object('tenant_id', %(tenant)s::text,
                                                  'source_document_id', 'growth-fill/' || i),
                   title, summary, summary_embedding, version, size_in_bytes,
                   ingestion_status, extraction_status, ingestion_attempt_number, total_tokens
            FROM src
            RETURNING 1
        ), counts AS (
            UPDATE {p}.collections c SET document_count = c.document_count + x.n
            FROM (SELECT unnest(cids) AS id, count(*) AS n FROM src GROUP BY 1) x
            WHERE c.id = x.id
            RETURNING 1
        ), chunks AS (
            INSERT INTO {p}.chunks (id, document_id, owner_id, collection_ids, vec, text, metadata)
            SELECT gen_random_uuid(), src.new_id, %(owner)s::uuid, src.cids, tc.vec, tc.text,
                   tc.metadata || jsonb_build_object('tenant_id', %(tenant)s::text,
                                                     'source_document_id', 'growth-fill/' || src.i)
            FROM src JOIN {h}.tpl_chunks tc ON tc.doc_n = src.n
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM docs), (SELECT count(*) FROM counts),
               (SELECT count(*) FROM chunks)
        """
        rows = self._exec(
            sql,
            {
                "ns": str(FILL_NAMESPACE),
                "a": start,
                "n": count,
                "k": self._templates,
                "pool": self._pool,
                "owner": self.owner_id,
                "tenant": FILL_TENANT,
            },
        )
        return rows[0][2]

    def grow_to(
        self,
        target_chunks: int,
        *,
        batch_documents: int = 5000,
        progress: Callable[[str], None] = print,
    ) -> FillResult:
        """Clone until the service account owns at least *target_chunks* chunks."""
        if not self._templates:
            raise RuntimeError("load_templates() first")
        started = time.monotonic()
        owner_chunks, _ = self.owner_counts()
        next_doc = self._next_doc()
        documents = chunks = 0
        last_report = started
        while owner_chunks < target_chunks:
            per_doc = max(1.0, (chunks / documents) if documents else 2.0)
            want = int((target_chunks - owner_chunks) / per_doc) + 1
            n = max(1, min(batch_documents, want))
            written = self.clone_batch(next_doc, n)
            next_doc += n
            documents += n
            chunks += written
            owner_chunks += written
            if time.monotonic() - last_report > 30:
                last_report = time.monotonic()
                rate = chunks / (last_report - started)
                progress(f"  fill: {owner_chunks:,} chunks ({rate:,.0f} chunks/s)")
        fill_seconds = time.monotonic() - started
        vacuum_started = time.monotonic()
        p = self.project
        self._exec(f"VACUUM ANALYZE {p}.chunks, {p}.documents, {p}.collections")
        vacuum_seconds = time.monotonic() - vacuum_started
        owner_chunks, owner_documents = self.owner_counts()
        return FillResult(
            documents=documents,
            chunks=chunks,
            seconds=fill_seconds,
            vacuum_seconds=vacuum_seconds,
            owner_chunks=owner_chunks,
            owner_documents=owner_documents,
        )


# ---------------------------------------------------------------------------------------
# The whole fill on a private stack: templates through the bridge, collections through
# the API, clones in bulk (used by bench_growth.py and bench_throughput.py --fill-chunks).

PROJECT = "r2r_bridge"  # scripts/stack's R2R_PROJECT_NAME (the Postgres schema)
TEMPLATE_TENANT = "growth_template"


def pool_size(chunks: int) -> int:
    """Collections of the service account at *chunks*: ~1 per 100 documents, at least 100."""
    return max(100, chunks // 220)


class GrowthFill:
    """Grows a private stack's R2R (see the module docstring); ``close()`` when done."""

    def __init__(
        self,
        stack: PrivateStack,
        settings: BridgeSettings,
        *,
        templates: int = 400,
        fixed_collections: int = 0,
    ):
        """``fixed_collections`` > 0 keeps the pool at that size (else it grows, pool_size)."""
        self.stack = stack
        self.settings = settings
        self.fixed_collections = fixed_collections
        self.pool: list[uuid.UUID] = []
        self.started = time.monotonic()
        self._seed_templates(templates)
        self._extend_pool(fixed_collections or pool_size(0))
        self.filler = R2RFiller(stack.dsn, PROJECT, self._owner_id())
        self.templates = self.filler.load_templates(TEMPLATE_TENANT, self.pool)

    def grow_to(self, chunks: int) -> FillResult:
        """More collections (as the size needs), then clones up to *chunks*."""
        self._extend_pool(self.fixed_collections or pool_size(chunks))
        self.filler.extend_pool(self.pool)
        return self.filler.grow_to(chunks)

    def close(self) -> None:
        self.filler.close()

    def _login(self) -> dict[str, str]:
        env = self.stack.env
        return {"email": env["R2R_ADMIN_EMAIL"], "password": env["R2R_ADMIN_PASSWORD"]}

    def _seed_templates(self, count: int) -> None:
        """Mirror *count* sample documents through the bridge: the rows the fill copies."""
        sender = R2RDocumentSender(tenant_id=TEMPLATE_TENANT, settings=self.settings)
        docs = onyx_documents(count, prefix="growth_tpl", seed=5)
        with worker_process(self.settings, concurrency=8):
            for i in range(0, len(docs), 100):
                sender.send_batch(docs[i : i + 100])
            wait_synced(sender.ledger, TEMPLATE_TENANT)
        dead = sender.ledger.dead_letters(TEMPLATE_TENANT)
        if dead:
            raise RuntimeError(f"{len(dead)} template documents failed: {dead[:3]}")

    def _extend_pool(self, size: int) -> None:
        """Create collections through R2R's API (as the bridge does) up to *size*."""
        if len(self.pool) >= size:
            return
        with R2RClient(
            self.stack.env["R2R_BASE_URL"], **self._login(), max_connections=8
        ) as client:

            def create(k: int) -> uuid.UUID:
                return client.ensure_collection(collection_name(FILL_TENANT, f"group:g{k:05d}")).id

            with ThreadPoolExecutor(4) as threads:
                self.pool.extend(threads.map(create, range(len(self.pool), size)))

    def _owner_id(self) -> str:
        conn = psycopg2.connect(self.stack.dsn)
        try:
            with conn.cursor() as cur:
                cur.execute(
                    f"SELECT id FROM {PROJECT}.users WHERE email = %s",
                    [self.stack.env["R2R_ADMIN_EMAIL"]],
                )
                return str(cur.fetchone()[0])
        finally:
            conn.close()
