#!/usr/bin/env bash
# Set up .venv and relight the bundled demo pair with the bundled model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh
mkdir -p out
exec .venv/bin/relight infer \
    --source resources/demo/source.png --source-depth resources/demo/source.npy \
    --guide resources/demo/guide.png --guide-depth resources/demo/guide.npy \
    --output out/demo_relit.png "$@"
