"""Gateway settings: one class, built once by ``create_app``."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr

from vectrion_common.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    service_name: ClassVar[str] = "gateway"

    jwt_secret: SecretStr | None = Field(default=None, description="HS256 key of client access tokens (required)")
    jwt_key_id: str = Field(default="k1", description="`kid` of tokens signed with jwt_secret; change it on rotation")
    access_token_ttl_seconds: int = Field(default=900, gt=0, le=86_400)

    bootstrap_admin_email: str | None = None
    bootstrap_admin_password: SecretStr | None = None

    ingest_url: str = "http://127.0.0.1:8001"
    query_url: str = "http://127.0.0.1:8004"
    guardrails_url: str = "http://127.0.0.1:8005"

    upstream_connect_timeout_seconds: float = 3.0
    # Generous: a /v1/query answer waits for retrieval and an LLM.
    upstream_read_timeout_seconds: float = 120.0
    upstream_write_timeout_seconds: float = 60.0
    upstream_pool_timeout_seconds: float = 5.0
    upstream_max_connections: int = 100
