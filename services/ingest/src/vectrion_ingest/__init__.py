"""Vectrion ingest: documents, their files and their status."""
