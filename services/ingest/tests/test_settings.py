"""Ingest settings come from VECTRION_* variables, nested with ``__``."""

from __future__ import annotations

import pytest

from vectrion_common.settings import SettingsError
from vectrion_ingest.main import create_app
from vectrion_ingest.settings import IngestSettings


def test_storage_and_limits_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VECTRION_STORAGE__BACKEND", "s3")
    monkeypatch.setenv("VECTRION_STORAGE__S3_BUCKET", "docs")
    monkeypatch.setenv("VECTRION_MAX_UPLOAD_BYTES", "1024")
    settings = IngestSettings()
    assert (settings.storage.backend, settings.storage.s3_bucket, settings.max_upload_bytes) == ("s3", "docs", 1024)
    assert settings.max_pages == 2000
    assert settings.db_url().startswith("postgresql+asyncpg://vectrion_ingest:")


def test_the_app_refuses_to_start_without_the_identity_token_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VECTRION_INTERNAL_TOKEN_SECRET", raising=False)
    with pytest.raises(SettingsError, match="VECTRION_INTERNAL_TOKEN_SECRET"):
        create_app(IngestSettings())
