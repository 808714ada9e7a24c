"""Where the infra files are and how to read them: YAML, compose interpolation, kustomize.

Everything here is offline: files are parsed and rendered, nothing is run
against a Docker engine or a cluster.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
INFRA = REPO_ROOT / "infra"
COMPOSE_DIR = INFRA / "compose"
COMPOSE_FILE = COMPOSE_DIR / "compose.yaml"
K8S_DIR = INFRA / "k8s"
OVERLAYS = ("dev", "prod")

# The six application services and the port each one serves on.
SERVICE_PORTS = {
    "gateway": 8000,
    "ingest": 8001,
    "chunker": 8002,
    "embedder": 8003,
    "query": 8004,
    "guardrails": 8005,
}
SERVICES_WITH_DATA = ("gateway", "ingest", "chunker", "query")

_INTERPOLATION = re.compile(r"\$\$|\$\{(\w+)(?::?-([^}]*))?\}")


def interpolate(text: str, env: dict[str, str] | None = None) -> str:
    """Compose variable interpolation for the forms we use: ``${VAR}``, ``${VAR:-default}``, ``$$``."""
    env = dict(os.environ) if env is None else env

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1)) or match.group(2) or ""

    return _INTERPOLATION.sub(replace, text)


def yaml_files() -> list[Path]:
    return sorted(p for p in INFRA.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def load_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def kubectl() -> str | None:
    return shutil.which("kubectl")


def render_overlay(overlay_dir: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize`` of one overlay, parsed into objects."""
    binary = kubectl()
    assert binary is not None
    result = subprocess.run(
        [binary, "kustomize", str(overlay_dir)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"kustomize build {overlay_dir} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]
