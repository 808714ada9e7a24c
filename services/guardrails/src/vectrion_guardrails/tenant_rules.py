"""Versioned policy config: what each tenant does with each verdict category.

The packaged ``policies/default.json`` holds the defaults and the version;
an operator points ``VECTRION_POLICY_FILE`` at their own file (same shape) to
change actions per tenant. Bump ``version`` on any change: it is returned with
every verdict and stored with every message, so a decision can be traced to
the rules that made it.

    {"version": "...",
     "default": {"injection": "block", "pii": "redact",
                 "unsafe": {"violence": "block", ...}, "unsafe_default": "block"},
     "tenants": {"<tenant uuid>": {"pii": "block", "unsafe": {"violence": "warn"}}}}

A tenant entry overrides only the keys it names.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal, cast

Action = Literal["allow", "warn", "redact", "block"]
UnsafeAction = Literal["allow", "warn", "block"]

POLICY_VERSION = json.loads(resources.files("vectrion_guardrails").joinpath("policies", "default.json").read_text())[
    "version"
]

_UNSAFE_ACTIONS = ("allow", "warn", "block")


def _default_unsafe() -> dict[str, UnsafeAction]:
    return {c: "block" for c in ("violence", "weapons", "self_harm", "crime", "sexual_minors", "hate", "unsafe_other")}


@dataclass(frozen=True, slots=True)
class TenantRules:
    injection: Literal["block", "warn"] = "block"
    pii: Literal["redact", "block"] = "redact"
    unsafe: dict[str, UnsafeAction] = field(default_factory=_default_unsafe)
    unsafe_default: UnsafeAction = "block"


class PolicyConfigError(ValueError):
    pass


def _apply(base: TenantRules, entry: dict[str, Any], where: str) -> TenantRules:
    unknown = set(entry) - {"injection", "pii", "unsafe", "unsafe_default"}
    if unknown:
        raise PolicyConfigError(f"{where}: unknown keys {sorted(unknown)}")
    rules = base
    if "injection" in entry:
        if entry["injection"] not in ("block", "warn"):
            raise PolicyConfigError(f"{where}.injection must be block or warn")
        rules = replace(rules, injection=entry["injection"])
    if "pii" in entry:
        if entry["pii"] not in ("redact", "block"):
            raise PolicyConfigError(f"{where}.pii must be redact or block")
        rules = replace(rules, pii=entry["pii"])
    if "unsafe_default" in entry:
        if entry["unsafe_default"] not in _UNSAFE_ACTIONS:
            raise PolicyConfigError(f"{where}.unsafe_default must be one of {_UNSAFE_ACTIONS}")
        rules = replace(rules, unsafe_default=entry["unsafe_default"])
    if "unsafe" in entry:
        for category, action in entry["unsafe"].items():
            if action not in _UNSAFE_ACTIONS:
                raise PolicyConfigError(f"{where}.unsafe.{category} must be one of {_UNSAFE_ACTIONS}")
        rules = replace(rules, unsafe={**rules.unsafe, **cast(dict[str, UnsafeAction], entry["unsafe"])})
    return rules


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    version: str
    default: TenantRules
    tenants: dict[uuid.UUID, TenantRules]


def parse_policy_config(data: dict[str, Any]) -> PolicyConfig:
    if not isinstance(data.get("version"), str) or not data["version"]:
        raise PolicyConfigError("policy config needs a non-empty string 'version'")
    default = _apply(TenantRules(), data.get("default", {}), "default")
    tenants = {}
    for key, entry in data.get("tenants", {}).items():
        try:
            tenant_id = uuid.UUID(key)
        except ValueError as exc:
            raise PolicyConfigError(f"tenants: {key!r} is not a tenant id") from exc
        tenants[tenant_id] = _apply(default, entry, f"tenants.{key}")
    return PolicyConfig(data["version"], default, tenants)


def load_policy_config(path: Path | None) -> PolicyConfig:
    if path is None:
        text = resources.files("vectrion_guardrails").joinpath("policies", "default.json").read_text()
    else:
        text = path.read_text()
    return parse_policy_config(json.loads(text))
