"""The one input type: an image with its depth map, and where each came from.

Every face (CLI single pair and folder mode, the app's cards, evaluation, datasets) names its inputs
with ``InputFiles`` and loads them with ``load_input``. A missing depth map is a state of the loaded
input (``Input.depth is None``), decided here once; ``complete_depth`` fills it with an estimator
(see ``core.depth.estimation``), and the guide library builds inputs whose depth was rendered.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from core.base.errors import RelightError
from core.storage.io import DepthMap, check_pair, depth_header, depth_warnings, image_header, read_depth, read_image

# Memory a relight takes, per pixel, measured with `relight infer` on 2 CPU cores (peak RSS at 1024^2
# and 3072^2, detail mode: 124 bytes per source pixel): the source at full resolution carries decoding,
# float copies, the gain and the composed output; a guide is decoded and resized to the source; a depth
# file is decoded and converted to float32.
BYTES_PER_SOURCE_PIXEL = 128
BYTES_PER_GUIDE_PIXEL = 32
BYTES_PER_DEPTH_PIXEL = 16
MEMORY_BUDGET_ENV = "RELIGHT_MEMORY_BUDGET_MB"


def physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not on this platform
        return None


def pair_memory_budget() -> tuple[int, str]:
    """(bytes, where the figure comes from): half the machine's memory, or $RELIGHT_MEMORY_BUDGET_MB."""
    env = os.environ.get(MEMORY_BUDGET_ENV)
    if env:
        try:
            mb = float(env)
        except ValueError:
            raise RelightError(f"{MEMORY_BUDGET_ENV} must be a number of megabytes, not {env!r}") from None
        if not 0.01 <= mb <= 1 << 40:
            raise RelightError(f"{MEMORY_BUDGET_ENV} must be between 0.01 and 2^40 MB, not {env}")
        return int(mb * 2**20), f"${MEMORY_BUDGET_ENV}"
    total = physical_memory()
    if total is None:
        return 8 << 30, "a default of 8 GB (this system does not report its memory)"
    return total // 2, f"half of this machine's {total / 2**30:.1f} GB"


def _gb(n: int) -> str:
    return f"{n / 2**30:.2f} GB" if n < 10 * 2**30 else f"{n / 2**30:.1f} GB"


def check_memory(source: InputFiles, guide: InputFiles | None = None) -> int:
    """Refuse, before decoding anything, a pair whose relight would need more memory than the budget
    (the sizes come from the files' headers); returns the estimate in bytes."""
    img = image_header(source.image)
    if img is None:
        return 0  # a format without a readable header: the decoders' own pixel limits apply
    parts = [(img, BYTES_PER_SOURCE_PIXEL, "source")]
    for files, role in ((source, "source"), (guide, "guide")):
        if files is None:
            continue
        if role == "guide":
            g = image_header(files.image)
            if g is not None:
                parts.append((g, BYTES_PER_GUIDE_PIXEL, "guide"))
        if files.depth is not None:
            d = depth_header(files.depth)
            if d is not None:
                parts.append((d, BYTES_PER_DEPTH_PIXEL, f"{role} depth"))
    need = sum(w * h * per for (w, h), per, _ in parts)
    budget, why = pair_memory_budget()
    if need > budget:
        sizes = ", ".join(f"{role} {w}x{h}" for (w, h), _, role in parts)
        raise RelightError(
            f"relighting this pair needs about {_gb(need)} ({sizes}; {BYTES_PER_SOURCE_PIXEL} bytes per "
            f"source pixel), more than the {_gb(budget)} allowed ({why}); use smaller images, or set "
            f"{MEMORY_BUDGET_ENV}",
            source.image,
        )
    return need


@dataclass(frozen=True)
class InputFiles:
    """Where an input lives: its image and, when there is one, its depth file."""

    image: Path
    depth: Path | None = None

    def __post_init__(self):
        for role in ("image", "depth"):
            value = getattr(self, role)
            if value is None and role == "depth":
                continue
            try:
                object.__setattr__(self, role, Path(value))
            except TypeError:
                raise RelightError(f"the {role} must be a file path, not {type(value).__name__}") from None


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
            raise RelightError(
                "has no depth map; give one, or install the depth model to estimate it",
                self.files.image if self.files else None,
            )
        return self.depth


@dataclass(frozen=True)
class PairFiles:
    """A relighting job's files: source, guide (each with its depth, if any) and a name."""

    source: InputFiles
    guide: InputFiles
    name: str = ""


def load_input(files: InputFiles, *, checked: bool = False) -> Input:
    """Read and validate an image and its depth (when it has one) before any compute. Sizes are
    compared and the memory it needs is checked from the headers first (`checked`: done for the pair)."""
    if not checked:
        check_memory(files)
    if files.depth is not None:
        img, dep = image_header(files.image), depth_header(files.depth)
        if dep is not None and 0 in dep:
            raise RelightError(f"depth map is empty ({dep[0]}x{dep[1]})", files.depth)
        if img is not None and dep is not None and img != dep:
            raise RelightError(f"depth is {dep[0]}x{dep[1]} but its image is {img[0]}x{img[1]}", files.depth)
    image = read_image(files.image)
    depth = None
    if files.depth is not None:
        depth = read_depth(files.depth)
        check_pair(image, depth, files.image)
    return Input(image, depth, str(files.image), files)


def load_pair(pair: PairFiles) -> tuple[Input, Input]:
    check_memory(pair.source, pair.guide)
    return load_input(pair.source, checked=True), load_input(pair.guide, checked=True)


DepthSource = Callable[[np.ndarray], DepthMap]


def complete_depth(inp: Input, estimate: DepthSource | None) -> Input:
    """The input with its missing depth filled by `estimate` (an estimator's bound method); unchanged
    when it already has one. Without an estimator a missing depth is an error naming the file."""
    if inp.depth is not None:
        return inp
    if estimate is None:
        raise RelightError(
            "has no depth map; give one, or install the depth model to estimate it",
            inp.files.image if inp.files else None,
        )
    return replace(inp, depth=estimated_depth(inp, estimate))


def estimated_depth(inp: Input, estimate: DepthSource) -> DepthMap:
    """`estimate`'s depth for the input's image, checked to be the image's size (the error names it)."""
    depth = estimate(inp.image)
    if depth.shape != inp.image.shape[:2]:
        raise RelightError(
            f"the depth estimator returned {depth.shape[1]}x{depth.shape[0]} for this "
            f"{inp.image.shape[1]}x{inp.image.shape[0]} image",
            inp.files.image if inp.files else inp.image_origin,
        )
    return depth
