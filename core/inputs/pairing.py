"""File pairing rules: which depth file belongs to an image, and NTIRE/VIDIT folder layouts.

Rules, in order, for an image ``X.<ext>``:
1. ``X.npy`` / ``X.npz`` / ``X.exr`` / ``X.tif(f)`` beside it (not the image itself);
2. ``X_depth.<any depth ext>`` beside it;
3. VIDIT: ``ImageNNN_<temp>_<dir>.png`` -> ``ImageNNN.npy`` beside it.
"""

from __future__ import annotations

import re
from pathlib import Path

from core.base.errors import RelightError
from core.base.vocab import COMPASS_DIRECTIONS
from core.inputs.input import InputFiles, PairFiles
from core.storage.io import DEPTH_SUFFIXES, IMAGE_SUFFIXES

VIDIT_NAME = re.compile(r"^(Image\d+)_(\d{4})_(" + "|".join(sorted(COMPASS_DIRECTIONS, key=len, reverse=True)) + ")$")
DEPTH_TAGS = ("_depth", "-depth", ".depth", "_d")


def depth_candidates(image: Path) -> list[Path]:
    stem, folder = image.stem, image.parent
    out = [folder / f"{stem}{s}" for s in (".npy", ".npz", ".exr", ".tif", ".tiff") if s != image.suffix.lower()]
    out += [folder / f"{stem}{tag}{s}" for tag in DEPTH_TAGS for s in DEPTH_SUFFIXES]
    m = VIDIT_NAME.match(stem)
    if m:
        out.append(folder / f"{m.group(1)}.npy")
    return out


def _present(path: Path) -> bool:
    # any entry but a folder: a FIFO or device named like a depth file is found, then refused when read
    return path.exists() and not path.is_dir()


def find_depth(image: str | Path) -> Path | None:
    for cand in depth_candidates(Path(image)):
        if _present(cand):
            return cand
    return None


def is_depth_name(path: Path) -> bool:
    stem = path.stem
    return path.suffix.lower() in (".npy", ".npz", ".exr") or any(stem.endswith(t) for t in DEPTH_TAGS)


def pair_dropped(paths: list[Path]) -> tuple[list[InputFiles], list[str]]:
    """Pair a set of dropped files/folders into image + depth. Returns (inputs, problems); an image
    whose depth is not found is an input without depth (it can be estimated), not a problem."""
    files: list[Path] = []
    skipped: list[str] = []
    for p in map(Path, paths):
        if p.is_dir():
            entries = sorted(p.iterdir())
            files += [q for q in entries if q.is_file()]
            skipped += [f"{q.name}: not a regular file, skipped" for q in entries if _present(q) and not q.is_file()]
        elif p.is_file():
            files.append(p)
        elif _present(p):
            skipped.append(f"{p.name}: not a regular file, skipped")
    images = [f for f in files if f.suffix.lower() in IMAGE_SUFFIXES and not is_depth_name(f)]
    depths = [f for f in files if f not in images and f.suffix.lower() in DEPTH_SUFFIXES]
    pairs, problems, used = [], list(skipped), set()
    for img in images:
        cands = depth_candidates(img)
        if len(images) == 1 and len(depths) == 1:
            match = depths[0]  # one image and one depth dropped together: they belong together
        else:
            match = next((d for d in cands if d in depths), None) or next((d for d in cands if d.is_file()), None)
        if match is not None:
            used.add(match)
        pairs.append(InputFiles(img, match))
    for d in depths:
        if d not in used and not images:
            problems.append(f"{d.name}: a depth map without its image")
    if not files and not skipped:
        problems.append("nothing to open")
    elif not images and not problems:
        problems.append("no image files among the dropped files")
    return pairs, problems


def ntire_pairs(root: str | Path) -> list[PairFiles]:
    """NTIRE layout: root/input/PairNNN.png + .npy and root/guide/PairNNN.png + .npy (a missing
    depth file leaves that input without depth)."""
    root = Path(root)
    inp, gui = root / "input", root / "guide"
    if not inp.is_dir() or not gui.is_dir():
        raise RelightError("expected 'input/' and 'guide/' folders (NTIRE pair layout)", root)
    out = []
    for img in sorted(inp.iterdir()):
        if img.suffix.lower() not in IMAGE_SUFFIXES or is_depth_name(img):
            continue
        g = gui / img.name
        out.append(PairFiles(InputFiles(img, find_depth(img)), InputFiles(g, find_depth(g)), img.stem))
    if not out:
        raise RelightError("no images in input/", inp)
    return out
