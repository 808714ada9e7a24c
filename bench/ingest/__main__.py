"""`python -m bench.ingest [--peer-python PATH]`: see bench/ingest/__init__.py. Prints one JSON
document and saves it as bench/results/ingest-<time>.json."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.ingest.corpus import Pdf, text_pdfs
from bench.ingest.embed_rpc import EmbedRpcProbe, latency_summary
from bench.ingest.memory import RssSampler
from bench.ingest.metrics import scrape, stage_seconds
from bench.ingest.peer import run_peer
from bench.ingest.raw import run_raw
from bench.ingest.stack_run import admin_client, delete_all, fresh_tenant_client, ingest_all
from bench.run import ten_page_pdf, upload_to_indexed
from bench.saving import save_result
from tests.e2e.stack import start_stack
from tests.harness import SHARED_DATA, delete_broker_namespace

SMALL_SOURCE = SHARED_DATA / "pdfs" / "pdfjs_tracemonkey.pdf"
# The gateway's per-user upload rate limit (burst 10, 20/min) would pace a 27-file batch; the
# benchmark measures the pipeline, so its stack gets a roomier limit (recorded in the JSON).
STACK_ENV = {"VECTRION_RATE_LIMIT_UPLOAD_BURST": "1000", "VECTRION_RATE_LIMIT_UPLOAD_PER_MINUTE": "6000"}
RSS_TARGET_MB = {"chunker": 1536, "embedder": 1536}
RSS_TARGET_OTHER_MB = 300


def _loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def small_document_latency(stack_client: Any, namespace: str, runs: int) -> dict[str, Any]:
    upload_to_indexed(stack_client, "warmup.pdf", ten_page_pdf(SMALL_SOURCE, f"warmup-{namespace}"))
    seconds = [
        upload_to_indexed(stack_client, f"tm10-{i}.pdf", ten_page_pdf(SMALL_SOURCE, f"{namespace}-{i}"))
        for i in range(runs)
    ]
    return {
        "document": "pdfjs_tracemonkey.pdf pages 1-10 (unique bytes per upload)",
        "runs": runs,
        **latency_summary([s * 1000 for s in seconds], 0),
    }


def stack_phase(pdfs: list[Pdf], args: argparse.Namespace) -> dict[str, Any]:
    namespace = f"vbi{uuid.uuid4().hex[:10]}"
    os.environ.update(STACK_ENV)
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        stack = start_stack(Path(tmp), namespace)
        sampler = RssSampler(stack.process.pid)
        sampler.start()
        try:
            result: dict[str, Any] = {"stack_env": STACK_ENV, "rss_idle_mb": sampler.current()}
            with admin_client(stack) as admin:
                result["small_document_latency"] = small_document_latency(admin, namespace, args.latency_runs)
            result["embed_rpc_idle"] = EmbedRpcProbe(namespace, interval=args.probe_interval).run(args.rpc_calls)
            runs = []
            for index in range(args.runs):
                probed = index == args.runs - 1
                with admin_client(stack) as admin, fresh_tenant_client(stack, admin, f"run{index + 1}") as client:
                    probe = EmbedRpcProbe(namespace, interval=args.probe_interval) if probed else None
                    before = scrape(stack.ports)
                    cpu_before = sampler.cpu()
                    sampler.reset_window()
                    loadavg = _loadavg()
                    if probe:
                        probe.start()
                    run = ingest_all(client, pdfs)
                    rpc = probe.stop() if probe else None
                    after = scrape(stack.ports)
                    cpu = {k: round(v - cpu_before.get(k, 0.0), 1) for k, v in sampler.cpu().items()}
                    time.sleep(2)
                    summary = run.summary()
                    stages = stage_seconds(before, after)
                    runs.append(
                        {
                            "run": index + 1,
                            "loadavg_start": loadavg,
                            **summary,
                            # CPU seconds per service process during the run: where the machine's time went
                            "cpu_s": cpu,
                            "cpu_share_of_two_cores": {k: round(v / (2 * run.seconds), 2) for k, v in cpu.items()},
                            # wall time of handled messages (overlapping when a service handles several at once)
                            "stage_busy_s": stages,
                            "stage_busy_fraction": {k: round(v / run.seconds, 2) for k, v in stages.items()},
                            "peak_rss_mb": sampler.window(),
                            "rss_after_mb": sampler.current(),
                            "embed_rpc_during_ingestion": rpc,
                        }
                    )
                    # The leak check compares like with like: each run's documents are deleted
                    # (the saga, through the gateway) before the next, so every run starts and
                    # ends with the same data held; growth across runs is then not data.
                    runs[-1]["delete_seconds"] = round(delete_all(client, set(run.documents)), 2)
                    time.sleep(2)
                    runs[-1]["rss_after_delete_mb"] = sampler.current()
                    print(json.dumps({"run": index + 1, **summary, "cpu_s": cpu, "stage_busy_s": stages}), flush=True)
            result["runs"] = runs
            result["peak_rss_mb"] = dict(sorted(sampler.overall_peak.items()))
        except BaseException:
            if args.keep_log:
                Path(args.keep_log).write_text(stack.log_path.read_text(errors="replace"))
            raise
        finally:
            sampler.stop()
            if args.keep_log and stack.log_path.exists():
                Path(args.keep_log).write_text(stack.log_path.read_text(errors="replace"))
            stack.stop()
            delete_broker_namespace(namespace)
    return result


def verdicts(stack: dict[str, Any], raw: dict[str, Any] | None, peer: dict[str, Any] | None) -> dict[str, Any]:
    runs = stack["runs"]
    if not runs:  # --runs 0: idle measurements only (RSS, small-document latency, idle RPC)
        return {}
    unprobed = [r for r in runs if r["embed_rpc_during_ingestion"] is None] or runs
    pages_per_s = statistics.median(r["pages_per_s"] for r in unprobed)
    chunks_per_s = statistics.median(r["chunks_per_s"] for r in unprobed)
    out: dict[str, Any] = {
        "pipeline_pages_per_s": round(pages_per_s, 2),
        "pipeline_chunks_per_s": round(chunks_per_s, 2),
        "pipeline_runs_used": [r["run"] for r in unprobed],
    }
    if raw:
        out["pipeline_vs_raw"] = {"ratio": round(pages_per_s / raw["pages_per_s"], 3), "target": 0.85}
    if peer and peer.get("pages_per_s"):
        out["pipeline_vs_peer"] = {"ratio": round(pages_per_s / peer["pages_per_s"], 3), "target": 0.85}
    peaks = stack["peak_rss_mb"]
    out["rss_within_target"] = {
        service: mb < RSS_TARGET_MB.get(service, RSS_TARGET_OTHER_MB) for service, mb in peaks.items()
    }
    after = [r["rss_after_delete_mb"] for r in runs]
    out["rss_growth_first_to_last_run_mb"] = {s: round(after[-1][s] - after[0][s], 1) for s in after[0]}
    out["rss_growth_note"] = "RSS after each run's documents were deleted again, last run minus first"
    idle, busy = stack["embed_rpc_idle"], runs[-1]["embed_rpc_during_ingestion"]
    if idle.get("p95_ms") and busy and busy.get("p95_ms"):
        out["embed_rpc_p95_busy_vs_idle"] = {"ratio": round(busy["p95_ms"] / idle["p95_ms"], 2), "target": 2.0}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--peer-python", type=Path, default=os.environ.get("VECTRION_BENCH_PEER_PYTHON"))
    parser.add_argument("--files", type=int, default=None, help="only the first N text PDFs (development)")
    parser.add_argument("--runs", type=int, default=3, help="ingestions of the whole set (leak check)")
    parser.add_argument("--latency-runs", type=int, default=5)
    parser.add_argument("--rpc-calls", type=int, default=100, help="idle query-embedding RPC probes")
    parser.add_argument("--probe-interval", type=float, default=0.25)
    parser.add_argument("--skip-raw", action="store_true")
    parser.add_argument("--keep-log", help="copy the stack's log here")
    args = parser.parse_args()

    started = time.perf_counter()
    result: dict[str, Any] = {
        "benchmark": "ingestion",
        "at": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "loadavg_start": _loadavg(),
    }
    pdfs = text_pdfs(args.files)
    result["corpus"] = {"files": len(pdfs), "pages": sum(p.pages for p in pdfs), "selection": "manifest expect == text"}
    result["stack"] = stack_phase(pdfs, args)
    raw = None if args.skip_raw else run_raw(pdfs, Pdf(SMALL_SOURCE, 14))
    result["raw"] = raw
    peer = run_peer(args.peer_python) if args.peer_python else None
    result["peer"] = peer
    result["summary"] = verdicts(result["stack"], raw, peer)
    result["loadavg_end"] = _loadavg()
    result["bench_seconds"] = round(time.perf_counter() - started, 1)

    save_result("ingest", result)


if __name__ == "__main__":
    main()
