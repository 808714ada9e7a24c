"""The ingest DB role reaches its own schema only."""

from __future__ import annotations

import asyncpg
import pytest

from tests.harness import TEST_DB


async def _connect_as_ingest() -> asyncpg.Connection:
    return await asyncpg.connect(
        host="127.0.0.1", port=5432, user="vectrion_ingest", password="vectrion_ingest", database=TEST_DB
    )


async def test_the_ingest_role_is_refused_another_services_tables(admin_conn) -> None:
    # Our own probe table, so the test does not depend on the chunker's migrations.
    await admin_conn.execute("CREATE TABLE IF NOT EXISTS chunker.isolation_probe (id int)")
    conn = await _connect_as_ingest()
    try:
        with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM chunker.isolation_probe")
        with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
            await conn.execute("CREATE TABLE chunker.planted (id int)")
        assert await conn.fetchval("SELECT count(*) >= 0 FROM ingest.documents")
    finally:
        await conn.close()
