"""SQL for the documents table. Flushes only; the caller's unit of work commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from vectrion_common.identity import Identity
from vectrion_ingest.models import documents
from vectrion_ingest.status import DocumentStatus

DocumentRow = sa.Row[Any]
LIVE_STATUSES = (DocumentStatus.UPLOADED.value, DocumentStatus.PROCESSING.value, DocumentStatus.PROCESSED.value)
LEAVING_STATUSES = (DocumentStatus.DELETING.value, DocumentStatus.DELETED.value)


def _visible_to(identity: Identity) -> sa.ColumnElement[bool]:
    """The caller's tenant only (platform admins included); private documents only for their owner."""
    return sa.and_(
        documents.c.tenant_id == identity.tenant_id,
        sa.or_(documents.c.visibility == "tenant", documents.c.owner_id == identity.user_id),
        documents.c.status != DocumentStatus.DELETED.value,
    )


class DocumentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def find_by_sha256(self, tenant_id: uuid.UUID, sha256: str) -> DocumentRow | None:
        """The tenant's live document with these bytes (a deleted one does not count)."""
        result = await self._session.execute(
            sa.select(documents).where(
                documents.c.tenant_id == tenant_id,
                documents.c.sha256 == sha256,
                documents.c.status.not_in(LEAVING_STATUSES),
            )
        )
        return result.first()

    async def get_visible(self, identity: Identity, document_id: uuid.UUID) -> DocumentRow | None:
        result = await self._session.execute(
            sa.select(documents).where(documents.c.id == document_id, _visible_to(identity))
        )
        return result.first()

    async def list_visible(self, identity: Identity, *, limit: int, offset: int) -> Sequence[DocumentRow]:
        result = await self._session.execute(
            sa.select(documents)
            .where(_visible_to(identity))
            .order_by(documents.c.created_at.desc(), documents.c.id)
            .limit(limit)
            .offset(offset)
        )
        return result.all()

    async def insert(self, **values: Any) -> DocumentRow:
        result = await self._session.execute(sa.insert(documents).values(**values).returning(*documents.c))
        return result.one()

    async def lock(self, document_id: uuid.UUID) -> DocumentRow | None:
        """The row, locked until the transaction ends, so concurrent events apply one at a time."""
        result = await self._session.execute(
            sa.select(documents).where(documents.c.id == document_id).with_for_update()
        )
        return result.first()

    async def lock_stuck(self, older_than_seconds: float, limit: int) -> Sequence[DocumentRow]:
        """Live documents whose status has not moved for a while, locked; rows another
        replica's sweeper holds are skipped."""
        result = await self._session.execute(
            sa.select(documents)
            .where(
                documents.c.status.in_(LIVE_STATUSES),
                documents.c.updated_at < sa.func.now() - sa.func.make_interval(0, 0, 0, 0, 0, 0, older_than_seconds),
            )
            .order_by(documents.c.updated_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return result.all()

    async def lock_in_status(
        self, status: DocumentStatus, older_than_seconds: float, limit: int
    ) -> Sequence[DocumentRow]:
        """Documents in ``status`` untouched for a while, oldest first, locked (another replica's
        rows are skipped)."""
        result = await self._session.execute(
            sa.select(documents)
            .where(
                documents.c.status == status.value,
                documents.c.updated_at < sa.func.now() - sa.func.make_interval(0, 0, 0, 0, 0, 0, older_than_seconds),
            )
            .order_by(documents.c.updated_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return result.all()

    async def get(self, document_id: uuid.UUID) -> DocumentRow | None:
        """Unscoped, unlocked: for the service's own bookkeeping, never for a caller's read."""
        result = await self._session.execute(sa.select(documents).where(documents.c.id == document_id))
        return result.first()

    async def purge(self, document_ids: Sequence[uuid.UUID]) -> int:
        """Remove rows for good (retention of deleted documents)."""
        if not document_ids:
            return 0
        result = await self._session.execute(sa.delete(documents).where(documents.c.id.in_(document_ids)))
        return int(getattr(result, "rowcount", 0) or 0)

    async def update(self, document_id: uuid.UUID, **values: Any) -> None:
        await self._session.execute(
            sa.update(documents).where(documents.c.id == document_id).values(**values, updated_at=sa.func.now())
        )
