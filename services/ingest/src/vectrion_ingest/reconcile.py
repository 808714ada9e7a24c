"""The reconciler: files (ingest) vs chunks (chunker) vs read model and Qdrant points (query).

Ingest owns the documents, so it judges; the stages report what they hold over
their admin APIs (query also repairs what it can judge alone, see
``vectrion_query.reconcile``). Only settled documents are compared: one still
in the pipeline or in the deletion saga is left to them (and to the sweepers).

| finding | repair |
|---|---|
| ``indexed`` but chunks != read-model rows != points (current generation) | reprocess (a new generation) |
| a deleted or unknown document still held by chunker or query | ask for its deletion again |
| ``failed`` but still searchable (rows in query) | reported only (a reprocess or a delete settles it) |
| a file no live document owns, older than the grace period | delete the file |
| a live document whose file is missing | reported only (nothing can bring it back) |
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vectrion_common.contracts import DocumentDeletionRequestedV1, DocumentHoldings, StageInventory
from vectrion_common.db import unit_of_work
from vectrion_common.identity import IDENTITY_HEADER, Identity, sign_identity
from vectrion_common.logs import get_logger
from vectrion_common.messaging.outbox import add_event
from vectrion_common.storage import BlobStore
from vectrion_ingest.lifecycle import start_new_generation
from vectrion_ingest.models import documents, outbox
from vectrion_ingest.repository import DocumentRepository
from vectrion_ingest.status import DocumentStatus

log = get_logger(__name__)

SYSTEM = Identity(user_id=uuid.UUID(int=0), tenant_id=uuid.UUID(int=0), role="platform_admin")
GONE = (DocumentStatus.DELETED.value,)


class Finding(BaseModel):
    kind: str
    document_id: uuid.UUID | None = None
    detail: str
    action: str


class ReconcileReport(BaseModel):
    repair: bool
    documents: int
    chunker_documents: int
    query_documents: int
    files: int
    findings: list[Finding]
    repaired: dict[str, int]
    stage_repairs: dict[str, dict[str, int]]


@dataclass(slots=True)
class _Plan:
    findings: list[Finding] = field(default_factory=list)
    reprocess: list[uuid.UUID] = field(default_factory=list)
    redelete: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)  # document -> tenant
    orphan_files: list[str] = field(default_factory=list)

    def add(self, kind: str, document_id: uuid.UUID | None, detail: str, action: str) -> None:
        self.findings.append(Finding(kind=kind, document_id=document_id, detail=detail, action=action))


def _held(holdings: DocumentHoldings | None) -> bool:
    return holdings is not None and bool(sum(holdings.rows.values()) or sum(holdings.points.values()))


def plan_repairs(
    rows: list[Any],
    chunker: dict[uuid.UUID, DocumentHoldings],
    query: dict[uuid.UUID, DocumentHoldings],
    files: dict[str, datetime],
    *,
    orphan_before: datetime,
) -> _Plan:
    """Pure: what is wrong and what to do about it (no I/O, unit-testable)."""
    plan = _Plan()
    known = {r.id for r in rows}
    owned_files = {r.storage_key for r in rows if r.status not in GONE}
    for row in rows:
        in_chunker, in_query = chunker.get(row.id), query.get(row.id)
        if row.status == DocumentStatus.INDEXED.value:
            generation = row.generation
            counts = {
                "document": row.chunks or 0,
                "chunks": in_chunker.rows.get(generation, 0) if in_chunker else 0,
                "read_model": in_query.rows.get(generation, 0) if in_query else 0,
                "points": in_query.points.get(generation, 0) if in_query else 0,
            }
            if len(set(counts.values())) != 1:
                plan.add("index_mismatch", row.id, f"generation {generation}: {counts}", "reprocess")
                plan.reprocess.append(row.id)
            if row.storage_key not in files:
                plan.add("missing_file", row.id, f"no file at {row.storage_key}", "none")
        elif row.status == DocumentStatus.DELETED.value and (_held(in_chunker) or _held(in_query)):
            plan.add("deleted_but_held", row.id, "chunks, rows or points remain", "request deletion")
            plan.redelete[row.id] = row.tenant_id
        elif row.status == DocumentStatus.FAILED.value and _held(in_query):
            # Not deleted: a tombstone would stop a later reprocess. Reported for an operator.
            plan.add("failed_but_searchable", row.id, "query still serves chunks of a failed document", "none")
    for stage in (chunker, query):
        for document_id, holdings in stage.items():
            if document_id not in known and _held(holdings) and document_id not in plan.redelete:
                plan.add("unknown_document", document_id, "held by a stage, unknown to ingest", "request deletion")
                plan.redelete[document_id] = holdings.tenant_id
    for key, modified_at in sorted(files.items()):
        if key not in owned_files and modified_at < orphan_before:
            plan.add("orphan_file", None, key, "delete file")
            plan.orphan_files.append(key)
    return plan


class Reconciler:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        blobs: BlobStore,
        *,
        chunker_url: str,
        query_url: str,
        token_secret: str,
        orphan_file_grace_seconds: float,
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self._sessions = sessions
        self._blobs = blobs
        self._chunker_url = chunker_url.rstrip("/")
        self._query_url = query_url.rstrip("/")
        self._secret = token_secret
        self._grace = timedelta(seconds=orphan_file_grace_seconds)
        self._on_commit = on_commit

    async def run(self, *, repair: bool) -> ReconcileReport:
        chunker, query = await self._inventories(repair=repair)
        files = {b.key: b.modified_at for b in await self._blobs.list_blobs()}
        async with self._sessions() as session:
            rows = (await session.execute(sa.select(documents))).all()
        plan = plan_repairs(
            list(rows),
            {h.document_id: h for h in chunker.documents},
            {h.document_id: h for h in query.documents},
            files,
            orphan_before=datetime.now(UTC) - self._grace,
        )
        repaired: Counter[str] = Counter()
        if repair:
            repaired = await self._apply(plan)
        report = ReconcileReport(
            repair=repair,
            documents=len(rows),
            chunker_documents=len(chunker.documents),
            query_documents=len(query.documents),
            files=len(files),
            findings=plan.findings,
            repaired=dict(repaired),
            stage_repairs={"query": query.repaired, "chunker": chunker.repaired},
        )
        log.info("reconcile.done", findings=len(plan.findings), repaired=dict(repaired), repair=repair)
        return report

    async def _inventories(self, *, repair: bool) -> tuple[StageInventory, StageInventory]:
        headers = {IDENTITY_HEADER: sign_identity(SYSTEM, self._secret)}
        async with httpx.AsyncClient(timeout=300) as http:
            chunker = await http.get(f"{self._chunker_url}/v1/admin/inventory", headers=headers)
            chunker.raise_for_status()
            query = await http.post(
                f"{self._query_url}/v1/admin/reconcile", params={"repair": str(repair).lower()}, headers=headers
            )
            query.raise_for_status()
        return StageInventory.model_validate(chunker.json()), StageInventory.model_validate(query.json())

    async def _apply(self, plan: _Plan) -> Counter[str]:
        repaired: Counter[str] = Counter()
        async with unit_of_work(self._sessions) as session:
            repository = DocumentRepository(session)
            for document_id in plan.reprocess:
                document = await repository.lock(document_id)
                if document is not None and document.status == DocumentStatus.INDEXED.value:
                    await start_new_generation(session, document)
                    repaired["reprocessed"] += 1
            for document_id, tenant_id in plan.redelete.items():
                document = await repository.lock(document_id)
                # The stages' deletion handlers are idempotent; ingest's own status does not move.
                await add_event(
                    session,
                    outbox,
                    DocumentDeletionRequestedV1(
                        tenant_id=tenant_id,
                        document_id=document_id,
                        generation=document.generation if document is not None else 1,
                    ),
                )
                repaired["deletion_requested"] += 1
        self._on_commit()
        for key in plan.orphan_files:
            await self._blobs.delete(key)
            repaired["orphan_files_deleted"] += 1
        return repaired
