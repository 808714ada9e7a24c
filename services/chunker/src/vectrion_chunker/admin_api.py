"""The chunker's admin API: what it holds, for the reconciler in ingest (platform admins only)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vectrion_chunker.models import chunks, deleted_documents
from vectrion_common.contracts import StageInventory
from vectrion_common.identity import CurrentIdentity
from vectrion_common.problems import Forbidden
from vectrion_common.tombstones import holdings

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.get("/inventory")
async def inventory(request: Request, identity: CurrentIdentity) -> StageInventory:
    """Chunk rows per document and generation, and the tombstones of deleted documents."""
    if not identity.is_platform_admin:
        raise Forbidden("the inventory needs the platform_admin role")
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with sessions() as session:
        held = await holdings(session, chunks, deleted_documents)
    return StageInventory(stage="chunker", documents=list(held.values()))
