"""Document rules at the edge of the HTTP API: upload (validate, dedupe, store, record) and reads.

Order of an upload: validate and hash (worker thread) -> dedupe lookup ->
store the bytes (no DB session held during network I/O) -> ONE transaction
with the documents row and its ``document.uploaded.v1`` outbox row -> wake
the relay. A crash after the blob write and before the commit leaves an
orphan blob keyed by an id no row knows; the reconciler removes those.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vectrion_common.contracts import DocumentUploadedV1, Visibility
from vectrion_common.db import unit_of_work
from vectrion_common.identity import Identity
from vectrion_common.logs import get_logger
from vectrion_common.messaging.outbox import add_event
from vectrion_common.storage import BlobStore
from vectrion_ingest.deletion import DeletionSaga, request_deletion
from vectrion_ingest.errors import (
    DeletionPending,
    DocumentBeingDeleted,
    DocumentNotFound,
    DuplicateDocument,
    NotAllowed,
)
from vectrion_ingest.lifecycle import can_restart, start_new_generation
from vectrion_ingest.models import outbox
from vectrion_ingest.repository import DocumentRepository, DocumentRow
from vectrion_ingest.status import DocumentStatus
from vectrion_ingest.validation import ValidatedUpload, validate_upload

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class UploadResult:
    document: DocumentRow
    created: bool


def storage_key(tenant_id: uuid.UUID, document_id: uuid.UUID) -> str:
    return f"{tenant_id}/{document_id}/original"


def _inspect(data: bytes, filename: str, max_bytes: int, max_pages: int) -> tuple[ValidatedUpload, str]:
    validated = validate_upload(data, max_bytes=max_bytes, max_pages=max_pages, filename=filename)
    return validated, hashlib.sha256(data).hexdigest()


class DocumentService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        blobs: BlobStore,
        *,
        max_upload_bytes: int,
        max_pages: int,
        delete_wait_seconds: float = 10.0,
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self._sessions = sessions
        self._blobs = blobs
        self.max_upload_bytes = max_upload_bytes
        self._max_pages = max_pages
        self._delete_wait_seconds = delete_wait_seconds
        self._on_commit = on_commit
        self.deletion = DeletionSaga(sessions, blobs, on_commit=on_commit)

    async def upload(self, identity: Identity, filename: str, data: bytes, visibility: Visibility) -> UploadResult:
        validated, sha256 = await asyncio.to_thread(_inspect, data, filename, self.max_upload_bytes, self._max_pages)
        async with self._sessions() as session:
            existing = await DocumentRepository(session).find_by_sha256(identity.tenant_id, sha256)
        if existing is not None:
            return self._deduplicated(identity, existing)

        document_id = uuid.uuid4()
        key = storage_key(identity.tenant_id, document_id)
        await self._blobs.put(key, data)
        try:
            async with unit_of_work(self._sessions) as session:
                document = await DocumentRepository(session).insert(
                    id=document_id,
                    tenant_id=identity.tenant_id,
                    owner_id=identity.user_id,
                    filename=filename,
                    content_type=validated.content_type,
                    size_bytes=len(data),
                    sha256=sha256,
                    storage_key=key,
                    visibility=visibility,
                    status=DocumentStatus.UPLOADED.value,
                    attempts=1,
                    pages=validated.pages,
                    generation=1,
                )
                await add_event(
                    session,
                    outbox,
                    DocumentUploadedV1(
                        tenant_id=identity.tenant_id,
                        document_id=document_id,
                        generation=1,
                        owner_id=identity.user_id,
                        filename=filename,
                        content_type=validated.content_type,
                        storage_key=key,
                        sha256=sha256,
                        size_bytes=len(data),
                        visibility=visibility,
                    ),
                )
        except IntegrityError:
            await self._discard_blob(key)
            # A concurrent upload of the same bytes committed first: answer with its document.
            async with self._sessions() as session:
                existing = await DocumentRepository(session).find_by_sha256(identity.tenant_id, sha256)
            if existing is None:
                raise
            return self._deduplicated(identity, existing)
        except BaseException:
            await self._discard_blob(key)
            raise
        self._on_commit()
        log.info(
            "document.uploaded",
            document_id=str(document_id),
            tenant_id=str(identity.tenant_id),
            size_bytes=len(data),
            pages=validated.pages,
        )
        return UploadResult(document, created=True)

    async def get(self, identity: Identity, document_id: uuid.UUID) -> DocumentRow:
        async with self._sessions() as session:
            document = await DocumentRepository(session).get_visible(identity, document_id)
        if document is None:
            raise DocumentNotFound(f"document {document_id} not found")
        return document

    async def reprocess(self, identity: Identity, document_id: uuid.UUID) -> DocumentRow:
        """Run the pipeline again as a new generation; late events of the old one are ignored."""
        async with unit_of_work(self._sessions) as session:
            repository = DocumentRepository(session)
            document = await self._lock_for_change(repository, identity, document_id, "reprocess")
            if not can_restart(DocumentStatus(document.status)):
                raise DocumentBeingDeleted(f"document {document_id} is {document.status}")
            generation = await start_new_generation(session, document)
            updated = await repository.get_visible(identity, document_id)
        self._on_commit()
        log.info("document.reprocess_requested", document_id=str(document_id), generation=generation)
        assert updated is not None
        return updated

    async def delete(self, identity: Identity, document_id: uuid.UUID) -> DocumentRow:
        """Start the deletion saga and wait (bounded) until search no longer returns the document.

        A 202 therefore means: no search returns it any more. If the query service does not confirm
        in time, the deletion still goes on but the answer is 503 ``deletion-pending``; deleting a
        document already ``deleting`` starts nothing new, so the client simply repeats the DELETE.
        A ``deleted`` one is not found."""
        async with unit_of_work(self._sessions) as session:
            repository = DocumentRepository(session)
            document = await self._lock_for_change(repository, identity, document_id, "delete")
            started = document.status != DocumentStatus.DELETING.value
            if started:
                await request_deletion(session, document)
        if started:
            self._on_commit()
            log.info("document.deletion_requested", document_id=str(document_id), status_before=document.status)
        unsearchable = await self.deletion.wait_until_unsearchable(document_id, self._delete_wait_seconds)
        if not unsearchable:
            log.warning("document.deletion_unconfirmed", document_id=str(document_id), waited=self._delete_wait_seconds)
            raise DeletionPending(
                f"document {document_id} is being deleted, but the search index has not confirmed its removal "
                f"within {self._delete_wait_seconds:g}s; repeat the DELETE until it answers 202",
                retry_after=5,
            )
        return await self._current(document_id)

    async def _lock_for_change(
        self, repository: DocumentRepository, identity: Identity, document_id: uuid.UUID, action: str
    ) -> DocumentRow:
        if await repository.get_visible(identity, document_id) is None:
            raise DocumentNotFound(f"document {document_id} not found")
        document = await repository.lock(document_id)
        if document is None:
            raise DocumentNotFound(f"document {document_id} not found")
        if document.owner_id != identity.user_id and identity.role not in ("admin", "platform_admin"):
            raise NotAllowed(f"only the owner or a tenant admin may {action} a document")
        return document

    async def _current(self, document_id: uuid.UUID) -> DocumentRow:
        async with self._sessions() as session:
            document = await DocumentRepository(session).get(document_id)
        if document is None:
            raise DocumentNotFound(f"document {document_id} not found")
        return document

    async def list(self, identity: Identity, *, limit: int, offset: int) -> Sequence[DocumentRow]:
        async with self._sessions() as session:
            return await DocumentRepository(session).list_visible(identity, limit=limit, offset=offset)

    def _deduplicated(self, identity: Identity, existing: DocumentRow) -> UploadResult:
        if existing.visibility == "private" and existing.owner_id != identity.user_id:
            # Same bytes, but someone else's private document: do not reveal it.
            raise DuplicateDocument("an identical file already exists in this tenant")
        log.info("document.deduplicated", document_id=str(existing.id), tenant_id=str(identity.tenant_id))
        return UploadResult(existing, created=False)

    async def _discard_blob(self, key: str) -> None:
        try:
            await self._blobs.delete(key)
        except Exception:  # the original error matters more; the reconciler removes orphans
            log.exception("document.blob_discard_failed", storage_key=key)
