"""The detail output's checks on the CPU: synthetic held-out pairs with ground truth, and photographs.

    PYTHONPATH=. python3 bench/composition.py [--checkpoint C] [--sizes 128,192,256,384] [--json out.json]

Synthetic: 24 pairs at 384x384 from a seed never used in training (``relight synth --scenes 0 --pairs 24
--size 384 --seed 7 --directions 16``, rendered on first use): PSNR gain over the unchanged source,
detail ratio to the target (geometric mean and worst pair), colour ratio to the target (Lab chroma),
colour error. Photos: scikit-image's astronaut, cat, coffee and rocket with a plain depth plane (near at
the bottom), light from E and W at 5000 K: colour kept, smallest detail correlation, exposure kept,
and whether E leaves the right half brighter than W on every photo. Each working size is tried by
overriding the checkpoint's recorded one.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.engine.compose import ComposeSettings  # noqa: E402
from core.engine.inference import Relighter  # noqa: E402
from core.storage.checkpoint import resolve_checkpoint  # noqa: E402
from core.train.evaluate import eval_pairs, evaluate_photos  # noqa: E402
from core.train.metrics import colour_ratio, delta_e, detail_ratio, geometric_mean, psnr  # noqa: E402

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


def synthetic(r: Relighter, pairs) -> dict:
    rows = []
    for _name, src, gui, sd, gd, tgt in pairs:
        out = r.relight(src, gui, sd, gd, mode="detail", compose=ComposeSettings()).image
        rows.append(
            (psnr(out, tgt) - psnr(src, tgt), detail_ratio(out, tgt), colour_ratio(out, tgt), delta_e(out, tgt))
        )
    a = np.array(rows)
    return {
        "psnr_gain_db": float(a[:, 0].mean()),
        "detail": geometric_mean(a[:, 1]),
        "detail_max": float(a[:, 1].max()),
        "colour": geometric_mean(a[:, 2]),
        "delta_e": float(a[:, 3].mean()),
    }


def photos(r: Relighter, sheet: str | None) -> dict:
    import skimage.data as data

    from core.storage.io import write_image

    report = evaluate_photos(
        r, [(k, getattr(data, k)().astype(np.float32) / 255) for k in PHOTOS], lights=(("E", 5000.0), ("W", 5000.0))
    )
    if sheet:
        write_image(sheet, report.sheet, 8)
    return report.summary()


def held_out_pairs(pairs_dir: str | None = None) -> list:
    """The 24 held-out pairs (384², seed 7, 16 directions): from `pairs_dir`, or rendered once into a
    temp folder."""
    if pairs_dir is None:
        from core.base.vocab import COMPASS_DIRECTIONS
        from core.train.synthetic import synthesize

        pairs_dir = str(Path(tempfile.mkdtemp(prefix="relight-held7-")))
        synthesize(pairs_dir, 0, 384, seed=7, pairs=24, directions=COMPASS_DIRECTIONS, workers=2)
        pairs_dir += "/pairs"
    return list(eval_pairs(pairs_dir, 24))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint")
    ap.add_argument("--sizes", default="384")
    ap.add_argument("--pairs-dir", help="NTIRE-layout held-out pairs (default: rendered once into a temp folder)")
    ap.add_argument("--sheet", help="contact sheet of the photos at the last size")
    ap.add_argument("--json")
    args = ap.parse_args()
    pairs = held_out_pairs(args.pairs_dir)
    r = Relighter.from_checkpoint(resolve_checkpoint(args.checkpoint), device="cpu")
    results = {}
    for side in (int(s) for s in args.sizes.split(",")):
        r.info.metadata["working_size"] = side
        t0 = time.perf_counter()
        row = {"synthetic": synthetic(r, pairs), "photos": photos(r, args.sheet), "seconds": time.perf_counter() - t0}
        results[side] = row
        print(side, json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(
            json.dumps({"checkpoint": str(resolve_checkpoint(args.checkpoint)), "sizes": results}, indent=2)
        )


if __name__ == "__main__":
    main()
