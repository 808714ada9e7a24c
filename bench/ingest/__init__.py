"""Ingestion benchmark: `python -m bench.ingest` (also `task bench:ingest`).

One run measures, on the same PDFs (the `expect == text` rows of the shared
manifest): the whole stack started as `task up` starts it (uploads through the
gateway, timed from the first upload to the last `indexed`), the raw in-process
work on the same files (the chunker's extract + chunk code, then the embedder's
`model.encode` of the same chunks, no broker, no DB), and optionally the
LangChain peer (`--peer-python`). Also peak RSS per service, a leak check over
repeated ingestions (a fresh tenant each, so dedupe does not short-circuit; each
run's documents deleted again through the gateway before the next, so RSS after
each run is compared with the same data held),
upload-to-indexed latency of single small documents on an idle stack, and the
query-embedding RPC latency idle vs during an ingestion backlog.
"""
