"""Fixtures every test suite in the monorepo shares: real PostgreSQL, RabbitMQ, Redis.

Nothing here mocks a service. Isolation between concurrent runs comes from
names: a test database per run family (``VECTRION_TEST_DB``) and a broker
namespace per test session, whose queues are deleted at the end.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.harness import ADMIN_URL, RABBITMQ_URL, TEST_DB, delete_broker_namespace, migrate_services


@pytest.fixture(scope="session")
def test_env() -> dict[str, str]:
    """Environment that points settings at the test database."""
    return {"VECTRION_DB_NAME": TEST_DB, "VECTRION_RABBITMQ_URL": RABBITMQ_URL}


@pytest.fixture(scope="session")
def broker_namespace() -> Iterator[str]:
    """A namespace no other run uses; its queues and exchanges are removed afterwards."""
    namespace = f"vt{uuid.uuid4().hex[:10]}"
    yield namespace
    delete_broker_namespace(namespace)


@pytest.fixture
async def admin_conn() -> AsyncIterator[object]:
    """A superuser connection to the test DB, for assertions and clean-up across schemas."""
    import asyncpg

    # In a thread: migrate_services provisions with asyncio.run, and this runs inside the test loop.
    await asyncio.to_thread(migrate_services)
    conn = await asyncpg.connect(ADMIN_URL.rsplit("/", 1)[0] + "/" + TEST_DB)
    try:
        yield conn
    finally:
        await conn.close()
