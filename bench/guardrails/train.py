"""Train the two guardrail classifiers and write them, with their lineage, into the package.

    python -m bench.guardrails.train

Deterministic: fixed splits (splits.json), liblinear (no random state used),
threshold picked from 5-fold out-of-fold scores on the training rows only.
Trains only on permissively licensed rows (see data.py); never on a test id.

- injection: deepset train split, label 1 vs label 0, plus our own synthetic rows (synthetic.py).
- unsafe: AdvBench train split (harmful requests) vs deepset benign train rows,
  BIPIA instructions (benign tasks) and our synthetic benign questions.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from bench.guardrails import data, synthetic
from vectrion_guardrails import classifier
from vectrion_guardrails.normalise import for_matching

MODELS = Path(__file__).resolve().parents[2] / "services/guardrails/src/vectrion_guardrails/models"
C = 4.0
TARGET_TRAIN_FP = {"injection": 0.03, "unsafe": 0.02}


def matrix(texts: list[str], dimension: int) -> csr_matrix:
    rows, cols, vals = [], [], []
    for i, text in enumerate(texts):
        for j, v in classifier.features(for_matching(text), dimension).items():
            rows.append(i)
            cols.append(j)
            vals.append(v)
    return csr_matrix((vals, (rows, cols)), shape=(len(texts), dimension), dtype=np.float64)


def fit(x: csr_matrix, y: np.ndarray) -> LogisticRegression:
    model = LogisticRegression(C=C, class_weight="balanced", solver="liblinear", max_iter=1000)
    model.fit(x, y)
    return model


def pick_threshold(x: csr_matrix, y: np.ndarray, target_fp: float) -> tuple[float, dict[str, float]]:
    """Lowest threshold whose out-of-fold false-positive rate on training negatives is <= target."""
    oof = np.zeros(len(y))
    for train_idx, test_idx in StratifiedKFold(n_splits=5, shuffle=False).split(np.zeros(len(y)), y):
        oof[test_idx] = fit(x[train_idx], y[train_idx]).predict_proba(x[test_idx])[:, 1]
    negatives = np.sort(oof[y == 0])
    allowed = int(np.floor(target_fp * len(negatives)))
    threshold = float(negatives[len(negatives) - allowed - 1]) + 1e-6 if allowed < len(negatives) else 0.5
    threshold = min(max(threshold, 0.2), 0.9)
    recall = float(np.mean(oof[y == 1] >= threshold))
    fp = float(np.mean(oof[y == 0] >= threshold))
    return threshold, {"oof_recall": round(recall, 4), "oof_fp": round(fp, 4)}


def train(name: str, rows: list[tuple[str, int, str]]) -> dict[str, Any]:
    texts = [t for t, _, _ in rows]
    y = np.array([label for _, label, _ in rows])
    x = matrix(texts, classifier.DEFAULT_DIMENSION)
    threshold, cv = pick_threshold(x, y, TARGET_TRAIN_FP[name])
    model = fit(x, y)
    weights = model.coef_[0].astype(np.float32)
    bias = float(model.intercept_[0])
    origin_counts: dict[str, int] = {}
    for _, label, origin in rows:
        key = f"{origin}:label{label}"
        origin_counts[key] = origin_counts.get(key, 0) + 1
    lineage = {
        "trained_by": "bench/guardrails/train.py",
        "splits_file": "bench/guardrails/splits.json",
        "splits_sha256": hashlib.sha256(data.SPLITS_FILE.read_bytes()).hexdigest(),
        "source_sha256": {s: data.file_sha256(s) for s in ("deepset", "advbench", "bipia")},
        "rows": origin_counts,
        "algorithm": f"hashed char 3-5-grams + word 1-2-grams, dim {classifier.DEFAULT_DIMENSION}; "
        f"sklearn LogisticRegression(C={C}, class_weight=balanced, solver=liblinear)",
        "threshold_rule": f"5-fold out-of-fold FP on training negatives <= {TARGET_TRAIN_FP[name]}",
        "cross_validation": cv,
    }
    classifier.save(str(MODELS / f"{name}.npz"), name, weights, bias, threshold, lineage)
    return {"threshold": round(threshold, 4), **lineage}


def injection_rows() -> list[tuple[str, int, str]]:
    rows = [(r.text, r.label, "deepset.train") for r in data.split_rows("deepset", "train")]
    rows += [(t, 1, "synthetic.injection") for t in synthetic.INJECTIONS]
    rows += [(t, 0, "synthetic.benign") for t in synthetic.BENIGN_QUESTIONS]
    rows += [(t, 0, "synthetic.benign_instruction") for t in synthetic.BENIGN_INSTRUCTIONS]
    return rows


def unsafe_rows() -> list[tuple[str, int, str]]:
    rows = [(r.text, 1, "advbench.train") for r in data.split_rows("advbench", "train")]
    rows += [(r.text, 0, "deepset.train.benign") for r in data.split_rows("deepset", "train") if r.label == 0]
    rows += [(r.text, 0, "bipia") for r in data.load("bipia")]
    rows += [(t, 0, "synthetic.benign") for t in synthetic.BENIGN_QUESTIONS]
    rows += [(t, 0, "synthetic.benign_instruction") for t in synthetic.BENIGN_INSTRUCTIONS]
    return rows


def main() -> None:
    MODELS.mkdir(parents=True, exist_ok=True)
    lineage = {"injection": train("injection", injection_rows()), "unsafe": train("unsafe", unsafe_rows())}
    (MODELS / "LINEAGE.json").write_text(json.dumps(lineage, indent=1, sort_keys=True) + "\n")
    print(json.dumps({k: {"threshold": v["threshold"], **v["cross_validation"]} for k, v in lineage.items()}))


if __name__ == "__main__":
    main()
