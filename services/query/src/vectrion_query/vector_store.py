"""The vector index seam and its Qdrant implementation.

Local mode (``path=``) is the embedded default: it takes a process-wide lock, so
exactly one query process may open it; set ``QDRANT_URL`` for a server. Point
ids are the deterministic chunk ids, so re-upserting a batch is harmless.

In local mode, searches and the document-wide deletes run on a per-tenant numpy
mirror (:mod:`vectrion_query.scoped_vectors`) because local mode checks filters
in Python point by point; the collection stays the store of record. A server
searches with its own filter on indexed payload fields.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from qdrant_client import AsyncQdrantClient
from qdrant_client import models as qm

from vectrion_common.heap import release_freed_heap
from vectrion_query.access import TENANT_VISIBILITY, AccessScope
from vectrion_query.scoped_vectors import ScopedVectors
from vectrion_query.settings import QuerySettings


@dataclass(frozen=True, slots=True)
class IndexPoint:
    chunk_id: uuid.UUID
    vector: Sequence[float]
    tenant_id: uuid.UUID
    document_id: uuid.UUID
    generation: int
    chunk_index: int
    owner_id: uuid.UUID
    visibility: str
    page_start: int | None
    page_end: int | None


@dataclass(frozen=True, slots=True)
class StoredPoint:
    chunk_id: uuid.UUID
    document_id: uuid.UUID
    tenant_id: uuid.UUID
    generation: int


@dataclass(frozen=True, slots=True)
class SearchHit:
    chunk_id: uuid.UUID
    score: float


class VectorStore(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None: ...

    async def upsert(self, points: Sequence[IndexPoint]) -> None: ...

    async def search(self, vector: Sequence[float], scope: AccessScope, limit: int) -> list[SearchHit]:
        """Nearest chunks the scope may see; there is deliberately no unscoped variant."""
        ...

    async def count(self, document_id: uuid.UUID, generation: int) -> int: ...

    async def delete_points(self, chunk_ids: Sequence[uuid.UUID]) -> None: ...

    async def delete_generations_before(self, document_id: uuid.UUID, generation: int) -> None:
        """Drop every point of ``document_id`` from a generation older than ``generation``."""
        ...

    async def delete_document(self, document_id: uuid.UUID) -> None:
        """Drop every point of ``document_id``, all generations."""
        ...

    async def stored_points(self) -> list[StoredPoint]:
        """Every point's id and owner (the reconciler's view; no vectors)."""
        ...


def scope_filter(scope: AccessScope) -> qm.Filter:
    """The mandatory Qdrant filter: tenant_id == caller's tenant AND (visibility == tenant OR owner == caller)."""
    return qm.Filter(
        must=[
            qm.FieldCondition(key="tenant_id", match=qm.MatchValue(value=str(scope.tenant_id))),
            qm.Filter(
                should=[
                    qm.FieldCondition(key="visibility", match=qm.MatchValue(value=TENANT_VISIBILITY)),
                    qm.FieldCondition(key="owner_id", match=qm.MatchValue(value=str(scope.user_id))),
                ]
            ),
        ]
    )


_PAYLOAD_INDEXES: dict[str, qm.PayloadSchemaType | qm.KeywordIndexParams] = {
    "tenant_id": qm.KeywordIndexParams(type=qm.KeywordIndexType.KEYWORD, is_tenant=True),
    "document_id": qm.PayloadSchemaType.KEYWORD,
    "owner_id": qm.PayloadSchemaType.KEYWORD,
    "visibility": qm.PayloadSchemaType.KEYWORD,
    "generation": qm.PayloadSchemaType.INTEGER,
}


SCROLL_PAGE = 1024


def _point_of(record: qm.Record) -> IndexPoint:
    payload = record.payload or {}
    vector = record.vector
    if not isinstance(vector, list):
        raise RuntimeError(f"qdrant point {record.id} has no plain vector")
    return IndexPoint(
        chunk_id=uuid.UUID(str(record.id)),
        vector=[float(x) for x in vector],  # type: ignore[arg-type]
        tenant_id=uuid.UUID(payload["tenant_id"]),
        document_id=uuid.UUID(payload["document_id"]),
        generation=int(payload["generation"]),
        chunk_index=int(payload["chunk_index"]),
        owner_id=uuid.UUID(payload["owner_id"]),
        visibility=str(payload["visibility"]),
        page_start=payload.get("page_start"),
        page_end=payload.get("page_end"),
    )


