"""Blob stores: a local directory, and S3 against moto's server (in-process mock_aws does not work with aioboto3)."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from vectrion_common.storage import (
    BlobNotFound,
    BlobStore,
    LocalBlobStore,
    S3BlobStore,
    StorageSettings,
    make_blob_store,
)

UNSAFE_KEYS = ["", "../escape", "a/../../escape", "/etc/passwd", "a//b", "a/./b", "a/", ".."]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _files_under(directory: Path) -> list[str]:
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def _s3_settings(endpoint: str, bucket: str = "vectrion-test") -> StorageSettings:
    return StorageSettings(
        backend="s3",
        s3_bucket=bucket,
        s3_endpoint_url=endpoint,
        s3_access_key_id=SecretStr("testing"),
        s3_secret_access_key=SecretStr("testing"),
    )


@pytest.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    if request.param == "local":
        yield LocalBlobStore(tmp_path / "blobs")
    else:
        s3 = S3BlobStore(_s3_settings(request.getfixturevalue("moto_endpoint")))
        await s3.ensure_bucket()
        yield s3


async def test_put_then_get_returns_the_same_bytes(store: BlobStore) -> None:
    data = bytes(range(256)) * 1000
    await store.put("tenant/doc/original", data)
    assert await store.get("tenant/doc/original") == data
    assert await store.exists("tenant/doc/original")


async def test_put_overwrites_an_existing_key(store: BlobStore) -> None:
    await store.put("t/d/original", b"first")
    await store.put("t/d/original", b"second")
    assert await store.get("t/d/original") == b"second"


async def test_delete_removes_the_blob_and_is_idempotent(store: BlobStore) -> None:
    await store.put("t/gone/original", b"x")
    await store.delete("t/gone/original")
    assert not await store.exists("t/gone/original")
    await store.delete("t/gone/original")


async def test_list_blobs_names_every_stored_file_with_its_time(store: BlobStore) -> None:
    prefix = uuid.uuid4().hex
    before = datetime.now(UTC) - timedelta(minutes=1)
    await store.put(f"{prefix}/a/original", b"a")
    await store.put(f"{prefix}/b/original", b"b")
    await store.put(f"{prefix}/gone/original", b"c")
    await store.delete(f"{prefix}/gone/original")
    listed = {b.key: b.modified_at for b in await store.list_blobs() if b.key.startswith(prefix)}
    assert set(listed) == {f"{prefix}/a/original", f"{prefix}/b/original"}
    assert all(t > before for t in listed.values())


async def test_a_missing_key_raises_blob_not_found(store: BlobStore) -> None:
    assert not await store.exists("t/never/original")
    with pytest.raises(BlobNotFound):
        await store.get("t/never/original")


@pytest.mark.parametrize("key", UNSAFE_KEYS)
async def test_keys_that_could_leave_the_store_are_rejected(store: BlobStore, key: str) -> None:
    with pytest.raises(ValueError, match="invalid blob key"):
        await store.put(key, b"x")
    with pytest.raises(ValueError, match="invalid blob key"):
        await store.get(key)
    with pytest.raises(ValueError, match="invalid blob key"):
        await store.exists(key)
    with pytest.raises(ValueError, match="invalid blob key"):
        await store.delete(key)


async def test_the_local_store_writes_only_under_its_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    store = LocalBlobStore(root)
    await store.put("t/d/original", b"data")
    with pytest.raises(ValueError):
        await store.put("../outside", b"data")
    assert _files_under(tmp_path) == ["root/t/d/original"]


async def test_ping_reports_a_missing_bucket(moto_endpoint: str) -> None:
    store = S3BlobStore(_s3_settings(moto_endpoint, bucket="no-such-bucket"))
    with pytest.raises(Exception, match=r"404|Not Found|NoSuchBucket"):
        await store.ping()
    await store.ensure_bucket()
    await store.ping()


def test_the_factory_picks_the_backend_from_settings(tmp_path: Path) -> None:
    assert isinstance(make_blob_store(StorageSettings(local_root=tmp_path)), LocalBlobStore)
    assert isinstance(make_blob_store(_s3_settings("http://127.0.0.1:1")), S3BlobStore)
