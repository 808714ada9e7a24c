"""The platform admin's tenant and user management, and the 403 for everyone else."""

from __future__ import annotations

import uuid

from .conftest import GatewayFactory, login


async def test_platform_admin_creates_tenants_and_users_who_can_log_in(gateway: GatewayFactory) -> None:
    client = await gateway()
    auth = {"Authorization": f"Bearer {await login(client)}"}
    created = await client.post("/v1/admin/tenants", json={"name": "acme"}, headers=auth)
    assert created.status_code == 201
    tenant_id = created.json()["id"]
    duplicate = await client.post("/v1/admin/tenants", json={"name": "acme"}, headers=auth)
    assert duplicate.status_code == 409
    user = await client.post(
        "/v1/admin/users",
        json={"email": " Alice@Acme.io ", "password": "alice-password", "role": "admin", "tenant_id": tenant_id},
        headers=auth,
    )
    assert user.status_code == 201, user.text
    assert user.json()["email"] == "alice@acme.io"
    assert "password" not in user.text and "hash" not in user.text
    again = await client.post(
        "/v1/admin/users",
        json={"email": "ALICE@acme.io", "password": "another-password", "tenant_id": tenant_id},
        headers=auth,
    )
    assert again.status_code == 409
    listed = await client.get("/v1/admin/users", params={"tenant_id": tenant_id}, headers=auth)
    assert [u["email"] for u in listed.json()["items"]] == ["alice@acme.io"]
    assert await login(client, "alice@acme.io", "alice-password")


async def test_user_in_unknown_tenant_is_rejected(gateway: GatewayFactory) -> None:
    client = await gateway()
    auth = {"Authorization": f"Bearer {await login(client)}"}
    response = await client.post(
        "/v1/admin/users",
        json={"email": "bob@x.io", "password": "bob-password", "tenant_id": str(uuid.uuid4())},
        headers=auth,
    )
    assert response.status_code == 422
    assert response.json()["type"].endswith("/unknown-tenant")


async def test_tenant_management_is_platform_admin_only_and_user_management_admin_and_up(
    gateway: GatewayFactory,
) -> None:
    client = await gateway()
    auth = {"Authorization": f"Bearer {await login(client)}"}
    tenant_id = (await client.post("/v1/admin/tenants", json={"name": "acme"}, headers=auth)).json()["id"]
    for role in ("admin", "member"):
        email = f"{role}@acme.io"
        await client.post(
            "/v1/admin/users",
            json={"email": email, "password": "password-123", "role": role, "tenant_id": tenant_id},
            headers=auth,
        )
        user_auth = {"Authorization": f"Bearer {await login(client, email, 'password-123')}"}
        forbidden = [
            ("GET", "/v1/admin/tenants", None),
            ("POST", "/v1/admin/tenants", {"name": f"{role}-tenant"}),
            ("PATCH", f"/v1/admin/tenants/{tenant_id}", {"members_can_write_documents": True}),
        ]
        if role == "member":
            forbidden += [
                ("GET", "/v1/admin/users", None),
                ("POST", "/v1/admin/users", {"email": "x@y.io", "password": "password-123"}),
            ]
        for method, path, body in forbidden:
            response = await client.request(method, path, json=body, headers=user_auth)
            assert response.status_code == 403, (role, method, path)
            assert response.headers["content-type"] == "application/problem+json"
