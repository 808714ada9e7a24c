"""Retrieval: rank within the caller's scope, read the text from the read model.

Three modes (setting ``retrieval_mode``): ``dense`` (query embedding + vector
store), ``bm25`` (the lexical index) and ``hybrid`` (both, fused by reciprocal
rank fusion: score = sum over rankers of 1 / (rrf_k + rank)). Every ranker
takes the same :class:`AccessScope`; PostgreSQL serves the text (never the
Qdrant payload) and re-checks visibility. Rank is preserved, and at most
``max_chunks_per_page`` results come from one page, so a single dense page
cannot crowd out everything else.

``Retrieval.best_dense_score`` (the best cosine similarity the dense ranker
saw) is what the "I don't know" threshold is applied to: RRF scores are ranks,
not relevance, so they cannot say that nothing relevant was found.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vectrion_query import repository
from vectrion_query.access import AccessScope
from vectrion_query.lexical import LexicalIndex
from vectrion_query.query_embedding import QueryEmbedder
from vectrion_query.vector_store import SearchHit, VectorStore

RetrievalMode = Literal["dense", "bm25", "hybrid"]

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
    # The chunker's injection scan of this text at ingestion (GuardrailVerdict as JSON), None if unscanned.
    ingestion_verdict: dict[str, Any] | None = None
    token_count: int | None = None  # counted when indexed (None: count it when needed)


@dataclass(slots=True)
class Retrieval:
    chunks: list[RetrievedChunk]
    latency_ms: dict[str, float] = field(default_factory=dict)
    best_dense_score: float | None = None  # None: the dense ranker did not run
    mode: str = "dense"


def reciprocal_rank_fusion(rankings: Sequence[Sequence[SearchHit]], k: int) -> list[SearchHit]:
    """Fuse rankings by 1/(k + rank) (rank from 1), best first; ties keep first-seen order."""
    fused: dict[uuid.UUID, float] = defaultdict(float)
    for ranking in rankings:
        for rank, hit in enumerate(ranking, start=1):
            fused[hit.chunk_id] += 1.0 / (k + rank)
    order = sorted(fused.items(), key=lambda item: -item[1])
    return [SearchHit(chunk_id=chunk_id, score=score) for chunk_id, score in order]


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
        lexical: LexicalIndex | None = None,
        mode: RetrievalMode = "dense",
        rrf_k: int = 60,
        hybrid_candidates: int = 100,
    ) -> None:
        if mode != "dense" and lexical is None:
            raise ValueError(f"retrieval mode {mode!r} needs a lexical index")
        self._embedder = embedder
        self._store = store
        self._sessions = sessions
        self._max_per_page = max_chunks_per_page
        self._lexical = lexical
        self.mode: RetrievalMode = mode
        self._rrf_k = rrf_k
        self._candidates = hybrid_candidates

    async def _dense(self, query: str, scope: AccessScope, limit: int, latency: dict[str, float]) -> list[SearchHit]:
        started = time.perf_counter()
        vector = await self._embedder.embed(query)
        latency["embed"] = _ms(started)
        started = time.perf_counter()
        hits = await self._store.search(vector, scope, limit=limit)
        latency["search"] = _ms(started)
        return hits

    async def _bm25(self, query: str, scope: AccessScope, limit: int, latency: dict[str, float]) -> list[SearchHit]:
        assert self._lexical is not None  # checked in __init__
        started = time.perf_counter()
        hits = await self._lexical.search(query, scope, limit)
        latency["lexical"] = _ms(started)
        return hits

    async def retrieve(
        self, query: str, scope: AccessScope, top_k: int, mode: RetrievalMode | None = None
    ) -> Retrieval:
        mode = mode or self.mode
        latency: dict[str, float] = {}
        best_dense: float | None = None
        limit = top_k * OVERSAMPLE
        match mode:
            case "dense":
                hits = await self._dense(query, scope, limit, latency)
                best_dense = hits[0].score if hits else 0.0
            case "bm25":
                hits = await self._bm25(query, scope, limit, latency)
            case "hybrid":
                depth = max(limit, self._candidates)
                # BM25 runs while the query embedding is on its way back from the embedder.
                dense, lexical = await asyncio.gather(
                    self._dense(query, scope, depth, latency), self._bm25(query, scope, depth, latency)
                )
                best_dense = dense[0].score if dense else 0.0
                hits = reciprocal_rank_fusion([dense, lexical], self._rrf_k)[:depth]

        started = time.perf_counter()
        chunks = await self._fetch(hits, scope, top_k, window=limit)
        latency["fetch"] = _ms(started)
        return Retrieval(chunks=chunks, latency_ms=latency, best_dense_score=best_dense, mode=mode)

    async def _fetch(
        self, hits: Sequence[SearchHit], scope: AccessScope, top_k: int, window: int
    ) -> list[RetrievedChunk]:
        """Text of the best hits from the read model, in rank order, a window at a time.

        The first window (top_k x OVERSAMPLE) nearly always yields top_k after the
        visibility re-check and page diversity; only if it does not is the next one read.
        """
        ranked: list[RetrievedChunk] = []
        chunks: list[RetrievedChunk] = []
        window = max(window, 1)
        async with self._sessions() as session:
            for start in range(0, len(hits), window):
                part = hits[start : start + window]
                rows = await repository.fetch_visible_chunks(session, [h.chunk_id for h in part], scope)
                ranked += [
                    RetrievedChunk(
                        chunk_id=hit.chunk_id,
                        document_id=row.document_id,
                        filename=row.filename,
                        page=row.page_start,
                        page_end=row.page_end,
                        text=row.text,
                        score=hit.score,
                        ingestion_verdict=row.guardrail_verdict,
                        token_count=row.token_count,
                    )
                    for hit in part
                    if (row := rows.get(hit.chunk_id)) is not None
                ]
                chunks = limit_per_page(ranked, self._max_per_page, top_k)
                if len(chunks) == top_k:
                    break
        return chunks
