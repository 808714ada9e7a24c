"""The ingestion lane's coalescing, with a fake encode (no model): which texts go into which call."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from vectrion_embedder.coalescing import CoalescingLane, Vectors


class FakeEncode:
    """Vector of a text = [its length]; the first call blocks until released; 'poison' raises."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.release = threading.Event()

    def __call__(self, texts: Sequence[str]) -> Vectors:
        self.calls.append(list(texts))
        if len(self.calls) == 1:
            self.release.wait(10)
        if "poison" in texts:
            raise ValueError("cannot encode")
        return [[float(len(t))] for t in texts]


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=1)
    yield pool
    pool.shutdown(wait=False)


async def test_requests_queued_during_an_encode_share_the_next_call_and_get_their_own_vectors(
    executor: ThreadPoolExecutor,
) -> None:
    encode = FakeEncode()
    lane = CoalescingLane(encode, executor, max_texts=100)
    first = asyncio.ensure_future(lane.embed(["a"]))
    await asyncio.sleep(0.05)
    queued = [asyncio.ensure_future(lane.embed(texts)) for texts in (["bb", "ccc"], ["dddd"])]
    await asyncio.sleep(0.05)
    encode.release.set()

    assert await first == [[1.0]]
    assert [await q for q in queued] == [[[2.0], [3.0]], [[4.0]]]
    assert encode.calls == [["a"], ["bb", "ccc", "dddd"]]


async def test_coalesced_call_stays_within_max_texts(executor: ThreadPoolExecutor) -> None:
    encode = FakeEncode()
    lane = CoalescingLane(encode, executor, max_texts=3)
    first = asyncio.ensure_future(lane.embed(["a"]))
    await asyncio.sleep(0.05)
    queued = [asyncio.ensure_future(lane.embed(["x", "y"])) for _ in range(3)]
    await asyncio.sleep(0.05)
    encode.release.set()
    await asyncio.gather(first, *queued)

    assert [len(call) for call in encode.calls] == [1, 2, 2, 2]


async def test_a_failing_request_fails_alone_when_it_was_coalesced_with_others(executor: ThreadPoolExecutor) -> None:
    encode = FakeEncode()
    lane = CoalescingLane(encode, executor, max_texts=100)
    first = asyncio.ensure_future(lane.embed(["a"]))
    await asyncio.sleep(0.05)
    good = asyncio.ensure_future(lane.embed(["ok"]))
    bad = asyncio.ensure_future(lane.embed(["poison"]))
    await asyncio.sleep(0.05)
    encode.release.set()

    await first
    assert await good == [[2.0]]
    with pytest.raises(ValueError):
        await bad
