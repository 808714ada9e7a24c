"""Tables of the ``query`` schema: the chunk read model, indexing progress, conversations."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID

from vectrion_common.db import service_metadata
from vectrion_common.messaging.inbox import inbox_table
from vectrion_common.messaging.outbox import outbox_table
from vectrion_common.tombstones import tombstone_table

metadata = service_metadata("query")

# What retrieval serves: chunk text + the metadata needed to filter and cite it.
# Filled from chunks.embedded.v1; the text served to users comes from here, not
# from the Qdrant payload.
chunks = sa.Table(
    "chunks",
    metadata,
    sa.Column("chunk_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
    sa.Column("document_id", UUID(as_uuid=True), nullable=False),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("chunk_index", sa.Integer, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("page_start", sa.Integer),
    sa.Column("page_end", sa.Integer),
    sa.Column("filename", sa.Text, nullable=False),
    sa.Column("owner_id", UUID(as_uuid=True), nullable=False),
    sa.Column("visibility", sa.Text, nullable=False),
    # The chunker's injection scan of the text at ingestion (a GuardrailVerdict; NULL: not scanned).
    sa.Column("guardrail_verdict", JSONB(none_as_null=True)),
    # Tokens of the text by the service's usage tokenizer (tokens.py), counted once when indexed;
    # NULL (rows from before): counted when used.
    sa.Column("token_count", sa.Integer),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.UniqueConstraint("document_id", "generation", "chunk_index", name="uq_chunks_document_generation_index"),
    sa.CheckConstraint("visibility IN ('tenant', 'private')", name="visibility"),
)
sa.Index("ix_chunks_tenant_id", chunks.c.tenant_id)

# One row per (document, generation): how far indexing is, and whether
# document.indexed.v1 has been staged (so it is staged exactly once).
document_progress = sa.Table(
    "document_progress",
    metadata,
    sa.Column("document_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("generation", sa.Integer, primary_key=True),
    sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
    # NULL until the batch that knows it arrives (chunks.embedded.v2: the last one; v1: any).
    sa.Column("total_chunks", sa.Integer, nullable=True),
    sa.Column("indexed_chunks", sa.Integer, nullable=False, server_default="0"),
    sa.Column("indexed_event_emitted", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

conversations = sa.Table(
    "conversations",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
    sa.Column("user_id", UUID(as_uuid=True), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)
sa.Index("ix_conversations_owner", conversations.c.tenant_id, conversations.c.user_id, conversations.c.created_at)

# Each message keeps what produced it: retrieved chunk ids + scores, guardrail
# verdicts, the answerer, token usage (with the tokenizer used) and latencies.
messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column(
        "conversation_id",
        UUID(as_uuid=True),
        sa.ForeignKey("conversations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("citations", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("retrieved", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("guardrails", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("answerer", sa.Text),
    # 0002: who answered with what, and the standalone form of a (follow-up) user question.
    sa.Column("provider", sa.Text),
    sa.Column("model", sa.Text),
    sa.Column("prompt_version", sa.Text),
    sa.Column("standalone_question", sa.Text),
    sa.Column("usage", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("latency_ms", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint("role IN ('user', 'assistant')", name="role"),
)
sa.Index("ix_messages_conversation", messages.c.conversation_id, messages.c.created_at)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
# Documents deleted here: their late pipeline events are dropped (see vectrion_common.tombstones).
deleted_documents = tombstone_table(metadata)
