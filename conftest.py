"""Fixtures every test suite in the monorepo shares: real PostgreSQL, RabbitMQ, Redis.

Nothing here mocks a service. Isolation between concurrent runs comes from
names: a test database per run family (``VECTRION_TEST_DB``) and a broker
namespace per test session, whose queues are deleted at the end.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent
ADMIN_URL = os.environ.get("VECTRION_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TEST_DB = os.environ.get("VECTRION_TEST_DB", "vectrion_test")
SHARED_DATA = Path(os.environ.get("VECTRION_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
RABBITMQ_URL = os.environ.get("VECTRION_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")
os.environ.setdefault("SCARF_NO_ANALYTICS", "true")


def service_db_url(service: str) -> str:
    role = f"vectrion_{service}"
    return f"postgresql+asyncpg://{role}:{role}@127.0.0.1:5432/{TEST_DB}"


@pytest.fixture(scope="session")
def test_env() -> dict[str, str]:
    """Environment that points settings at the test database."""
    return {"VECTRION_DB_NAME": TEST_DB, "VECTRION_RABBITMQ_URL": RABBITMQ_URL}


_migrated: set[tuple[str, str]] = set()


def migrate_services(*services: str, db: str = TEST_DB) -> str:
    """Provision roles + schemas in ``db`` and migrate the named services (once per run)."""
    import asyncio

    from vectrion_common.migrate import upgrade
    from vectrion_common.provisioning import provision
    from vectrion_common.settings import ServiceSettings

    if (db, "") not in _migrated:
        asyncio.run(provision(ADMIN_URL, db))
        _migrated.add((db, ""))
    settings = ServiceSettings(db_name=db)
    for service in services:
        if (db, service) not in _migrated:
            upgrade(REPO_ROOT / "services", service, settings)
            _migrated.add((db, service))
    return db


def drop_database(db: str) -> None:
    """Drop a database a stack or benchmark created for itself."""
    import asyncio

    import asyncpg

    async def drop() -> None:
        conn = await asyncpg.connect(ADMIN_URL)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


@pytest.fixture(scope="session")
def broker_namespace() -> Iterator[str]:
    """A namespace no other run uses; its queues and exchanges are removed afterwards."""
    namespace = f"vt{uuid.uuid4().hex[:10]}"
    yield namespace
    delete_broker_namespace(namespace)


def delete_broker_namespace(namespace: str) -> None:
    import asyncio

    import aio_pika

    listing = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "name"], capture_output=True, text=True, check=False
    ).stdout.split()
    names = [n for n in listing if n.startswith(f"{namespace}.")]

    async def delete() -> None:
        connection = await aio_pika.connect(RABBITMQ_URL)
        async with connection:
            for name in names:
                channel = await connection.channel()
                await channel.queue_delete(name)
            for exchange in ("events", "dlx"):
                channel = await connection.channel()
                await channel.exchange_delete(f"{namespace}.{exchange}")

    asyncio.run(delete())


@pytest.fixture
async def admin_conn() -> AsyncIterator[object]:
    """A superuser connection to the test DB, for assertions and clean-up across schemas."""
    import asyncio

    import asyncpg

    # In a thread: migrate_services runs asyncio.run, and pytest's copy of this module
    # (importlib mode) has not seen the migrations a test module's ``from conftest import`` ran.
    await asyncio.to_thread(migrate_services)
    conn = await asyncpg.connect(ADMIN_URL.rsplit("/", 1)[0] + "/" + TEST_DB)
    try:
        yield conn
    finally:
        await conn.close()
