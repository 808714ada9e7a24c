"""OpenAI chat-completions shapes for Vectrion answers (model ``vectrion-rag``).

Request: the last ``user`` message is the question; earlier user/assistant
messages are the conversation memory (OpenAI clients keep history client-side);
``system`` messages are ignored -- our own rules apply. Each call is recorded
as a new conversation of the caller.

Response: a standard ``chat.completion`` (or ``chat.completion.chunk`` stream
ending in ``data: [DONE]``) plus one extra top-level field, ``vectrion``:
``{citations, conversation_id, message_id, answerer, model, fallback_reason,
guardrails, replaces_deltas}``. Clients that do not know it ignore it; the
official ``openai`` package exposes it as ``completion.vectrion`` /
``completion.model_extra["vectrion"]``. In a stream it rides on the last chunk
(the one with ``finish_reason``). If the answer had to be replaced after text
was streamed (the LLM failed mid-stream, or the output policy stopped it), the
replacement follows as one more delta after a blank line and
``vectrion.replaces_deltas`` is true.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from vectrion_query.asking import StreamDelta, StreamFinal
from vectrion_query.errors import NoQuestion, UnknownModel
from vectrion_query.memory import Turn
from vectrion_query.schemas import RAG_MODEL, ChatCompletionRequest, QueryResponse


def question_and_history(body: ChatCompletionRequest) -> tuple[str, list[Turn]]:
    if body.model != RAG_MODEL:
        raise UnknownModel(f"model {body.model!r} does not exist; use {RAG_MODEL!r}")
    turns = [Turn(m.role, m.text()) for m in body.messages if m.role in ("user", "assistant") and m.text().strip()]
    if not turns or turns[-1].role != "user":
        raise NoQuestion("the last message must be a user message with text")
    return turns[-1].content, turns[:-1]


def _extra(response: QueryResponse, replaces_deltas: bool = False) -> dict[str, Any]:
    return {
        "citations": [c.model_dump(mode="json") for c in response.citations],
        "conversation_id": str(response.conversation_id),
        "message_id": str(response.message_id),
        "answerer": response.answerer,
        "model": response.model,
        "fallback_reason": response.fallback_reason,
        "guardrails": response.guardrails.model_dump(mode="json"),
        "replaces_deltas": replaces_deltas,
    }


def _usage(response: QueryResponse) -> dict[str, int]:
    prompt, completion = response.usage.prompt_tokens, response.usage.completion_tokens
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def completion(response: QueryResponse) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{response.message_id.hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": RAG_MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": response.answer},
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(response),
        "vectrion": _extra(response),
    }


def _chunk(completion_id: str, created: int, delta: dict[str, Any], **extra: Any) -> str:
    body = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": RAG_MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": extra.pop("finish_reason", None)}],
        **extra,
    }
    return f"data: {json.dumps(body)}\n\n"


async def completion_chunks(events: AsyncIterator[StreamDelta | StreamFinal]) -> AsyncIterator[str]:
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    yield _chunk(completion_id, created, {"role": "assistant", "content": ""})
    sent = ""
    async for event in events:
        if isinstance(event, StreamDelta):
            sent += event.text
            yield _chunk(completion_id, created, {"content": event.text})
            continue
        response = event.response
        if not sent:
            yield _chunk(completion_id, created, {"content": response.answer})
        elif event.replaces_deltas:
            yield _chunk(completion_id, created, {"content": "\n\n" + response.answer})
        elif len(response.answer) > len(sent.strip()):
            yield _chunk(completion_id, created, {"content": response.answer[len(sent.strip()) :]})
        yield _chunk(completion_id, created, {}, finish_reason="stop", vectrion=_extra(response, event.replaces_deltas))
        usage = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": RAG_MODEL,
            "choices": [],
            "usage": _usage(response),
        }
        yield f"data: {json.dumps(usage)}\n\n"
    yield "data: [DONE]\n\n"
