"""Create the database, one role and one schema per service (run as a superuser).

Each service's role owns its schema and nothing else: PUBLIC has no rights on
any service schema, so one service's role is refused another's tables. Alembic
migrations then run as the service's own role (:mod:`vectrion_common.migrate`).

    python -m vectrion_common.provisioning --admin-url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio

import asyncpg

from vectrion_common.settings import db_role

SERVICES_WITH_DATA = ("gateway", "ingest", "chunker", "query")


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"unsafe SQL identifier: {name!r}")
    return f'"{name}"'


async def provision(admin_url: str, db_name: str, services: tuple[str, ...] = SERVICES_WITH_DATA) -> None:
    admin = await asyncpg.connect(admin_url)
    try:
        # Roles are cluster-wide; concurrent provisioners (parallel test runs) serialise here.
        await admin.execute("SELECT pg_advisory_lock(hashtext('vectrion-provisioning'))")
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", db_name):
            await admin.execute(f"CREATE DATABASE {_ident(db_name)}")
        for service in services:
            role = db_role(service)
            if not await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
                # Local default password = role name; deployments set real ones out of band.
                await admin.execute(
                    f"CREATE ROLE {_ident(role)} LOGIN PASSWORD '{role}' NOSUPERUSER NOCREATEDB NOCREATEROLE"
                )
        await admin.execute("SELECT pg_advisory_unlock(hashtext('vectrion-provisioning'))")
    finally:
        await admin.close()

    db_url = admin_url.rsplit("/", 1)[0] + "/" + db_name
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute("SELECT pg_advisory_lock(hashtext('vectrion-provisioning-schemas'))")
        await conn.execute(f"REVOKE ALL ON DATABASE {_ident(db_name)} FROM PUBLIC")
        await conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        for service in services:
            role = db_role(service)
            await conn.execute(f"GRANT CONNECT ON DATABASE {_ident(db_name)} TO {_ident(role)}")
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(service)} AUTHORIZATION {_ident(role)}")
            await conn.execute(f"REVOKE ALL ON SCHEMA {_ident(service)} FROM PUBLIC")
        await conn.execute("SELECT pg_advisory_unlock(hashtext('vectrion-provisioning-schemas'))")
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--db", default="vectrion")
    parser.add_argument("services", nargs="*", default=list(SERVICES_WITH_DATA))
    args = parser.parse_args()
    asyncio.run(provision(args.admin_url, args.db, tuple(args.services)))


if __name__ == "__main__":
    main()
