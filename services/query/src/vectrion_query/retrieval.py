"""Retrieval: embed the query, search the caller's scope, read the text from the read model.

The vector store ranks; PostgreSQL serves the text (never the Qdrant payload)
and re-checks visibility. Rank is preserved, and at most
``max_chunks_per_page`` results come from one page, so a single dense page
cannot crowd out everything else.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vectrion_query import repository
from vectrion_query.access import AccessScope
from vectrion_query.query_embedding import QueryEmbedder
from vectrion_query.vector_store import VectorStore

# Ask the index for more than we return, so that diversity and visibility
# filtering still leave top_k results.
OVERSAMPLE = 3


@dataclass(frozen=True, slots=True)
class RetrievedChunk:
    chunk_id: uuid.UUID
    document_id: uuid.UUID
    filename: str
    page: int | None
    page_end: int | None
    text: str
    score: float


@dataclass(slots=True)
class Retrieval:
    chunks: list[RetrievedChunk]
    latency_ms: dict[str, float] = field(default_factory=dict)


def limit_per_page(chunks: Iterable[RetrievedChunk], max_per_page: int, top_k: int) -> list[RetrievedChunk]:
    """Keep rank order, drop a chunk once its (document, page) already has ``max_per_page``."""
    taken: Counter[tuple[uuid.UUID, int | None]] = Counter()
    kept: list[RetrievedChunk] = []
    for chunk in chunks:
        key = (chunk.document_id, chunk.page)
        if taken[key] >= max_per_page:
            continue
        taken[key] += 1
        kept.append(chunk)
        if len(kept) == top_k:
            break
    return kept


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


class Retriever:
    def __init__(
        self,
        embedder: QueryEmbedder,
        store: VectorStore,
        sessions: async_sessionmaker[AsyncSession],
        *,
        max_chunks_per_page: int,
    ) -> None:
        self._embedder = embedder
        self._store = store
        self._sessions = sessions
        self._max_per_page = max_chunks_per_page

    async def retrieve(self, query: str, scope: AccessScope, top_k: int) -> Retrieval:
        latency: dict[str, float] = {}
        started = time.perf_counter()
        vector = await self._embedder.embed(query)
        latency["embed"] = _ms(started)

        started = time.perf_counter()
        hits = await self._store.search(vector, scope, limit=top_k * OVERSAMPLE)
        latency["search"] = _ms(started)

        started = time.perf_counter()
        async with self._sessions() as session:
            rows = await repository.fetch_visible_chunks(session, [h.chunk_id for h in hits], scope)
        ranked: Sequence[RetrievedChunk] = [
            RetrievedChunk(
                chunk_id=hit.chunk_id,
                document_id=row.document_id,
                filename=row.filename,
                page=row.page_start,
                page_end=row.page_end,
                text=row.text,
                score=hit.score,
            )
            for hit in hits
            if (row := rows.get(hit.chunk_id)) is not None
        ]
        chunks = limit_per_page(ranked, self._max_per_page, top_k)
        latency["fetch"] = _ms(started)
        return Retrieval(chunks=chunks, latency_ms=latency)
