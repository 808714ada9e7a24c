"""Quota reservations a crash left open: after ``reservation_expiry_minutes`` they are marked expired.

A metered call reserves its worst case, then settles its real usage. If the
gateway dies in between, the reservation stays open. The sweeper (every
``reservation_sweep_interval_seconds``, in every replica; the UPDATE is
atomic, so replicas never double-count) marks such rows ``expired``.

Expired means *charged at the reserved amount*, not released. The crash may
have happened after the LLM already spent the tokens (the answer was on its way
back), and releasing would let every crash - including ones a client can
provoke - spend tokens that no quota sees, breaking "spending exceeds a quota
by at most one reservation". The cost of this choice: a crashed call is charged
its worst case. Nothing changes in Redis (the hot counters already hold the
reservation). If the real settlement arrives after all (a call that outlived
the expiry, e.g. a very long stream), it replaces the worst case as usual.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vectrion_common.db import unit_of_work
from vectrion_common.logs import get_logger
from vectrion_common.periodic import Periodic
from vectrion_gateway.ledger import UsageRepository

log = get_logger(__name__)


async def expire_open_reservations(sessions: async_sessionmaker[AsyncSession], older_than: timedelta) -> int:
    """Mark reservations older than ``older_than`` expired; returns how many."""
    async with unit_of_work(sessions) as session:
        expired = await UsageRepository(session).expire_reservations(older_than)
    if expired:
        log.warning("quota.reservations_expired", count=expired, older_than_s=int(older_than.total_seconds()))
    return expired


def reservation_sweeper(
    sessions: async_sessionmaker[AsyncSession], older_than: timedelta, interval_seconds: float
) -> Periodic:
    async def expire_reservations() -> int:
        return await expire_open_reservations(sessions, older_than)

    return Periodic("reservation-sweeper", interval_seconds, [expire_reservations], first_round_at_once=True)
