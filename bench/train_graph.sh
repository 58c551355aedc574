#!/usr/bin/env bash
# `relight train` itself, eager step against the whole step as a CUDA graph (the default on one GPU),
# same data (frame cache), same seed, side by side on one GPU: images/s and the loss curve.
#   STEPS=300 PRESETS="s3net s3net-lite" [EXTRA="--precision bf16"] bash bench/train_graph.sh OUTDIR
set -euo pipefail
OUTDIR="${1:?OUTDIR}"; STEPS="${STEPS:-300}"; PRESETS="${PRESETS:-s3net s3net-lite}"; BATCH="${BATCH:-16}"
WORK="${WORK:-/tmp/relight-graph}"
mkdir -p "$OUTDIR" "$WORK"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
R="python3 -m core"
[ -d "$WORK/syn" ] || $R synth --out "$WORK/syn" --scenes 60 --size 256 --pairs 0 --seed 0 --workers "$(nproc)" | tail -1
for preset in $PRESETS; do
  for arm in eager graph; do
    flag=""; [ "$arm" = eager ] && flag="--no-cuda-graph"
    $R train --data "$WORK/syn" --out "$WORK/run-$preset-$arm" --preset "$preset" --steps "$STEPS" --batch "$BATCH" \
        --frame-cache --cache-dir "$WORK/cache" --workers 12 --log-every 25 --val-every 100000 --ckpt-every 100000 \
        --seed 0 --device "${DEVICE:-cuda}" $flag ${EXTRA:-} 2>&1 | grep -v '^train \[' | grep -E "training|graph|done" || true
    cp "$WORK/run-$preset-$arm/metrics.jsonl" "$OUTDIR/metrics-$preset-$arm.jsonl"
  done
done
python3 - "$OUTDIR" $PRESETS <<'PY'
import json, statistics, sys
from pathlib import Path
out, presets = Path(sys.argv[1]), sys.argv[2:]
rows = {}
for p in presets:
    runs = {}
    for arm in ("eager", "graph"):
        recs = [json.loads(l) for l in (out / f"metrics-{p}-{arm}.jsonl").read_text().splitlines() if l.strip()]
        recs = [r for r in recs if "images_per_s" in r]
        runs[arm] = {"images_per_s": statistics.median(r["images_per_s"] for r in (recs[2:] or recs)),
                     "loss": [round(r["total"], 4) for r in recs]}
    a, b = runs["eager"]["loss"], runs["graph"]["loss"]
    runs["speedup"] = runs["graph"]["images_per_s"] / runs["eager"]["images_per_s"]
    runs["loss_mean_abs_diff"] = sum(abs(x - y) for x, y in zip(a, b)) / len(a)
    rows[p] = runs
    print(p, {k: (v if not isinstance(v, dict) else round(v["images_per_s"], 1)) for k, v in runs.items()})
(out / "train-graph.json").write_text(json.dumps(rows, indent=1))
PY
