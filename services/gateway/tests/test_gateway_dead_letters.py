"""The DLQ admin routes: proxied to ingest for platform admins, 403 for everyone else."""

from __future__ import annotations

from .conftest import GatewayFactory, login

MESSAGE_ID = "0b6f3c8e-5b1a-4c43-9a59-4f7c0e3b2d11"
ROUTES = [
    ("GET", "/v1/admin/dlq"),
    ("GET", f"/v1/admin/dlq/{MESSAGE_ID}"),
    ("POST", f"/v1/admin/dlq/{MESSAGE_ID}/replay"),
    ("DELETE", f"/v1/admin/dlq/{MESSAGE_ID}"),
]


async def test_platform_admin_reaches_the_ingest_dlq_admin(
    gateway: GatewayFactory, upstream_url: str, closed_port_url: str
) -> None:
    client = await gateway(ingest_url=upstream_url, query_url=closed_port_url, guardrails_url=closed_port_url)
    auth = {"Authorization": f"Bearer {await login(client)}"}
    for method, path in ROUTES:
        response = await client.request(method, path, headers=auth, params={"queue": "q"})
        assert response.status_code == 200, (method, path, response.text)
        assert (response.json()["method"], response.json()["path"]) == (method, path)
        assert response.json()["query"] == "queue=q"
        assert response.json()["identity"]["role"] == "platform_admin"


async def test_dlq_admin_is_refused_to_tenant_admins_and_members(gateway: GatewayFactory, upstream_url: str) -> None:
    client = await gateway(ingest_url=upstream_url, query_url=upstream_url, guardrails_url=upstream_url)
    auth = {"Authorization": f"Bearer {await login(client)}"}
    tenant_id = (await client.post("/v1/admin/tenants", json={"name": "dlq-co"}, headers=auth)).json()["id"]
    for role in ("admin", "member"):
        email = f"{role}@dlq-co.io"
        await client.post(
            "/v1/admin/users",
            json={"email": email, "password": "password-123", "role": role, "tenant_id": tenant_id},
            headers=auth,
        )
        user_auth = {"Authorization": f"Bearer {await login(client, email, 'password-123')}"}
        for method, path in ROUTES:
            response = await client.request(method, path, headers=user_auth)
            assert response.status_code == 403, (role, method, path)
            assert response.headers["content-type"] == "application/problem+json"
