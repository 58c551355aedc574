"""Evaluation of a checkpoint on held-out pairs, next to two baselines on the same pairs.

Baselines: the source unchanged, and a global colour transfer from the guide (per-channel
mean/std matching in CIE L*a*b*, Reinhard et al. 2001).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from core.base.errors import RelightError
from core.base.progress import Progress
from core.storage.io import write_result
from core.train.metrics import (
    colour_ratio,
    delta_e,
    detail_correlation,
    detail_ratio,
    exposure_ratio,
    geometric_mean,
    psnr,
    ssim,
)

MODEL_MODES = ("full", "gain-map", "detail")


def color_transfer(source: np.ndarray, guide: np.ndarray) -> np.ndarray:
    s = cv2.cvtColor(np.ascontiguousarray(source, np.float32), cv2.COLOR_RGB2Lab)
    g = cv2.cvtColor(np.ascontiguousarray(guide, np.float32), cv2.COLOR_RGB2Lab)
    sm, ss = s.reshape(-1, 3).mean(0), s.reshape(-1, 3).std(0) + 1e-6
    gm, gs = g.reshape(-1, 3).mean(0), g.reshape(-1, 3).std(0)
    out = (s - sm) / ss * gs + gm
    return np.clip(cv2.cvtColor(out.astype(np.float32), cv2.COLOR_Lab2RGB), 0, 1)


@dataclass
class EvalReport:
    rows: list[dict] = field(default_factory=list)  # per pair: name, method, psnr, ssim, detail, colour, delta_e

    def means(self) -> dict[str, dict[str, float]]:
        """Mean PSNR, SSIM and colour error; the detail and colour ratios' geometric means (ratios
        multiply, so a 2x and a 0.5x pair average to 1) and the largest detail ratio (old shadow
        outlines show up there)."""
        out: dict[str, dict[str, float]] = {}
        for method in dict.fromkeys(r["method"] for r in self.rows):
            rs = [r for r in self.rows if r["method"] == method]
            out[method] = {
                "psnr": float(np.mean([r["psnr"] for r in rs])),
                "ssim": float(np.mean([r["ssim"] for r in rs])),
                "detail": geometric_mean([r["detail"] for r in rs]),
                "detail_max": float(np.nanmax([r["detail"] for r in rs])),
                "colour": geometric_mean([r["colour"] for r in rs]),
                "delta_e": float(np.mean([r["delta_e"] for r in rs])),
                "pairs": len(rs),
            }
        return out

    def table(self) -> str:
        lines = [
            f"{'method':<16}{'PSNR (dB)':>10}{'SSIM':>9}{'detail':>8}{'colour':>8}{'dE_ab':>7}{'pairs':>7}",
            "-" * 65,
        ]
        for m, v in self.means().items():
            lines.append(
                f"{m:<16}{v['psnr']:>10.2f}{v['ssim']:>9.4f}{v['detail']:>8.3f}{v['colour']:>8.3f}"
                f"{v['delta_e']:>7.2f}{v['pairs']:>7d}"
            )
        return "\n".join(lines)

    def write_json(self, path: str | Path, extra: dict | None = None) -> None:
        data = {**self.means(), "per_pair": self.rows, **(extra or {})}
        write_result(path, json.dumps(data, indent=2).encode())

    def write_csv(self, path: str | Path) -> None:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=["name", "method", "psnr", "ssim", "detail", "colour", "delta_e"])
        w.writeheader()
        w.writerows(self.rows)
        write_result(path, buf.getvalue().encode())


def eval_pairs(data: str | Path, n_pairs: int | None = None, seed: int = 0, resize: int | None = None):
    """Yield (name, source, guide, source_depth, guide_depth, target) arrays from an NTIRE folder
    with ground truth, or `n_pairs` pairs drawn deterministically from a VIDIT folder's validation split."""
    from core.inputs.layouts import detect_layout, scan_ntire, scan_vidit
    from core.train.datasets import Augment, PairDataset, VIDITTriplets

    if detect_layout(data) == "ntire":
        ds = PairDataset(scan_ntire(data), Augment(resize=resize))
        if len(ds) == 0:
            raise RelightError("no pairs with ground truth (expected a target/ or gt/ folder)", data)
        names = [r.name for r in ds.records]
    else:
        ds = VIDITTriplets(scan_vidit(data), "val", 0.1, seed, Augment(resize=resize))
        names = [f"{s}_{a[0]}_{a[1]}" for s, a in ds.items]
    n = len(ds) if not n_pairs else min(n_pairs, len(ds))
    for i in range(n):
        s = ds[i]
        t = {k: v.numpy().transpose(1, 2, 0) for k, v in s.items()}
        yield names[i], t["source"], t["guide"], t["source_depth"][..., 0], t["guide_depth"][..., 0], t["target"]


