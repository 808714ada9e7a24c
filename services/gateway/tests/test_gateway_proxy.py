"""Reverse proxying to a real HTTP service listening on a loopback port."""

from __future__ import annotations

import hashlib
import os
from typing import Any

from .conftest import GatewayFactory, bearer, login, new_tenant, new_user


def _upstreams(url: str) -> dict[str, str]:
    return {"ingest_url": url, "query_url": url, "guardrails_url": url}


async def test_upstream_gets_a_valid_identity_and_never_the_client_credentials(
    gateway: GatewayFactory, upstream_url: str, admin_conn: Any
) -> None:
    client = await gateway(**_upstreams(upstream_url))
    token = await login(client)
    user = await admin_conn.fetchrow("SELECT id, tenant_id FROM gateway.users")
    response = await client.get(
        "/v1/documents",
        params={"status": "indexed", "limit": "5"},
        headers={
            "Authorization": f"Bearer {token}",
            "X-Vectrion-Identity": "forged-by-the-client",
            "X-API-Key": "client-key",
            "Cookie": "session=abc",
            "X-Request-ID": "req-123",
        },
    )
    assert response.status_code == 200, response.text
    echoed = response.json()
    headers = dict(echoed["headers"])
    assert echoed["path"] == "/v1/documents"
    assert echoed["query"] == "status=indexed&limit=5"
    expected = {"user_id": str(user["id"]), "tenant_id": str(user["tenant_id"]), "role": "platform_admin"}
    assert echoed["identity"] == expected
    assert [k for k, _ in echoed["headers"]].count("x-vectrion-identity") == 1
    assert headers["x-vectrion-identity"] != "forged-by-the-client"
    for leaked in ("authorization", "x-api-key", "cookie"):
        assert leaked not in headers, leaked
    assert headers["x-request-id"] == "req-123"
    assert response.headers["x-request-id"] == "req-123"
    assert response.headers["x-upstream"] == "echo"


async def test_a_cookie_an_upstream_sets_for_one_caller_never_reaches_the_upstream_with_another(
    gateway: GatewayFactory, upstream_url: str
) -> None:
    # By host name: a default client cookie jar ignores cookies from bare IP addresses.
    client = await gateway(**_upstreams(upstream_url.replace("127.0.0.1", "localhost")))
    admin = bearer(await login(client))
    tenant = await new_tenant(client, admin, "acme")
    _, member = await new_user(client, admin, "m@acme.io", "member", tenant)
    first = await client.get("/v1/documents", params={"set_cookie": "1"}, headers=admin)
    assert "upstream-session" in first.headers["set-cookie"]  # relayed to the caller it was meant for
    for caller in (member, admin):
        echoed = dict((await client.get("/v1/documents", headers=caller)).json()["headers"])
        assert "cookie" not in echoed


async def test_each_public_route_reaches_its_own_service(
    gateway: GatewayFactory, upstream_url: str, closed_port_url: str
) -> None:
    # Only one upstream is up at a time: a request that reaches it went to the right service.
    for service, routes in {
        "ingest_url": [("GET", "/v1/documents/7d0f7a1e-0000-4000-8000-000000000001"),
                       ("DELETE", "/v1/documents/7d0f7a1e-0000-4000-8000-000000000001"),
                       ("POST", "/v1/documents/7d0f7a1e-0000-4000-8000-000000000001/reprocess"),
                       ("GET", "/v1/documents/7d0f7a1e-0000-4000-8000-000000000001/pages/3")],
        "query_url": [("POST", "/v1/query"),
                      ("GET", "/v1/conversations/7d0f7a1e-0000-4000-8000-000000000002")],
        "guardrails_url": [("POST", "/v1/guardrails/check")],
    }.items():
        overrides = {**_upstreams(closed_port_url), service: upstream_url}
        client = await gateway(**overrides)
        auth = {"Authorization": f"Bearer {await login(client)}"}
        for method, path in routes:
            response = await client.request(method, path, headers=auth, json={"x": 1} if method == "POST" else None)
            assert response.status_code == 200, (service, method, path, response.text)
            assert response.json()["path"] == path
            assert response.json()["method"] == method


