"""SQL of the query schema. Functions flush; the caller's unit of work commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from vectrion_query.access import TENANT_VISIBILITY, AccessScope
from vectrion_query.models import chunks, conversations, document_progress, messages

# --- chunk read model + indexing progress ------------------------------------------


async def insert_chunks(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    """Bulk insert; rows already present (redelivery) are left alone. Returns rows inserted."""
    if not rows:
        return 0
    result = await session.execute(
        insert(chunks)
        .values(list(rows))
        .on_conflict_do_nothing(index_elements=[chunks.c.chunk_id])
        .returning(chunks.c.chunk_id)
    )
    return len(result.all())


@dataclass(frozen=True, slots=True)
class Progress:
    total_chunks: int | None  # None: the document's last batch has not arrived yet
    indexed_event_emitted: bool


async def lock_progress(
    session: AsyncSession, document_id: uuid.UUID, generation: int, tenant_id: uuid.UUID, total_chunks: int | None
) -> Progress:
    """Create the progress row if needed and lock it, so concurrent batches of one document serialise here.
    A known ``total_chunks`` fills the row's when that is still unknown (batches arrive in any order)."""
    await session.execute(
        insert(document_progress)
        .values(document_id=document_id, generation=generation, tenant_id=tenant_id, total_chunks=total_chunks)
        .on_conflict_do_nothing()
    )
    row = (
        await session.execute(
            sa.select(document_progress.c.total_chunks, document_progress.c.indexed_event_emitted)
            .where(document_progress.c.document_id == document_id, document_progress.c.generation == generation)
            .with_for_update()
        )
    ).one()
    total: int | None = row.total_chunks
    if total is None and total_chunks is not None:
        await session.execute(
            sa.update(document_progress)
            .where(document_progress.c.document_id == document_id, document_progress.c.generation == generation)
            .values(total_chunks=total_chunks)
        )
        total = total_chunks
    return Progress(total_chunks=total, indexed_event_emitted=row.indexed_event_emitted)


async def newest_indexed_generation(session: AsyncSession, document_id: uuid.UUID) -> int | None:
    value: int | None = await session.scalar(
        sa.select(sa.func.max(document_progress.c.generation)).where(
            document_progress.c.document_id == document_id, document_progress.c.indexed_event_emitted
        )
    )
    return value


