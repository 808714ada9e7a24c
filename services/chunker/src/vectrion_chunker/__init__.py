"""Vectrion chunker: turns an uploaded PDF into page-aware chunks and embedding requests."""
