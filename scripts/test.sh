#!/usr/bin/env bash
# Set up .venv (with test extras) and run the whole test suite on the CPU, Qt offscreen.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh dev
export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
exec .venv/bin/python -m pytest -q "$@"