def evaluate(
    relighter,
    data: str | Path,
    n_pairs: int | None = None,
    progress: Progress | None = None,
    cancel=None,
    modes: tuple[str, ...] = MODEL_MODES,
) -> EvalReport:
    """The model in each output mode, and the two baselines, on every pair: PSNR, SSIM and detail ratio
    (Laplacian-variance ratio to the target, so a blur cannot hide behind a good PSNR)."""
    report = EvalReport()
    pairs = list(eval_pairs(data, n_pairs))
    for i, (name, src, gui, sd, gd, tgt) in enumerate(pairs):
        if cancel is not None:
            cancel.check()
        outputs = {f"model {m}": relighter.relight(src, gui, sd, gd, mode=m).image for m in modes}
        outputs["source"] = src
        outputs["color_transfer"] = color_transfer(src, gui)  # global statistics: any guide size works
        for method, img in outputs.items():
            report.rows.append(
                {
                    "name": name,
                    "method": method,
                    "psnr": psnr(img, tgt),
                    "ssim": ssim(img, tgt),
                    "detail": detail_ratio(img, tgt),
                    "colour": colour_ratio(img, tgt),
                    "delta_e": delta_e(img, tgt),
                }
            )
        if progress:
            progress((i + 1) / len(pairs), name)
    return report


# ---- photographs without ground truth -------------------------------------------------------------

PHOTO_LIGHTS = (("E", 5000.0), ("W", 5000.0), ("N", 3500.0))


def depth_plane(h: int, w: int) -> np.ndarray:
    """A plain ground plane seen from the front: near (0.16) at the bottom, far (0.46) at the top, in
    the network's convention (larger is farther; the range of the synthetic scenes)."""
    return np.repeat(np.linspace(0.46, 0.16, h, dtype=np.float32)[:, None], w, axis=1)


@dataclass
class PhotoReport:
    rows: list[dict] = field(default_factory=list)  # photo, light, colour, detail, exposure, right_left
    sheet: np.ndarray | None = None  # contact sheet: each photo, then its relit versions

    def summary(self) -> dict[str, float]:
        """Geometric means of colour kept and exposure, the smallest detail correlation, and whether
        light from E left the right half brighter (relative to the left) than light from W on every photo."""
        by_photo: dict[str, dict[str, float]] = {}
        for r in self.rows:
            by_photo.setdefault(r["photo"], {})[r["direction"]] = r["right_left"]
        east_west = [v["E"] > v["W"] for v in by_photo.values() if "E" in v and "W" in v]
        return {
            "colour": geometric_mean([r["colour"] for r in self.rows]),
            "detail_min": float(min(r["detail"] for r in self.rows)),
            "exposure": geometric_mean([r["exposure"] for r in self.rows]),
            "east_brighter_right": float(all(east_west)) if east_west else float("nan"),
            "results": len(self.rows),
        }

    def table(self) -> str:
        lines = [f"{'photo':<22}{'light':<12}{'colour':>8}{'detail':>8}{'exposure':>9}{'right/left':>11}", "-" * 70]
        for r in self.rows:
            lines.append(
                f"{r['photo'][:21]:<22}{r['light']:<12}{r['colour']:>8.3f}{r['detail']:>8.3f}"
                f"{r['exposure']:>9.3f}{r['right_left']:>11.3f}"
            )
        s = self.summary()
        lines.append(
            f"colour kept {s['colour']:.3f} (geometric mean), detail correlation >= {s['detail_min']:.3f}, "
            f"exposure {s['exposure']:.3f}, E brighter on the right than W on every photo: "
            f"{'yes' if s['east_brighter_right'] == 1 else 'no'}"
        )
        return "\n".join(lines)


