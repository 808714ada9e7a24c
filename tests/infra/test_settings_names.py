"""Every VECTRION_* variable the infra sets is one that a service's settings read.

A misspelt or renamed variable is silently ignored by pydantic-settings
(extra="ignore"), so the service would start with its default instead; this
catches that offline by comparing against the settings classes themselves.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices, BaseModel

from tests.infra.manifests import K8S_DIR, SERVICE_PORTS

# Set ahead of the service that will read it; the test reports it as pending, not as passed.
PENDING: dict[str, str] = {}


def settings_class(service: str) -> type[Any]:
    from vectrion_common.settings import ServiceSettings

    try:
        module = importlib.import_module(f"vectrion_{service}.settings")
    except ImportError as exc:
        pytest.skip(f"vectrion_{service} is not installed in this environment: {exc}")
    classes = [
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, ServiceSettings) and v is not ServiceSettings
    ]
    assert len(classes) == 1, f"vectrion_{service}.settings should define one settings class, found {classes}"
    return classes[0]


def accepted_names(cls: type[Any]) -> set[str]:
    names: set[str] = set()
    for field_name, field in cls.model_fields.items():
        env = f"VECTRION_{field_name.upper()}"
        names |= {env, f"{env}_FILE"}
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names |= {c for c in alias.choices if isinstance(c, str) and c.startswith("VECTRION_")}
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= {f"{env}__{sub.upper()}" for sub in annotation.model_fields}
    return names


def check(service: str, variables: set[str]) -> None:
    unknown = {v for v in variables if v.startswith("VECTRION_")} - accepted_names(settings_class(service))
    pending = {v for v in unknown if v in PENDING}
    assert unknown == pending, f"{service} does not read {sorted(unknown - pending)}"
    if pending:
        pytest.skip(f"{service}: {', '.join(f'{v} ({PENDING[v]})' for v in sorted(pending))}")


@pytest.mark.parametrize("service", SERVICE_PORTS)
def test_compose_sets_only_variables_the_service_reads(compose: dict[str, Any], service: str) -> None:
    check(service, set(compose["services"][service]["environment"]))


@pytest.mark.parametrize("service", SERVICE_PORTS)
def test_k8s_deployment_sets_only_variables_the_service_reads(service: str) -> None:
    docs = yaml.safe_load_all((K8S_DIR / "base" / "services" / f"{service}.yaml").read_text(encoding="utf-8"))
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    check(service, {e["name"] for c in deployment["spec"]["template"]["spec"]["containers"] for e in c["env"]})


def test_every_shared_config_variable_is_read_by_some_service() -> None:
    keys = {
        line.split("=", 1)[0]
        for line in (K8S_DIR / "base" / "config.env").read_text(encoding="utf-8").splitlines()
        if "=" in line and not line.startswith("#")
    }
    read = set().union(*(accepted_names(settings_class(s)) for s in SERVICE_PORTS))
    unread = {k for k in keys if k.startswith("VECTRION_")} - read
    assert unread <= set(PENDING), f"no service reads {sorted(unread - set(PENDING))}"
