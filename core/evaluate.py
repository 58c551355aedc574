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

from .errors import RelightError
from .io import atomic_write_bytes
from .metrics import detail_ratio, psnr, ssim
from .progress import Progress

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
    rows: list[dict] = field(default_factory=list)  # per pair: name, method, psnr, ssim, detail

    def means(self) -> dict[str, dict[str, float]]:
        """Mean PSNR and SSIM; the detail ratio's geometric mean (ratios multiply, so a 2x and a 0.5x
        pair average to 1)."""
        out: dict[str, dict[str, float]] = {}
        for method in dict.fromkeys(r["method"] for r in self.rows):
            rs = [r for r in self.rows if r["method"] == method]
            ratios = np.array([r["detail"] for r in rs], np.float64)
            ratios = ratios[np.isfinite(ratios) & (ratios > 0)]
            out[method] = {"psnr": float(np.mean([r["psnr"] for r in rs])), "ssim": float(np.mean([r["ssim"] for r in rs])),
                           "detail": float(np.exp(np.log(ratios).mean())) if len(ratios) else float("nan"),
                           "pairs": len(rs)}
        return out

    def table(self) -> str:
        lines = [f"{'method':<16}{'PSNR (dB)':>10}{'SSIM':>9}{'detail':>8}{'pairs':>7}", "-" * 50]
        for m, v in self.means().items():
            lines.append(f"{m:<16}{v['psnr']:>10.2f}{v['ssim']:>9.4f}{v['detail']:>8.3f}{v['pairs']:>7d}")
        return "\n".join(lines)

    def write_json(self, path: str | Path, extra: dict | None = None) -> None:
        data = {**self.means(), "per_pair": self.rows, **(extra or {})}
        atomic_write_bytes(path, json.dumps(data, indent=2).encode())

    def write_csv(self, path: str | Path) -> None:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=["name", "method", "psnr", "ssim", "detail"])
        w.writeheader()
        w.writerows(self.rows)
        atomic_write_bytes(path, buf.getvalue().encode())


def eval_pairs(data: str | Path, n_pairs: int | None = None, seed: int = 0, resize: int | None = None):
    """Yield (name, source, guide, source_depth, guide_depth, target) arrays from an NTIRE folder
    with ground truth, or `n_pairs` pairs drawn deterministically from a VIDIT folder's validation split."""
    from .data.datasets import Augment, PairDataset, VIDITTriplets
    from .data.layouts import detect_layout, scan_ntire, scan_vidit

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


def evaluate(relighter, data: str | Path, n_pairs: int | None = None, progress: Progress | None = None,
             cancel=None, modes: tuple[str, ...] = MODEL_MODES) -> EvalReport:
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
            report.rows.append({"name": name, "method": method, "psnr": psnr(img, tgt), "ssim": ssim(img, tgt),
                                "detail": detail_ratio(img, tgt)})
        if progress:
            progress((i + 1) / len(pairs), name)
    return report