async def test_upload_body_is_streamed_through_byte_for_byte_with_idempotency_key(
    gateway: GatewayFactory, upstream_url: str
) -> None:
    client = await gateway(**_upstreams(upstream_url))
    payload = os.urandom(3 * 1024 * 1024)
    upload = {
        "files": {"file": ("paper.pdf", payload, "application/pdf")},
        "data": {"visibility": "private"},
        "headers": {
            "Authorization": f"Bearer {await login(client)}",
            "Idempotency-Key": "upload-1",
            "Content-Type": "multipart/form-data; boundary=vectrion-test-boundary",
        },
    }
    sent = client.build_request("POST", "/v1/documents", **upload)
    sent_body = b"".join([chunk async for chunk in sent.stream])  # type: ignore[union-attr]
    response = await client.post("/v1/documents", **upload)
    assert response.status_code == 200
    echoed = response.json()
    headers = dict(echoed["headers"])
    assert headers["idempotency-key"] == "upload-1"
    assert headers["content-type"] == "multipart/form-data; boundary=vectrion-test-boundary"
    assert echoed["body_size"] == len(sent_body) > len(payload)
    assert echoed["body_sha256"] == hashlib.sha256(sent_body).hexdigest()


async def test_upstream_status_and_streamed_response_pass_through(gateway: GatewayFactory, upstream_url: str) -> None:
    client = await gateway(**_upstreams(upstream_url))
    auth = {"Authorization": f"Bearer {await login(client)}"}
    not_found = await client.get(
        "/v1/documents/7d0f7a1e-0000-4000-8000-000000000009", params={"echo_status": "404"}, headers=auth
    )
    assert not_found.status_code == 404
    assert not_found.json()["path"] == "/v1/documents/7d0f7a1e-0000-4000-8000-000000000009"
    chunks = []
    async with client.stream("GET", "/v1/conversations", headers=auth) as streamed:
        assert streamed.headers["content-type"].startswith("text/event-stream")
        async for chunk in streamed.aiter_text():
            chunks.append(chunk)
    assert "".join(chunks) == "data: 0\n\ndata: 1\n\ndata: 2\n\n"


async def test_upstream_down_is_a_503_problem(gateway: GatewayFactory, closed_port_url: str) -> None:
    client = await gateway(**_upstreams(closed_port_url))
    auth = {"Authorization": f"Bearer {await login(client)}"}
    response = await client.post("/v1/query", headers=auth, json={"question": "why?"})
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/upstream-unavailable")
    assert "127.0.0.1" not in response.text


async def test_upstream_too_slow_is_a_504_problem(gateway: GatewayFactory, upstream_url: str) -> None:
    client = await gateway(**_upstreams(upstream_url), upstream_read_timeout_seconds=0.3)
    auth = {"Authorization": f"Bearer {await login(client)}"}
    response = await client.post("/v1/search", headers=auth, json={"query": "q"})
    assert response.status_code == 504
    assert response.json()["type"].endswith("/upstream-timeout")


async def test_proxied_routes_are_published_in_openapi(gateway: GatewayFactory) -> None:
    client = await gateway()
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path, method in [
        ("/v1/documents", "post"), ("/v1/documents", "get"), ("/v1/documents/{document_id}", "get"),
        ("/v1/documents/{document_id}", "delete"), ("/v1/documents/{document_id}/reprocess", "post"),
        ("/v1/search", "post"), ("/v1/query", "post"), ("/v1/conversations", "get"),
        ("/v1/conversations/{conversation_id}", "get"), ("/v1/guardrails/check", "post"),
        ("/v1/auth/token", "post"), ("/v1/admin/tenants", "post"), ("/v1/admin/users", "get"),
    ]:
        assert method in paths.get(path, {}), (method, path)
    assert "multipart/form-data" in paths["/v1/documents"]["post"]["requestBody"]["content"]


async def test_health_readiness_and_metrics(gateway: GatewayFactory) -> None:
    client = await gateway()
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"db": "ok"}
    assert (await client.get("/metrics")).status_code == 200
