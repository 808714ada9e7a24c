"""The query service's admin API: the reconciler's view of the index (platform admins only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from vectrion_common.contracts import StageInventory
from vectrion_common.identity import CurrentIdentity
from vectrion_common.problems import Forbidden
from vectrion_query.reconcile import reconcile_index

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.post("/reconcile")
async def reconcile(
    request: Request,
    identity: CurrentIdentity,
    repair: Annotated[bool, Query(description="fix what is safe to fix here; false only reports")] = True,
) -> StageInventory:
    """Read model vs Qdrant points per document and generation; see :mod:`vectrion_query.reconcile`."""
    if not identity.is_platform_admin:
        raise Forbidden("the reconciler needs the platform_admin role")
    return await reconcile_index(request.app.state.vector_store, request.app.state.sessions, repair=repair)
