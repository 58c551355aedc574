#!/usr/bin/env bash
# Linters and types, as CI runs them: ruff (lint + format check) on the whole tree, mypy on core/.
# Uses the tools in .venv (bash scripts/setup-venv.sh dev installs them). Every check runs; the
# script fails if any of them did. Settings and the recorded baseline: pyproject.toml.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN="${VENV:-.venv}/bin"  # VENV=/path/to/venv to use another
status=0
run() {
    local t0=$SECONDS
    echo "+ $*"
    "$@" || status=1
    echo "  ($((SECONDS - t0)) s)"
}
run "$BIN/ruff" check --no-fix .
run "$BIN/ruff" format --check .
run "$BIN/mypy"
if [ "$status" -ne 0 ]; then
    echo "lint: failed (fix the findings; 'ruff check --fix' and 'ruff format FILE' fix many)" >&2
fi
exit "$status"
