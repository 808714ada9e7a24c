"""Gateway settings: one class, built once by ``create_app``."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, IPvAnyNetwork, SecretStr

from vectrion_common.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    service_name: ClassVar[str] = "gateway"

    # --- access tokens -----------------------------------------------------------
    jwt_secret: SecretStr | None = Field(default=None, description="HS256 key that signs new access tokens (required)")
    jwt_key_id: str = Field(default="k1", description="`kid` of tokens signed with jwt_secret")
    jwt_retired_keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="kid -> key still accepted for verification only (JSON); rotation: move the old "
        "jwt_secret/jwt_key_id here, set a new pair, drop the old key after access_token_ttl_seconds",
    )
    access_token_ttl_seconds: int = Field(default=900, gt=0, le=86_400)
    refresh_token_ttl_seconds: int = Field(default=30 * 86_400, gt=0)

    principal_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        le=60,
        description="how long an authenticated caller is remembered in-process; a revocation made through "
        "another replica (or in SQL) takes effect within this time, one made through this replica at once; 0: off",
    )

    bootstrap_admin_email: str | None = None
    bootstrap_admin_password: SecretStr | None = None

    # --- upstreams ---------------------------------------------------------------
    ingest_url: str = "http://127.0.0.1:8001"
    query_url: str = "http://127.0.0.1:8004"
    guardrails_url: str = "http://127.0.0.1:8005"

    upstream_connect_timeout_seconds: float = 3.0
    # Generous: a /v1/query answer waits for retrieval and an LLM.
    upstream_read_timeout_seconds: float = 120.0
    upstream_pool_timeout_seconds: float = Field(
        default=5.0, description="waiting for a free pooled connection (counted with the connect timeout)"
    )
    upstream_max_connections: int = 100

    # --- Redis (rate limits, sessions, cache, idempotency, quota hot counters) ------
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    redis_key_prefix: str = Field(default="vectrion:gw", description="prefix of every Redis key the gateway writes")
    redis_max_connections: int = 64
    redis_timeout_seconds: float = Field(default=0.5, gt=0, description="connect, socket and pool wait timeout")

    # --- login throttling (per email and per client address) ------------------------
    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description="CIDRs of our own reverse proxies (JSON list); X-Forwarded-For is believed only from "
        "these peers, so by default the TCP peer is the client address",
    )
    login_max_failures_per_email: int = 5
    login_max_failures_per_address: int = 50
    login_failure_window_seconds: int = 900

    # --- rate limits (GCRA: `per_minute` sustained, `burst` at once) -----------------
    rate_limit_query_per_minute: float = Field(default=60, gt=0)
    rate_limit_query_burst: int = Field(default=20, ge=1)
    rate_limit_upload_per_minute: float = Field(default=20, gt=0)
    rate_limit_upload_burst: int = Field(default=10, ge=1)

    # --- token quotas (None = unlimited; users/tenants may override in the DB) ---------
    default_user_daily_tokens: int | None = None
    default_user_monthly_tokens: int | None = None
    default_tenant_daily_tokens: int | None = None
    default_tenant_monthly_tokens: int | None = None
    reservation_expiry_minutes: int = Field(
        default=15, ge=1, description="a reservation still open this long (a crash) is charged at its amount"
    )
    reservation_sweep_interval_seconds: float = Field(default=60, gt=0)
    query_reservation_tokens: int = Field(
        default=8_000, gt=0, description="worst-case tokens of one /v1/query, reserved before the call"
    )

    # --- response cache ----------------------------------------------------------------
    cache_enabled: bool = True
    cache_ttl_seconds: int = Field(default=3_600, gt=0)
    cache_max_body_bytes: int = 256 * 1024
    cache_invalidation_events: bool = Field(
        default=True,
        description="consume document lifecycle events (indexed, failed, deleted...) from RabbitMQ to invalidate "
        "cached answers; off: only writes through the gateway invalidate (then set cache_settle_seconds)",
    )
    cache_settle_seconds: int = Field(
        default=0,
        ge=0,
        description="after a document write, answers are not cached for this long; only needed without "
        "cache_invalidation_events, to cover the indexing lag",
    )
    cache_share_within_tenant: bool = Field(
        default=False,
        description="share cached answers between users of a tenant; only safe for tenants without private "
        "documents (the query service lets each user see their own private documents)",
    )
    answer_model_version: str = Field(
        default="extractive-v1", description="answerer model + prompt version; part of every cache key"
    )

    # --- idempotency -------------------------------------------------------------------
    idempotency_ttl_seconds: int = 86_400
    idempotency_max_body_bytes: int = 1024 * 1024
