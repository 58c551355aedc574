"""The one input type: an image with its depth map, and where each came from.

Every face (CLI single pair and folder mode, the app's cards, evaluation, datasets) names its inputs
with ``InputFiles`` and loads them with ``load_input``. A missing depth map is a state of the loaded
input (``Input.depth is None``), decided here once; ``complete_depth`` fills it with an estimator
(see ``core.depth_estimation``), and the guide library builds inputs whose depth was rendered.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import RelightError
from .io import DepthMap, check_pair, depth_warnings, read_depth, read_image


@dataclass(frozen=True)
class InputFiles:
    """Where an input lives: its image and, when there is one, its depth file."""

    image: Path
    depth: Path | None = None

    def __post_init__(self):
        object.__setattr__(self, "image", Path(self.image))
        if self.depth is not None:
            object.__setattr__(self, "depth", Path(self.depth))


@dataclass
class Input:
    """A loaded image (float32 RGB in [0, 1]) and its depth in the network's convention, or None."""

    image: np.ndarray
    depth: DepthMap | None
    image_origin: str  # a path, or e.g. "rendered by the light compass"
    files: InputFiles | None = None

    @property
    def has_depth(self) -> bool:
        return self.depth is not None

    @property
    def name(self) -> str:
        return self.files.image.name if self.files else self.image_origin

    def warnings(self) -> list[str]:
        return depth_warnings(self.depth) if self.depth is not None else []

    def require_depth(self) -> DepthMap:
        if self.depth is None:
            raise RelightError("has no depth map; give one, or install the depth model to estimate it",
                               self.files.image if self.files else None)
        return self.depth


@dataclass(frozen=True)
class PairFiles:
    """A relighting job's files: source, guide (each with its depth, if any) and a name."""

    source: InputFiles
    guide: InputFiles
    name: str = ""


def load_input(files: InputFiles) -> Input:
    """Read and validate an image and its depth (when it has one) before any compute."""
    image = read_image(files.image)
    depth = None
    if files.depth is not None:
        depth = read_depth(files.depth)
        check_pair(image, depth, files.image)
    return Input(image, depth, str(files.image), files)


def load_pair(pair: PairFiles) -> tuple[Input, Input]:
    return load_input(pair.source), load_input(pair.guide)


DepthSource = Callable[[np.ndarray], DepthMap]


def complete_depth(inp: Input, estimate: DepthSource | None) -> Input:
    """The input with its missing depth filled by `estimate` (an estimator's bound method); unchanged
    when it already has one. Without an estimator a missing depth is an error naming the file."""
    if inp.depth is not None:
        return inp
    if estimate is None:
        inp.require_depth()
    depth = estimate(inp.image)
    if depth.shape != inp.image.shape[:2]:
        raise RelightError(f"the depth estimator returned {depth.shape[1]}x{depth.shape[0]} for a "
                           f"{inp.image.shape[1]}x{inp.image.shape[0]} image")
    return replace(inp, depth=depth)
