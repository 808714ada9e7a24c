"""Reservations a crash left open: expired after a while, charged at their reserved amount."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from vectrion_common.db import make_engine, make_sessionmaker, unit_of_work
from vectrion_gateway.ledger import UsageRepository

from .conftest import GatewayFactory, bearer, login, make_settings

INSERT = """
INSERT INTO gateway.usage_ledger (id, tenant_id, user_id, route, reserved_tokens, status, occurred_at)
VALUES ($1, $2, $3, '/v1/query', $4, $5, now() - make_interval(mins => $6))
"""


async def _status(admin_conn: Any, row_id: uuid.UUID) -> str:
    status: str = await admin_conn.fetchval("SELECT status FROM gateway.usage_ledger WHERE id = $1", row_id)
    return status


async def test_an_open_reservation_older_than_the_expiry_is_expired_and_still_counted_at_its_amount(
    gateway: GatewayFactory, admin_conn: Any
) -> None:
    client = await gateway(reservation_expiry_minutes=15, reservation_sweep_interval_seconds=0.1)
    auth = bearer(await login(client))
    user_id, tenant_id = await admin_conn.fetchrow("SELECT id, tenant_id FROM gateway.users")
    crashed, in_flight = uuid.uuid4(), uuid.uuid4()
    await admin_conn.execute(INSERT, crashed, tenant_id, user_id, 500, "reserved", 20)
    await admin_conn.execute(INSERT, in_flight, tenant_id, user_id, 300, "reserved", 1)
    for _ in range(100):  # the sweeper runs every 0.1 s
        if await _status(admin_conn, crashed) == "expired":
            break
        await asyncio.sleep(0.1)
    assert await _status(admin_conn, crashed) == "expired"
    assert await _status(admin_conn, in_flight) == "reserved"  # younger than the expiry: left alone
    usage = (await client.get("/v1/usage", headers=auth)).json()
    assert usage["user"]["month"]["used"] == 800  # both still count their worst case


async def test_a_late_settlement_replaces_the_worst_case_of_an_expired_reservation(
    clean_gateway: None, admin_conn: Any
) -> None:
    row_id, someone = uuid.uuid4(), uuid.uuid4()
    await admin_conn.execute(INSERT, row_id, someone, someone, 500, "expired", 30)
    settings = make_settings()
    engine = make_engine(settings.db_url(), settings.db_schema)
    try:
        async with unit_of_work(make_sessionmaker(engine)) as session:
            await UsageRepository(session).settle(row_id, 120, 30)
    finally:
        await engine.dispose()
    row = await admin_conn.fetchrow("SELECT * FROM gateway.usage_ledger WHERE id = $1", row_id)
    assert (row["status"], row["prompt_tokens"], row["completion_tokens"]) == ("settled", 120, 30)
