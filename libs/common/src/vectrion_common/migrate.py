"""Alembic per service: each service's migrations run as its own role in its own schema.

``run_env`` is what every service's ``migrations/env.py`` calls; ``main``
upgrades the named services to head:

    python -m vectrion_common.migrate --services-dir services gateway ingest chunker query
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import sqlalchemy as sa
from alembic import command, context
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from vectrion_common.provisioning import SERVICES_WITH_DATA
from vectrion_common.settings import ServiceSettings, db_role


def _do_run(connection: Connection, metadata: sa.MetaData) -> None:
    schema = metadata.schema
    assert schema, "a service's metadata must name its schema"
    # Not CREATE SCHEMA IF NOT EXISTS: PostgreSQL checks the database CREATE privilege
    # before existence, and a service role only owns the schema provisioning made for it.
    if connection.execute(sa.text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": schema}).first() is None:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    connection.execute(sa.text(f'SET search_path TO "{schema}"'))
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table_schema=schema,
        include_schemas=False,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_env(metadata: sa.MetaData) -> None:
    """Body of a service's ``migrations/env.py`` (online mode, async engine)."""
    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url must be set"

    async def run() -> None:
        engine = create_async_engine(url)
        async with engine.begin() as conn:
            await conn.run_sync(_do_run, metadata)
        await engine.dispose()

    asyncio.run(run())


def service_url(settings: ServiceSettings, service: str) -> str:
    role = db_role(service)
    return f"postgresql+asyncpg://{role}:{role}@{settings.db_host}:{settings.db_port}/{settings.db_name}"


def upgrade(services_dir: Path, service: str, settings: ServiceSettings) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(services_dir / service / "migrations"))
    cfg.set_main_option("sqlalchemy.url", service_url(settings, service))
    command.upgrade(cfg, "head")


def main() -> None:
    parser = argparse.ArgumentParser(description="apply each service's Alembic migrations as its own role")
    parser.add_argument("--services-dir", type=Path, default=Path("services"))
    parser.add_argument("services", nargs="*", default=list(SERVICES_WITH_DATA))
    args = parser.parse_args()
    settings = ServiceSettings()
    for service in args.services:
        upgrade(args.services_dir, service, settings)


if __name__ == "__main__":
    main()
