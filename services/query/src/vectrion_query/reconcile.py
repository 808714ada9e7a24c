"""The query service's half of the reconciler: compare the read model with the Qdrant points,
repair what is safe to repair here, and report what it holds per document for ingest to judge.

Repaired here (never touching a generation still being indexed):
- points and rows of a tombstoned (deleted) document;
- points and rows of generations older than the document's newest indexed one;
- points of a fully indexed generation whose chunk has no read-model row (a batch
  upserted and then lost its transaction for good).
Everything else (rows without points, documents ingest does not know) is only
reported: ingest decides between a reprocess and a deletion.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vectrion_common import tombstones
from vectrion_common.contracts import DocumentHoldings, StageInventory
from vectrion_common.db import unit_of_work
from vectrion_common.logs import get_logger
from vectrion_common.tombstones import lock_document
from vectrion_query import repository
from vectrion_query.models import chunks, deleted_documents, document_progress
from vectrion_query.vector_store import VectorStore

log = get_logger(__name__)


async def _newest_indexed(session: AsyncSession) -> dict[uuid.UUID, int]:
    rows = await session.execute(
        sa.select(document_progress.c.document_id, sa.func.max(document_progress.c.generation))
        .where(document_progress.c.indexed_event_emitted)
        .group_by(document_progress.c.document_id)
    )
    return {document_id: generation for document_id, generation in rows}


async def reconcile_index(
    store: VectorStore, sessions: async_sessionmaker[AsyncSession], *, repair: bool
) -> StageInventory:
    points = await store.stored_points()
    async with sessions() as session:
        holdings = await tombstones.holdings(session, chunks, deleted_documents)
        newest = await _newest_indexed(session)
        row_ids = set((await session.scalars(sa.select(chunks.c.chunk_id))).all())

    repaired: Counter[str] = Counter()
    points_by_document: dict[uuid.UUID, Counter[int]] = defaultdict(Counter)
    orphans: list[uuid.UUID] = []
    for point in points:
        points_by_document[point.document_id][point.generation] += 1
        entry = holdings.setdefault(
            point.document_id, DocumentHoldings(document_id=point.document_id, tenant_id=point.tenant_id)
        )
        if point.chunk_id not in row_ids and newest.get(point.document_id) == point.generation:
            orphans.append(point.chunk_id)
        entry.points[point.generation] = points_by_document[point.document_id][point.generation]

    if repair:
        for entry in holdings.values():
            if entry.tombstoned and (entry.rows or entry.points):
                await _drop_document(store, sessions, entry)
                repaired["deleted_document_leftovers"] += 1
            elif (generation := newest.get(entry.document_id)) is not None and any(
                g < generation for g in (*entry.rows, *entry.points)
            ):
                await _drop_older(store, sessions, entry, generation)
                repaired["older_generations"] += 1
        if orphans:
            await store.delete_points(orphans)
            repaired["orphan_points"] = len(orphans)
            for entry in holdings.values():
                generation = newest.get(entry.document_id)
                if generation is not None and generation in entry.points:
                    entry.points[generation] = min(entry.points[generation], entry.rows.get(generation, 0))
    if repaired:
        log.warning("reconcile.repaired", **repaired)
    return StageInventory(stage="query", documents=list(holdings.values()), repaired=dict(repaired))


async def _drop_document(
    store: VectorStore, sessions: async_sessionmaker[AsyncSession], entry: DocumentHoldings
) -> None:
    async with unit_of_work(sessions) as session:
        await lock_document(session, entry.document_id)
        await repository.delete_document_rows(session, entry.document_id)
    await store.delete_document(entry.document_id)
    entry.rows.clear()
    entry.points.clear()


async def _drop_older(
    store: VectorStore, sessions: async_sessionmaker[AsyncSession], entry: DocumentHoldings, generation: int
) -> None:
    async with unit_of_work(sessions) as session:
        await lock_document(session, entry.document_id)
        await repository.delete_generations_before(session, entry.document_id, generation)
    await store.delete_generations_before(entry.document_id, generation)
    for counts in (entry.rows, entry.points):
        for older in [g for g in counts if g < generation]:
            del counts[older]
