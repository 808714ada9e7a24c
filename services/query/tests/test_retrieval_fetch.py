"""Reading retrieved text from the read model a window at a time still fills top_k."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.harness import RABBITMQ_URL, migrate_services
from tests.query_support import SECRET, Peers, as_user, index, make_doc, own_namespace, running_peers
from vectrion_query.main import create_app
from vectrion_query.settings import QuerySettings


@pytest.fixture(scope="module")
async def namespace(broker_namespace: str) -> AsyncIterator[str]:
    async with own_namespace(broker_namespace, "qfetch") as own:
        yield own


@pytest.fixture(scope="module")
async def peers(namespace: str) -> AsyncIterator[Peers]:
    async with running_peers(namespace) as found:
        yield found


@pytest.fixture(scope="session")
def query_db() -> str:
    """Sync on purpose: migrating runs its own event loop."""
    return migrate_services("query")


@pytest.fixture(scope="module")
async def client(
    query_db: str, namespace: str, peers: Peers, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Any]:
    settings = QuerySettings(
        db_name=query_db,
        broker_namespace=namespace,
        rabbitmq_url=RABBITMQ_URL,
        internal_token_secret=SECRET,
        qdrant_path=tmp_path_factory.mktemp("qdrant"),
        log_json=False,
    )
    application = create_app(settings)
    transport = httpx.ASGITransport(app=application)
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(transport=transport, base_url="http://t") as http,
    ):
        yield http


async def test_top_k_is_filled_from_later_windows_when_one_page_crowds_out_the_first(
    client: httpx.AsyncClient, peers: Peers
) -> None:
    crowded = [(f"Llama grooming tip {i}: brush the llama wool gently, llama grooming wool.", 1) for i in range(12)]
    doc = make_doc([*crowded, ("Llama wool can be spun into yarn.", 2), ("Llama grooming takes patience.", 3)])
    await index(peers, doc)
    response = await client.post(
        "/v1/search",
        json={"query": "llama grooming wool brush", "top_k": 3},
        headers=as_user(doc.tenant_id, doc.owner_id),
    )
    assert response.status_code == 200, response.text
    pages = [r["page"] for r in response.json()["results"]]
    # The first window (3 x 3 hits) is all page 1, of which diversity keeps two: the third result
    # can only come from the next window.
    assert len(pages) == 3 and pages.count(1) == 2 and pages[2] in (2, 3)
