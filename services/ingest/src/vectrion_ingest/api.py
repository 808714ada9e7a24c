"""The documents HTTP API (reached through the gateway with a signed identity token)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile

from vectrion_common.contracts import Visibility
from vectrion_common.identity import CurrentIdentity
from vectrion_ingest.schemas import DocumentList, DocumentOut
from vectrion_ingest.service import DocumentService
from vectrion_ingest.validation import check_size, clean_filename

READ_CHUNK_BYTES = 1024 * 1024

router = APIRouter(prefix="/v1/documents", tags=["documents"])


def document_service(request: Request) -> DocumentService:
    service: DocumentService = request.app.state.documents
    return service


Documents = Annotated[DocumentService, Depends(document_service)]


async def read_capped(file: UploadFile, max_bytes: int) -> bytes:
    """The upload's bytes, refusing (413) as soon as they pass ``max_bytes``."""
    if file.size is not None:
        check_size(file.size, max_bytes)
    buffer = bytearray()
    while chunk := await file.read(READ_CHUNK_BYTES):
        buffer += chunk
        check_size(len(buffer), max_bytes)
    return bytes(buffer)


@router.post(
    "",
    status_code=202,
    responses={200: {"model": DocumentOut, "description": "the same file was already uploaded to this tenant"}},
)
async def upload_document(
    identity: CurrentIdentity,
    documents: Documents,
    response: Response,
    file: Annotated[
        UploadFile,
        File(
            description="PDF, DOCX, HTML, Markdown (.md) or UTF-8 text; the type comes from the content. "
            "pages: a PDF's real count, a DOCX's from docProps/app.xml (else 1), 1 for the others"
        ),
    ],
    visibility: Annotated[Visibility, Form()] = "tenant",
) -> DocumentOut:
    data = await read_capped(file, documents.max_upload_bytes)
    result = await documents.upload(identity, clean_filename(file.filename), data, visibility)
    response.status_code = 202 if result.created else 200
    response.headers["Location"] = f"/v1/documents/{result.document.id}"
    return DocumentOut.model_validate(result.document)


@router.get("")
async def list_documents(
    identity: CurrentIdentity,
    documents: Documents,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> DocumentList:
    rows = await documents.list(identity, limit=limit, offset=offset)
    return DocumentList(items=[DocumentOut.model_validate(r) for r in rows], limit=limit, offset=offset)


@router.get("/{document_id}")
async def get_document(identity: CurrentIdentity, documents: Documents, document_id: uuid.UUID) -> DocumentOut:
    return DocumentOut.model_validate(await documents.get(identity, document_id))


@router.post("/{document_id}/reprocess", status_code=202)
async def reprocess_document(identity: CurrentIdentity, documents: Documents, document_id: uuid.UUID) -> DocumentOut:
    """Run the pipeline again as a new generation (``attempts`` + 1)."""
    return DocumentOut.model_validate(await documents.reprocess(identity, document_id))


@router.delete("/{document_id}", status_code=202)
async def delete_document(identity: CurrentIdentity, documents: Documents, document_id: uuid.UUID) -> DocumentOut:
    """Delete the document everywhere (the deletion saga). The answer comes once search no longer
    returns the document (waiting a few seconds at most); the status is ``deleting`` until its
    chunks and file are gone too, then ``deleted``. Deleting again while ``deleting`` is harmless."""
    return DocumentOut.model_validate(await documents.delete(identity, document_id))
