"""The shared evaluation sets, each row with a stable source id, and the committed splits.

Licences (see the PROVENANCE.md files under shared/data):
- deepset prompt-injections (Apache-2.0), AdvBench (MIT), BIPIA (MIT): may be
  trained on; we train only on their *train* split ids (``splits.json``).
- Alpaca instructions (CC BY-NC 4.0) and SciFact (CC BY-NC 2.0): non-commercial,
  so evaluation only. Nothing is trained on them (the models ship in an image),
  and their text is never copied into this repository: splits store ids only.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.harness import SHARED_DATA

SPLITS_FILE = Path(__file__).with_name("splits.json")
SEED = 20250607
TEST_SHARE = 0.3

SOURCES = {
    "deepset": "prompt_injection/deepset_train.jsonl",
    "bipia": "prompt_injection/bipia_train_attacks.jsonl",
    "advbench": "unsafe/advbench_shared.jsonl",
    "alpaca": "unsafe/alpaca_benign_shared.jsonl",
    "scifact": "scifact/queries.test.jsonl",
}


@dataclass(frozen=True, slots=True)
class Row:
    source: str
    id: str
    text: str
    label: int
    category: str | None = None


def _row_id(source: str, index: int, record: dict[str, Any]) -> str:
    match source:
        case "advbench":
            return str(record["source_row"])
        case "alpaca":
            return str(record["source_index"])
        case "bipia":
            return f"{record['category']}#{record['source_index']}"
        case "scifact":
            return str(record["_id"])
        case _:
            return str(index)  # deepset has no id of its own: its line number in the shared file


def file_sha256(source: str) -> str:
    return hashlib.sha256((SHARED_DATA / SOURCES[source]).read_bytes()).hexdigest()


def load(source: str) -> list[Row]:
    path = SHARED_DATA / SOURCES[source]
    opener = gzip.open if path.suffix == ".gz" else open
    rows = []
    with opener(path, "rt", encoding="utf-8") as f:
        for index, line in enumerate(f):
            record = json.loads(line)
            label = int(record.get("label", 0))  # scifact claims are benign questions
            rows.append(Row(source, _row_id(source, index, record), record["text"], label, record.get("category")))
    return rows


def build_splits() -> dict[str, Any]:
    """Seeded, label-stratified train/test split by source id for the sets we train on."""
    splits: dict[str, Any] = {"seed": SEED, "test_share": TEST_SHARE, "sources": {}}
    for source in ("deepset", "advbench"):
        rows = load(source)
        train: list[str] = []
        test: list[str] = []
        for label in sorted({r.label for r in rows}):
            ids = sorted((r.id for r in rows if r.label == label), key=lambda i: (len(i), i))
            random.Random(f"{SEED}:{source}:{label}").shuffle(ids)
            cut = round(len(ids) * TEST_SHARE)
            test += ids[:cut]
            train += ids[cut:]
        splits["sources"][source] = {
            "file": SOURCES[source],
            "sha256": file_sha256(source),
            "train": sorted(train, key=int),
            "test": sorted(test, key=int),
        }
    splits["evaluation_only"] = {
        s: {"file": SOURCES[s], "sha256": file_sha256(s), "why": why}
        for s, why in (
            ("alpaca", "CC BY-NC 4.0: never trained on, all rows evaluated"),
            ("scifact", "CC BY-NC 2.0: never trained on, all 300 test queries evaluated"),
            ("bipia", "indirect-injection instructions: never trained on, all rows evaluated inside documents"),
        )
    }
    return splits


def load_splits() -> dict[str, Any]:
    return json.loads(SPLITS_FILE.read_text())


def split_rows(source: str, part: str) -> list[Row]:
    """Rows of ``source`` in ``part`` ("train" | "test"), checked against the file the split was made from."""
    entry = load_splits()["sources"][source]
    if entry["sha256"] != file_sha256(source):
        raise RuntimeError(f"{SOURCES[source]} changed since the split was made; rebuild splits.json")
    wanted = set(entry[part])
    return [r for r in load(source) if r.id in wanted]


if __name__ == "__main__":
    SPLITS_FILE.write_text(json.dumps(build_splits(), indent=1) + "\n")
    print(f"wrote {SPLITS_FILE}")
