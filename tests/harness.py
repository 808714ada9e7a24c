"""Test harness shared by every suite: where the real services are, and how to set up
an isolated database and broker namespace on them. Fixtures live in the root conftest.py;
import plain helpers from here (``from tests.harness import ...``), never from conftest.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
ADMIN_URL = os.environ.get("VECTRION_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TEST_DB = os.environ.get("VECTRION_TEST_DB", "vectrion_test")
SHARED_DATA = Path(os.environ.get("VECTRION_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
RABBITMQ_URL = os.environ.get("VECTRION_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")
os.environ.setdefault("SCARF_NO_ANALYTICS", "true")


def service_db_url(service: str) -> str:
    role = f"vectrion_{service}"
    return f"postgresql+asyncpg://{role}:{role}@127.0.0.1:5432/{TEST_DB}"


_migrated: set[tuple[str, str]] = set()


def migrate_services(*services: str, db: str = TEST_DB) -> str:
    """Provision roles + schemas in ``db`` and migrate the named services (once per run)."""
    import asyncio

    from vectrion_common.migrate import upgrade
    from vectrion_common.provisioning import provision
    from vectrion_common.settings import ServiceSettings

    if (db, "") not in _migrated:
        asyncio.run(provision(ADMIN_URL, db))
        _migrated.add((db, ""))
    settings = ServiceSettings(db_name=db)
    for service in services:
        if (db, service) not in _migrated:
            upgrade(REPO_ROOT / "services", service, settings)
            _migrated.add((db, service))
    return db


def drop_database(db: str) -> None:
    """Drop a database a stack or benchmark created for itself."""
    import asyncio

    import asyncpg

    async def drop() -> None:
        conn = await asyncpg.connect(ADMIN_URL)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


def delete_broker_namespace(namespace: str) -> None:
    import asyncio

    import aio_pika

    listing = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "name"], capture_output=True, text=True, check=False
    ).stdout.split()
    names = [n for n in listing if n.startswith(f"{namespace}.")]

    async def delete() -> None:
        connection = await aio_pika.connect(RABBITMQ_URL)
        async with connection:
            for name in names:
                channel = await connection.channel()
                await channel.queue_delete(name)
            for exchange in ("events", "dlx", "retry"):
                channel = await connection.channel()
                await channel.exchange_delete(f"{namespace}.{exchange}")

    asyncio.run(delete())


def hidden_instruction_pdf(visible: list[str], hidden: str) -> bytes:
    """A one-page PDF with ``visible`` lines in black 11 pt and ``hidden`` in white 1 pt text.

    Hand-written (no PDF library): the kind of file an attacker uploads so that
    text extraction, and so the model, reads instructions a human never sees.
    """

    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    lines = [f"({escape(line)}) Tj T*" for line in visible]
    content = (
        "BT /F1 11 Tf 14 TL 0 0 0 rg 72 740 Td " + " ".join(lines) + " ET\n"
        f"BT /F1 1 Tf 1 1 1 rg 72 200 Td ({escape(hidden)}) Tj ET\n"
    ).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(content)).encode() + b" >>\nstream\n" + content + b"endstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)
