"""The query service's errors, each mapped to problem+json once by vectrion_common.web."""

from __future__ import annotations

from vectrion_common.problems import ProblemError, UpstreamUnavailable


class GuardrailBlocked(ProblemError):
    """The input policy refused the question; nothing was retrieved."""

    status, type_, title = 422, "guardrail-blocked", "Blocked by the input policy"


class GuardrailsUnavailable(UpstreamUnavailable):
    """Guardrails did not answer in time. We fail closed: no unchecked text goes through."""

    type_, title = "guardrails-unavailable", "The guardrails service is unavailable"


class EmbedderUnavailable(UpstreamUnavailable):
    type_, title = "embedder-unavailable", "The embedding service is unavailable"


class UnknownModel(ProblemError):
    """The OpenAI-compatible endpoint serves one model, ``vectrion-rag``."""

    status, type_, title = 404, "model-not-found", "Unknown model"


class NoQuestion(ProblemError):
    status, type_, title = 422, "no-question", "No user message to answer"
