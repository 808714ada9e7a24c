"""Which address a request came from, for login throttling.

``X-Forwarded-For`` is a header anyone can send, so it counts only when the
TCP peer is one of ``trusted_proxies`` (CIDRs; none by default). Then the
chain is read from the right, skipping our own proxies, and the first address
that is not one of them is the client: everything left of it was written by
the client and proves nothing. uvicorn must not rewrite the peer itself
(``--no-proxy-headers``, as the Procfile and Dockerfile run it), so this
setting is the one place that decides.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

UNKNOWN = "unknown"


def _trusted(address: str, proxies: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def client_address(peer: str | None, forwarded_for: Iterable[str], proxies: Sequence[Network]) -> str:
    if peer is None:
        return UNKNOWN
    if not proxies or not _trusted(peer, proxies):
        return peer
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
    for hop in reversed(hops):
        try:
            ip = ipaddress.ip_address(hop)
        except ValueError:
            return peer  # our own proxies wrote garbage: no client address to believe, count the proxy
        if not any(ip in network for network in proxies):
            return str(ip)
    return peer
