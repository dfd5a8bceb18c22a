"""What Onyx pays to hand a batch on: an emulation of ``FileStoreDocumentBatchStorage.store_batch``
on Onyx's PostgreSQL file store (benchmark 2's baseline).

Onyx a7d66a8 (``backend/onyx/file_store/document_batch_storage.py`` and
``postgres_file_store.py``, ``FILE_STORE_BACKEND=postgres``) does, per batch:

1. ``json.dumps([doc.model_dump(mode="json") for doc in documents], indent=2)``, wrapped in a
   ``StringIO`` and encoded to UTF-8 bytes;
2. in one SQLAlchemy session on a pooled psycopg2 connection (``pool_pre_ping``):
   a. ``SELECT`` the file's existing ``file_content`` row (to unlink an overwritten object);
   b. a new PostgreSQL Large Object: ``lobject(0, "wb")``, ``write(bytes)``, ``close()``;
   c. ``INSERT … ON CONFLICT (file_id) DO UPDATE`` into ``file_record`` (display name,
      origin, type, JSONB metadata ``{"batch_num", "document_count"}``, bucket ``postgres``,
      object key = the OID, size);
   d. ``INSERT … ON CONFLICT DO UPDATE`` into ``file_content`` (file id, OID, size), then
      ``session.get(FileContent, file_id)`` (a ``SELECT``: the identity map is empty);
   e. ``COMMIT``.

This module issues the same statements in the same order, on tables shaped like Onyx's
(``file_record``, ``file_content`` with its cascading foreign key) in a scratch schema
(one per run) of the ledger's database, through the same driver and an engine configured like Onyx's
(pooled, ``pool_pre_ping``).  Written for this benchmark; no Onyx code is imported or copied.
Not emulated: Onyx's default ``FILE_STORE_BACKEND=s3`` (an object-store round trip instead of
the Large Object) and its logging.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from io import StringIO
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session


class OnyxFileStoreEmulation:
    """``store_batch`` as Onyx's PostgreSQL file store runs it (see the module doc)."""

    def __init__(self, database_url: str) -> None:
        self.engine: Engine = create_engine(
            database_url, pool_size=5, max_overflow=10, pool_pre_ping=True
        )
        self.index_attempt = uuid.uuid4().hex[:8]
        self.schema = schema = f"bench_onyx_file_store_{self.index_attempt}"
        with self.engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {schema}"))
            conn.execute(
                text(
                    f"CREATE TABLE {schema}.file_record ("
                    " file_id varchar PRIMARY KEY, display_name varchar,"
                    " file_origin varchar(20) NOT NULL, file_type varchar NOT NULL,"
                    " file_metadata jsonb, bucket_name varchar NOT NULL,"
                    " object_key varchar NOT NULL, file_size bigint,"
                    " created_at timestamptz NOT NULL DEFAULT now(),"
                    " updated_at timestamptz NOT NULL DEFAULT now())"
                )
            )
            conn.execute(
                text(
                    f"CREATE TABLE {schema}.file_content ("
                    f" file_id varchar PRIMARY KEY REFERENCES {schema}.file_record(file_id)"
                    "  ON DELETE CASCADE,"
                    " lobj_oid bigint NOT NULL, file_size bigint NOT NULL DEFAULT 0)"
                )
            )

    def store_batch(self, batch_num: int, documents: Sequence[Any]) -> str:
        """Serialise *documents* and save them as one file, committed; return its id."""
        schema = self.schema
        file_id = f"iab/1/{self.index_attempt}/{batch_num}.json"
        data = json.dumps([doc.model_dump(mode="json") for doc in documents], indent=2)
        content = StringIO(data)
        raw = content.read()
        file_bytes = raw.encode("utf-8") if isinstance(raw, str) else raw
        with Session(self.engine) as session:
            try:
                existing = session.execute(
                    text(f"SELECT lobj_oid FROM {schema}.file_content WHERE file_id = :f LIMIT 1"),
                    {"f": file_id},
                ).first()
                raw_conn = session.connection().connection.dbapi_connection
                lobj = raw_conn.lobject(0, "wb")
                lobj.write(file_bytes)
                oid = lobj.oid
                lobj.close()
                session.execute(
                    text(
                        f"INSERT INTO {schema}.file_record (file_id, display_name, file_origin, "
                        "file_type, file_metadata, bucket_name, object_key, file_size) "
                        "VALUES (:f, :d, :o, :t, CAST(:m AS jsonb), :b, :k, :s) "
                        "ON CONFLICT (file_id) DO UPDATE SET display_name = EXCLUDED.display_name, "
                        "file_origin = EXCLUDED.file_origin, file_type = EXCLUDED.file_type, "
                        "file_metadata = EXCLUDED.file_metadata, bucket_name = EXCLUDED.bucket_name, "
                        "object_key = EXCLUDED.object_key, file_size = EXCLUDED.file_size, "
                        "updated_at = now()"
                    ),
                    {
                        "f": file_id,
                        "d": f"Document Batch {batch_num}",
                        "o": "OTHER",
                        "t": "application/json",
                        "m": json.dumps(
                            {"batch_num": batch_num, "document_count": str(len(documents))}
                        ),
                        "b": "postgres",
                        "k": str(oid),
                        "s": len(file_bytes),
                    },
                )
                session.execute(
                    text(
                        f"INSERT INTO {schema}.file_content (file_id, lobj_oid, file_size) "
                        "VALUES (:f, :o, :s) ON CONFLICT (file_id) DO UPDATE SET "
                        "lobj_oid = EXCLUDED.lobj_oid, file_size = EXCLUDED.file_size"
                    ),
                    {"f": file_id, "o": oid, "s": len(file_bytes)},
                )
                session.execute(
                    text(
                        f"SELECT file_id, lobj_oid, file_size FROM {schema}.file_content "
                        "WHERE file_id = :f"
                    ),
                    {"f": file_id},
                ).first()
                if existing is not None and existing.lobj_oid != oid:
                    raw_conn.lobject(existing.lobj_oid, "n").unlink()
                session.commit()
            except Exception:
                session.rollback()
                raise
        return file_id

    def close(self) -> None:
        """Unlink every Large Object written, drop the scratch schema, close the pool."""
        schema = self.schema
        with self.engine.begin() as conn:
            conn.execute(text(f"SELECT lo_unlink(lobj_oid) FROM {schema}.file_content"))
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        self.engine.dispose()
