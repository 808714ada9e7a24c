"""Streamed answers are charged what the stream reports, read as it passes: /v1/query's answer event
and the OpenAI-style usage chunk of /v1/chat/completions, however the bytes are split."""

from __future__ import annotations

import json

import pytest

from vectrion_gateway.asking import MAX_STREAM_SCAN_BYTES, StreamUsage

QUERY_STREAM = (
    'event: delta\ndata: {"text": "The typewriter"}\n\n'
    'event: answer\ndata: {"answer": "It ...", "usage": {"prompt_tokens": 812, "completion_tokens": 41}}\n\n'
    "event: done\ndata: {}\n\n"
)
CHUNK = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "vectrion-rag"}
CHAT_STREAM = (
    f"data: {json.dumps(CHUNK | {'choices': [{'index': 0, 'delta': {'content': 'Hi'}}]})}\n\n"
    f"data: {json.dumps(CHUNK | {'choices': [], 'usage': {'prompt_tokens': 700, 'completion_tokens': 9}})}\n\n"
    "data: [DONE]\n\n"
)


def _fed(stream: str, size: int) -> StreamUsage:
    scanned = StreamUsage()
    data = stream.encode()
    for start in range(0, len(data), size):
        scanned.feed(data[start : start + size])
    return scanned


@pytest.mark.parametrize("size", [1, 7, 64, 100_000])
def test_the_query_answer_event_gives_the_usage_whatever_the_split(size: int) -> None:
    assert _fed(QUERY_STREAM, size).usage == (812, 41)


@pytest.mark.parametrize("size", [1, 13, 100_000])
def test_a_chat_completion_stream_is_charged_its_usage_chunk_not_the_reservation(size: int) -> None:
    assert _fed(CHAT_STREAM, size).usage == (700, 9)


def test_a_stream_without_usage_reports_none_and_a_runaway_event_is_dropped() -> None:
    assert _fed('event: delta\ndata: {"text": "x"}\n\nevent: done\ndata: {}\n\n', 5).usage is None
    scanned = StreamUsage()
    scanned.feed(b"data: " + b"x" * (MAX_STREAM_SCAN_BYTES + 10))
    scanned.feed(b"\n\n" + QUERY_STREAM.encode())
    assert scanned.usage == (812, 41)
