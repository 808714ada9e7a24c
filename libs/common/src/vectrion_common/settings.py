"""Typed settings shared by every service.

Each service subclasses :class:`ServiceSettings` once and builds it once at
start-up. Values come from ``VECTRION_*`` environment variables; any field can
instead be read from a file named by ``VECTRION_<FIELD>_FILE`` (Kubernetes
secrets, Docker secrets). Secrets are ``SecretStr`` and never logged.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, Field, SecretStr, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX = "VECTRION_"


class SettingsError(RuntimeError):
    """Configuration is missing or invalid; the message says which variable to set."""


class FileSecretsSource(PydanticBaseSettingsSource):
    """Reads ``VECTRION_<FIELD>_FILE``: the field's value is that file's content."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        env_name = f"{ENV_PREFIX}{field_name.upper()}_FILE"
        path = os.environ.get(env_name)
        if not path:
            return None, field_name, False
        try:
            return Path(path).read_text(encoding="utf-8").strip(), field_name, False
        except OSError as exc:
            raise SettingsError(f"{env_name} points at {path!r}, which cannot be read: {exc}") from exc

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, name)
            if value is not None:
                values[key] = value
        return values


class RetrySettings(BaseModel):
    """How a consumer retries a message that failed with a transient error.

    Attempt ``n`` (1-based) that fails waits about ``base_delay_ms * multiplier**(n-1)``
    (at most ``max_delay_ms``, +/- ``jitter``) in a delay queue, then is delivered again;
    after ``max_attempts`` deliveries that failed it is parked in the consumer's DLQ.
    """

    max_attempts: int = Field(default=5, ge=1, le=20, description="handler runs before the message is parked")
    base_delay_ms: int = Field(default=1000, ge=1)
    multiplier: float = Field(default=2.0, ge=1.0)
    max_delay_ms: int = Field(default=5 * 60 * 1000, ge=1)
    jitter: float = Field(default=0.2, ge=0.0, lt=0.5, description="+/- this fraction of each delay, at random")


class ServiceSettings(BaseSettings):
    """Settings every Vectrion service has. Subclasses set ``service_name``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="ignore")

    service_name: ClassVar[str] = "common"

    environment: str = "local"
    log_level: str = "INFO"
    log_json: bool = True

    database_url: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy async URL; defaults to the service's own role on the local vectrion DB",
    )
    db_host: str = "127.0.0.1"
    db_port: int = 5432
    db_name: str = "vectrion"
    db_pool_size: int = 5

    rabbitmq_url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    broker_namespace: str = Field(
        default="vectrion",
        description="prefix of every exchange and queue name; tests use their own to stay isolated",
    )
    broker_prefetch: int = 16
    retry: RetrySettings = Field(default_factory=RetrySettings)

    internal_token_secret: SecretStr | None = Field(
        default=None, description="HMAC key of the gateway-signed identity tokens"
    )
    internal_token_ttl_seconds: int = 60

    otlp_endpoint: str | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        assert isinstance(env_settings, EnvSettingsSource)
        return (init_settings, env_settings, FileSecretsSource(settings_cls), dotenv_settings)

    @model_validator(mode="after")
    def _default_database_url(self) -> ServiceSettings:
        if self.database_url is None:
            role = db_role(self.service_name)
            self.database_url = SecretStr(
                f"postgresql+asyncpg://{role}:{role}@{self.db_host}:{self.db_port}/{self.db_name}"
            )
        return self

    @property
    def db_schema(self) -> str:
        return self.service_name

    def require_secret(self, field_name: str) -> SecretStr:
        """The named secret, or a start-up error that says how to provide it."""
        value = getattr(self, field_name)
        if not isinstance(value, SecretStr) or not value.get_secret_value():
            env = f"{ENV_PREFIX}{field_name.upper()}"
            raise SettingsError(
                f"{self.service_name}: missing required secret {field_name}: "
                f"set {env} or {env}_FILE"
            )
        return value

    def db_url(self) -> str:
        assert self.database_url is not None  # set by the validator
        return self.database_url.get_secret_value()


def db_role(service_name: str) -> str:
    """The PostgreSQL role that owns a service's schema."""
    return f"vectrion_{service_name}"


S = TypeVar("S", bound=ServiceSettings)


def load_settings(cls: type[S]) -> S:
    """Build settings once, turning validation errors into one readable message."""
    try:
        return cls()
    except ValidationError as exc:
        problems = "; ".join(
            f"{ENV_PREFIX}{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        raise SettingsError(f"{cls.service_name}: invalid configuration: {problems}") from exc
