"""Who may see which chunk. Every retrieval path goes through an :class:`AccessScope`.

A caller sees the chunks of their own tenant that are either shared with the
tenant or owned by them. The scope is built from the verified identity in one
place (:func:`access_scope`); the vector store and the read model each turn it
into their own filter, and neither offers a search without one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from vectrion_common.identity import Identity

TENANT_VISIBILITY = "tenant"


@dataclass(frozen=True, slots=True)
class AccessScope:
    tenant_id: uuid.UUID
    user_id: uuid.UUID


def access_scope(identity: Identity) -> AccessScope:
    """The chunks ``identity`` may retrieve: same tenant AND (shared with the tenant OR own)."""
    return AccessScope(tenant_id=identity.tenant_id, user_id=identity.user_id)
