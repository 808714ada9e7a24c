"""The guardrails seam: policy checks by the guardrails service over RPC.

Fail closed: if guardrails cannot give a verdict in time, the request fails
with a 503 problem (``guardrails-unavailable``) instead of letting unchecked
text through. This holds for the input check (before anything is retrieved)
and for the output check (before an answer leaves the service): an outage of
guardrails is an outage of /v1/query, never a silent policy bypass.

Retrieved chunks are judged under the policy in force now, not the one in force
when the document was ingested: the chunker's ingestion scan (sent with each
chunk, kept in the read model) is used when it was made under the policy version
this request's input check reports; otherwise the chunk is scanned again here
(``scan``). A rule added after an upload (with the policy ``version`` bumped, as
the guardrails policy file requires) still protects every question about it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Protocol

from faststream.rabbit import RabbitBroker

from vectrion_common.contracts import (
    Direction,
    GuardrailCheckRequest,
    GuardrailScanRequest,
    GuardrailScanResponse,
    GuardrailVerdict,
)
from vectrion_common.messaging.rpc import RpcFailed, call
from vectrion_common.messaging.topology import Topology
from vectrion_query.errors import GuardrailsUnavailable
from vectrion_query.settings import QuerySettings


class Guardrails(Protocol):
    async def check(
        self,
        text: str,
        direction: Direction,
        tenant_id: uuid.UUID,
        history: Sequence[str] = (),
        canary: str | None = None,
    ) -> GuardrailVerdict: ...

    async def scan(self, texts: Sequence[str], tenant_id: uuid.UUID) -> list[GuardrailVerdict]: ...


class RpcGuardrails:
    def __init__(self, broker: RabbitBroker, topology: Topology, *, timeout: float) -> None:
        self._broker = broker
        self._topology = topology
        self._timeout = timeout

    async def check(
        self,
        text: str,
        direction: Direction,
        tenant_id: uuid.UUID,
        history: Sequence[str] = (),
        canary: str | None = None,
    ) -> GuardrailVerdict:
        request = GuardrailCheckRequest(
            text=text, direction=direction, tenant_id=tenant_id, history=list(history), canary=canary
        )
        try:
            return await call(self._broker, self._topology, "guardrails", request, GuardrailVerdict, self._timeout)
        except RpcFailed as exc:
            raise GuardrailsUnavailable(f"{exc}; refusing to answer without a policy check (fail closed)") from exc

    async def scan(self, texts: Sequence[str], tenant_id: uuid.UUID) -> list[GuardrailVerdict]:
        """Document verdicts for retrieved chunks (indirect prompt injection), one round trip."""
        if not texts:
            return []
        request = GuardrailScanRequest(texts=list(texts), tenant_id=tenant_id)
        try:
            reply = await call(
                self._broker, self._topology, "guardrails_scan", request, GuardrailScanResponse, self._timeout
            )
        except RpcFailed as exc:
            raise GuardrailsUnavailable(f"{exc}; refusing to answer from unscanned chunks (fail closed)") from exc
        if len(reply.verdicts) != len(texts):
            raise GuardrailsUnavailable("guardrails answered a different number of verdicts than chunks sent")
        return reply.verdicts


def make_guardrails(settings: QuerySettings, broker: RabbitBroker, topology: Topology) -> Guardrails:
    match settings.guardrails:
        case "rpc":
            return RpcGuardrails(broker, topology, timeout=settings.guardrails_timeout_seconds)
