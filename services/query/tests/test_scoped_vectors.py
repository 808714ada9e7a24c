"""The local-mode scoped mirror answers exactly like Qdrant's own filtered search, and follows every write."""

from __future__ import annotations

import dataclasses
import random
import uuid
from pathlib import Path

import numpy as np
from qdrant_client import AsyncQdrantClient

from vectrion_query.access import TENANT_VISIBILITY, AccessScope
from vectrion_query.vector_store import IndexPoint, QdrantVectorStore, scope_filter

DIM = 16


def random_points(rng: random.Random, tenants: list[uuid.UUID], owners: list[uuid.UUID], n: int) -> list[IndexPoint]:
    points = []
    for i in range(n):
        document_id = uuid.UUID(int=rng.getrandbits(128))
        points.append(
            IndexPoint(
                chunk_id=uuid.UUID(int=rng.getrandbits(128)),
                vector=[rng.gauss(0, 1) for _ in range(DIM)],
                tenant_id=tenants[i % len(tenants)],
                document_id=document_id,
                generation=1,
                chunk_index=0,
                owner_id=rng.choice(owners),
                visibility=TENANT_VISIBILITY if rng.random() < 0.5 else "private",
                page_start=1,
                page_end=1,
            )
        )
    return points


def chunk(document_id: uuid.UUID, generation: int, index: int, tenant: uuid.UUID, owner: uuid.UUID) -> IndexPoint:
    return IndexPoint(
        chunk_id=uuid.uuid5(document_id, f"{generation}:{index}"),
        vector=[1.0] + [0.0] * (DIM - 1),
        tenant_id=tenant,
        document_id=document_id,
        generation=generation,
        chunk_index=index,
        owner_id=owner,
        visibility=TENANT_VISIBILITY,
        page_start=1,
        page_end=1,
    )


async def test_local_scoped_search_returns_what_qdrant_filtered_search_returns(tmp_path: Path) -> None:
    rng = random.Random(7)
    tenants = [uuid.uuid4(), uuid.uuid4()]
    owners = [uuid.uuid4() for _ in range(3)]
    client = AsyncQdrantClient(path=str(tmp_path / "q"))
    store = QdrantVectorStore(client, "chunks", DIM, server=False)
    await store.start()
    await store.upsert(random_points(rng, tenants, owners, 300))
    outsider = uuid.uuid4()
    for tenant in [*tenants, uuid.uuid4()]:
        for user in [*owners, outsider]:
            scope = AccessScope(tenant_id=tenant, user_id=user)
            query = [rng.gauss(0, 1) for _ in range(DIM)]
            ours = await store.search(query, scope, 20)
            reference = await client.query_points(
                "chunks", query=query, query_filter=scope_filter(scope), limit=20, with_payload=False
            )
            assert [h.chunk_id for h in ours] == [uuid.UUID(str(p.id)) for p in reference.points]
            assert np.allclose([h.score for h in ours], [p.score for p in reference.points], atol=1e-5)
    await store.close()


async def test_private_chunks_reach_only_their_owner_and_never_another_tenant(tmp_path: Path) -> None:
    tenant, other_tenant, owner, colleague = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    store = QdrantVectorStore(AsyncQdrantClient(path=str(tmp_path / "q")), "chunks", DIM, server=False)
    await store.start()
    private = dataclasses.replace(chunk(uuid.uuid4(), 1, 0, tenant, owner), visibility="private")
    await store.upsert([private])
    vector = list(private.vector)
    assert [h.chunk_id for h in await store.search(vector, AccessScope(tenant, owner), 5)] == [private.chunk_id]
    assert await store.search(vector, AccessScope(tenant, colleague), 5) == []
    assert await store.search(vector, AccessScope(other_tenant, owner), 5) == []
    await store.close()


async def test_deletes_leave_the_store_and_its_search_together(tmp_path: Path) -> None:
    tenant, owner = uuid.uuid4(), uuid.uuid4()
    scope = AccessScope(tenant, owner)
    store = QdrantVectorStore(AsyncQdrantClient(path=str(tmp_path / "q")), "chunks", DIM, server=False)
    await store.start()
    kept_doc, gone_doc = uuid.uuid4(), uuid.uuid4()
    old = [chunk(kept_doc, 1, i, tenant, owner) for i in range(3)]
    new = [chunk(kept_doc, 2, i, tenant, owner) for i in range(2)]
    gone = [chunk(gone_doc, 1, i, tenant, owner) for i in range(2)]
    await store.upsert(old + new + gone)

    async def found() -> set[uuid.UUID]:
        return {h.chunk_id for h in await store.search([1.0] + [0.0] * (DIM - 1), scope, 100)}

    await store.delete_generations_before(kept_doc, 2)
    assert await store.count(kept_doc, 1) == 0 and await store.count(kept_doc, 2) == 2
    assert await found() == {p.chunk_id for p in new + gone}
    await store.delete_document(gone_doc)
    assert await store.count(gone_doc, 1) == 0
    assert await found() == {p.chunk_id for p in new}
    await store.delete_points([new[0].chunk_id])
    assert await found() == {new[1].chunk_id}
    await store.close()


async def test_scoped_search_survives_a_restart_from_the_persisted_collection(tmp_path: Path) -> None:
    rng = random.Random(11)
    tenant, owner = uuid.uuid4(), uuid.uuid4()
    points = random_points(rng, [tenant], [owner], 1500)  # more than one scroll page
    store = QdrantVectorStore(AsyncQdrantClient(path=str(tmp_path / "q")), "chunks", DIM, server=False)
    await store.start()
    await store.upsert(points)
    await store.delete_points([points[0].chunk_id])
    query = [rng.gauss(0, 1) for _ in range(DIM)]
    before = await store.search(query, AccessScope(tenant, owner), 50)
    await store.close()

    reopened = QdrantVectorStore(AsyncQdrantClient(path=str(tmp_path / "q")), "chunks", DIM, server=False)
    await reopened.start()
    after = await reopened.search(query, AccessScope(tenant, owner), 50)
    assert [h.chunk_id for h in after] == [h.chunk_id for h in before] and len(after) == 50
    assert points[0].chunk_id not in {
        h.chunk_id for h in await reopened.search(query, AccessScope(tenant, owner), 2000)
    }
    await reopened.close()
