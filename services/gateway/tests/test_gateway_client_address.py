"""X-Forwarded-For counts for login throttling only when our own proxy sent it."""

from __future__ import annotations

import ipaddress
from typing import Any

from vectrion_gateway.client_address import client_address

from .conftest import GatewayFactory

# httpx's in-process transport presents every request as coming from this peer.
PEER = "127.0.0.1"
LIMIT = 3


async def _failed_logins(client: Any, forwarded_for: list[str]) -> list[int]:
    """One failed login per entry, each for another email (the per-email limit never trips)."""
    statuses = []
    for n, hop in enumerate(forwarded_for):
        response = await client.post(
            "/v1/auth/token", json={"email": f"guess{n}@x.io", "password": "guess"},
            headers={"X-Forwarded-For": hop},
        )
        statuses.append(response.status_code)
    return statuses


async def test_a_spoofed_forwarded_for_from_an_untrusted_peer_does_not_escape_address_throttling(
    gateway: GatewayFactory,
) -> None:
    client = await gateway(login_max_failures_per_address=LIMIT)  # trusted_proxies: none by default
    spoofed = [f"203.0.113.{n}" for n in range(LIMIT + 2)]  # a new made-up address every time
    assert await _failed_logins(client, spoofed) == [401] * LIMIT + [429, 429]


async def test_forwarded_for_from_a_trusted_proxy_throttles_each_client_on_its_own(gateway: GatewayFactory) -> None:
    client = await gateway(login_max_failures_per_address=LIMIT, trusted_proxies=[f"{PEER}/32"])
    # Clients behind the proxy: each has its own budget...
    assert await _failed_logins(client, [f"203.0.113.{n}" for n in range(LIMIT + 2)]) == [401] * (LIMIT + 2)
    # ...and one of them is throttled however it prefixes the header itself.
    one_client = [f"198.51.100.{n}, 192.0.2.7" for n in range(LIMIT + 1)]
    assert await _failed_logins(client, one_client) == [401] * LIMIT + [429]


def test_the_client_is_the_rightmost_address_that_is_not_a_trusted_proxy() -> None:
    proxies = [ipaddress.ip_network("10.0.0.0/8")]
    assert client_address("10.0.0.5", ["1.1.1.1, 192.0.2.7, 10.0.0.9"], proxies) == "192.0.2.7"
    assert client_address("10.0.0.5", ["1.1.1.1", "192.0.2.7"], proxies) == "192.0.2.7"  # repeated headers
    assert client_address("192.0.2.99", ["1.1.1.1"], proxies) == "192.0.2.99"  # untrusted peer: header ignored
    assert client_address("10.0.0.5", [], proxies) == "10.0.0.5"
    assert client_address("10.0.0.5", ["10.0.0.7"], proxies) == "10.0.0.5"  # only proxies: the peer
    assert client_address("10.0.0.5", ["1.1.1.1, not-an-ip"], proxies) == "10.0.0.5"
    assert client_address("10.0.0.5", ["1.1.1.1"], []) == "10.0.0.5"  # no proxies trusted: never
    assert client_address(None, ["1.1.1.1"], proxies) == "unknown"
