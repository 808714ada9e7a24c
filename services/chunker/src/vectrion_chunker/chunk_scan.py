"""Indirect-injection scan of chunk text at ingestion, by the guardrails service over RPC.

Instructions planted in a PDF ("ignore previous instructions and ...", white
text, tiny fonts: extraction reads them like any other text) are found here,
and the verdict is stored with the chunk. Fail closed: when guardrails does not
answer, the upload handler raises and the message goes through the normal
retry/DLQ path, so no chunk is stored unscanned while scanning is on.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Protocol

from faststream.rabbit import RabbitBroker

from vectrion_chunker.settings import ChunkerSettings
from vectrion_common.contracts import GuardrailScanRequest, GuardrailScanResponse
from vectrion_common.messaging.rpc import RpcFailed, call
from vectrion_common.messaging.topology import Topology

SCAN_QUEUE = "guardrails_scan"
BATCH = 64


class ChunkScanFailed(Exception):
    """Guardrails gave no usable verdict; transient (retried)."""


class ChunkScanner(Protocol):
    async def scan(self, tenant_id: uuid.UUID, texts: Sequence[str]) -> list[dict[str, Any]]: ...


class RpcChunkScanner:
    def __init__(self, broker: RabbitBroker, topology: Topology, *, timeout: float) -> None:
        self._broker = broker
        self._topology = topology
        self._timeout = timeout

    async def scan(self, tenant_id: uuid.UUID, texts: Sequence[str]) -> list[dict[str, Any]]:
        verdicts: list[dict[str, Any]] = []
        for start in range(0, len(texts), BATCH):
            batch = list(texts[start : start + BATCH])
            request = GuardrailScanRequest(texts=batch, tenant_id=tenant_id)
            try:
                reply = await call(
                    self._broker, self._topology, SCAN_QUEUE, request, GuardrailScanResponse, self._timeout
                )
            except RpcFailed as exc:  # timeout, broker trouble, a failed scan, malformed reply: all "no verdict"
                raise ChunkScanFailed(f"guardrails did not scan the chunks: {exc}") from exc
            if len(reply.verdicts) != len(batch):
                raise ChunkScanFailed("guardrails answered a different number of verdicts than chunks sent")
            verdicts += [v.model_dump(mode="json") for v in reply.verdicts]
        return verdicts


def make_chunk_scanner(settings: ChunkerSettings, broker: RabbitBroker, topology: Topology) -> ChunkScanner | None:
    match settings.chunk_scan:
        case "rpc":
            return RpcChunkScanner(broker, topology, timeout=settings.chunk_scan_timeout_seconds)
        case "off":
            return None
