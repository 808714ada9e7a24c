"""Scoped brute-force search for embedded (local-mode) Qdrant: one numpy partition per tenant.

Qdrant's local mode evaluates a query filter in Python, point by point, over the
whole collection: with the mandatory scope filter that cost ~150 ms per search at
SciFact size (5,183 points) and blocked the event loop while it ran. This index
keeps what a scoped search needs in columns (unit vectors, owner, shared flag,
document, generation) partitioned by tenant, so a search only ever reads the
caller's tenant partition and applies the visibility rule as one vectorised mask.

It is a mirror, not a second source of truth: the local Qdrant collection stays
the store of record (persisted under ``qdrant_path``); :class:`QdrantVectorStore`
loads this mirror from it at start and applies every write to both. Local mode
holds a process-wide lock, so no other process can change the collection behind
the mirror's back. Scores are cosine similarities, as Qdrant's.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import numpy as np

from vectrion_query.access import TENANT_VISIBILITY, AccessScope

_Floats = np.ndarray[Any, np.dtype[np.float32]]
_Ints = np.ndarray[Any, np.dtype[np.int64]]
_Bools = np.ndarray[Any, np.dtype[np.bool_]]


class ScopedPoint(Protocol):
    """What the mirror keeps of a point (``vector_store.IndexPoint`` has these and more)."""

    @property
    def chunk_id(self) -> uuid.UUID: ...
    @property
    def vector(self) -> Sequence[float]: ...
    @property
    def tenant_id(self) -> uuid.UUID: ...
    @property
    def document_id(self) -> uuid.UUID: ...
    @property
    def generation(self) -> int: ...
    @property
    def owner_id(self) -> uuid.UUID: ...
    @property
    def visibility(self) -> str: ...


def unit(vector: Sequence[float] | _Floats) -> _Floats:
    array = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(array))
    return array / norm if norm > 0 else array


class _Partition:
    """The points of one tenant: append-only rows, deleted rows masked, compacted when half dead."""

    def __init__(self, dimension: int) -> None:
        self.vectors: _Floats = np.zeros((0, dimension), dtype=np.float32)
        self.owners: _Ints = np.zeros(0, dtype=np.int64)
        self.documents: _Ints = np.zeros(0, dtype=np.int64)
        self.generations: _Ints = np.zeros(0, dtype=np.int64)
        self.shared: _Bools = np.zeros(0, dtype=bool)
        self.live: _Bools = np.zeros(0, dtype=bool)
        self.ids: list[uuid.UUID] = []
        self.row_of: dict[uuid.UUID, int] = {}
        self.size = 0
        self._codes: dict[uuid.UUID, int] = {}  # owner and document ids -> small ints

    def code(self, key: uuid.UUID) -> int:
        return self._codes.setdefault(key, len(self._codes))

    def known_code(self, key: uuid.UUID) -> int | None:
        return self._codes.get(key)

    def _grow(self, needed: int) -> None:
        capacity = len(self.live)
        if needed <= capacity:
            return
        new = max(needed, 2 * capacity, 8)

        def grown(array: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
            out = np.zeros((new, *array.shape[1:]), dtype=array.dtype)
            out[:capacity] = array
            return out

        self.vectors = grown(self.vectors)
        self.owners = grown(self.owners)
        self.documents = grown(self.documents)
        self.generations = grown(self.generations)
        self.shared = grown(self.shared)
        self.live = grown(self.live)

    def put(self, point: ScopedPoint) -> None:
        row = self.row_of.get(point.chunk_id)
        if row is None:
            self._grow(self.size + 1)
            row = self.size
            self.size += 1
            self.ids.append(point.chunk_id)
            self.row_of[point.chunk_id] = row
        self.vectors[row] = unit(point.vector)
        self.owners[row] = self.code(point.owner_id)
        self.documents[row] = self.code(point.document_id)
        self.generations[row] = point.generation
        self.shared[row] = point.visibility == TENANT_VISIBILITY
        self.live[row] = True

    def remove(self, chunk_id: uuid.UUID) -> None:
        row = self.row_of.pop(chunk_id, None)
        if row is not None:
            self.live[row] = False

    def document_rows(self, document_id: uuid.UUID, below_generation: int | None) -> list[uuid.UUID]:
        code = self.known_code(document_id)
        if code is None:
            return []
        n = self.size
        mask = self.live[:n] & (self.documents[:n] == code)
        if below_generation is not None:
            mask &= self.generations[:n] < below_generation
        return [self.ids[i] for i in np.flatnonzero(mask)]

    @property
    def dead(self) -> int:
        return self.size - len(self.row_of)

    def compact(self) -> None:
        keep = np.flatnonzero(self.live[: self.size])
        self.vectors = self.vectors[keep].copy()
        self.owners = self.owners[keep].copy()
        self.documents = self.documents[keep].copy()
        self.generations = self.generations[keep].copy()
        self.shared = self.shared[keep].copy()
        self.live = np.ones(len(keep), dtype=bool)
        self.ids = [self.ids[i] for i in keep]
        self.row_of = {chunk_id: row for row, chunk_id in enumerate(self.ids)}
        self.size = len(keep)

    def search(self, query: _Floats, scope: AccessScope, limit: int) -> list[tuple[uuid.UUID, float]]:
        n = self.size
        visible = self.shared[:n].copy()
        owner = self.known_code(scope.user_id)
        if owner is not None:
            visible |= self.owners[:n] == owner
        rows = np.flatnonzero(visible & self.live[:n])
        k = min(limit, len(rows))
        if k <= 0:
            return []
        scores = self.vectors[rows] @ query
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self.ids[rows[i]], float(scores[i])) for i in top]


class ScopedVectors:
    """Per-tenant columns of the local collection; every search takes the caller's scope."""

    def __init__(self, dimension: int) -> None:
        self._dimension = dimension
        self._partitions: dict[uuid.UUID, _Partition] = {}
        self._tenant_of_chunk: dict[uuid.UUID, uuid.UUID] = {}
        self._tenant_of_document: dict[uuid.UUID, uuid.UUID] = {}

    def __len__(self) -> int:
        return len(self._tenant_of_chunk)

    def put(self, points: Iterable[ScopedPoint]) -> None:
        for point in points:
            previous = self._tenant_of_chunk.get(point.chunk_id)
            if previous is not None and previous != point.tenant_id:
                self._partitions[previous].remove(point.chunk_id)
            partition = self._partitions.get(point.tenant_id)
            if partition is None:
                partition = self._partitions[point.tenant_id] = _Partition(self._dimension)
            partition.put(point)
            self._tenant_of_chunk[point.chunk_id] = point.tenant_id
            self._tenant_of_document[point.document_id] = point.tenant_id

    def remove(self, chunk_ids: Iterable[uuid.UUID]) -> None:
        touched: set[uuid.UUID] = set()
        for chunk_id in chunk_ids:
            tenant = self._tenant_of_chunk.pop(chunk_id, None)
            if tenant is not None:
                self._partitions[tenant].remove(chunk_id)
                touched.add(tenant)
        for tenant in touched:
            partition = self._partitions[tenant]
            if partition.dead > 1024 and partition.dead > len(partition.row_of):
                partition.compact()

    def document_points(self, document_id: uuid.UUID, below_generation: int | None = None) -> list[uuid.UUID]:
        """Chunk ids of ``document_id`` (only generations below ``below_generation`` when given)."""
        tenant = self._tenant_of_document.get(document_id)
        if tenant is None:
            return []
        return self._partitions[tenant].document_rows(document_id, below_generation)

    def forget_document(self, document_id: uuid.UUID) -> None:
        """The document is gone (all generations removed): drop its tenant entry."""
        self._tenant_of_document.pop(document_id, None)

    def search(self, vector: Sequence[float], scope: AccessScope, limit: int) -> list[tuple[uuid.UUID, float]]:
        """Cosine top ``limit`` among the points ``scope`` may see; there is no unscoped variant."""
        partition = self._partitions.get(scope.tenant_id)
        if partition is None or limit <= 0:
            return []
        return partition.search(unit(vector), scope, limit)
