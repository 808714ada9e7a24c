"""The chunker's tables, all in schema ``chunker``."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID

from vectrion_common.db import service_metadata
from vectrion_common.messaging.inbox import inbox_table
from vectrion_common.messaging.outbox import outbox_table
from vectrion_common.tombstones import tombstone_table

metadata = service_metadata("chunker")

chunks = sa.Table(
    "chunks",
    metadata,
    # vectrion_common.ids.chunk_id(document_id, generation, chunk_index): the same id the query side uses.
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
    sa.Column("document_id", UUID(as_uuid=True), nullable=False),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("chunk_index", sa.Integer, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("page_start", sa.Integer, nullable=True),
    sa.Column("page_end", sa.Integer, nullable=True),
    sa.Column("content_hash", sa.String(64), nullable=False),
    # The guardrails verdict on this chunk's text (indirect prompt injection); NULL = not scanned.
    sa.Column("guardrail_verdict", JSONB, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.UniqueConstraint("document_id", "generation", "chunk_index"),
    sa.Index("ix_chunks_tenant_id_document_id", "tenant_id", "document_id"),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
# Documents deleted here: their late pipeline events are dropped (see vectrion_common.tombstones).
deleted_documents = tombstone_table(metadata)
