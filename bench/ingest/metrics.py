"""Per-stage busy time from the services' own Prometheus metrics (scraped before and after a run).

FastStream's Prometheus middleware times every handled message per queue; the
chunker and embedder also time extraction and ``encode`` themselves. Stages
overlap in the pipeline, so each stage is reported as seconds busy and as a
fraction of the run's wall time.
"""

from __future__ import annotations

from collections import defaultdict

import httpx
from prometheus_client.parser import text_string_to_metric_families

HANDLED = "faststream_received_processed_messages_duration_seconds_sum"

# (service, sample name, substring of its labels) -> stage. FastStream labels a consumed message
# handler=<exchange>.<routing key>, an RPC handler=default.<queue>.
STAGES: list[tuple[str, str, str, str]] = [
    ("chunker", "vectrion_chunker_extract_seconds_sum", "", "chunker_extract_s"),
    ("chunker", HANDLED, "document.uploaded.v1", "chunker_handler_s"),
    ("guardrails", HANDLED, "rpc.guardrails_scan", "guardrails_chunk_scan_s"),
    ("embedder", "vectrion_embedder_ingest_encode_call_seconds_sum", "", "embedder_encode_s"),
    # Every version of the batch events (v2 since the chunker streams; v1 left from before).
    ("embedder", HANDLED, "embedding.requested.v", "embedder_handler_s"),
    ("query", HANDLED, "chunks.embedded.v", "query_index_s"),
]


def scrape(ports: dict[str, int]) -> dict[str, dict[str, float]]:
    """``{service: {"name{labels}": value}}`` of every sample each service exposes."""
    found: dict[str, dict[str, float]] = {}
    for service, port in ports.items():
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        except httpx.HTTPError:
            continue
        samples: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}"] = float(sample.value)
        found[service] = samples
    return found


def stage_seconds(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for service, name, label_part, stage in STAGES:
        for key, value in after.get(service, {}).items():
            if key.startswith(name + "{") and label_part in key:
                totals[stage] += value - before.get(service, {}).get(key, 0.0)
    return {stage: round(seconds, 2) for stage, seconds in totals.items()}