async def delete_generations_before(session: AsyncSession, document_id: uuid.UUID, generation: int) -> int:
    """Read-model rows and progress of the document's older generations; returns chunk rows deleted."""
    result = await session.execute(
        sa.delete(chunks).where(chunks.c.document_id == document_id, chunks.c.generation < generation)
    )
    await session.execute(
        sa.delete(document_progress).where(
            document_progress.c.document_id == document_id, document_progress.c.generation < generation
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def delete_document_rows(session: AsyncSession, document_id: uuid.UUID) -> int:
    """Every read-model row and progress row of the document, all generations; returns chunk rows."""
    result = await session.execute(sa.delete(chunks).where(chunks.c.document_id == document_id))
    await session.execute(sa.delete(document_progress).where(document_progress.c.document_id == document_id))
    return int(getattr(result, "rowcount", 0) or 0)


REDACTED_ANSWER = "[This answer was removed: a document it cited has been deleted.]"


_REDACT_ANSWERS = f"""
UPDATE {messages.fullname} SET
  content = CAST(:content AS text),
  citations = (
    SELECT coalesce(jsonb_agg(
      CASE WHEN c->>'document_id' = CAST(:document_id AS text)
        THEN (c - 'quote') || '{{"deleted": true}}'::jsonb ELSE c END
      ORDER BY n), '[]'::jsonb)
    FROM jsonb_array_elements(citations) WITH ORDINALITY AS t(c, n))
WHERE citations @> jsonb_build_array(jsonb_build_object('document_id', CAST(:document_id AS text)))
"""


async def redact_answers_citing(session: AsyncSession, document_id: uuid.UUID) -> int:
    """Conversation history must not keep a deleted document's text: answers that cite it lose
    their text and that document's quotes (the citation stays, marked deleted)."""
    result = await session.execute(
        sa.text(_REDACT_ANSWERS), {"content": REDACTED_ANSWER, "document_id": str(document_id)}
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def count_chunks(session: AsyncSession, document_id: uuid.UUID, generation: int) -> int:
    count = await session.scalar(
        sa.select(sa.func.count()).where(chunks.c.document_id == document_id, chunks.c.generation == generation)
    )
    return int(count or 0)


async def update_progress(
    session: AsyncSession, document_id: uuid.UUID, generation: int, indexed_chunks: int, emitted: bool
) -> None:
    await session.execute(
        sa.update(document_progress)
        .where(document_progress.c.document_id == document_id, document_progress.c.generation == generation)
        .values(indexed_chunks=indexed_chunks, indexed_event_emitted=emitted, updated_at=sa.func.now())
    )


def _visible_to(scope: AccessScope) -> sa.ColumnElement[bool]:
    """The read-model twin of the vector store's scope filter (defence in depth)."""
    return sa.and_(
        chunks.c.tenant_id == scope.tenant_id,
        sa.or_(chunks.c.visibility == TENANT_VISIBILITY, chunks.c.owner_id == scope.user_id),
    )


async def fetch_visible_chunks(
    session: AsyncSession, chunk_ids: Sequence[uuid.UUID], scope: AccessScope
) -> dict[uuid.UUID, Any]:
    if not chunk_ids:
        return {}
    rows = (
        await session.execute(
            sa.select(
                chunks.c.chunk_id,
                chunks.c.document_id,
                chunks.c.generation,
                chunks.c.chunk_index,
                chunks.c.text,
                chunks.c.page_start,
                chunks.c.page_end,
                chunks.c.filename,
                chunks.c.guardrail_verdict,
                chunks.c.token_count,
            ).where(chunks.c.chunk_id.in_(list(chunk_ids)), _visible_to(scope))
        )
    ).all()
    return {row.chunk_id: row for row in rows}


async def tenant_chunks_for_lexical(session: AsyncSession, tenant_id: uuid.UUID) -> list[Any]:
    """Everything the lexical index of one tenant holds (it filters visibility per query)."""
    rows = await session.execute(
        sa.select(chunks.c.chunk_id, chunks.c.text, chunks.c.owner_id, chunks.c.visibility)
        .where(chunks.c.tenant_id == tenant_id)
        .order_by(chunks.c.chunk_id)
    )
    return list(rows.all())


# --- conversations -----------------------------------------------------------------------


def _owned_by(scope: AccessScope) -> sa.ColumnElement[bool]:
    return sa.and_(conversations.c.tenant_id == scope.tenant_id, conversations.c.user_id == scope.user_id)


async def conversation_exists(session: AsyncSession, conversation_id: uuid.UUID, scope: AccessScope) -> bool:
    found = await session.scalar(
        sa.select(conversations.c.id).where(conversations.c.id == conversation_id, _owned_by(scope))
    )
    return found is not None


async def recent_user_turns(session: AsyncSession, conversation_id: uuid.UUID, limit: int) -> list[str]:
    """The user's last ``limit`` questions in the conversation, oldest first (for split-turn attacks)."""
    rows = await session.scalars(
        sa.select(messages.c.content)
        .where(messages.c.conversation_id == conversation_id, messages.c.role == "user")
        .order_by(messages.c.created_at.desc())
        .limit(limit)
    )
    return list(reversed(rows.all()))


async def add_messages(
    session: AsyncSession,
    rows: Sequence[dict[str, Any]],
    new_conversation: tuple[uuid.UUID, AccessScope, str] | None = None,
) -> None:
    """The messages of one exchange, and its conversation when it is new, in ONE statement.

    ``new_conversation`` = (id, owner scope, title): the conversation row and every message
    but the last are inserted by data-modifying CTEs of the INSERT of the last message, so a
    question and its answer are stored in one round trip, all or nothing. Each is a one-row
    INSERT with the columns its row sets (the others get the table's defaults): unlike a
    multi-row VALUES, such a statement has a cache key, and SQLAlchemy compiles it once per
    shape instead of at every answer (2-3 ms of CPU each time).
    """
    if not rows:
        return
    *earlier, last = rows
    statement = sa.insert(messages).values(last)
    for index, row in enumerate(earlier):
        statement = statement.add_cte(sa.insert(messages).values(row).cte(f"message_{index}"))
    if new_conversation is not None:
        conversation_id, scope, title = new_conversation
        statement = statement.add_cte(
            sa.insert(conversations)
            .values(id=conversation_id, tenant_id=scope.tenant_id, user_id=scope.user_id, title=title)
            .cte("new_conversation")
        )
    await session.execute(statement)


async def recent_turns(
    session: AsyncSession, conversation_id: uuid.UUID, scope: AccessScope, limit: int
) -> list[tuple[str, str]]:
    """The last ``limit`` messages (oldest first) of a conversation the scope owns; user turns as standalone."""
    if limit <= 0:
        return []
    rows = (
        await session.execute(
            sa.select(messages.c.role, sa.func.coalesce(messages.c.standalone_question, messages.c.content))
            .join(conversations, conversations.c.id == messages.c.conversation_id)
            .where(messages.c.conversation_id == conversation_id, _owned_by(scope))
            .order_by(messages.c.created_at.desc(), messages.c.role)  # newest first; assistant after user
            .limit(limit)
        )
    ).all()
    return [(row[0], row[1]) for row in reversed(rows)]


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    id: uuid.UUID
    title: str
    created_at: datetime
    message_count: int


async def list_conversations(session: AsyncSession, scope: AccessScope, limit: int) -> list[ConversationSummary]:
    count = sa.select(sa.func.count()).where(messages.c.conversation_id == conversations.c.id).scalar_subquery()
    rows = (
        await session.execute(
            sa.select(conversations.c.id, conversations.c.title, conversations.c.created_at, count.label("n"))
            .where(_owned_by(scope))
            .order_by(conversations.c.created_at.desc(), conversations.c.id)
            .limit(limit)
        )
    ).all()
    return [ConversationSummary(r.id, r.title, r.created_at, r.n) for r in rows]


async def get_conversation(
    session: AsyncSession, conversation_id: uuid.UUID, scope: AccessScope
) -> tuple[ConversationSummary, list[sa.Row[Any]]] | None:
    head = (
        await session.execute(
            sa.select(conversations.c.id, conversations.c.title, conversations.c.created_at).where(
                conversations.c.id == conversation_id, _owned_by(scope)
            )
        )
    ).first()
    if head is None:
        return None
    rows = (
        await session.execute(
            sa.select(messages)
            .where(messages.c.conversation_id == conversation_id)
            .order_by(messages.c.created_at, messages.c.role.desc())  # user before assistant at equal times
        )
    ).all()
    return ConversationSummary(head.id, head.title, head.created_at, len(rows)), list(rows)
