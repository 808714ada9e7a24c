"""Fixtures of the ingest tests: a migrated test DB, a running app, signed identities."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.harness import RABBITMQ_URL, SHARED_DATA, TEST_DB, migrate_services
from vectrion_common.identity import IDENTITY_HEADER, Identity, sign_identity
from vectrion_common.storage import StorageSettings
from vectrion_ingest.main import create_app
from vectrion_ingest.settings import IngestSettings

PDFS = SHARED_DATA / "pdfs"
SECRET = "test-secret"


def pdf(name: str) -> bytes:
    return (PDFS / name).read_bytes()


def new_identity(tenant_id: uuid.UUID | None = None, role: str = "member") -> Identity:
    return Identity(user_id=uuid.uuid4(), tenant_id=tenant_id or uuid.uuid4(), role=role)


def auth(identity: Identity) -> dict[str, str]:
    return {IDENTITY_HEADER: sign_identity(identity, SECRET)}


@pytest.fixture(scope="session", autouse=True)
def ingest_db() -> str:
    # Sync and autouse: migrations run asyncio.run themselves, so before any test's loop runs.
    return migrate_services("ingest")


@pytest.fixture
def make_settings(ingest_db: str, broker_namespace: str, tmp_path: Path) -> Callable[..., IngestSettings]:
    def make(**overrides: Any) -> IngestSettings:
        values: dict[str, Any] = {
            "db_name": TEST_DB,
            "rabbitmq_url": RABBITMQ_URL,
            "broker_namespace": broker_namespace,
            "internal_token_secret": SECRET,
            "storage": StorageSettings(local_root=tmp_path / "blobs"),
            "max_upload_bytes": 2 * 1024 * 1024,
            "log_json": False,
            **overrides,
        }
        return IngestSettings(**values)

    return make


RunningApp = tuple[FastAPI, httpx.AsyncClient]


@pytest.fixture
def running_app(
    make_settings: Callable[..., IngestSettings],
) -> Callable[..., AbstractAsyncContextManager[RunningApp]]:
    """``async with running_app(**setting_overrides) as (app, client)``: lifespan entered, HTTP client ready."""

    @asynccontextmanager
    async def run(**overrides: Any) -> AsyncIterator[RunningApp]:
        app = create_app(make_settings(**overrides))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                yield app, client

    return run


@pytest.fixture
async def app_client(
    running_app: Callable[..., AbstractAsyncContextManager[RunningApp]],
) -> AsyncIterator[RunningApp]:
    async with running_app() as pair:
        yield pair


async def _upload(
    client: httpx.AsyncClient,
    identity: Identity,
    data: bytes,
    filename: str = "doc.pdf",
    visibility: str | None = None,
) -> httpx.Response:
    form = {"visibility": visibility} if visibility else None
    return await client.post(
        "/v1/documents", files={"file": (filename, data, "application/pdf")}, data=form, headers=auth(identity)
    )


# Test modules cannot import this conftest by name (importlib import mode): helpers come as fixtures.


@pytest.fixture
def read_pdf() -> Callable[[str], bytes]:
    return pdf


@pytest.fixture
def make_identity() -> Callable[..., Identity]:
    return new_identity


@pytest.fixture
def auth_headers() -> Callable[[Identity], dict[str, str]]:
    return auth


@pytest.fixture
def upload() -> Callable[..., Any]:
    """``await upload(client, identity, data, filename=..., visibility=...)`` -> the HTTP response."""
    return _upload
