"""Housekeeping jobs that run in the background of a service, every few seconds, until it stops."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence

from vectrion_common.logs import get_logger

log = get_logger(__name__)

Job = Callable[[], Awaitable[object]]


class BackgroundLoop:
    """A coroutine (``_run``) that runs in one task from ``start`` until ``stop``."""

    name = "background-loop"
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        raise NotImplementedError


class Periodic(BackgroundLoop):
    """Runs ``jobs`` one after the other every ``interval_seconds`` in one task.

    A job that raises is logged and tried again next round (the database or the broker may be
    away for a while); the others still run. ``first_round_at_once``: run the jobs as soon as
    started instead of one interval later.
    """

    def __init__(
        self, name: str, interval_seconds: float, jobs: Sequence[Job], *, first_round_at_once: bool = False
    ) -> None:
        self.name = name
        self._interval = interval_seconds
        self._jobs = tuple(jobs)
        self._first_round_at_once = first_round_at_once

    async def run_once(self) -> None:
        for job in self._jobs:
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("periodic.job_failed", task=self.name, job=getattr(job, "__name__", repr(job)))

    async def _run(self) -> None:
        if not self._first_round_at_once:
            await asyncio.sleep(self._interval)
        while True:
            await self.run_once()
            await asyncio.sleep(self._interval)
