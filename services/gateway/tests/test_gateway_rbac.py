"""Deny by default, role rules, tenant-admin scoping and object-level (BOLA) checks."""

from __future__ import annotations

import re
import uuid
from typing import Any

from vectrion_gateway.models import Role
from vectrion_gateway.permissions import PUBLIC, ROUTE_PERMISSIONS, Permission, role_permissions

from .conftest import GatewayFactory, bearer, login, new_tenant, new_user

DOC = "7d0f7a1e-0000-4000-8000-0000000000d1"


def _upstreams(url: str) -> dict[str, str]:
    return {"ingest_url": url, "query_url": url, "guardrails_url": url}


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda m: "sub/page" if ":path" in m.group(0) else str(uuid.uuid4()), path)


async def _openapi_operations(client: Any) -> list[tuple[str, str]]:
    paths = (await client.get("/openapi.json")).json()["paths"]
    return [(method.upper(), path) for path, ops in paths.items() for method in ops]


async def test_every_route_in_openapi_declares_a_permission_and_refuses_anonymous_callers(
    gateway: GatewayFactory, fast_upstream_url: str
) -> None:
    client = await gateway(**_upstreams(fast_upstream_url))
    operations = await _openapi_operations(client)
    assert len(operations) >= 30
    # OpenAPI shows `{subpath}` where the route declares `{subpath:path}`.
    declared = {(m, p.replace(":path", "")): rule for (m, p), rule in ROUTE_PERMISSIONS.items()}
    undeclared = [op for op in operations if op not in declared]
    assert undeclared == [], f"routes without a permission: {undeclared}"
    for method, path in operations:
        response = await client.request(method, _concrete(path), json={})
        if declared[(method, path)] == PUBLIC:
            assert response.status_code != 401, (method, path)
        else:
            assert response.status_code == 401, (method, path, response.text)
            assert response.json()["type"].endswith("/unauthorized")


async def test_each_role_reaches_exactly_the_routes_its_permissions_allow(
    gateway: GatewayFactory, fast_upstream_url: str
) -> None:
    client = await gateway(**_upstreams(fast_upstream_url))
    admin = bearer(await login(client))
    tenant = await new_tenant(client, admin, "acme")
    operations = await _openapi_operations(client)
    declared = {(m, p.replace(":path", "")): rule for (m, p), rule in ROUTE_PERMISSIONS.items()}
    checked = 0
    for role in (Role.MEMBER, Role.ADMIN):
        _, auth = await new_user(client, admin, f"{role.value}@acme.io", role.value, tenant)
        granted = role_permissions(role)
        for method, path in operations:
            rule = declared[(method, path)]
            if rule == PUBLIC or rule == Permission.SESSION:
                continue
            response = await client.request(method, _concrete(path), json={}, headers=auth)
            if rule in granted:
                assert response.status_code != 403, (role, method, path, response.text)
            else:
                assert response.status_code == 403, (role, method, path, response.text)
                assert response.json()["type"].endswith("/forbidden")
            checked += 1
    assert checked > 50


async def test_a_route_added_without_a_permission_is_refused_even_to_a_platform_admin(
    gateway: GatewayFactory,
) -> None:
    client = await gateway()
    app = client._transport.app  # type: ignore[attr-defined]

    async def sneaky() -> dict[str, str]:
        return {"secret": "data"}

    app.router.add_api_route("/v1/undeclared", sneaky, methods=["GET"])
    response = await client.get("/v1/undeclared", headers=bearer(await login(client)))
    assert response.status_code == 403
    assert "secret" not in response.text


