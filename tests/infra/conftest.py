"""Fixtures of the infra manifest tests: compose parsed, kustomize overlays rendered."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.manifests import COMPOSE_FILE, K8S_DIR, OVERLAYS, interpolate, kubectl, render_overlay


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    """compose.yaml after interpolation with an empty environment (the defaults)."""
    data: dict[str, Any] = yaml.safe_load(interpolate(COMPOSE_FILE.read_text(encoding="utf-8"), env={}))
    return data


@pytest.fixture(scope="session")
def k8s_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """infra/k8s copied aside, with each git-ignored ``*.env`` taken from its ``.example``.

    Overlays generate their Secret from a git-ignored env file; a fresh clone
    (CI) has only the example, so the render always uses that (never a
    developer's real secrets), the way a developer starts.
    """
    target = tmp_path_factory.mktemp("k8s") / "k8s"
    shutil.copytree(K8S_DIR, target)
    for example in target.rglob("*.env.example"):
        real = example.with_name(example.name.removesuffix(".example"))
        shutil.copyfile(example, real)
    return target


@pytest.fixture(scope="session")
def rendered(k8s_copy: Path) -> dict[str, list[dict[str, Any]]]:
    """Every overlay rendered with kustomize; skips (with the reason) when kubectl is absent."""
    if kubectl() is None:
        pytest.skip("kubectl (with built-in kustomize) is not on PATH: overlays cannot be rendered here")
    return {overlay: render_overlay(k8s_copy / "overlays" / overlay) for overlay in OVERLAYS}
