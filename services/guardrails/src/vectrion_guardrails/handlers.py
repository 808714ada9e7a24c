"""RPC routes: query asks ``<ns>.rpc.guardrails`` for one verdict; the chunker (and
query, for retrieved chunks) asks ``<ns>.rpc.guardrails_scan`` for a batch of document chunks."""

from __future__ import annotations

from vectrion_common.contracts import (
    GuardrailCheckRequest,
    GuardrailScanRequest,
    GuardrailScanResponse,
    GuardrailVerdict,
)
from vectrion_common.logs import get_logger
from vectrion_common.messaging.rpc import RpcServer
from vectrion_common.messaging.topology import Topology
from vectrion_guardrails.policy import Policy, evaluate, evaluate_documents

log = get_logger(__name__)

SCAN_QUEUE = "guardrails_scan"


def register_handlers(rpc: RpcServer, topology: Topology, policy: Policy, *, prefetch: int) -> None:
    async def check(request: GuardrailCheckRequest) -> GuardrailVerdict:
        verdict = evaluate(request, policy)
        log_verdict(request, verdict, via="rpc")
        return verdict

    async def scan(request: GuardrailScanRequest) -> GuardrailScanResponse:
        return scan_chunks(request, policy)

    rpc.route(topology.rpc_queue("guardrails"), GuardrailCheckRequest, check, prefetch=prefetch)
    rpc.route(topology.rpc_queue(SCAN_QUEUE), GuardrailScanRequest, scan, prefetch=prefetch)


def scan_chunks(request: GuardrailScanRequest, policy: Policy) -> GuardrailScanResponse:
    verdicts = evaluate_documents(request.texts, policy)  # = evaluate(direction="document") per text
    flagged = [i for i, v in enumerate(verdicts) if not v.allowed]
    log.info(
        "guardrails.scanned",
        tenant_id=str(request.tenant_id) if request.tenant_id else None,
        chunks=len(verdicts),
        flagged=len(flagged),
        rule_ids=sorted({r for i in flagged for r in verdicts[i].rule_ids}),
    )
    return GuardrailScanResponse(verdicts=verdicts)


def log_verdict(request: GuardrailCheckRequest, verdict: GuardrailVerdict, via: str) -> None:
    # Never the text itself: it is user data and may hold exactly the PII we redact.
    log.info(
        "guardrails.checked",
        via=via,
        direction=request.direction,
        tenant_id=str(request.tenant_id) if request.tenant_id else None,
        action=verdict.action,
        categories=verdict.categories,
        rule_ids=verdict.rule_ids,
        chars=len(request.text),
        turns=len(request.history),
    )
