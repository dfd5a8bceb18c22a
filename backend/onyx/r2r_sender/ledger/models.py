"""SQLAlchemy models of the ledger, in the engine's own schema ``r2r_bridge``.

One row per (tenant, host document id) holds the *desired* state written by
hosts and the *applied* state written by workers.  There is no foreign key to
any host (Onyx) table: the engine lives beside its host, not inside it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA = "r2r_bridge"
VERSION_TABLE = "alembic_version"


class DocStatus:
    """Values of ``document_state.status``."""

    PENDING = "pending"  # desired != applied; due at next_attempt_at
    SYNCED = "synced"  # applied == desired
    DEAD = "dead"  # dead letter: needs a replay (or new desired state)

    ALL = (PENDING, SYNCED, DEAD)


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA)


class DocumentState(Base):
    """Desired vs applied state of one host document in R2R."""

    __tablename__ = "document_state"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "document_id"),
        # the claim query: due rows of one tenant, oldest first
        Index(
            "ix_document_state_due",
            "tenant_id",
            "next_attempt_at",
            "document_id",
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_document_state_status", "tenant_id", "status"),
    )

    tenant_id: Mapped[str] = mapped_column(Text)
    document_id: Mapped[str] = mapped_column(Text)

    # desired (hosts write these, one short transaction per batch)
    desired_seq: Mapped[int] = mapped_column(BigInteger, default=1)
    desired_version: Mapped[str | None] = mapped_column(Text)
    desired_deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    desired_labels: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    desired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    # applied (only the worker holding the document's lock writes these)
    applied_seq: Mapped[int | None] = mapped_column(BigInteger)
    applied_version: Mapped[str | None] = mapped_column(Text)
    applied_deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    applied_r2r_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    applied_labels: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    applied_collections: Mapped[list[uuid.UUID] | None] = mapped_column(ARRAY(UUID(as_uuid=True)))
    applied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # R2R ids this engine may have created that are not the applied one
    # (an interrupted create, an old version): deleted by the next apply.
    pending_r2r_ids: Mapped[list[uuid.UUID]] = mapped_column(
        ARRAY(UUID(as_uuid=True)), default=list
    )

    # scheduling and errors
    status: Mapped[str] = mapped_column(Text, default=DocStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    last_error_class: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class DocumentPayload(Base):
    """The latest desired content of a document (what a worker sends to R2R)."""

    __tablename__ = "document_payload"
    # no foreign key to document_state (migration 0006): the ledger writes a payload only
    # with its state row, a delete trigger on document_state removes it with that row, and
    # the key's per-row check cost every send_batch 0.5-0.8 ms per 100 new documents
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "document_id"),)

    tenant_id: Mapped[str] = mapped_column(Text)
    document_id: Mapped[str] = mapped_column(Text)
    version: Mapped[str] = mapped_column(Text)
    text_content: Mapped[str | None] = mapped_column(Text)
    chunks: Mapped[list[str] | None] = mapped_column(JSONB)
    r2r_metadata: Mapped[dict[str, Any]] = mapped_column(JSONB)


class CollectionMap(Base):
    """ACL principal (or the tenant itself) → R2R collection id, resolved once."""

    __tablename__ = "collection_map"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "principal"),)

    tenant_id: Mapped[str] = mapped_column(Text)
    principal: Mapped[str] = mapped_column(Text)
    r2r_collection_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    name: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class TenantConfig(Base):
    """A tenant's R2R server, its credential (secrets encrypted at rest) and export switch.

    Owned by :mod:`onyx.r2r_sender.credentials`; secrets are never stored in clear.
    """

    __tablename__ = "tenant_config"

    tenant_id: Mapped[str] = mapped_column(Text, primary_key=True)
    credential_type: Mapped[str] = mapped_column(Text, default="r2r_api")
    base_url: Mapped[str] = mapped_column(Text)
    api_key_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    login_email: Mapped[str | None] = mapped_column(Text)
    password_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    secret_hint: Mapped[str | None] = mapped_column(Text)
    key_version: Mapped[int] = mapped_column(Integer, default=1)
    # None: the admin stored no export choice (the environment decides)
    export_enabled: Mapped[bool | None] = mapped_column(Boolean, nullable=True, default=None)
    export_mode: Mapped[str] = mapped_column(Text, default="mirror")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SyncCursor(Base):
    """The resumable cursor of a long job (backfill, reconciliation) of one tenant."""

    __tablename__ = "sync_cursor"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "job"),)

    tenant_id: Mapped[str] = mapped_column(Text)
    job: Mapped[str] = mapped_column(Text)
    cursor: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    state: Mapped[str] = mapped_column(Text, default="idle")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ReconcileRun(Base):
    """One reconciliation run of a tenant and what it found and repaired."""

    __tablename__ = "reconcile_run"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str] = mapped_column(Text, default="running")
    result: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
