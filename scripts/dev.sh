#!/usr/bin/env bash
# The two entry points of the README, for a fresh machine:
#   scripts/dev.sh up     install everything, then run the whole stack (task up)
#   scripts/dev.sh test   install everything, then run the whole test suite (task test)
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  up | test | bench | lint)
    bash scripts/install.sh
    exec .venv/bin/task "$1"
    ;;
  *)
    echo "usage: scripts/dev.sh up|test|bench|lint" >&2
    exit 2
    ;;
esac
