"""Guardrails settings. The service owns no data; its policy is versioned config."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from vectrion_common.settings import ServiceSettings


class GuardrailsSettings(ServiceSettings):
    service_name: ClassVar[str] = "guardrails"

    max_input_chars: int = Field(default=8_000, gt=0, description="longer user input is blocked")
    max_input_tokens: int = Field(default=2_000, gt=0, description="more (estimated) tokens of user input are blocked")
    char_flood_run: int = Field(default=40, ge=4, description="this many equal non-space characters in a row")
    token_flood_repeats: int = Field(default=25, ge=3, description="this many equal words in a row")
    policy_file: Path | None = Field(
        default=None, description="per-tenant actions (JSON, see tenant_rules.py); default: the packaged policy"
    )
    check_roles: list[str] = Field(
        default_factory=lambda: ["platform_admin", "admin"],
        description=f"roles granted the {'guardrails:check'!r} permission for POST /v1/guardrails/check",
    )
