"""Guardrails settings. The service owns no data; its policy thresholds are config."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from vectrion_common.settings import ServiceSettings


class GuardrailsSettings(ServiceSettings):
    service_name: ClassVar[str] = "guardrails"

    max_input_chars: int = Field(default=8_000, gt=0, description="longer user input is blocked")
    char_flood_run: int = Field(default=40, ge=4, description="this many equal non-space characters in a row")
    token_flood_repeats: int = Field(default=25, ge=3, description="this many equal words in a row")
