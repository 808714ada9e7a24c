"""Vectrion guardrails: stateless policy checks on text going into and out of the LLM."""
