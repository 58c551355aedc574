"""PyTorch datasets: VIDIT any-to-any triplets and NTIRE pairs, with paired crops and flips.

Every random choice is drawn from a generator seeded by (seed, epoch, index), so an epoch's
samples are the same whatever the worker count, and a resumed run sees the same data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from core.base.errors import RelightError
from core.inputs.input import load_input
from core.inputs.layouts import PairRecord, VIDITIndex, split_scenes
from core.storage.io import read_depth, read_image

if TYPE_CHECKING:
    from core.train.frame_cache import FrameCache


@dataclass
class Augment:
    crop: int | None = None  # square crop side; None = full image (the paper's choice)
    hflip: bool = False  # flip source, guide and target together (E <-> W stays consistent)
    resize: int | None = None  # resize images to this square side on load (quick experiments)


def _resized(a: np.ndarray, resize: int | None) -> np.ndarray:
    if resize and a.shape[:2] != (resize, resize):
        a = cv2.resize(a, (resize, resize), interpolation=cv2.INTER_AREA)
    return a


def _load(path: Path, resize: int | None) -> np.ndarray:
    return _resized(read_image(path), resize)


def _load_depth(path: Path, resize: int | None) -> np.ndarray:
    return _resized(read_depth(path).data, resize)


log = logging.getLogger("relight.data")


class SkipBadFiles:
    """A damaged file must not abort a training run at the same step on every resume: a sample that
    cannot be read is replaced by the next readable one (deterministically, so resumes stay exact)
    with a warning in the run's log. Ten unreadable samples in a row stop the run."""

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        for k in range(10):
            j = (i + k) % len(self)
            try:
                return self.sample(j)
            except RelightError as exc:
                log.warning("skipping sample %d: %s", j, exc)
        raise RelightError(f"samples {i} to {i + 9} cannot be read; the dataset looks damaged")


def _chw(a: np.ndarray) -> torch.Tensor:
    if a.ndim == 2:
        a = a[:, :, None]
    a = np.ascontiguousarray(a.transpose(2, 0, 1))
    return torch.from_numpy(a if a.flags.writeable else a.copy())  # a view into a read-only frame cache


def _window(rng: np.random.Generator, h: int, w: int, crop: int | None) -> tuple[int, int, int, int]:
    if not crop or (crop >= h and crop >= w):
        return 0, 0, h, w
    c = min(crop, h, w)
    y, x = int(rng.integers(0, h - c + 1)), int(rng.integers(0, w - c + 1))
    return y, x, c, c


def make_sample(
    src, sd, gui, gd, tgt, rng: np.random.Generator, aug: Augment, flip_on_device: bool = False
) -> dict[str, torch.Tensor]:
    """Crop windows and the flip drawn from `rng` (in this order, whatever the source of the arrays).
    With `flip_on_device` the flip is returned as a flag ("flip") for `core.train.training.to_device`."""
    y, x, ch, cw = _window(rng, *src.shape[:2], aug.crop)
    src, sd, tgt = (a[y : y + ch, x : x + cw] for a in (src, sd, tgt))
    gy, gx, gh, gw = _window(rng, *gui.shape[:2], aug.crop)  # the guide has its own window
    gui, gd = (a[gy : gy + gh, gx : gx + gw] for a in (gui, gd))
    flip = bool(aug.hflip and rng.random() < 0.5)
    if flip and not flip_on_device:
        src, sd, gui, gd, tgt = (a[:, ::-1] for a in (src, sd, gui, gd, tgt))
    sample = {
        "source": _chw(src),
        "source_depth": _chw(sd),
        "guide": _chw(gui),
        "guide_depth": _chw(gd),
        "target": _chw(tgt),
    }
    if flip_on_device:
        sample["flip"] = torch.tensor(flip)
    return sample


class VIDITTriplets(SkipBadFiles, Dataset):
    """Any-to-any triplets: source = scene A under s1, guide = scene B under s2, target = A under s2.

    One item per (scene, setting) of the split; guide scene and setting s2 are drawn per epoch.
    """

    def __init__(
        self,
        index: VIDITIndex,
        split: str = "train",
        val_fraction: float = 0.1,
        seed: int = 0,
        augment: Augment = Augment(),
        same_scene_guide: bool = False,
    ):
        usable = [n for n in index.scenes if n in index.depth and len(index.scenes[n]) >= 2]
        train, val = split_scenes(usable, val_fraction, seed)
        self.scenes = train if split == "train" else val
        self.index, self.seed, self.augment, self.same_scene_guide = index, seed, augment, same_scene_guide
        self.items = [(s, setting) for s in self.scenes for setting in sorted(index.scenes[s])]
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def triplet(self, i: int, rng: np.random.Generator) -> tuple[str, tuple, str, tuple]:
        scene, s1 = self.items[i]
        settings = sorted(self.index.scenes[scene])
        s2 = s1
        while s2 == s1:
            s2 = settings[int(rng.integers(len(settings)))]
        others = [s for s in self.scenes if s != scene and s2 in self.index.scenes[s]]
        guide_scene = scene if (self.same_scene_guide or not others) else others[int(rng.integers(len(others)))]
        return scene, s1, guide_scene, s2

    def sample(self, i: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, i])
        scene, s1, gscene, s2 = self.triplet(i, rng)
        r = self.augment.resize
        imgs = self.index.scenes
        src, tgt, gui = _load(imgs[scene][s1], r), _load(imgs[scene][s2], r), _load(imgs[gscene][s2], r)
        sd, gd = _load_depth(self.index.depth[scene], r), _load_depth(self.index.depth[gscene], r)
        return make_sample(src, sd, gui, gd, tgt, rng, self.augment)


class CachedVIDITTriplets(VIDITTriplets):
    """The same triplets, crops and flips as VIDITTriplets, read from a FrameCache: integer frames
    (converted to float and flipped on the device) instead of decoded PNGs."""

    def __init__(
        self,
        index: VIDITIndex,
        cache: FrameCache,
        split: str = "train",
        val_fraction: float = 0.1,
        seed: int = 0,
        augment: Augment = Augment(),
        same_scene_guide: bool = False,
    ):
        super().__init__(index, split, val_fraction, seed, augment, same_scene_guide)
        self.cache = cache

    def sample(self, i: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, i])
        scene, s1, gscene, s2 = self.triplet(i, rng)
        c = self.cache
        return make_sample(
            c.frame(scene, s1),
            c.depth(scene),
            c.frame(gscene, s2),
            c.depth(gscene),
            c.frame(scene, s2),
            rng,
            self.augment,
            flip_on_device=True,
        )


class PairDataset(SkipBadFiles, Dataset):
    """NTIRE-style pairs with ground truth (input/, guide/, target/)."""

    def __init__(self, records: list[PairRecord], augment: Augment = Augment(), seed: int = 0):
        self.records = [r for r in records if r.target is not None]
        self.augment, self.seed, self.epoch = augment, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.records)

    def sample(self, i: int) -> dict[str, torch.Tensor]:
        r, rs = self.records[i], self.augment.resize
        rng = np.random.default_rng([self.seed, self.epoch, i])
        src, gui = load_input(r.pair.source), load_input(r.pair.guide)
        arrays = [_resized(a, rs) for a in (src.image, src.require_depth().data, gui.image, gui.require_depth().data)]
        return make_sample(arrays[0], arrays[1], arrays[2], arrays[3], _load(r.target, rs), rng, self.augment)
