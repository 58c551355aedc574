"""Scanning the folder layouts users bring: VIDIT training scenes and NTIRE validation pairs."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from core.base.errors import RelightError
from core.base.vocab import TEMPERATURES, VIDIT_DIRECTIONS
from core.inputs.input import PairFiles
from core.inputs.pairing import VIDIT_NAME, ntire_pairs

ALL_SETTINGS = tuple((t, d) for t in TEMPERATURES for d in VIDIT_DIRECTIONS)
GROUND_TRUTH_DIRS = ("target", "gt", "ground_truth", "groundtruth", "output", "GT")


@dataclass
class VIDITIndex:
    root: Path
    scenes: dict[str, dict[tuple[int, str], Path]]  # scene -> {(temp, dir): image path}
    depth: dict[str, Path]
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        n_img = sum(len(v) for v in self.scenes.values())
        settings = sorted({s for v in self.scenes.values() for s in v})
        text = f"VIDIT layout: {len(self.scenes)} scenes, {n_img} images, {len(settings)} lighting settings"
        if self.problems:
            text += f"; {len(self.problems)} problems: " + "; ".join(self.problems[:5])
        return text


def scan_vidit(root: str | Path) -> VIDITIndex:
    root = Path(root)
    if not root.is_dir():
        raise RelightError("dataset folder not found", root)
    scenes: dict[str, dict] = defaultdict(dict)
    for p in sorted(root.glob("*.png")):
        m = VIDIT_NAME.match(p.stem)
        if m:
            scenes[m.group(1)][(int(m.group(2)), m.group(3))] = p
    if not scenes:
        raise RelightError(
            "matches no known layout: expected VIDIT files ImageNNN_<temp>_<dir>.png + ImageNNN.npy, "
            "or NTIRE pairs in input/ and guide/",
            root,
        )
    depth, problems = {}, []
    for name, settings in scenes.items():
        d = root / f"{name}.npy"
        if d.is_file():
            depth[name] = d
        else:
            problems.append(f"{name} has no depth file {name}.npy")
        missing = [f"{t}_{dd}" for t, dd in ALL_SETTINGS if (t, dd) not in settings]
        if missing:
            problems.append(f"{name} lacks {len(missing)} lighting settings (e.g. {', '.join(missing[:3])})")
    no_depth = [n for n in scenes if n not in depth]
    if len(no_depth) == len(scenes):
        raise RelightError(f"images without depth: none of the {len(scenes)} scenes has its ImageNNN.npy", root)
    return VIDITIndex(root, dict(scenes), depth, problems)


def split_scenes(names: list[str], val_fraction: float, seed: int = 0) -> tuple[list[str], list[str]]:
    """Deterministic split by scene: the same names and fraction always give the same split."""
    import numpy as np

    names = sorted(names)
    if val_fraction <= 0 or len(names) < 2:
        return names, []
    n_val = max(1, int(round(len(names) * val_fraction)))
    order = np.random.default_rng(seed).permutation(len(names))
    val = sorted(names[i] for i in order[:n_val])
    return [n for n in names if n not in val], val


@dataclass
class PairRecord:
    """An NTIRE pair and its ground truth, when the folder has one."""

    pair: PairFiles
    target: Path | None

    @property
    def name(self) -> str:
        return self.pair.name


def scan_ntire(root: str | Path, ground_truth: str | Path | None = None) -> list[PairRecord]:
    root = Path(root)
    gt_dir = (
        Path(ground_truth) if ground_truth else next((root / d for d in GROUND_TRUTH_DIRS if (root / d).is_dir()), None)
    )
    out = []
    for pair in ntire_pairs(root):
        tgt = None
        if gt_dir is not None:
            tgt = next(
                (
                    gt_dir / f"{pair.name}{s}"
                    for s in (".png", ".jpg", ".tif")
                    if (gt_dir / f"{pair.name}{s}").is_file()
                ),
                None,
            )
        out.append(PairRecord(pair, tgt))
    return out


def detect_layout(root: str | Path) -> str:
    root = Path(root)
    if (root / "input").is_dir() and (root / "guide").is_dir():
        return "ntire"
    if any(VIDIT_NAME.match(p.stem) for p in root.glob("*.png")):
        return "vidit"
    raise RelightError(
        "matches no known layout (VIDIT ImageNNN_<temp>_<dir>.png + ImageNNN.npy, or NTIRE input/ + guide/)", root
    )
