"""Guardrails evaluation: splits, training and the detection / false-positive / latency report."""
