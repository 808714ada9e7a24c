"""Ingest settings: built once at start-up with ``load_settings(IngestSettings)``."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from vectrion_common.settings import ServiceSettings
from vectrion_common.storage import StorageSettings

MIB = 1024 * 1024


class IngestSettings(ServiceSettings):
    service_name: ClassVar[str] = "ingest"

    storage: StorageSettings = Field(default_factory=StorageSettings)
    max_upload_bytes: int = Field(default=50 * MIB, gt=0, description="larger uploads answer 413")
    max_pages: int = Field(default=2000, gt=0, description="PDFs with more pages answer 422")
