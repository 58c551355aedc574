#!/usr/bin/env bash
# Retrain the bundled s3net-lite on one GPU in phases that each fit one device call.
# Data: 16 light directions (any-azimuth), every 12th scene the light compass's reference scene,
# rendered at 384 px. Phase 1 trains at 256 px, phase 2 at the full 384 px (two scales).
# PHOTO=1: photographs as textures and a random fill light (relight synth --photo-textures);
# LOSS_COLOUR=W: the colour (chromaticity) term at weight W; RESIZE= (empty): full-size images;
# PRESET=s3net-lite-colour: grow the colour path on INIT (it starts as exactly INIT).
#   INIT=weights.safetensors RESIZE=256 MINUTES=6.5 LR=2e-4 bash bench/train_bundled.sh OUTDIR NAME
set -euo pipefail
OUTDIR="${1:?OUTDIR}"; NAME="${2:?NAME}"
INIT="${INIT:-resources/models/s3net-lite-synthetic.safetensors}"; PRESET="${PRESET:-s3net-lite}"
RESIZE="${RESIZE-256}"; LOSS_COLOUR="${LOSS_COLOUR:-0}"; MINUTES="${MINUTES:-6.5}"; LR="${LR:-2e-4}"; DECAY="${DECAY:-100000}"
SCENES="${SCENES:-700}"; BATCH="${BATCH:-16}"
WORK="${WORK:-/tmp/relight-train}"
mkdir -p "$OUTDIR" "$WORK"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
R="python3 -m core"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUTDIR/gpu-$NAME.txt"
T0=$(date +%s)
[ -d "$WORK/syn" ] || $R synth --out "$WORK/syn" --scenes "$SCENES" --size 384 --pairs 64 --seed 0 \
    --directions 16 --reference-every 12 --workers 16 ${PHOTO:+--photo-textures} 2>&1 | tail -1
echo "synth seconds: $(( $(date +%s) - T0 ))" | tee "$OUTDIR/train-$NAME.log"
$R train --data "$WORK/syn" --out "$WORK/run-$NAME" --preset "$PRESET" --init "$INIT" --steps 200000 \
    --batch "$BATCH" --lr "$LR" --decay-every-steps "$DECAY" --hflip ${RESIZE:+--resize "$RESIZE"} --loss-colour "$LOSS_COLOUR" --max-minutes "$MINUTES" \
    --val-data "$WORK/syn/pairs" --val-every 1000 --ckpt-every 1000 --log-every 100 --workers 15 --device cuda \
    2>&1 | grep -v '^train \[' | tail -30 | tee -a "$OUTDIR/train-$NAME.log"
echo "wall seconds: $(( $(date +%s) - T0 ))" | tee -a "$OUTDIR/train-$NAME.log"
cp "$WORK/run-$NAME/metrics.jsonl" "$OUTDIR/metrics-$NAME.jsonl"
python3 -c "from core.storage.checkpoint import export_checkpoint; export_checkpoint('$WORK/run-$NAME/last.safetensors', '$OUTDIR/$NAME.safetensors')"
ls -la "$OUTDIR"
