"""The background housekeeping loop: every job every round, a failing job does not stop the rest."""

from __future__ import annotations

import asyncio

from vectrion_common.periodic import Periodic


async def test_jobs_run_every_round_and_a_failing_one_is_tried_again_next_round() -> None:
    rounds: list[str] = []
    two_rounds = asyncio.Event()

    async def flaky() -> None:
        rounds.append("flaky")
        raise ConnectionError("database away")

    async def steady() -> None:
        rounds.append("steady")
        if len(rounds) >= 4:
            two_rounds.set()

    periodic = Periodic("test", 0.01, [flaky, steady], first_round_at_once=True)
    periodic.start()
    await asyncio.wait_for(two_rounds.wait(), 10)  # ~0.02 s; a busy CI loop may take longer
    await periodic.stop()
    assert rounds[:4] == ["flaky", "steady", "flaky", "steady"]
    after_stop = len(rounds)
    await asyncio.sleep(0.05)
    assert len(rounds) == after_stop  # stopped for good


async def test_the_first_round_waits_one_interval_unless_asked_not_to() -> None:
    ran: list[int] = []

    async def job() -> None:
        ran.append(1)

    periodic = Periodic("test", 60, [job])
    periodic.start()
    await asyncio.sleep(0.05)
    await periodic.stop()
    assert ran == []
