"""How much colour a checkpoint's own image keeps, and where it loses it (CPU).

On the 24 held-out synthetic pairs of bench/composition.py (384², seed 7): Lab chroma of the network's
own image (``--mode full``) over the target's, the same after a grey-world white balance of both (the
objects' own colours without the light's cast), a blurred target for comparison (is it the blur?), and
the source relit by itself (identity: nothing should change).

    PYTHONPATH=. python3 bench/model_colour.py [--checkpoint C ...] [--pairs-dir D] [--json F] [--sheet F.jpg]

--sheet: each checkpoint's own image side by side: four held-out pairs (source, guide, target, then one
column per checkpoint) and three photographs relit from E at 5000 K at the model's working size.
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


def sheet(relighters: list[Relighter], pairs, path: str) -> None:
    import skimage.data as data

    from core.base.logs import data_dir
    from core.engine.guides import CompassGuides, compass_guide
    from core.render.light import Light
    from core.storage.io import write_image
    from core.train.evaluate import depth_plane

    size = 256
    rows = []
    for _name, src, gui, sd, gd, tgt in pairs[:4]:
        outs = [r.relight(src, gui, sd, gd, mode="full").image for r in relighters]
        rows.append([src, gui, tgt, *outs])
    guides = CompassGuides(data_dir() / "guides")
    for name in ("chelsea", "astronaut", "coffee"):
        img = getattr(data, name)().astype(np.float32) / 255
        outs = []
        for r in relighters:
            g = compass_guide(Light.parse("E", 5000.0), img.shape[:2], r.working_pixels, guides)
            h, w = g.image.shape[:2]
            small = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
            outs.append(r.relight(small, g.image, depth_plane(h, w), g.depth, mode="full").image)
        rows.append([img, g.image, np.zeros_like(img), *outs])
    tiles = [[cv2.resize(t, (size, size), interpolation=cv2.INTER_AREA) for t in row] for row in rows]
    write_image(path, np.vstack([np.hstack(row) for row in tiles]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", nargs="*", default=[None])
    ap.add_argument("--pairs-dir")
    ap.add_argument("--json")
    ap.add_argument("--sheet", help="contact sheet of each checkpoint's own image (JPEG or PNG)")
    args = ap.parse_args()
    pairs = held_out_pairs(args.pairs_dir)
    results, relighters = {}, []
    for ck in args.checkpoint:
        path = resolve_checkpoint(ck)
        relighters.append(Relighter.from_checkpoint(path, device="cpu"))
        results[str(path)] = measure(relighters[-1], pairs)
        print(path.name, json.dumps(results[str(path)]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    if args.sheet:
        sheet(relighters, pairs, args.sheet)


if __name__ == "__main__":
    main()
