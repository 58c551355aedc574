#!/usr/bin/env bash
# One GPU session: synthetic data, a time-bounded training run, held-out evaluation, inference bench.
#   PRESET=s3net-lite MINUTES=4 bash bench/gpu_train.sh OUTDIR
set -euo pipefail
OUTDIR="${1:-out/gpu}"
PRESET="${PRESET:-s3net-lite}"
MINUTES="${MINUTES:-4}"
BATCH="${BATCH:-16}"
LR="${LR:-2e-4}"
SCENES="${SCENES:-400}"
SIZE="${SIZE:-256}"
WORK="${WORK:-/tmp/relight-gpu}"
mkdir -p "$OUTDIR" "$WORK"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
R="python3 -m core"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUTDIR/gpu.txt"
[ -d "$WORK/syn" ] || $R synth --out "$WORK/syn" --scenes "$SCENES" --size "$SIZE" --pairs 64 --seed 0 --workers 14 2>&1 | tail -2
T0=$(date +%s)
$R train --data "$WORK/syn" --out "$WORK/run-$PRESET" --preset "$PRESET" --steps 100000 --batch "$BATCH" \
    --lr "$LR" --max-minutes "$MINUTES" --val-data "$WORK/syn/pairs" --val-every 500 --ckpt-every 500 \
    --log-every 50 --workers 12 --device cuda 2>&1 | grep -v '^train \[' | tail -40 | tee "$OUTDIR/train-$PRESET.log"
echo "wall seconds: $(( $(date +%s) - T0 ))" | tee -a "$OUTDIR/train-$PRESET.log"
cp "$WORK/run-$PRESET/metrics.jsonl" "$OUTDIR/metrics-$PRESET.jsonl"
$R eval --data "$WORK/syn/pairs" --checkpoint "$WORK/run-$PRESET/last.safetensors" --device cuda \
    --json "$OUTDIR/eval-$PRESET.json" 2>/dev/null | tee "$OUTDIR/eval-$PRESET.txt"
python3 -c "from core.storage.checkpoint import export_checkpoint; export_checkpoint('$WORK/run-$PRESET/last.safetensors', '$OUTDIR/$PRESET-synthetic.safetensors')"
python3 bench/infer.py --preset "$PRESET" --size 1024 --checkpoint "$WORK/run-$PRESET/last.safetensors" --json "$OUTDIR/bench-$PRESET.json" 2>/dev/null | tee "$OUTDIR/bench-$PRESET.md"
