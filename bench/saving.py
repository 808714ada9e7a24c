"""Where benchmark results go: one JSON document per run under bench/results/, also printed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.harness import REPO_ROOT

RESULTS = REPO_ROOT / "bench" / "results"


def save_result(kind: str, result: dict[str, Any]) -> Path:
    """Print ``result`` and save it as ``bench/results/<kind>-<UTC time>.json``; returns the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{kind}-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print(f"saved {path}")
    return path
