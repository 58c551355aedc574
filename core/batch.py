"""Relighting a whole folder: the jobs a folder holds and the loop that relights them, shared by the
command line's folder mode and the app's batch dialog. One bad pair is reported and skipped; the
output folder may never hold inputs."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .cancel import CancelToken
from .errors import RelightError
from .inference import Relighter
from .inputs import Input, InputFiles, PairFiles, load_input
from .io import EIGHT_BIT_ONLY, IMAGE_SUFFIXES, write_image
from .pairing import find_depth, is_depth_name, ntire_pairs
from .progress import Progress


def folder_jobs(folder: str | Path, sources_only: bool = False) -> list[PairFiles]:
    """NTIRE pairs (input/ + guide/); with sources_only (one guide or a light for all), the images
    of input/ or of a plain folder (each job's guide field repeats its source, unused)."""
    folder = Path(folder)
    if not sources_only or (folder / "input").is_dir():
        pairs = ntire_pairs(folder)
        return [PairFiles(p.source, p.source, p.name) for p in pairs] if sources_only else pairs
    if not folder.is_dir():
        raise RelightError("folder not found", folder)
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not is_depth_name(p))
    if not images:
        raise RelightError("no images in the folder", folder)
    return [PairFiles(InputFiles(p, find_depth(p)), InputFiles(p, find_depth(p)), p.stem) for p in images]


def check_output_folder(jobs: list[PairFiles], out: Path) -> None:
    """Refuse an output folder that holds (or contains) any input file."""
    out = Path(out)
    for pair in jobs:
        for f in (pair.source.image, pair.source.depth, pair.guide.image, pair.guide.depth):
            if f is None:
                continue
            try:
                inside = f.resolve().is_relative_to(out.resolve())
            except OSError:
                inside = False
            if inside:
                raise RelightError(f"refusing to write into a folder that holds inputs ({f.name})", out)


@dataclass
class BatchReport:
    out: Path
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (job name, message)

    def summary(self) -> str:
        n = len(self.written) + len(self.failed)
        return f"relit {len(self.written)} of {n} pairs into {self.out}"


def relight_jobs(relighter: Relighter, jobs: list[PairFiles], out: str | Path, *, guide_for: Callable[[Input], Input] | None = None,
                 fill: Callable[[Input, str], Input] | None = None, suffix: str = ".png", bit_depth: int = 16,
                 mode: str = "auto", progress: Progress | None = None, cancel: CancelToken | None = None) -> BatchReport:
    """Relight every job into `out`/<name><suffix>. `guide_for(source)` supplies the guide (one guide
    photo, or the light compass) instead of the job's own; `fill(input, role)` completes missing depth.
    Progress messages are "N/M name", or "N/M skipped name: problem" for a pair that failed."""
    out = Path(out)
    if suffix.lower() in EIGHT_BIT_ONLY:
        bit_depth = 8
    check_output_folder(jobs, out)
    out.mkdir(parents=True, exist_ok=True)
    report = BatchReport(out)
    fill = fill or (lambda inp, role: inp)
    for i, job in enumerate(jobs):
        if cancel is not None:
            cancel.check()
        note = job.name
        try:
            src = fill(load_input(job.source), "source")
            gui = guide_for(src) if guide_for else fill(load_input(job.guide), "guide")
            res = relighter.relight(src.image, gui.image, src.require_depth(), gui.require_depth(), mode=mode, cancel=cancel)
            report.written.append(write_image(out / f"{job.name}{suffix}", res.image, bit_depth))
        except RelightError as exc:
            report.failed.append((job.name, str(exc)))
            note = f"skipped {job.name}: {exc}"
        if progress:
            progress((i + 1) / len(jobs), f"{i + 1}/{len(jobs)} {note}")
    return report
