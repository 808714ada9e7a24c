"""The LangChain peer (`../shared/peers/langchain_rag.py ingest`) run as a subprocess from its own venv."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench.ingest.corpus import MANIFEST, PDF_DIR
from tests.harness import SHARED_DATA

PEER_SCRIPT = SHARED_DATA.parent / "peers" / "langchain_rag.py"
KEPT = (
    "files", "files_loaded", "files_failed", "pages", "chars", "chunks", "model_load_s", "load_s", "split_s",
    "embed_upsert_s", "total_s", "pages_per_s", "chunks_per_s", "load_pages_per_s", "embed_upsert_chunks_per_s",
)  # fmt: skip


def run_peer(python: Path, timeout: float = 1800) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="peer-") as tmp:
        completed = subprocess.run(
            [str(python), str(PEER_SCRIPT), "ingest", "--pdf-dir", str(PDF_DIR), "--manifest", str(MANIFEST)],
            cwd=tmp,
            env={"PATH": "/usr/bin:/bin", "HOME": tmp, "PEER_RESULTS_DIR": tmp, "HF_HUB_OFFLINE": "1"},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    if completed.returncode != 0:
        return {"error": f"exit {completed.returncode}", "stderr_tail": completed.stderr[-2000:]}
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    result: dict[str, Any] = json.loads(lines[-1])
    summary = {key: result.get(key) for key in KEPT}
    summary.update({k: v for k, v in result.items() if k.startswith("raw_")})
    return summary
