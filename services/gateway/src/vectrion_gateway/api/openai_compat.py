"""OpenAI-compatible ``POST /v1/chat/completions`` (model ``vectrion-rag``).

Existing OpenAI clients (the official ``openai`` package, LangChain, chat UIs)
point their base URL at ``<gateway>/v1`` and pass a Vectrion access token as
their API key (sent as ``Authorization: Bearer``). The query service does the
work and owns the shapes (``vectrion_query.openai_compat``): a standard chat
completion, streamed too, with citations in the extra top-level field
``vectrion``. The gateway authenticates, authorises (``Permission.QUERY``, the
query rate budget) and meters it like ``/v1/query`` (:func:`vectrion_gateway.asking.ask`:
quota reservation, settlement from ``usage``; a stream's usage is not in the
``event: answer`` form ``ask`` reads, so a streamed completion is charged the
reservation, never less).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from vectrion_gateway.asking import ask
from vectrion_gateway.auth import CurrentPrincipal
from vectrion_gateway.context import GatewayContext, gateway_context

router = APIRouter(prefix="/v1")

_CHAT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "model": {"type": "string", "enum": ["vectrion-rag"]},
                        "messages": {"type": "array", "items": {"type": "object"}},
                        "stream": {"type": "boolean"},
                    },
                    "required": ["model", "messages"],
                }
            }
        },
    }
}


@router.post("/chat/completions", tags=["openai"], openapi_extra=_CHAT_BODY)
async def chat_completions(
    request: Request, principal: CurrentPrincipal, context: Annotated[GatewayContext, Depends(gateway_context)]
) -> Response:
    """OpenAI chat completion answered from the caller's documents; citations in `vectrion.citations`."""
    return await ask(request, principal, context)
