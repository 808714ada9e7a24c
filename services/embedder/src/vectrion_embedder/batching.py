"""Coalesce concurrent query-embedding RPCs into one model call.

RPCs are handled concurrently (up to the RPC channel's prefetch). Encoding each
one in its own worker thread made up to 16 small encodes fight for two cores.
Here at most one encode runs at a time: requests that arrive while it runs wait
and then go together into the next call (at most ``max_texts`` texts). A lone
request is encoded at once, so an idle service adds no delay.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from vectrion_embedder.model import Embedder


@dataclass(slots=True)
class _Waiting:
    texts: list[str]
    done: asyncio.Future[list[list[float]]] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class BatchingEmbedder:
    """An :class:`Embedder` that merges the requests that queue up behind a running encode."""

    def __init__(self, embedder: Embedder, *, max_texts: int = 64) -> None:
        self._embedder = embedder
        self._max_texts = max_texts
        self._queue: list[_Waiting] = []
        self._worker: asyncio.Task[None] | None = None
        self.calls = 0  # model calls made: fewer than requests under concurrency

    @property
    def model_id(self) -> str:
        return self._embedder.model_id

    @property
    def dimension(self) -> int:
        return self._embedder.dimension

    async def embed(self, texts: Sequence[str], *, urgent: bool = True) -> list[list[float]]:
        """Always the model's query lane (``urgent``): this is the RPC path."""
        waiting = _Waiting(list(texts))
        self._queue.append(waiting)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await waiting.done

    def _next_batch(self) -> list[_Waiting]:
        batch = [self._queue.pop(0)]  # always at least one request, however many texts it has
        count = len(batch[0].texts)
        while self._queue and count + len(self._queue[0].texts) <= self._max_texts:
            count += len(self._queue[0].texts)
            batch.append(self._queue.pop(0))
        return batch

    async def _drain(self) -> None:
        while self._queue:
            batch = self._next_batch()
            try:
                self.calls += 1
                vectors = await self._embedder.embed([t for w in batch for t in w.texts], urgent=True)
            except Exception as exc:  # every request of the failed call gets the error
                for waiting in batch:
                    if not waiting.done.done():
                        waiting.done.set_exception(exc)
                continue
            start = 0
            for waiting in batch:
                if not waiting.done.done():  # the caller may have been cancelled meanwhile
                    waiting.done.set_result(vectors[start : start + len(waiting.texts)])
                start += len(waiting.texts)