async def test_document_writes_are_tenant_admin_only_unless_the_tenant_opens_them_to_members(
    gateway: GatewayFactory, fast_upstream_url: str
) -> None:
    client = await gateway(**_upstreams(fast_upstream_url))
    admin = bearer(await login(client))
    tenant = await new_tenant(client, admin, "acme")
    _, member = await new_user(client, admin, "m@acme.io", "member", tenant)
    _, tenant_admin = await new_user(client, admin, "a@acme.io", "admin", tenant)
    writes = [
        ("POST", "/v1/documents", {"files": {"file": ("a.pdf", b"%PDF-1.4", "application/pdf")}}),
        ("DELETE", f"/v1/documents/{DOC}", {}),
        ("POST", f"/v1/documents/{DOC}/reprocess", {}),
    ]
    for method, path, extra in writes:
        assert (await client.request(method, path, headers=member, **extra)).status_code == 403, path
        assert (await client.request(method, path, headers=tenant_admin, **extra)).status_code == 200, path
    assert (await client.get(f"/v1/documents/{DOC}", headers=member)).status_code == 200
    opened = await client.patch(f"/v1/admin/tenants/{tenant}", json={"members_can_write_documents": True},
                                headers=admin)
    assert opened.status_code == 200 and opened.json()["members_can_write_documents"] is True
    for method, path, extra in writes:
        assert (await client.request(method, path, headers=member, **extra)).status_code == 200, path


async def test_tenant_admins_manage_only_their_own_tenants_users(gateway: GatewayFactory) -> None:
    client = await gateway()
    admin = bearer(await login(client))
    acme, globex = await new_tenant(client, admin, "acme"), await new_tenant(client, admin, "globex")
    _, acme_admin = await new_user(client, admin, "a@acme.io", "admin", acme)
    globex_user, _ = await new_user(client, admin, "u@globex.io", "member", globex)
    # Create in own tenant (default) works; in another tenant it is as if that tenant did not exist.
    created = await client.post("/v1/admin/users", json={"email": "new@acme.io", "password": "password-123"},
                                headers=acme_admin)
    assert created.status_code == 201 and created.json()["tenant_id"] == acme
    elsewhere = await client.post(
        "/v1/admin/users", json={"email": "x@acme.io", "password": "password-123", "tenant_id": globex},
        headers=acme_admin,
    )
    assert elsewhere.status_code == 404
    listed = (await client.get("/v1/admin/users", headers=acme_admin)).json()["items"]
    assert {u["tenant_id"] for u in listed} == {acme}
    assert (await client.get("/v1/admin/users", params={"tenant_id": globex}, headers=acme_admin)).status_code == 404
    # BOLA: another tenant's user id answers 404, exactly like an unknown id.
    foreign = await client.patch(f"/v1/admin/users/{globex_user}", json={"is_active": False}, headers=acme_admin)
    unknown = await client.patch(f"/v1/admin/users/{uuid.uuid4()}", json={"is_active": False}, headers=acme_admin)
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json()["type"] == unknown.json()["type"]
    assert foreign.json()["detail"] == f"user {globex_user} not found"
    # No escalation to platform admin.
    escalate = await client.patch(f"/v1/admin/users/{created.json()['id']}", json={"role": "platform_admin"},
                                  headers=acme_admin)
    assert escalate.status_code == 403
    make = await client.post(
        "/v1/admin/users", json={"email": "p@acme.io", "password": "password-123", "role": "platform_admin"},
        headers=acme_admin,
    )
    assert make.status_code == 403


async def test_patch_user_changes_role_active_flag_and_quotas_and_takes_effect_at_once(
    gateway: GatewayFactory,
) -> None:
    client = await gateway()
    admin = bearer(await login(client))
    tenant = await new_tenant(client, admin, "acme")
    user_id, member = await new_user(client, admin, "m@acme.io", "member", tenant)
    assert (await client.get("/v1/admin/users", headers=member)).status_code == 403
    patched = await client.patch(
        f"/v1/admin/users/{user_id}", json={"role": "admin", "daily_token_quota": 5000}, headers=admin
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["role"] == "admin" and patched.json()["daily_token_quota"] == 5000
    assert (await client.get("/v1/admin/users", headers=member)).status_code == 200  # same token, new role
    assert (await client.get("/v1/usage", headers=member)).json()["user"]["day"]["limit"] == 5000
    assert (await client.patch(f"/v1/admin/users/{user_id}", json={"daily_token_quota": None},
                               headers=admin)).json()["daily_token_quota"] is None
    off = await client.patch(f"/v1/admin/users/{user_id}", json={"is_active": False}, headers=admin)
    assert off.status_code == 200
    assert (await client.get("/v1/usage", headers=member)).status_code == 401
    me = (await client.get("/v1/admin/users", headers=admin)).json()["items"][0]["id"]
    assert (await client.patch(f"/v1/admin/users/{me}", json={"is_active": False}, headers=admin)).status_code == 422
