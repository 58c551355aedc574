#!/usr/bin/env bash
# Set up .venv and open Relight Studio with the bundled demo pair loaded.
# Extra arguments go to the app, e.g. --screenshot out.png (relight, save the window, exit).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh
exec .venv/bin/relight-gui --demo "$@"
