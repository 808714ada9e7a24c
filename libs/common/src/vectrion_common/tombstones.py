"""Tombstones: what a service remembers of a document it deleted.

A deleted document's late pipeline events (a batch still in a queue, a retry
coming back from a delay queue) must not bring it back. Each service that holds
document data keeps a ``deleted_documents`` table; its deletion handler writes
the tombstone and removes the data in ONE transaction, and every writer of
document data checks the tombstone inside its own transaction, both under the
same per-document lock (:func:`lock_document`), so the two can never interleave.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID, insert
from sqlalchemy.ext.asyncio import AsyncSession

from vectrion_common.contracts import (
    DeletionStage,
    DocumentDeletionConfirmedV1,
    DocumentDeletionRequestedV1,
    DocumentHoldings,
)


def tombstone_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "deleted_documents",
        metadata,
        sa.Column("document_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


async def lock_document(session: AsyncSession, document_id: uuid.UUID) -> None:
    """Serialise this service's transactions on one document until commit (an advisory lock:
    it needs no row to exist yet)."""
    await session.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(str(document_id), 0))))


async def add_tombstone(session: AsyncSession, table: sa.Table, tenant_id: uuid.UUID, document_id: uuid.UUID) -> None:
    await session.execute(insert(table).values(document_id=document_id, tenant_id=tenant_id).on_conflict_do_nothing())


async def is_deleted(session: AsyncSession, table: sa.Table, document_id: uuid.UUID) -> bool:
    found = await session.scalar(sa.select(sa.literal(1)).where(table.c.document_id == document_id))
    return found is not None


async def deleted_among(session: AsyncSession, table: sa.Table, document_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    if not document_ids:
        return set()
    rows = await session.execute(sa.select(table.c.document_id).where(table.c.document_id.in_(document_ids)))
    return {r.document_id for r in rows}


def deletion_confirmed(
    request: DocumentDeletionRequestedV1, stage: DeletionStage, removed: int
) -> DocumentDeletionConfirmedV1:
    """A stage's confirmation; its id derives from the request's, so a redelivered request that
    somehow got past the inbox still confirms once."""
    return DocumentDeletionConfirmedV1(
        event_id=uuid.uuid5(request.event_id, stage),
        trace=request.trace,
        tenant_id=request.tenant_id,
        document_id=request.document_id,
        generation=request.generation,
        stage=stage,
        removed=removed,
    )


async def holdings(session: AsyncSession, rows: sa.Table, tombstones: sa.Table) -> dict[uuid.UUID, DocumentHoldings]:
    """What a stage holds, for the reconciler: ``rows`` (with document_id, tenant_id, generation)
    counted per document and generation, plus every tombstoned document."""
    found: dict[uuid.UUID, DocumentHoldings] = {}
    counted = await session.execute(
        sa.select(rows.c.document_id, rows.c.tenant_id, rows.c.generation, sa.func.count()).group_by(
            rows.c.document_id, rows.c.tenant_id, rows.c.generation
        )
    )
    for document_id, tenant_id, generation, count in counted:
        entry = found.setdefault(document_id, DocumentHoldings(document_id=document_id, tenant_id=tenant_id))
        entry.rows[generation] = count
    for document_id, tenant_id in await session.execute(sa.select(tombstones.c.document_id, tombstones.c.tenant_id)):
        entry = found.setdefault(document_id, DocumentHoldings(document_id=document_id, tenant_id=tenant_id))
        entry.tombstoned = True
    return found
