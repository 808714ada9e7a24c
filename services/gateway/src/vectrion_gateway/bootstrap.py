"""The first platform admin, created at start-up from settings.

Several gateway replicas may start at once: a transaction-scoped advisory lock
serialises them, and the unique constraints on tenant name and email would
catch anything that slipped past it.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vectrion_common.db import unit_of_work
from vectrion_common.logs import get_logger
from vectrion_gateway.models import Role
from vectrion_gateway.passwords import hash_password
from vectrion_gateway.repository import TenantRepository, UserRepository
from vectrion_gateway.settings import GatewaySettings

DEFAULT_TENANT = "default"
_LOCK_KEY = "vectrion-gateway-bootstrap"

log = get_logger(__name__)


async def bootstrap_admin(sessions: async_sessionmaker[AsyncSession], settings: GatewaySettings) -> bool:
    """Create the default tenant and the configured platform admin if no platform admin exists.

    Returns True if this call created the admin.
    """
    email = (settings.bootstrap_admin_email or "").strip().lower()
    password = settings.bootstrap_admin_password.get_secret_value() if settings.bootstrap_admin_password else ""
    if not email or not password:
        log.info("bootstrap.skipped", reason="no bootstrap admin configured")
        return False
    # Hash before taking the lock: it is slow and needs no database.
    password_hash = await hash_password(password)
    async with unit_of_work(sessions) as session:
        await session.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(_LOCK_KEY))))
        user_repo = UserRepository(session)
        if await user_repo.platform_admin_exists():
            log.info("bootstrap.skipped", reason="a platform admin exists")
            return False
        tenant_repo = TenantRepository(session)
        tenant = await tenant_repo.insert(DEFAULT_TENANT) or await tenant_repo.get_by_name(DEFAULT_TENANT)
        assert tenant is not None
        user = await user_repo.insert(
            tenant_id=tenant.id, email=email, password_hash=password_hash, role=Role.PLATFORM_ADMIN
        )
        if user is None:
            # The address belongs to an ordinary user; promoting it silently would be a surprise.
            log.error("bootstrap.email_taken", email=email)
            return False
        log.info("bootstrap.admin_created", user_id=str(user.id), tenant_id=str(tenant.id))
        return True