def _right_left(img: np.ndarray) -> float:
    y = np.asarray(img, np.float64) @ np.array([0.2126, 0.7152, 0.0722])
    w = y.shape[1]
    return float(y[:, w // 2 :].mean() / max(y[:, : w // 2].mean(), 1e-6))


def evaluate_photos(
    relighter,
    photos,
    lights=PHOTO_LIGHTS,
    settings_for_light=None,
    depth_for=None,
    sheet_height: int = 192,
    progress: Progress | None = None,
    cancel=None,
) -> PhotoReport:
    """Relight each (name, image) under compass lights and measure what a photographer checks:
    colour kept (Lab chroma output / source), detail kept (correlation of luminance Laplacians),
    exposure (mean luminance output / source) and where the light went (right/left brightness).
    depth_for(name, image) gives each photo's depth (default: a plain plane, near at the bottom)."""
    from core.base.logs import data_dir
    from core.engine.compose import settings_for
    from core.engine.guides import CompassGuides, compass_guide
    from core.render.light import Light

    settings_for_light = settings_for_light or (lambda light: settings_for(light.kelvin))
    depth_for = depth_for or (lambda name, img: depth_plane(*img.shape[:2]))
    report, strips = PhotoReport(), []
    guides = CompassGuides(data_dir() / "guides")
    photos = list(photos)
    for i, (name, img) in enumerate(photos):
        if cancel is not None:
            cancel.check()
        h, w = img.shape[:2]
        depth = depth_for(name, img)
        tiles = [img]
        for direction, kelvin in lights:
            light = Light.parse(direction, kelvin)
            guide = compass_guide(light, (h, w), relighter.working_pixels, guides)
            out = relighter.relight(img, guide.image, depth, guide.depth, compose=settings_for_light(light)).image
            report.rows.append(
                {
                    "photo": name,
                    "light": f"{direction} {kelvin:g} K",
                    "direction": direction,
                    "colour": colour_ratio(out, img),
                    "detail": detail_correlation(out, img),
                    "exposure": exposure_ratio(out, img),
                    "right_left": _right_left(out) / _right_left(img),
                }
            )
            tiles.append(out)
        tw = max(1, round(w * sheet_height / h))
        captions = [name] + [f"{d} {k:g} K" for d, k in lights]
        strips.append(
            [
                (cv2.resize(t, (tw, sheet_height), interpolation=cv2.INTER_AREA), c)
                for t, c in zip(tiles, captions, strict=True)
            ]
        )
        if progress:
            progress((i + 1) / len(photos), name)
    if strips:
        cell = max(t.shape[1] for row in strips for t, _c in row)
        report.sheet = np.concatenate([_sheet_row(row, cell) for row in strips], 0)
    return report


def _sheet_row(tiles: list[tuple[np.ndarray, str]], cell: int, band: int = 20) -> np.ndarray:
    """One photo's row of the contact sheet: each tile centred in a cell of the common width on
    mid-grey (photos of other shapes leave no white gaps), its caption (the photo, or the light) below."""
    cells = []
    for tile, caption in tiles:
        h, w = tile.shape[:2]
        out = np.full((h + band, cell, 3), 0.5, np.float32)
        x = (cell - w) // 2
        out[:h, x : x + w] = tile
        text = np.full((band, cell, 3), 31, np.uint8)  # OpenCV draws text on 8-bit images only
        cv2.putText(text, caption, (6, band - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (242, 242, 242), 1, cv2.LINE_AA)
        out[h:] = text / np.float32(255)
        cells.append(out)
    return np.concatenate(cells, 1)
