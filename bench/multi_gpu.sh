#!/usr/bin/env bash
# Multi-GPU training on one host: scaling 1 -> N GPUs at equal per-GPU batch, loss curves at equal
# global batch, and a SIGKILL + resume under torchrun.   [FRAME_CACHE=1] [PRESET=s3net] bash bench/multi_gpu.sh OUTDIR [NGPU]
# FRAME_CACHE=1: every run reads the decoded frame cache instead of PNGs (relight train --frame-cache).
set -uo pipefail
PRESET="${PRESET:-s3net-lite}"; OUTDIR="${1:-out/multi}"; N="${2:-2}"; W="${WORK:-/tmp/relight-multi}"; STEPS="${STEPS:-150}"
mkdir -p "$OUTDIR" "$W"
FC=(); [ -n "${FRAME_CACHE:-}" ] && FC=(--frame-cache --cache-dir "$W/cache")
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUTDIR/gpus.txt"
python3 -m core synth --out "$W/syn" --scenes 200 --size 256 --seed 0 --workers 24 2>&1 | tail -1
run() {  # name nproc batch [extra...]
  local name=$1 np=$2 b=$3; shift 3
  python3 -m torch.distributed.run --standalone --nproc_per_node "$np" -m core train --data "$W/syn" --out "$W/$name" \
    --preset "$PRESET" --steps "$STEPS" --batch "$b" --lr 2e-4 --workers 8 --device cuda --val-every 100000 \
    --ckpt-every 100000 --log-every 10 --seed 0 "${FC[@]}" "$@" 2>&1 | grep -v '^train \[' | tail -2
  cp "$W/$name/metrics.jsonl" "$OUTDIR/metrics-$name.jsonl"
}
echo "== scaling: per-GPU batch 16"; run g1_b16 1 16; run g${N}_b16 "$N" 16
echo "== equal global batch 32"; run g1_b32 1 32
echo "== kill and resume with $N GPUs"
python3 -m torch.distributed.run --standalone --nproc_per_node "$N" -m core train --data "$W/syn" --out "$W/kill" \
  --preset "$PRESET" --steps 400 --batch 16 --workers 8 --device cuda --val-every 200 \
  --ckpt-every 40 --log-every 20 --seed 0 "${FC[@]}" > "$OUTDIR/kill-first.log" 2>&1 &
PID=$!
for i in $(seq 1 240); do [ -f "$W/kill/state.pt" ] && break; sleep 0.5; done
sleep 6; pkill -9 -f "core train --data $W/syn --out $W/kill"; kill -9 $PID 2>/dev/null; wait $PID 2>/dev/null
python3 -c "import torch; print('killed; state.pt at step', torch.load('$W/kill/state.pt', weights_only=True)['step'])"
python3 -m torch.distributed.run --standalone --nproc_per_node "$N" -m core train --data "$W/syn" --out "$W/kill" \
  --preset "$PRESET" --steps 400 --batch 16 --workers 8 --device cuda --val-every 200 \
  --ckpt-every 40 --log-every 20 --seed 0 "${FC[@]}" --resume 2>&1 | grep -v '^train \[' | tee "$OUTDIR/kill-resume.log" | tail -6
python3 -c "import torch; print('after resume: step', torch.load('$W/kill/state.pt', weights_only=True)['step'])"
ls "$W/kill" | tee "$OUTDIR/kill-files.txt"
python3 - "$OUTDIR" "$N" <<'PY'
import json, sys, statistics
out, n = sys.argv[1], sys.argv[2]
def load(name):
    return [json.loads(l) for l in open(f"{out}/metrics-{name}.jsonl") if "images_per_s" in l]
ips = {k: statistics.median(r["images_per_s"] for r in load(k)[2:]) for k in ("g1_b16", f"g{n}_b16")}
print(f"images/s, per-GPU batch 16: 1 GPU {ips['g1_b16']:.1f}, {n} GPUs {ips[f'g{n}_b16']:.1f}, "
      f"scaling {ips[f'g{n}_b16'] / ips['g1_b16']:.2f}x")
a, b = load("g1_b32"), load(f"g{n}_b16")
print("step | loss 1 GPU x32 | loss %s GPUs x16" % n)
for x, y in zip(a, b):
    if x["step"] % 30 == 0:
        print(f"{x['step']} | {x['total']:.4f} | {y['total']:.4f}")
d = [abs(x["total"] - y["total"]) for x, y in zip(a, b)]
print(f"mean |difference| of the total loss over {len(d)} logged steps: {statistics.mean(d):.4f}")
PY
