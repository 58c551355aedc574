"""How much colour a checkpoint's own image keeps, and where it loses it (CPU).

On the 24 held-out synthetic pairs of bench/composition.py (384², seed 7): Lab chroma of the network's
own image (``--mode full``) over the target's, the same after a grey-world white balance of both (the
objects' own colours without the light's cast), a blurred target for comparison (is it the blur?), and
the source relit by itself (identity: nothing should change).

    PYTHONPATH=. python3 bench/model_colour.py [--checkpoint C ...] [--pairs-dir D] [--json F]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.composition import held_out_pairs  # noqa: E402
from core.engine.inference import Relighter  # noqa: E402
from core.storage.checkpoint import resolve_checkpoint  # noqa: E402
from core.train.metrics import chroma, geometric_mean, psnr  # noqa: E402


def grey_world(img: np.ndarray) -> np.ndarray:
    m = img.reshape(-1, 3).mean(0)
    return np.clip(img * (m.mean() / np.maximum(m, 1e-6)), 0, 1)


def measure(r: Relighter, pairs) -> dict:
    rows = []
    for _name, src, gui, sd, gd, tgt in pairs:
        out = r.relight(src, gui, sd, gd, mode="full").image
        same = r.relight(src, src, sd, sd, mode="full").image
        rows.append(
            (
                chroma(out) / chroma(tgt),
                chroma(grey_world(out)) / chroma(grey_world(tgt)),
                chroma(cv2.GaussianBlur(tgt.astype(np.float32), (0, 0), 3)) / chroma(tgt),
                chroma(same) / chroma(src),
                chroma(grey_world(same)) / chroma(grey_world(src)),
                psnr(out, tgt),
            )
        )
    a = np.array(rows)
    keys = ("chroma", "chroma_balanced", "blurred_target_chroma", "identity_chroma", "identity_balanced")
    res = {k: geometric_mean(a[:, i]) for i, k in enumerate(keys)}
    res["psnr_db"] = float(a[:, 5].mean())
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", nargs="*", default=[None])
    ap.add_argument("--pairs-dir")
    ap.add_argument("--json")
    args = ap.parse_args()
    pairs = held_out_pairs(args.pairs_dir)
    results = {}
    for ck in args.checkpoint:
        path = resolve_checkpoint(ck)
        results[str(path)] = measure(Relighter.from_checkpoint(path, device="cpu"), pairs)
        print(path.name, json.dumps(results[str(path)]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
