"""Tables of the ``ingest`` schema. Only ingest reads or writes them."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID

from vectrion_common.db import service_metadata
from vectrion_common.messaging.inbox import inbox_table
from vectrion_common.messaging.outbox import outbox_table

metadata = service_metadata("ingest")

documents = sa.Table(
    "documents",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
    sa.Column("owner_id", UUID(as_uuid=True), nullable=False),
    sa.Column("filename", sa.Text, nullable=False),
    sa.Column("content_type", sa.Text, nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.Text, nullable=False),
    sa.Column("storage_key", sa.Text, nullable=False),
    sa.Column("visibility", sa.Text, nullable=False, server_default="tenant"),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    # pipeline runs requested for this document: 1 at upload, +1 per reprocess
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("pages", sa.Integer, nullable=True),
    sa.Column("pages_without_text", sa.Integer, nullable=True),
    sa.Column("chunks", sa.Integer, nullable=True),
    sa.Column("generation", sa.Integer, nullable=False, server_default="1"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    # The deletion saga: when it was asked for, when each stage confirmed, when the file went.
    sa.Column("deletion_requested_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("index_removed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("chunks_removed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("visibility IN ('tenant', 'private')", name="visibility"),
    sa.CheckConstraint(
        "status IN ('uploaded', 'processing', 'processed', 'indexed', 'failed', 'deleting', 'deleted')",
        name="status",
    ),
    sa.Index("ix_documents_tenant_id_created_at", "tenant_id", "created_at"),
    sa.Index("ix_documents_status_updated_at", "status", "updated_at"),
    # Dedupe covers live documents only: once deleted, the same bytes may be uploaded again.
    sa.Index(
        "uq_documents_live_tenant_id_sha256",
        "tenant_id",
        "sha256",
        unique=True,
        postgresql_where=sa.text("status NOT IN ('deleting', 'deleted')"),
    ),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
