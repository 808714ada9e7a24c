"""Who may call ``POST /v1/guardrails/check``.

The permission is its own, ``guardrails:check``: checking a text against the
policy shows how the policy decides, which helps attackers tune their inputs,
so it is not open to every user. By default it is granted to the roles in
``GuardrailsSettings.check_roles`` (``platform_admin`` and ``admin``). The
gateway's RBAC can grant ``GUARDRAILS_CHECK`` by name once it knows
permissions; until then this service enforces it from the verified role in the
identity token. The query service's RPC checks are not affected.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from vectrion_common.identity import CurrentIdentity, Identity
from vectrion_common.problems import Forbidden

GUARDRAILS_CHECK = "guardrails:check"


def require_check_permission(identity: CurrentIdentity, request: Request) -> Identity:
    roles: list[str] = request.app.state.check_roles
    if identity.role not in roles:
        raise Forbidden(f"this operation needs the {GUARDRAILS_CHECK} permission")
    return identity


CheckPermission = Annotated[Identity, Depends(require_check_permission)]
