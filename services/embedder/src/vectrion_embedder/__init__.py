"""Vectrion embedder: text -> vectors, for ingestion batches and low-latency query RPCs."""
