"""The proxied public routes, declared one by one so they appear in /openapi.json.

``authorize`` has already authenticated the caller, checked the permission
(``permissions.ROUTE_PERMISSIONS``) and the rate limit; each route hands the raw
request to :func:`vectrion_gateway.proxy.forward` and the owning service
validates the body, owns the response shape and scopes every id to the
caller's identity (another tenant's id answers 404 there). Successful
document writes invalidate the tenant's cached answers. The request-body schemas below document the
public contract (ARCHITECTURE.md, "Public API") for clients; they are not
enforced here, so the gateway never has to parse (or buffer) a body.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from vectrion_gateway.asking import ask
from vectrion_gateway.auth import CurrentPrincipal, Principal
from vectrion_gateway.context import GatewayContext, gateway_context
from vectrion_gateway.proxy import Upstream, forward

router = APIRouter(prefix="/v1")

Context = Annotated[GatewayContext, Depends(gateway_context)]
_PASSTHROUGH_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def _json_body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema = {"type": "object", "properties": properties, "required": required}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "visibility": {"type": "string", "enum": ["tenant", "private"]},
                    },
                    "required": ["file"],
                }
            }
        },
    },
    "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"}}],
}

# --- ingest ---------------------------------------------------------------------


async def _document_write(request: Request, principal: Principal, context: GatewayContext) -> Response:
    response = await forward(request, principal, context, Upstream.INGEST)
    if 200 <= response.status_code < 300:
        await context.cache.documents_changed(principal.tenant_id)
    return response



@router.post("/documents", tags=["documents"], status_code=202, openapi_extra=_UPLOAD_BODY)
async def upload_document(request: Request, principal: CurrentPrincipal, context: Context) -> Response:
    """Upload a document (multipart `file`: PDF, DOCX, HTML, Markdown or UTF-8 text; the type comes from
    the content); answers 202 with `{id, status}`."""
    return await _document_write(request, principal, context)


@router.get("/documents", tags=["documents"])
async def list_documents(request: Request, principal: CurrentPrincipal, context: Context) -> Response:
    return await forward(request, principal, context, Upstream.INGEST)


@router.get("/documents/{document_id}", tags=["documents"])
async def get_document(
    document_id: uuid.UUID, request: Request, principal: CurrentPrincipal, context: Context
) -> Response:
    return await forward(request, principal, context, Upstream.INGEST)


@router.delete("/documents/{document_id}", tags=["documents"], status_code=202)
async def delete_document(
    document_id: uuid.UUID, request: Request, principal: CurrentPrincipal, context: Context
) -> Response:
    return await _document_write(request, principal, context)


@router.post("/documents/{document_id}/reprocess", tags=["documents"], status_code=202)
async def reprocess_document(
    document_id: uuid.UUID, request: Request, principal: CurrentPrincipal, context: Context
) -> Response:
    return await _document_write(request, principal, context)


async def document_subresource(
    document_id: uuid.UUID, subpath: str, request: Request, principal: CurrentPrincipal, context: Context
) -> Response:
    """Any other per-document operation the ingest service offers."""
    if request.method == "GET":
        return await forward(request, principal, context, Upstream.INGEST)
    return await _document_write(request, principal, context)


# --- query ----------------------------------------------------------------------


@router.post(
    "/search",
    tags=["query"],
    openapi_extra=_json_body({"query": {"type": "string"}, "top_k": {"type": "integer"}}, ["query"]),
)
async def search(request: Request, principal: CurrentPrincipal, context: Context) -> Response:
    """Retrieval only: `{results: [{chunk_id, document_id, page, score, text}]}`."""
    return await forward(request, principal, context, Upstream.QUERY)


@router.post(
    "/query",
    tags=["query"],
    openapi_extra=_json_body(
        {
            "question": {"type": "string"},
            "conversation_id": {"type": "string", "format": "uuid"},
            "stream": {"type": "boolean"},
        },
        ["question"],
    ),
)
async def query(request: Request, principal: CurrentPrincipal, context: Context) -> Response:
    """Ask a question; the answer cites its sources (SSE when `stream`).

    Metered against the caller's token quotas; history-free questions may be
    answered from the cache (`X-Cache: hit`).
    """
    return await ask(request, principal, context)


@router.get("/conversations", tags=["conversations"])
async def list_conversations(request: Request, principal: CurrentPrincipal, context: Context) -> Response:
    return await forward(request, principal, context, Upstream.QUERY)


@router.get("/conversations/{conversation_id}", tags=["conversations"])
async def get_conversation(
    conversation_id: uuid.UUID, request: Request, principal: CurrentPrincipal, context: Context
) -> Response:
    return await forward(request, principal, context, Upstream.QUERY)


@router.delete("/conversations/{conversation_id}", tags=["conversations"])
async def delete_conversation(
    conversation_id: uuid.UUID, request: Request, principal: CurrentPrincipal, context: Context
) -> Response:
    return await forward(request, principal, context, Upstream.QUERY)


async def conversation_subresource(
    conversation_id: uuid.UUID, subpath: str, request: Request, principal: CurrentPrincipal, context: Context
) -> Response:
    return await forward(request, principal, context, Upstream.QUERY)


# One route per method, so each has its own OpenAPI operation id.
for _method in _PASSTHROUGH_METHODS:
    router.add_api_route(
        "/documents/{document_id}/{subpath:path}",
        document_subresource,
        methods=[_method],
        tags=["documents"],
        operation_id=f"document_subresource_{_method.lower()}",
    )
    router.add_api_route(
        "/conversations/{conversation_id}/{subpath:path}",
        conversation_subresource,
        methods=[_method],
        tags=["conversations"],
        operation_id=f"conversation_subresource_{_method.lower()}",
    )


# --- guardrails -----------------------------------------------------------------


@router.post(
    "/guardrails/check",
    tags=["guardrails"],
    openapi_extra=_json_body(
        {"text": {"type": "string"}, "direction": {"type": "string", "enum": ["input", "output"]}},
        ["text", "direction"],
    ),
)
async def guardrails_check(request: Request, principal: CurrentPrincipal, context: Context) -> Response:
    """Policy pre-check of a text; answers the guardrails verdict."""
    return await forward(request, principal, context, Upstream.GUARDRAILS)
