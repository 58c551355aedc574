"""Draw the per-step loss of each variant in a bench/train_step.py JSON (smoothed, one colour each) as
a PNG, so that "the same loss curve" can be seen, not only read as a number.

    PYTHONPATH=. python bench/loss_curves.py docs/results/train-step/train-step-s3net-graph-h200.json out.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

COLOURS = [(60, 60, 60), (40, 120, 220), (60, 170, 60), (200, 80, 40), (160, 60, 160), (20, 170, 200)]


def smooth(x: np.ndarray, k: int = 9) -> np.ndarray:
    pad = np.pad(x, (k // 2, k // 2), mode="edge")
    return np.convolve(pad, np.ones(k) / k, mode="valid")


def draw(rows: list[dict], title: str, size=(900, 420), margin=60) -> np.ndarray:
    w, h = size
    img = np.full((h, w, 3), 255, np.uint8)
    curves = [smooth(np.array(r["losses"])) for r in rows]
    lo, hi = min(c.min() for c in curves), max(c.max() for c in curves)
    n = max(len(c) for c in curves)

    def pt(i, v):
        return (
            int(margin + i / max(n - 1, 1) * (w - 2 * margin)),
            int(h - margin - (v - lo) / (hi - lo) * (h - 2 * margin)),
        )

    cv2.rectangle(img, (margin, margin), (w - margin, h - margin), (180, 180, 180), 1)
    for v in np.linspace(lo, hi, 5):
        y = pt(0, v)[1]
        cv2.putText(img, f"{v:.2f}", (5, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (90, 90, 90), 1, cv2.LINE_AA)
    cv2.putText(
        img, f"step 0 .. {n}", (w // 2 - 40, h - 20), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (90, 90, 90), 1, cv2.LINE_AA
    )
    cv2.putText(img, title, (margin, 35), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    for k, (r, c) in enumerate(zip(rows, curves, strict=True)):
        colour = COLOURS[k % len(COLOURS)]
        pts = np.array([pt(i, v) for i, v in enumerate(c)], np.int32)
        cv2.polylines(img, [pts], False, colour, 2, cv2.LINE_AA)
        label = f"{r['variant']}: {r['images_per_s']:.0f} img/s"
        cv2.putText(
            img, label, (w - margin - 230, margin + 22 + 20 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA
        )
    return img


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", nargs="+")
    ap.add_argument("png")
    args = ap.parse_args()
    panels = []
    for path in args.json:
        d = json.loads(Path(path).read_text())
        s = d["setup"]
        panels.append(
            draw(
                d["variants"],
                f"{s['preset']} {s['size']}px batch {s['batch']}, {s['device']}: loss per step (smoothed)",
            )
        )
    cv2.imwrite(args.png, np.vstack(panels))


if __name__ == "__main__":
    main()
