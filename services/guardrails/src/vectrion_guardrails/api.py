"""HTTP: ``POST /v1/guardrails/check`` (behind the ``guardrails:check`` permission, see permissions.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from vectrion_common.contracts import Direction, GuardrailCheckRequest, GuardrailVerdict
from vectrion_guardrails.handlers import log_verdict
from vectrion_guardrails.permissions import CheckPermission
from vectrion_guardrails.policy import Policy, evaluate

router = APIRouter(prefix="/v1/guardrails", tags=["guardrails"])


class CheckBody(BaseModel):
    # Bounded so a huge body is refused by validation; the policy's own,
    # smaller input limit still applies to direction "input".
    text: str = Field(max_length=200_000)
    direction: Direction
    canary: str | None = None
    history: list[str] = Field(default_factory=list, max_length=20)


@router.post("/check", response_model=GuardrailVerdict)
async def check(body: CheckBody, identity: CheckPermission, request: Request) -> GuardrailVerdict:
    policy: Policy = request.app.state.policy
    check_request = GuardrailCheckRequest(
        text=body.text,
        direction=body.direction,
        canary=body.canary,
        history=body.history,
        tenant_id=identity.tenant_id,
    )
    verdict = evaluate(check_request, policy)
    log_verdict(check_request, verdict, via="http")
    return verdict
