"""Vectrion query service: retrieval index, extractive answers with citations, conversations."""
