"""The query-embedding RPC (query service -> embedder, `<ns>.rpc.embed`) timed from outside.

The probe calls the embedder's RPC queue exactly as the query service does
(``vectrion_common.messaging.rpc.call``: direct reply-to), with a new question
each time, from a thread with its own event loop, so it can run while an
ingestion backlog is being processed.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from typing import Any

from faststream.rabbit import RabbitBroker

from tests.harness import RABBITMQ_URL
from vectrion_common.contracts import EmbedRequest, EmbedResponse
from vectrion_common.messaging.rpc import call
from vectrion_common.messaging.topology import Topology

QUESTIONS = (
    "what does the trace compiler do with type-unstable loops",
    "which table lists the expenditures of the senate office",
    "how many background checks were run in november",
    "when must an employer give notice of a mass layoff",
    "what is the role of the register in this notice",
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency_summary(ms: list[float], failures: int) -> dict[str, Any]:
    if not ms:
        return {"calls": 0, "failures": failures}
    return {
        "calls": len(ms),
        "failures": failures,
        "p50_ms": round(statistics.median(ms), 2),
        "p95_ms": round(percentile(ms, 0.95), 2),
        "max_ms": round(max(ms), 2),
    }


class EmbedRpcProbe:
    """Calls the embed RPC every ``interval`` seconds until stopped; records each round trip."""

    def __init__(self, namespace: str, interval: float = 0.2, timeout: float = 5.0) -> None:
        self._topology = Topology(namespace)
        self._interval = interval
        self._timeout = timeout
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ms: list[float] = []
        self.failures = 0

    async def _loop(self, calls: int | None) -> None:
        broker = RabbitBroker(RABBITMQ_URL)
        await broker.connect()
        try:
            n = 0
            while not self._stop.is_set() and (calls is None or n < calls):
                text = f"{QUESTIONS[n % len(QUESTIONS)]} ({n})"  # never the same text twice
                started = time.perf_counter()
                try:
                    await call(
                        broker, self._topology, "embed", EmbedRequest(texts=[text]), EmbedResponse, self._timeout
                    )
                    self.ms.append((time.perf_counter() - started) * 1000)
                except Exception:  # a timeout or a bad reply counts, it is not fatal
                    self.failures += 1
                n += 1
                await asyncio.sleep(self._interval)
        finally:
            await broker.stop()

    def run(self, calls: int) -> dict[str, Any]:
        """``calls`` probes in the foreground (the idle measurement)."""
        asyncio.run(self._loop(calls))
        return latency_summary(self.ms, self.failures)

    def start(self) -> None:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._loop(None)), name="rpc-probe", daemon=True)
        self._thread.start()

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        return latency_summary(self.ms, self.failures)
