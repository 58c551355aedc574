#!/usr/bin/env bash
# Fine-tune the bundled model under several colour-term settings side by side on one GPU (same data,
# same start, same minutes), exporting each as fp16 safetensors for `bench/composition.py`.
#   ARMS="c3:3:1e-4 c10:10:1e-4" MINUTES=6 bash bench/colour_ablation.sh OUTDIR
# Each arm is NAME:COLOUR_WEIGHT:LR[:PRESET] (PRESET s3net-lite-colour grows the colour path on the
# bundled model, starting as exactly it). Data: photo-textured synthetic scenes at 384 px (16 directions).
set -euo pipefail
OUTDIR="${1:?OUTDIR}"
ARMS="${ARMS:-c0:0:1e-4 c3:3:1e-4}"; MINUTES="${MINUTES:-6}"; SCENES="${SCENES:-500}"; BATCH="${BATCH:-16}"
INIT="${INIT:-resources/models/s3net-lite-synthetic.safetensors}"
WORK="${WORK:-/tmp/relight-ablation}"
mkdir -p "$OUTDIR" "$WORK"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
R="${PYTHON:-python3} -m core"
N=$(echo $ARMS | wc -w); CORES=$(nproc); WORKERS=$(( (CORES - N) / N )); [ "$WORKERS" -ge 1 ] || WORKERS=1
T0=$(date +%s)
[ -d "$WORK/syn" ] || $R synth --out "$WORK/syn" --scenes "$SCENES" --size 384 --pairs 16 --seed 0 \
    --directions 16 --reference-every 12 --workers "$CORES" --photo-textures 2>&1 | tail -1
echo "synth seconds: $(( $(date +%s) - T0 ))" | tee "$OUTDIR/ablation.log"
for arm in $ARMS; do
  IFS=: read -r name weight lr preset <<< "$arm"
  $R train --data "$WORK/syn" --out "$WORK/run-$name" --preset "${preset:-s3net-lite}" --init "$INIT" --steps 200000 \
      --batch "$BATCH" --lr "$lr" --hflip --loss-colour "$weight" --max-minutes "$MINUTES" \
      --frame-cache --cache-dir "$WORK/cache" --val-data "$WORK/syn/pairs" --val-every 1000 --ckpt-every 1000 \
      --log-every 100 --workers "$WORKERS" --device "${DEVICE:-cuda}" > "$WORK/log-$name.txt" 2>&1 &
  sleep 2  # one arm builds the frame cache under its lock, the others wait for it
done
wait
for arm in $ARMS; do
  name=${arm%%:*}
  grep -v '^train \[' "$WORK/log-$name.txt" | tail -12 > "$OUTDIR/train-$name.log"
  cp "$WORK/run-$name/metrics.jsonl" "$OUTDIR/metrics-$name.jsonl"
  ${PYTHON:-python3} -c "from core.storage.checkpoint import export_checkpoint; export_checkpoint('$WORK/run-$name/last.safetensors', '$OUTDIR/$name.safetensors')"
done
echo "wall seconds: $(( $(date +%s) - T0 ))" | tee -a "$OUTDIR/ablation.log"
ls -la "$OUTDIR"
