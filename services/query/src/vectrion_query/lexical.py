"""The lexical (BM25) index: one in-memory bm25s index per tenant, built from the read model.

It mirrors the query schema's chunk read model, never another source: a
tenant's index is (re)built from ``query.chunks`` the first time the tenant
searches and again after the indexer or the deletion path reports a change
for that tenant (:meth:`LexicalIndex.invalidate`). A search is scoped exactly
like the vector store's: only the caller's tenant index is consulted, and a
per-query mask keeps chunks that are shared with the tenant or owned by the
caller (the read-model fetch re-checks both, as for dense hits).

Tokens: lower-case words, English stopwords removed, Snowball-stemmed when
PyStemmer is installed (it is a dependency; without it, unstemmed).
"""

from __future__ import annotations

import asyncio
import re
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vectrion_common.heap import release_freed_heap
from vectrion_common.logs import get_logger
from vectrion_query import repository
from vectrion_query.access import TENANT_VISIBILITY, AccessScope
from vectrion_query.vector_store import SearchHit

log = get_logger(__name__)

_WORD = re.compile(r"\w+", re.UNICODE)


def _stemmer() -> Any:
    try:
        import Stemmer  # PyStemmer

        return Stemmer.Stemmer("english")
    except ImportError:  # pragma: no cover - the dependency is declared; this only keeps search working
        log.warning("lexical.no_stemmer")
        return None


def import_bm25s() -> Any:
    """``import bm25s`` without numba.

    bm25s imports numba (and LLVM with it) whenever numba is installed, for retrieval backends
    this module never calls (it only indexes and asks ``get_scores``, plain numpy/scipy). numba
    is installed beside us for unstructured (the chunker's), and importing it cost the query
    service ~115 MB of RSS. Unless something in this process already imported numba, bm25s is
    imported with numba hidden (bm25s catches the ImportError: ``NUMBA_AVAILABLE`` False), and
    numba stays importable for anyone else afterwards.
    """
    if "bm25s" in sys.modules or "numba" in sys.modules:
        import bm25s

        return bm25s
    sys.modules["numba"] = None  # type: ignore[assignment]  # makes `import numba` raise ImportError
    try:
        import bm25s
    finally:
        del sys.modules["numba"]
        for name in [m for m in sys.modules if m.startswith("numba.")]:
            del sys.modules[name]
    return bm25s


def _stopwords() -> frozenset[str]:
    return frozenset(import_bm25s().stopwords.STOPWORDS_EN)


class Analyzer:
    def __init__(self) -> None:
        self._stemmer = _stemmer()
        self._stopwords = _stopwords()

    def tokens(self, text: str) -> list[str]:
        words = [w for w in _WORD.findall(text.lower()) if w not in self._stopwords]
        if self._stemmer is not None:
            stemmed: list[str] = self._stemmer.stemWords(words)
            return stemmed
        return words


@dataclass(slots=True)
class _TenantIndex:
    bm25: Any  # bm25s.BM25, None when the tenant has no chunks
    chunk_ids: list[uuid.UUID]
    shared: np.ndarray[Any, np.dtype[np.bool_]]
    owners: np.ndarray[Any, np.dtype[np.object_]]
    vocabulary: frozenset[str]


def _build(analyzer: Analyzer, rows: Sequence[Any]) -> _TenantIndex:
    bm25s = import_bm25s()
    chunk_ids = [r.chunk_id for r in rows]
    shared = np.array([r.visibility == TENANT_VISIBILITY for r in rows], dtype=bool)
    owners = np.array([str(r.owner_id) for r in rows], dtype=object)
    corpus = [analyzer.tokens(r.text) or [""] for r in rows]
    if not rows:
        return _TenantIndex(None, [], shared, owners, frozenset())
    bm25 = bm25s.BM25()
    bm25.index(corpus, show_progress=False)
    return _TenantIndex(bm25, chunk_ids, shared, owners, frozenset(bm25.vocab_dict))


def _search(index: _TenantIndex, analyzer: Analyzer, query: str, scope: AccessScope, limit: int) -> list[SearchHit]:
    if index.bm25 is None:
        return []
    tokens = [t for t in analyzer.tokens(query) if t in index.vocabulary]
    if not tokens:
        return []
    scores = np.asarray(index.bm25.get_scores(tokens), dtype=np.float64)
    visible = index.shared | (index.owners == str(scope.user_id))
    scores = np.where(visible & (scores > 0), scores, -np.inf)
    k = min(limit, int(np.isfinite(scores).sum()))
    if k <= 0:
        return []
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.argsort(-scores[top], kind="stable")]
    return [SearchHit(chunk_id=index.chunk_ids[i], score=float(scores[i])) for i in top]


class LexicalIndex:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._analyzer = Analyzer()
        self._indexes: dict[uuid.UUID, _TenantIndex] = {}
        self._dirty: set[uuid.UUID] = set()
        self._locks: dict[uuid.UUID, asyncio.Lock] = {}

    def invalidate(self, tenant_id: uuid.UUID) -> None:
        """The tenant's chunks changed (indexed or removed): rebuild before its next search."""
        self._dirty.add(tenant_id)

    @property
    def tenants(self) -> int:
        return len(self._indexes)

    async def _current(self, tenant_id: uuid.UUID) -> _TenantIndex:
        index = self._indexes.get(tenant_id)
        if index is not None and tenant_id not in self._dirty:
            return index
        lock = self._locks.setdefault(tenant_id, asyncio.Lock())
        async with lock:
            index = self._indexes.get(tenant_id)
            if index is not None and tenant_id not in self._dirty:
                return index  # another request rebuilt it while we waited
            self._dirty.discard(tenant_id)  # changes from now on mark it dirty again
            async with self._sessions() as session:
                rows = await repository.tenant_chunks_for_lexical(session, tenant_id)
            index = await asyncio.to_thread(_build, self._analyzer, rows)
            del rows
            await asyncio.to_thread(release_freed_heap)
            self._indexes[tenant_id] = index
            log.info("lexical.rebuilt", tenant_id=str(tenant_id), chunks=len(index.chunk_ids))
            return index

    async def search(self, query: str, scope: AccessScope, limit: int) -> list[SearchHit]:
        """BM25 top ``limit`` among the chunks ``scope`` may see; there is no unscoped variant."""
        index = await self._current(scope.tenant_id)
        return _search(index, self._analyzer, query, scope, limit)
