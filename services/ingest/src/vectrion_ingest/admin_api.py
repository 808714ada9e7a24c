"""DLQ admin HTTP API (platform admins; the gateway proxies ``/v1/admin/dlq`` here)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from vectrion_common.identity import CurrentIdentity
from vectrion_common.messaging.dead_letters import DeadLetter
from vectrion_ingest.dead_letters import DeadLetterAdmin
from vectrion_ingest.errors import NotAllowed
from vectrion_ingest.reconcile import Reconciler, ReconcileReport

router = APIRouter(prefix="/v1/admin/dlq", tags=["admin"])


def dead_letter_admin(request: Request, identity: CurrentIdentity) -> DeadLetterAdmin:
    if not identity.is_platform_admin:
        raise NotAllowed("the DLQ admin needs the platform_admin role")
    admin: DeadLetterAdmin = request.app.state.dead_letters
    return admin


Admin = Annotated[DeadLetterAdmin, Depends(dead_letter_admin)]
QueueFilter = Annotated[str | None, Query(description="one DLQ; default: every consumer's")]


class DeadLetterList(BaseModel):
    items: list[DeadLetter]


@router.get("")
async def list_dead_letters(admin: Admin, queue: QueueFilter = None) -> DeadLetterList:
    return DeadLetterList(items=[letter.summary() for letter in await admin.list_all(queue)])


@router.get("/{message_id}")
async def inspect_dead_letter(admin: Admin, message_id: str, queue: QueueFilter = None) -> DeadLetterList:
    """The message with its headers and body (one per DLQ holding it)."""
    return DeadLetterList(items=await admin.inspect(message_id, queue))


@router.post("/{message_id}/replay")
async def replay_dead_letter(admin: Admin, message_id: str, queue: QueueFilter = None) -> DeadLetterList:
    """Send the message back to the consumer it failed in, with a fresh attempt count."""
    return DeadLetterList(items=[letter.summary() for letter in await admin.replay(message_id, queue)])


@router.delete("/{message_id}")
async def purge_dead_letter(admin: Admin, message_id: str, queue: QueueFilter = None) -> DeadLetterList:
    return DeadLetterList(items=[letter.summary() for letter in await admin.purge(message_id, queue)])


reconcile_router = APIRouter(prefix="/v1/admin", tags=["admin"])


@reconcile_router.post("/reconcile")
async def reconcile(
    request: Request,
    identity: CurrentIdentity,
    repair: Annotated[bool, Query(description="false: report only")] = True,
) -> ReconcileReport:
    """Compare files, chunks, read model and Qdrant points; repair the differences (see
    :mod:`vectrion_ingest.reconcile`) and report what was found and done."""
    if not identity.is_platform_admin:
        raise NotAllowed("the reconciler needs the platform_admin role")
    reconciler: Reconciler = request.app.state.reconciler
    return await reconciler.run(repair=repair)
