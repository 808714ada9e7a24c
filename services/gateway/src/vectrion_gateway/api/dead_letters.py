"""DLQ admin and the reconciler, proxied to ingest (which owns them): ``dlq:manage`` and
``reconcile`` (platform admins only).

Its own module so it merges cleanly beside the other proxied routes; the permission
rows are in :data:`vectrion_gateway.permissions.ROUTE_PERMISSIONS`, and ingest checks
the role again.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from vectrion_gateway.auth import CurrentPrincipal
from vectrion_gateway.context import GatewayContext, gateway_context
from vectrion_gateway.proxy import Upstream, forward

router = APIRouter(prefix="/v1/admin/dlq", tags=["admin"])

Context = Annotated[GatewayContext, Depends(gateway_context)]


@router.get("")
async def list_dead_letters(request: Request, principal: CurrentPrincipal, context: Context) -> Response:
    """Parked messages of every consumer (`?queue=` for one DLQ): id, queue, error, attempts, document."""
    return await forward(request, principal, context, Upstream.INGEST)


@router.get("/{message_id}")
async def inspect_dead_letter(
    message_id: str, request: Request, principal: CurrentPrincipal, context: Context
) -> Response:
    """One parked message with its headers and body."""
    return await forward(request, principal, context, Upstream.INGEST)


@router.post("/{message_id}/replay")
async def replay_dead_letter(
    message_id: str, request: Request, principal: CurrentPrincipal, context: Context
) -> Response:
    """Send the message back to the consumer it failed in; a failed document resumes."""
    return await forward(request, principal, context, Upstream.INGEST)


@router.delete("/{message_id}")
async def purge_dead_letter(
    message_id: str, request: Request, principal: CurrentPrincipal, context: Context
) -> Response:
    return await forward(request, principal, context, Upstream.INGEST)


reconcile_router = APIRouter(prefix="/v1/admin", tags=["admin"])


@reconcile_router.post("/reconcile")
async def reconcile(request: Request, principal: CurrentPrincipal, context: Context) -> Response:
    """Compare files, chunks, read model and vectors and repair differences (`?repair=false`: report only)."""
    return await forward(request, principal, context, Upstream.INGEST)
