"""The RPC subscriber: query asks ``<ns>.rpc.guardrails`` and gets a verdict back."""

from __future__ import annotations

from faststream.rabbit import RabbitBroker

from vectrion_common.contracts import GuardrailCheckRequest, GuardrailVerdict
from vectrion_common.logs import get_logger
from vectrion_common.messaging.topology import Topology
from vectrion_guardrails.policy import Policy, evaluate

log = get_logger(__name__)


def register_handlers(broker: RabbitBroker, topology: Topology, policy: Policy) -> None:
    @broker.subscriber(topology.rpc_queue("guardrails"))
    async def check(request: GuardrailCheckRequest) -> GuardrailVerdict:
        # Returning the verdict makes FastStream publish it to the caller's reply queue.
        verdict = evaluate(request, policy)
        log_verdict(request, verdict, via="rpc")
        return verdict


def log_verdict(request: GuardrailCheckRequest, verdict: GuardrailVerdict, via: str) -> None:
    # Never the text itself: it is user data and may hold exactly the PII we redact.
    log.info(
        "guardrails.checked",
        via=via,
        direction=request.direction,
        tenant_id=str(request.tenant_id) if request.tenant_id else None,
        action=verdict.action,
        rule_ids=verdict.rule_ids,
        chars=len(request.text),
    )
