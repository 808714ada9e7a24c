"""Pydantic shapes of the documents HTTP API."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from vectrion_common.contracts import Visibility
from vectrion_ingest.status import DocumentStatus


class DocumentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    filename: str
    status: DocumentStatus
    error: str | None
    attempts: int
    pages: int | None
    pages_without_text: int | None
    chunks: int | None
    generation: int
    created_at: datetime
    updated_at: datetime
    visibility: Visibility
    content_type: str
    size_bytes: int
    sha256: str
    deletion_requested_at: datetime | None = None
    deleted_at: datetime | None = None


class DocumentList(BaseModel):
    items: list[DocumentOut]
    limit: int
    offset: int
