"""SQL of the chunker. Functions flush; the handler's unit of work commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from vectrion_chunker.chunking import Chunk
from vectrion_chunker.models import chunks, inbox
from vectrion_common.ids import chunk_id


async def was_handled(session: AsyncSession, consumer: str, message_id: uuid.UUID) -> bool:
    """A cheap pre-check so a redelivery skips the expensive extraction (the claim still decides)."""
    found = await session.scalar(
        sa.select(sa.literal(1)).where(inbox.c.consumer == consumer, inbox.c.message_id == message_id)
    )
    return found is not None


async def latest_generation(session: AsyncSession, document_id: uuid.UUID) -> int | None:
    value: int | None = await session.scalar(
        sa.select(sa.func.max(chunks.c.generation)).where(chunks.c.document_id == document_id)
    )
    return value


async def delete_older_generations(session: AsyncSession, document_id: uuid.UUID, generation: int) -> int:
    result = await session.execute(
        sa.delete(chunks).where(chunks.c.document_id == document_id, chunks.c.generation < generation)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def delete_document_chunks(session: AsyncSession, document_id: uuid.UUID) -> int:
    result = await session.execute(sa.delete(chunks).where(chunks.c.document_id == document_id))
    return int(getattr(result, "rowcount", 0) or 0)


async def insert_chunks(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    document_id: uuid.UUID,
    generation: int,
    items: Sequence[Chunk],
    verdicts: Sequence[dict[str, Any] | None] | None = None,
) -> int:
    """One bulk insert; rows already there (same document, generation, index) are left alone.
    Returns how many rows were new."""
    if not items:
        return 0
    rows = [
        {
            "id": chunk_id(document_id, generation, c.chunk_index),
            "tenant_id": tenant_id,
            "document_id": document_id,
            "generation": generation,
            "chunk_index": c.chunk_index,
            "text": c.text,
            "page_start": c.page_start,
            "page_end": c.page_end,
            "content_hash": c.content_hash,
            "guardrail_verdict": verdicts[i] if verdicts is not None else None,
        }
        for i, c in enumerate(items)
    ]
    result = await session.execute(insert(chunks).values(rows).on_conflict_do_nothing().returning(chunks.c.id))
    return len(result.all())
