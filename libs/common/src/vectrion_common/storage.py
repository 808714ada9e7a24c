"""Blob storage behind one small interface: a local directory or S3.

Ingest writes uploaded files; the chunker reads them by key. Files never travel
over RabbitMQ: events carry the storage key only.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, SecretStr


class BlobNotFound(KeyError):
    pass


@dataclass(frozen=True, slots=True)
class StoredBlob:
    key: str
    modified_at: datetime


class BlobStore(Protocol):
    async def put(self, key: str, data: bytes) -> None: ...
    async def get(self, key: str) -> bytes: ...
    async def delete(self, key: str) -> None: ...
    async def exists(self, key: str) -> bool: ...
    async def ping(self) -> None: ...
    async def list_blobs(self) -> list[StoredBlob]:
        """Every stored file (the reconciler looks for files no document owns)."""
        ...


class StorageSettings(BaseModel):
    """Nested in a service's settings (``VECTRION_STORAGE__BACKEND`` and so on)."""

    backend: Literal["local", "s3"] = "local"
    local_root: Path = Path("var/blobs")
    s3_bucket: str = "vectrion-documents"
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None


def _safe_key(key: str) -> str:
    parts = key.split("/")
    if not key or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid blob key: {key!r}")
    return key


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self._root = root.resolve()

    def _path(self, key: str) -> Path:
        return self._root / _safe_key(key)

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._write_atomically, self._path(key), data)

    @staticmethod
    def _write_atomically(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def get(self, key: str) -> bytes:
        try:
            return await asyncio.to_thread(self._path(key).read_bytes)
        except FileNotFoundError as exc:
            raise BlobNotFound(key) from exc

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).exists)

    async def ping(self) -> None:
        await asyncio.to_thread(self._root.mkdir, parents=True, exist_ok=True)

    async def list_blobs(self) -> list[StoredBlob]:
        return await asyncio.to_thread(self._walk)

    def _walk(self) -> list[StoredBlob]:
        if not self._root.exists():
            return []
        return [
            StoredBlob(path.relative_to(self._root).as_posix(), datetime.fromtimestamp(path.stat().st_mtime, UTC))
            for path in self._root.rglob("*")
            if path.is_file() and not path.name.startswith(".upload-")
        ]


class S3BlobStore:
    def __init__(self, settings: StorageSettings) -> None:
        import aioboto3

        self._session = aioboto3.Session()
        self._bucket = settings.s3_bucket
        self._client_args: dict[str, Any] = {"region_name": settings.s3_region}
        if settings.s3_endpoint_url:
            self._client_args["endpoint_url"] = settings.s3_endpoint_url
        if settings.s3_access_key_id and settings.s3_secret_access_key:
            self._client_args["aws_access_key_id"] = settings.s3_access_key_id.get_secret_value()
            self._client_args["aws_secret_access_key"] = settings.s3_secret_access_key.get_secret_value()

    def _client(self) -> Any:
        return self._session.client("s3", **self._client_args)

    async def put(self, key: str, data: bytes) -> None:
        async with self._client() as s3:
            await s3.put_object(Bucket=self._bucket, Key=_safe_key(key), Body=data)

    async def get(self, key: str) -> bytes:
        async with self._client() as s3:
            try:
                response = await s3.get_object(Bucket=self._bucket, Key=_safe_key(key))
            except s3.exceptions.NoSuchKey as exc:
                raise BlobNotFound(key) from exc
            async with response["Body"] as body:
                data: bytes = await body.read()
                return data

    async def delete(self, key: str) -> None:
        async with self._client() as s3:
            await s3.delete_object(Bucket=self._bucket, Key=_safe_key(key))

    async def exists(self, key: str) -> bool:
        async with self._client() as s3:
            try:
                await s3.head_object(Bucket=self._bucket, Key=_safe_key(key))
            except s3.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    return False
                raise
            return True

    async def ping(self) -> None:
        async with self._client() as s3:
            await s3.head_bucket(Bucket=self._bucket)

    async def list_blobs(self) -> list[StoredBlob]:
        found: list[StoredBlob] = []
        async with self._client() as s3:
            paginator = s3.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self._bucket):
                for item in page.get("Contents", []):
                    found.append(StoredBlob(item["Key"], item["LastModified"]))
        return found

    async def ensure_bucket(self) -> None:
        async with self._client() as s3:
            try:
                await s3.head_bucket(Bucket=self._bucket)
            except s3.exceptions.ClientError:
                await s3.create_bucket(Bucket=self._bucket)


def make_blob_store(settings: StorageSettings) -> BlobStore:
    match settings.backend:
        case "local":
            return LocalBlobStore(settings.local_root)
        case "s3":
            return S3BlobStore(settings)
