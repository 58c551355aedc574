"""CUDA code paths on real data: eager fp32 / bf16 / fp16 and --fast against the CPU result."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.engine.inference import Relighter  # noqa: E402
from core.inputs.input import load_pair  # noqa: E402
from core.inputs.pairing import ntire_pairs  # noqa: E402
from core.train.metrics import psnr  # noqa: E402

ckpt, pairs = sys.argv[1], Path(sys.argv[2])
s, g = load_pair(ntire_pairs(pairs)[0])
src, gui, sd, gd = s.image, g.image, s.require_depth(), g.require_depth()
ref = Relighter.from_checkpoint(ckpt, device="cpu").relight(src, gui, sd, gd).image
for label, kw in [
    ("cuda fp32", {}),
    ("cuda bf16", {"precision": "bf16"}),
    ("cuda fp16", {"precision": "fp16"}),
    ("cuda --fast", {"accelerate": True}),
]:
    r = Relighter.from_checkpoint(ckpt, device="cuda", **kw)
    res = r.relight(src, gui, sd, gd)
    big = r.relight(src, gui, sd, gd, mode="gain-map")
    print(f"{label}: PSNR vs CPU fp32 {psnr(res.image, ref):.1f} dB; {res.describe()}; gain-map mode ran: {big.mode}")
