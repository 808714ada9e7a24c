"""Vectrion gateway: the public HTTP API in front of ingest, query and guardrails."""
