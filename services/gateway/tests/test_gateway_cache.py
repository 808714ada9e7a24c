"""Answer cache and Idempotency-Key, against the real Redis."""

from __future__ import annotations

import uuid
from typing import Any

from vectrion_gateway.cache import normalise_question

from .conftest import GatewayFactory, bearer, login, new_tenant, new_user, query_calls

DOC = "7d0f7a1e-0000-4000-8000-0000000000d1"


def _upstreams(url: str) -> dict[str, str]:
    return {"ingest_url": url, "query_url": url, "guardrails_url": url}


async def _ask(client: Any, auth: dict[str, str], question: str, **extra: Any) -> Any:
    response = await client.post("/v1/query", json={"question": question, **extra}, headers=auth)
    assert response.status_code == 200, response.text
    return response


def test_questions_that_differ_only_in_case_spacing_and_final_punctuation_normalise_alike() -> None:
    assert normalise_question("  What IS   the\tpolicy?? ") == normalise_question("what is the policy")
    assert normalise_question("what is the policy") != normalise_question("what was the policy")


async def test_a_repeated_question_is_served_from_cache_until_the_tenants_documents_change(
    gateway: GatewayFactory, upstream_url: str, admin_conn: Any
) -> None:
    client = await gateway(**_upstreams(upstream_url))
    auth = bearer(await login(client))
    first = await _ask(client, auth, "What is the refund policy?")
    assert first.headers["x-cache"] == "miss"
    calls = len(query_calls)
    second = await _ask(client, auth, "what is the refund   policy")
    assert second.headers["x-cache"] == "hit"
    assert second.json() == first.json() and len(query_calls) == calls
    assert (await admin_conn.fetchval("SELECT count(*) FROM gateway.usage_ledger")) == 1  # a hit spends nothing
    for method, path, extra in [
        ("POST", "/v1/documents", {"files": {"file": ("a.pdf", b"%PDF-1.4", "application/pdf")}}),
        ("DELETE", f"/v1/documents/{DOC}", {}),
        ("POST", f"/v1/documents/{DOC}/reprocess", {}),
    ]:
        assert (await client.request(method, path, headers=auth, **extra)).status_code == 200
        after = await _ask(client, auth, "What is the refund policy?")
        assert after.headers["x-cache"] == "miss", path
        assert after.json()["answer"] != first.json()["answer"]
        assert (await _ask(client, auth, "What is the refund policy?")).headers["x-cache"] == "hit"


async def test_a_failed_document_write_does_not_invalidate(gateway: GatewayFactory, upstream_url: str) -> None:
    client = await gateway(**_upstreams(upstream_url))
    auth = bearer(await login(client))
    await _ask(client, auth, "q")
    failed = await client.delete(f"/v1/documents/{DOC}", params={"echo_status": "404"}, headers=auth)
    assert failed.status_code == 404
    assert (await _ask(client, auth, "q")).headers["x-cache"] == "hit"


async def test_cached_answers_never_cross_tenants_or_users(gateway: GatewayFactory, upstream_url: str) -> None:
    client = await gateway(**_upstreams(upstream_url))
    admin = bearer(await login(client))
    acme, globex = await new_tenant(client, admin, "acme"), await new_tenant(client, admin, "globex")
    _, alice = await new_user(client, admin, "alice@acme.io", "member", acme)
    _, bob = await new_user(client, admin, "bob@acme.io", "member", acme)
    _, gina = await new_user(client, admin, "gina@globex.io", "member", globex)
    a = await _ask(client, alice, "shared question")
    assert (await _ask(client, alice, "shared question")).headers["x-cache"] == "hit"
    g = await _ask(client, gina, "shared question")
    assert g.headers["x-cache"] == "miss" and g.json()["tenant_id"] == globex != a.json()["tenant_id"]
    # Users of one tenant may see different (private) documents: not shared by default.
    assert (await _ask(client, bob, "shared question")).headers["x-cache"] == "miss"


async def test_history_dependent_and_streamed_turns_are_not_cached(
    gateway: GatewayFactory, upstream_url: str
) -> None:
    client = await gateway(**_upstreams(upstream_url))
    auth = bearer(await login(client))
    conversation = str(uuid.uuid4())
    for _ in range(2):
        turn = await _ask(client, auth, "and then?", conversation_id=conversation)
        assert "x-cache" not in turn.headers
    calls = len(query_calls)
    await _ask(client, auth, "and then?", stream=True)
    await _ask(client, auth, "and then?", stream=True)
    assert len(query_calls) == calls + 2


async def test_idempotency_key_replays_the_stored_upload_response_and_refuses_a_different_body(
    gateway: GatewayFactory, upstream_url: str
) -> None:
    client = await gateway(**_upstreams(upstream_url))
    auth = bearer(await login(client))
    boundary = {"Content-Type": "multipart/form-data; boundary=vectrion-test-boundary"}

    async def upload(key: str, content: bytes) -> Any:
        return await client.post(
            "/v1/documents", files={"file": ("a.pdf", content, "application/pdf")},
            headers={**auth, **boundary, "Idempotency-Key": key},
        )

    first = await upload("upload-1", b"%PDF-1.4 one")
    assert first.status_code == 200 and "idempotent-replayed" not in first.headers
    again = await upload("upload-1", b"%PDF-1.4 one")
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()  # the echo carries the request id: a replay, not a second upload
    conflict = await upload("upload-1", b"%PDF-1.4 two")
    assert conflict.status_code == 422 and conflict.json()["type"].endswith("/idempotency-key-reused")
    other = await upload("upload-2", b"%PDF-1.4 one")
    assert other.status_code == 200 and "idempotent-replayed" not in other.headers


async def test_idempotency_keys_are_scoped_to_the_caller(gateway: GatewayFactory, upstream_url: str) -> None:
    client = await gateway(**_upstreams(upstream_url), cache_enabled=False)
    admin = bearer(await login(client))
    tenant = await new_tenant(client, admin, "acme")
    _, alice = await new_user(client, admin, "alice@acme.io", "member", tenant)
    key = {"Idempotency-Key": "same-key"}
    mine = await client.post("/v1/query", json={"question": "x"}, headers={**admin, **key})
    theirs = await client.post("/v1/query", json={"question": "x"}, headers={**alice, **key})
    assert "idempotent-replayed" not in theirs.headers and theirs.json()["answer"] != mine.json()["answer"]
    replay = await client.post("/v1/query", json={"question": "x"}, headers={**admin, **key})
    assert replay.headers["idempotent-replayed"] == "true" and replay.json() == mine.json()
    changed = await client.post("/v1/query", json={"question": "y"}, headers={**admin, **key})
    assert changed.status_code == 422
