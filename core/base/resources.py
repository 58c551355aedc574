"""Where the product's own files are: the bundled model and its card, the demo pair, the icons and the
.desktop file. Every other module asks here; nothing else locates them.

The project keeps them in the top-level ``resources/`` folder. A wheel (and the PyInstaller bundle)
carries that folder as ``core/_resources`` (setup.py maps it), found with ``importlib.resources``; a
source checkout or an editable install has no ``core/_resources`` and uses ``resources/`` itself.
Only names are fixed here, never contents: a newer bundled model may replace the file.
"""

from __future__ import annotations

import atexit
import contextlib
import sys
from dataclasses import dataclass
from importlib.resources import as_file, files
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from importlib.resources.abc import Traversable
    else:
        from importlib.abc import Traversable

PACKAGED_DIR = "_resources"  # inside the core package, in a wheel and in the frozen app
BUNDLED_MODEL_NAME = "s3net-lite-synthetic.safetensors"
ICON_SIZES = (16, 32, 48, 64, 128, 256)
DESKTOP_FILE_NAME = "relight-studio.desktop"

# files extracted from a zipped install stay until the process ends (callers keep the paths)
_extracted = contextlib.ExitStack()
atexit.register(_extracted.close)


def _root() -> Traversable:
    packaged = files("core") / PACKAGED_DIR
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "resources"  # source checkout / editable install


def resources_root() -> Traversable:
    """The resources folder of this installation (a real folder except in a zipped install)."""
    return _root()


def resource_path(*parts: str) -> Path:
    """A file among the resources as a real filesystem path (which may not exist: callers check)."""
    ref = _root().joinpath(*parts)
    if isinstance(ref, Path):
        return ref
    if not ref.is_file():
        return Path(*parts)  # a relative path that does not exist, so the caller reports it missing
    return _extracted.enter_context(as_file(ref))


def bundled_model_path() -> Path:
    """The default model, used when no checkpoint is given."""
    return resource_path("models", BUNDLED_MODEL_NAME)


def model_card_path(model: Path | None = None) -> Path:
    """The Markdown card beside a bundled model (the default model's when none is named)."""
    return (model or bundled_model_path()).with_suffix(".md")


@dataclass(frozen=True)
class DemoPair:
    source: Path
    source_depth: Path
    guide: Path
    guide_depth: Path
    target: Path  # the exact answer, for comparisons


def demo_pair() -> DemoPair:
    """The bundled demo scene: source and guide with VIDIT depth dicts, and the ground truth."""
    return DemoPair(
        *(resource_path("demo", n) for n in ("source.png", "source.npy", "guide.png", "guide.npy", "target.png"))
    )


def icon_path(size: int = 256) -> Path:
    """The app icon at one of ICON_SIZES pixels."""
    if size not in ICON_SIZES:
        raise ValueError(f"no {size}px icon; sizes: {ICON_SIZES}")
    return resource_path("icons", f"relight-studio-{size}.png")


def icon_paths() -> list[Path]:
    """Every icon size that is present, smallest first."""
    return [p for p in (icon_path(s) for s in ICON_SIZES) if p.is_file()]


def desktop_file_path() -> Path:
    """The freedesktop menu entry (Linux)."""
    return resource_path(DESKTOP_FILE_NAME)


if __name__ == "__main__":  # python -m core.base.resources: where this installation's files are
    for name, path in [
        ("bundled model", bundled_model_path()),
        ("model card", model_card_path()),
        *((f"demo {k}", p) for k, p in vars(demo_pair()).items()),
        *((f"icon {p.stem.rsplit('-', 1)[1]}px", p) for p in icon_paths()),
        (".desktop file", desktop_file_path()),
    ]:
        print(f"{name + ':':19} {path}{'' if path.is_file() else '  (missing)'}")
