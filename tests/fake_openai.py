"""A real loopback HTTP server speaking the OpenAI chat-completions protocol, with fault modes.

It plays the LLM provider in tests (a stand-in the brief allows; nothing else
is faked). It listens under uvicorn on a free 127.0.0.1 port and answers
``POST /v1/chat/completions`` (JSON or SSE with ``stream: true``).

Modes (``FakeProvider.mode``):

- ``normal``: answers from source [1] of the prompt, citing ``[1]`` and an
  invented ``[9]``; usage in the body (and in a last stream chunk);
- ``slow``: waits ``slow_seconds`` before answering (a read timeout);
- ``429``: answers 429 with ``Retry-After: <retry_after>`` for the first
  ``fail_times`` calls, then normally;
- ``500``: answers 500 for the first ``fail_times`` calls, then normally;
- ``malformed``: answers 200 with a body that is not JSON (and a stream chunk
  that is not JSON);
- ``cut``: streams two deltas, then drops the connection (no ``[DONE]``);
  non-streaming it behaves like ``normal``;
- ``leak``: repeats the system prompt's confidential marker (the canary).

A rewrite request (our follow-up rewrite prompt) is answered with
``rewrite_answer`` when set, so multi-turn tests can script the LLM's rewrite.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

_SOURCE_ONE = re.compile(r"\[1\] [^\n]*\n(.+?)(?:\n\n\[2\]|\n<<<END SOURCES)", re.S)
_CANARY = re.compile(r"vx-canary-[0-9a-f]+")
MODEL = "fake-gpt"


@dataclass
class FakeProvider:
    mode: str = "normal"
    slow_seconds: float = 10.0
    retry_after: str = "1"
    fail_times: int = 10**6
    rewrite_answer: str | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def reset(self, mode: str = "normal", **changes: Any) -> None:
        self.mode = mode
        self.slow_seconds, self.retry_after, self.fail_times, self.rewrite_answer = 10.0, "1", 10**6, None
        for name, value in changes.items():
            setattr(self, name, value)
        self.requests.clear()

    @property
    def answer_calls(self) -> int:
        return sum(1 for r in self.requests if not _is_rewrite(r))

    def _answer_text(self, body: dict[str, Any]) -> str:
        messages = body.get("messages", [])
        if _is_rewrite(body) and self.rewrite_answer:
            return self.rewrite_answer
        system = next((m["content"] for m in messages if m["role"] == "system"), "")
        if self.mode == "leak":
            canary = _CANARY.search(system)
            return f"My instructions say: confidential marker {canary.group(0) if canary else '?'}."
        user = messages[-1]["content"] if messages else ""
        found = _SOURCE_ONE.search(user)
        if not found:
            return "I don't know: the documents available to you do not contain the answer."
        first_sentence = found.group(1).strip().split(". ")[0].rstrip(".")
        return f"{first_sentence} [1]. This is also stated elsewhere [9]."

    async def handle(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        number = len(self.requests)
        if self.mode == "slow":
            await asyncio.sleep(self.slow_seconds)
        if self.mode == "429" and number <= self.fail_times:
            return JSONResponse({"error": {"message": "rate limited"}}, 429, {"Retry-After": self.retry_after})
        if self.mode == "500" and number <= self.fail_times:
            return JSONResponse({"error": {"message": "boom"}}, 500)
        text = self._answer_text(body)
        if body.get("stream"):
            return StreamingResponse(self._stream(text), media_type="text/event-stream")
        if self.mode == "malformed":
            return Response('{"choices": [ {"message": ', media_type="application/json")
        return JSONResponse(
            {
                "id": f"chatcmpl-{number}",
                "object": "chat.completion",
                "model": MODEL,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 111, "completion_tokens": 22, "total_tokens": 133},
            }
        )

    async def _stream(self, text: str) -> AsyncIterator[bytes]:
        words = text.split(" ")
        for i, word in enumerate(words):
            if self.mode == "cut" and i == 2:
                raise ConnectionResetError("the provider dropped the stream")  # uvicorn cuts the connection
            if self.mode == "malformed" and i == 1:
                yield b"data: {this is not json\n\n"
                return
            delta = word if i == 0 else " " + word
            chunk = {"model": MODEL, "choices": [{"index": 0, "delta": {"content": delta}, "finish_reason": None}]}
            yield f"data: {json.dumps(chunk)}\n\n".encode()
            await asyncio.sleep(0.005)
        stop = {"model": MODEL, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        yield f"data: {json.dumps(stop)}\n\n".encode()
        usage = {"model": MODEL, "choices": [], "usage": {"prompt_tokens": 111, "completion_tokens": 22}}
        yield f"data: {json.dumps(usage)}\n\n".encode()
        yield b"data: [DONE]\n\n"


def _is_rewrite(body: dict[str, Any]) -> bool:
    messages = body.get("messages") or [{}]
    return str(messages[0].get("content", "")).startswith("Rewrite the user's last question")


def free_socket() -> socket.socket:
    """A bound, unused 127.0.0.1 socket for a uvicorn server."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


async def serve_fake_provider() -> tuple[FakeProvider, uvicorn.Server, asyncio.Task[None], socket.socket]:
    provider = FakeProvider()
    app = Starlette(routes=[Route("/v1/chat/completions", provider.handle, methods=["POST"])])
    sock = free_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(500):  # uvicorn exposes a flag, not an event
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    assert server.started, "the fake provider did not start"
    provider.url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    return provider, server, task, sock


async def stop_fake_provider(server: uvicorn.Server, task: asyncio.Task[None], sock: socket.socket) -> None:
    server.should_exit = True
    await task
    sock.close()
