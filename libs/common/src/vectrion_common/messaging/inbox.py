"""Inbox: exactly-once effects for at-least-once delivery.

A consumer claims ``(consumer, message_id)`` in the same transaction as its
writes. A redelivered or republished message finds its claim already there and
the handler skips it; if the handler fails, the claim rolls back with its work.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID, insert
from sqlalchemy.ext.asyncio import AsyncSession


def inbox_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "inbox",
        metadata,
        sa.Column("consumer", sa.Text, primary_key=True),
        sa.Column("message_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


async def claim_message(session: AsyncSession, inbox: sa.Table, consumer: str, message_id: uuid.UUID) -> bool:
    """True if this is the first time ``consumer`` handles ``message_id``."""
    result = await session.execute(
        insert(inbox)
        .values(consumer=consumer, message_id=message_id)
        .on_conflict_do_nothing()
        .returning(inbox.c.message_id)
    )
    return result.first() is not None