class QdrantVectorStore:
    def __init__(self, client: AsyncQdrantClient, collection: str, dimension: int, *, server: bool) -> None:
        self._client = client
        self._collection = collection
        self._dimension = dimension
        self._server = server
        # Local mode only: the scoped mirror every search and document-wide delete uses.
        self._mirror: ScopedVectors | None = None if server else ScopedVectors(dimension)

    async def start(self) -> None:
        if not await self._client.collection_exists(self._collection):
            await self._client.create_collection(
                self._collection,
                vectors_config=qm.VectorParams(size=self._dimension, distance=qm.Distance.COSINE),
            )
        info = await self._client.get_collection(self._collection)
        vectors = info.config.params.vectors
        if isinstance(vectors, qm.VectorParams) and vectors.size != self._dimension:
            raise RuntimeError(
                f"qdrant collection {self._collection!r} has dimension {vectors.size}, "
                f"the embedder produces {self._dimension}"
            )
        # Local mode ignores payload indexes (and warns); a server uses them for filtered search.
        if self._server:
            for field, schema in _PAYLOAD_INDEXES.items():
                await self._client.create_payload_index(self._collection, field, field_schema=schema, wait=True)
        if self._mirror is not None:
            await self._load_mirror(self._mirror)
            release_freed_heap()

    async def _load_mirror(self, mirror: ScopedVectors) -> None:
        offset: qm.ExtendedPointId | None = None
        while True:
            records, offset = await self._client.scroll(
                self._collection, limit=SCROLL_PAGE, offset=offset, with_payload=True, with_vectors=True
            )
            mirror.put(_point_of(r) for r in records)
            if offset is None:
                return

    async def close(self) -> None:
        await self._client.close()

    async def ping(self) -> None:
        await self._client.collection_exists(self._collection)

    async def upsert(self, points: Sequence[IndexPoint]) -> None:
        if not points:
            return
        await self._client.upsert(
            self._collection,
            points=[
                qm.PointStruct(
                    id=str(p.chunk_id),
                    vector=list(p.vector),
                    payload={
                        "tenant_id": str(p.tenant_id),
                        "document_id": str(p.document_id),
                        "generation": p.generation,
                        "chunk_index": p.chunk_index,
                        "owner_id": str(p.owner_id),
                        "visibility": p.visibility,
                        "page_start": p.page_start,
                        "page_end": p.page_end,
                    },
                )
                for p in points
            ],
            wait=True,
        )
        if self._mirror is not None:
            self._mirror.put(points)

    async def search(self, vector: Sequence[float], scope: AccessScope, limit: int) -> list[SearchHit]:
        if self._mirror is not None:
            return [SearchHit(chunk_id=c, score=s) for c, s in self._mirror.search(vector, scope, limit)]
        response = await self._client.query_points(
            self._collection,
            query=list(vector),
            query_filter=scope_filter(scope),
            limit=limit,
            with_payload=False,
        )
        return [SearchHit(chunk_id=uuid.UUID(str(p.id)), score=p.score) for p in response.points]

    async def count(self, document_id: uuid.UUID, generation: int) -> int:
        result = await self._client.count(
            self._collection,
            count_filter=qm.Filter(
                must=[
                    qm.FieldCondition(key="document_id", match=qm.MatchValue(value=str(document_id))),
                    qm.FieldCondition(key="generation", match=qm.MatchValue(value=generation)),
                ]
            ),
            exact=True,
        )
        return result.count

    async def delete_points(self, chunk_ids: Sequence[uuid.UUID]) -> None:
        if chunk_ids:
            await self._client.delete(
                self._collection, points_selector=qm.PointIdsList(points=[str(c) for c in chunk_ids]), wait=True
            )
            if self._mirror is not None:
                self._mirror.remove(chunk_ids)

    async def _delete_document_points(self, document_id: uuid.UUID, below_generation: int | None) -> None:
        if self._mirror is not None:  # local mode: ids from the mirror, no per-point filter scan
            await self.delete_points(self._mirror.document_points(document_id, below_generation))
            return
        must: list[qm.Condition] = [qm.FieldCondition(key="document_id", match=qm.MatchValue(value=str(document_id)))]
        if below_generation is not None:
            must.append(qm.FieldCondition(key="generation", range=qm.Range(lt=below_generation)))
        await self._client.delete(
            self._collection, points_selector=qm.FilterSelector(filter=qm.Filter(must=must)), wait=True
        )

    async def delete_generations_before(self, document_id: uuid.UUID, generation: int) -> None:
        await self._delete_document_points(document_id, generation)

    async def delete_document(self, document_id: uuid.UUID) -> None:
        await self._delete_document_points(document_id, None)
        if self._mirror is not None:
            self._mirror.forget_document(document_id)

    async def stored_points(self) -> list[StoredPoint]:
        found: list[StoredPoint] = []
        offset: qm.ExtendedPointId | None = None
        while True:
            points, offset = await self._client.scroll(
                self._collection,
                limit=SCROLL_PAGE,
                offset=offset,
                with_payload=["document_id", "tenant_id", "generation"],
                with_vectors=False,
            )
            for point in points:
                payload = point.payload or {}
                found.append(
                    StoredPoint(
                        chunk_id=uuid.UUID(str(point.id)),
                        document_id=uuid.UUID(str(payload["document_id"])),
                        tenant_id=uuid.UUID(str(payload["tenant_id"])),
                        generation=int(payload["generation"]),
                    )
                )
            if offset is None:
                return found


def make_vector_store(settings: QuerySettings) -> VectorStore:
    match settings.vector_store:
        case "qdrant":
            if settings.qdrant_url:
                api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
                client = AsyncQdrantClient(url=settings.qdrant_url, api_key=api_key)
            else:
                settings.qdrant_path.mkdir(parents=True, exist_ok=True)
                client = AsyncQdrantClient(path=str(settings.qdrant_path))
            return QdrantVectorStore(
                client, settings.qdrant_collection, settings.embedding_dimension, server=bool(settings.qdrant_url)
            )
