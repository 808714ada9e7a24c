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

    # The stuck-document sweeper: a document in uploaded/processing/processed whose status has
    # not moved for stuck_after_seconds is re-driven (a new generation) while it has had fewer
    # than max_pipeline_attempts runs, then failed with a reason.
    stuck_after_seconds: float = Field(default=30 * 60, gt=0)
    sweep_interval_seconds: float = Field(default=60, gt=0)
    max_pipeline_attempts: int = Field(default=3, ge=1)
