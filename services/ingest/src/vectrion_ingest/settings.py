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

    # The deletion saga: DELETE answers once the query service confirms the document is out of
    # search, waiting at most delete_wait_seconds; a document still ``deleting`` after
    # stuck_deletion_seconds is asked for again (or finished, when both stages confirmed).
    delete_wait_seconds: float = Field(default=10, ge=0)
    stuck_deletion_seconds: float = Field(default=120, gt=0)
    # Retention: failed documents are deleted (the saga) after failed_retention_days, None keeps
    # them; rows of deleted documents are purged after deleted_retention_days.
    failed_retention_days: float | None = Field(default=None, gt=0)
    deleted_retention_days: float = Field(default=30, gt=0)

    # The reconciler asks these for what they hold; files no live document owns are deleted once
    # older than orphan_file_grace_seconds (an upload writes its file just before its row).
    chunker_url: str = "http://127.0.0.1:8002"
    query_url: str = "http://127.0.0.1:8004"
    orphan_file_grace_seconds: float = Field(default=3600, ge=0)
