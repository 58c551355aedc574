#!/usr/bin/env bash
# One GPU: the training input pipeline with PNG decoding against the frame cache, loader alone and
# in a real s3net-lite run (256², batch 16), side by side.   bash bench/loader_gpu.sh OUTDIR
set -uo pipefail
OUTDIR="${1:-out/loader}"; W="${WORK:-/tmp/relight-loader}"; STEPS="${STEPS:-150}"; DEV="${DEV:-cuda}"
SCENES="${SCENES:-100}"; WORKERS="${WORKERS:-8}"
mkdir -p "$OUTDIR" "$W"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
[ "$DEV" = cuda ] && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUTDIR/gpu.txt"
nproc | tee "$OUTDIR/cores.txt"
[ -d "$W/syn" ] || python3 -m core synth --out "$W/syn" --scenes "$SCENES" --size 256 --seed 0 --workers "$(nproc)" 2>&1 | tail -1
python3 bench/loader.py --data "$W/syn" --device "$DEV" --workers "$WORKERS" --batch 16 --batches 100 \
  --cache-dir "$W/cache-bench" --json "$OUTDIR/loader.json" 2>&1 | tee "$OUTDIR/loader.txt"
run() {  # name workers [extra...]
  local name=$1 wk=$2; shift 2
  python3 -m core train --data "$W/syn" --out "$W/$name" --preset s3net-lite --steps "$STEPS" --batch 16 --lr 2e-4 \
    --workers "$wk" --device "$DEV" --val-every 100000 --ckpt-every 100000 --log-every 10 --seed 0 "$@" 2>&1 \
    | grep -v '^train \[' | tail -1
  cp "$W/$name/metrics.jsonl" "$OUTDIR/metrics-$name.jsonl"
}
run png "$WORKERS"
run cache "$WORKERS" --frame-cache --cache-dir "$W/cache"
run png_w2 2
run cache_w2 2 --frame-cache --cache-dir "$W/cache"
python3 - "$OUTDIR" <<'PY'
import json, statistics, sys
out = sys.argv[1]
def ips(name):
    rows = [json.loads(l) for l in open(f"{out}/metrics-{name}.jsonl") if "images_per_s" in l]
    return statistics.median(r["images_per_s"] for r in rows[2:])
r = {n: ips(n) for n in ("png", "cache", "png_w2", "cache_w2")}
loader = json.load(open(f"{out}/loader.json"))["rows"]
print("| loader | workers | loader alone (img/s) | s3net-lite training (img/s) |")
print("|---|---|---|---|")
print(f"| PNG decode | {loader and json.load(open(f'{out}/loader.json'))['workers']} | {loader['png']['images_per_s']} | {r['png']:.1f} |")
print(f"| frame cache | {json.load(open(f'{out}/loader.json'))['workers']} | {loader['frame-cache (built)']['images_per_s']} | {r['cache']:.1f} |")
print(f"| PNG decode | 2 | | {r['png_w2']:.1f} |")
print(f"| frame cache | 2 | | {r['cache_w2']:.1f} |")
json.dump(r, open(f"{out}/train_ips.json", "w"), indent=2)
PY
