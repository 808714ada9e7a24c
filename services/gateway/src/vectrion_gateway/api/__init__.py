"""Thin FastAPI routers of the gateway."""
