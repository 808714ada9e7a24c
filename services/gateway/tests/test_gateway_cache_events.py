"""Cached answers follow the document lifecycle events, against the real RabbitMQ and Redis."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from faststream.rabbit import RabbitBroker

from tests.harness import RABBITMQ_URL
from vectrion_common.contracts import DocumentDeletedV1, DocumentIndexedV1, Event
from vectrion_common.messaging.broker import publish_event
from vectrion_common.messaging.topology import CONSUMERS, Topology

from .conftest import GatewayFactory, bearer, login, new_tenant, new_user

EVENT_WAIT_SECONDS = 15.0  # generous: a loaded 2-core machine; a consumer takes milliseconds
QUESTION = {"question": "what does the handbook say about leave?"}


async def _cache_state(client: Any, auth: dict[str, str]) -> str:
    response = await client.post("/v1/query", json=QUESTION, headers=auth)
    assert response.status_code == 200, response.text
    state: str = response.headers["x-cache"]
    return state


async def _until_miss(client: Any, auth: dict[str, str]) -> None:
    """Ask until the answer is not from the cache; fail if that takes longer than EVENT_WAIT_SECONDS."""
    deadline = asyncio.get_running_loop().time() + EVENT_WAIT_SECONDS
    while await _cache_state(client, auth) == "hit":
        assert asyncio.get_running_loop().time() < deadline, "the cached answer outlived the event"
        await asyncio.sleep(0.1)


async def test_a_cached_answer_is_not_served_after_a_document_of_its_tenant_becomes_indexed_or_deleted(
    gateway: GatewayFactory, upstream_url: str, broker_namespace: str
) -> None:
    client = await gateway(
        query_url=upstream_url, cache_invalidation_events=True, broker_namespace=broker_namespace,
        rabbitmq_url=RABBITMQ_URL, rate_limit_query_burst=1000,  # the polling below asks often
    )
    admin = bearer(await login(client))
    acme, globex = await new_tenant(client, admin, "acme"), await new_tenant(client, admin, "globex")
    _, alice = await new_user(client, admin, "alice@acme.io", "member", acme)
    _, gina = await new_user(client, admin, "gina@globex.io", "member", globex)
    for auth in (alice, gina):
        assert await _cache_state(client, auth) == "miss"
        assert await _cache_state(client, auth) == "hit"

    events: list[Event] = [
        DocumentIndexedV1(tenant_id=uuid.UUID(acme), document_id=uuid.uuid4(), generation=1, chunk_count=3),
        DocumentDeletedV1(tenant_id=uuid.UUID(acme), document_id=uuid.uuid4(), generation=1),
    ]
    async with RabbitBroker(RABBITMQ_URL) as publisher:
        for event in events:
            await publish_event(publisher, Topology(broker_namespace), event)
            await _until_miss(client, alice)
            assert await _cache_state(client, alice) == "hit"  # cached again, under the new version
    # Another tenant's documents did not change: its answer is still served from the cache.
    assert await _cache_state(client, gina) == "hit"


def test_the_gateway_consumes_every_event_that_changes_what_is_searchable() -> None:
    consumed = {event.event_type for event in CONSUMERS["gateway"]}
    assert {"document.indexed.v1", "document.failed.v1", "document.deletion_requested.v1",
            "document.deleted.v1"} <= consumed


async def test_readiness_reports_the_broker_when_the_gateway_consumes_events(
    gateway: GatewayFactory, broker_namespace: str
) -> None:
    client = await gateway(cache_invalidation_events=True, broker_namespace=broker_namespace,
                           rabbitmq_url=RABBITMQ_URL)
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"db": "ok", "broker": "ok"}
