"""docs/normals.png: one photograph relit by S3Net (bundled model, default settings, light compass)
and by the normals engine at three settings.

The photograph is Middlebury 2014's "Motorcycle" (scikit-image's ``data.stereo_motorcycle()``), whose
ground-truth disparity gives a real depth map: disparity is inverse depth, brought to the network's
convention by the same conversion the depth estimator uses. Pixels without a disparity (occlusions)
take their farthest valid neighbour's.

    PYTHONPATH=. python3 scripts/normals_figure.py [--out docs/normals.png] [--crops DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.depth.estimation import inverse_to_network_depth  # noqa: E402
from core.inputs.input import Input  # noqa: E402
from core.render.light import Light  # noqa: E402
from core.storage.io import DepthMap, write_image  # noqa: E402

SETTINGS = [  # (caption, light)
    ("normals: SE key, 35 deg, 4500 K, soft", Light(135, 4500, elevation=35, softness=0.5)),
    (
        "normals: W, 15 deg, 3000 K, hard shadows",
        Light(270, 3000, elevation=15, intensity=1.3, ambient=0.3, softness=0.0),
    ),
    (
        "normals: S, 60 deg, 7500 K, flatten 0.6",
        Light(180, 7500, elevation=60, intensity=1.2, ambient=0.45, softness=0.3, flatten=0.6),
    ),
]
S3NET_LIGHT = Light(135, 4500)  # the same direction and colour as the first normals setting


def motorcycle() -> tuple[np.ndarray, np.ndarray]:
    import skimage.data

    left, _right, disparity = skimage.data.stereo_motorcycle()
    disp = disparity.astype(np.float32)
    holes = ~np.isfinite(disp) | (disp <= 0)
    disp[holes] = np.inf
    kernel = np.ones((3, 3), np.uint8)
    while np.isinf(disp).any():  # fill from the farthest (smallest-disparity) valid neighbour
        grown = cv2.erode(np.where(np.isinf(disp), np.float32(1e9), disp), kernel)
        disp = np.where(np.isinf(disp) & (grown < 1e9), grown, disp)
    return left.astype(np.float32) / 255, inverse_to_network_depth(disp)


def label(img: np.ndarray, text: str) -> np.ndarray:
    out = (np.clip(img, 0, 1) * 255).astype(np.uint8).copy()
    cv2.rectangle(out, (0, 0), (out.shape[1], 30), (0, 0, 0), -1)
    cv2.putText(out, text, (8, 21), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return out.astype(np.float32) / 255


def depth_view(depth: np.ndarray) -> np.ndarray:
    d = (depth - depth.min()) / max(1e-6, float(depth.max() - depth.min()))
    return cv2.applyColorMap((255 * (1 - d)).astype(np.uint8), cv2.COLORMAP_VIRIDIS)[..., ::-1].astype(np.float32) / 255


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="docs/normals.png")
    ap.add_argument("--crops", help="also write each panel at 100 % into this folder")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    from core.api import relight
    from core.engine.normals import NormalsRelighter

    image, depth = motorcycle()
    source = Input(image, DepthMap(depth, None, "from disparity", "Middlebury ground truth"), "motorcycle")
    s3 = relight(source, light=S3NET_LIGHT, device=args.device)  # bundled model, default output mode
    print(f"S3Net: {s3.describe()}")
    engine = NormalsRelighter(args.device)
    panels = [
        ("source (Middlebury Motorcycle)", image),
        ("depth (ground-truth disparity)", depth_view(depth)),
        ("S3Net, bundled model: SE, 4500 K", s3.image),
    ]
    for caption, light in SETTINGS:
        res = engine.relight(image, depth, light)
        print(f"{caption}: {res.describe()}")
        panels.append((caption, res.image))
    if args.crops:
        crops = Path(args.crops)
        crops.mkdir(parents=True, exist_ok=True)
        for i, (caption, img) in enumerate(panels):
            write_image(crops / f"{i}.png", img, 8)
    tiles = [label(img, caption) for caption, img in panels]
    h, w = tiles[0].shape[:2]
    gap = np.ones((h, 6, 3), np.float32)
    rows = [np.concatenate([tiles[i], gap, tiles[i + 1], gap, tiles[i + 2]], 1) for i in (0, 3)]
    grid = np.concatenate([rows[0], np.ones((6, rows[0].shape[1], 3), np.float32), rows[1]], 0)
    write_image(args.out, grid, 8)
    print(f"wrote {args.out} ({grid.shape[1]}x{grid.shape[0]})")


if __name__ == "__main__":
    main()
