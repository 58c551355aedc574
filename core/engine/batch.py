"""Relighting a whole folder: the jobs a folder holds and the loop that relights them, shared by the
command line's folder mode and the app's batch dialog. One bad pair is reported and skipped; the
output folder may never hold inputs."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import torch

from core.base.cancel import CancelToken
from core.base.errors import RelightError, WriteError, name_list
from core.base.progress import Progress
from core.engine.batch_io import IOWorkers, auto_processes, read_job, read_window
from core.engine.compose import ComposeSettings
from core.engine.inference import Relighter
from core.inputs.input import Input, InputFiles, PairFiles
from core.inputs.pairing import find_depth, is_depth_name, ntire_pairs
from core.storage.io import EIGHT_BIT_ONLY, IMAGE_SUFFIXES, write_image

if TYPE_CHECKING:
    from core.engine.normals import NormalsBatch


def folder_jobs(folder: str | Path, sources_only: bool = False) -> list[PairFiles]:
    """NTIRE pairs (input/ + guide/); with sources_only (one guide or a light for all), the images
    of input/ or of a plain folder (each job's guide field repeats its source, unused)."""
    folder = Path(folder)
    if not sources_only or (folder / "input").is_dir():
        pairs = unique_names(ntire_pairs(folder))
        return [PairFiles(p.source, p.source, p.name) for p in pairs] if sources_only else pairs
    if not folder.is_dir():
        raise RelightError("folder not found", folder)
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not is_depth_name(p))
    if not images:
        raise RelightError("no images in the folder", folder)
    return unique_names([PairFiles(InputFiles(p, find_depth(p)), InputFiles(p, find_depth(p)), p.stem) for p in images])


def unique_names(jobs: list[PairFiles]) -> list[PairFiles]:
    """Jobs whose names (their output file names) differ: `a.png`, `a.jpg` and `a.tif` in one folder
    become a_png, a_jpg and a_tif (compared without case: some file systems ignore it). Names that
    still collide are refused, naming them."""

    def key(name: str) -> str:
        return name.casefold()

    count: dict[str, int] = {}
    for j in jobs:
        count[key(j.name)] = count.get(key(j.name), 0) + 1
    renamed = [
        j if count[key(j.name)] == 1 else PairFiles(j.source, j.guide, f"{j.name}_{j.source.image.suffix.lstrip('.')}")
        for j in jobs
    ]
    seen: dict[str, list[str]] = {}
    for j in renamed:
        seen.setdefault(key(j.name), []).append(j.source.image.name)
    clashes = [n for names in seen.values() if len(names) > 1 for n in names]
    if clashes:
        raise RelightError(
            f"these inputs would write the same output file: {name_list(clashes)}; rename them",
            jobs[0].source.image.parent,
        )
    return renamed


def check_output_folder(jobs: list[PairFiles], out: Path) -> None:
    """Refuse an output folder that holds (or contains) any input file."""
    out = Path(out)
    for pair in jobs:
        for f in (pair.source.image, pair.source.depth, pair.guide.image, pair.guide.depth):
            if f is None:
                continue
            try:
                inside = f.resolve().is_relative_to(out.resolve())
            except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
                inside = False
            if inside:
                raise RelightError(f"refusing to write into a folder that holds inputs ({f.name})", out)


@dataclass
class BatchReport:
    out: Path
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (job name, message)
    not_written: list[str] = field(default_factory=list)  # job names relit but not saved (disk full, ...)
    total: int = 0  # jobs asked for
    cancelled: bool = False  # stopped early: the pairs relit until then are written

    def summary(self) -> str:
        n = self.total or len(self.written) + len(self.failed)
        return f"relit {len(self.written)} of {n} pairs into {self.out}" + (" (cancelled)" if self.cancelled else "")

    @property
    def skipped(self) -> list[str]:
        """Job names not relit because of their inputs (a bad file, wrong sizes, no depth), by name."""
        lost = set(self.not_written)
        return sorted({n for n, _ in self.failed if n not in lost})

    def problems(self) -> str | None:
        """One line saying which pairs did not make it into the output folder, or None when none was lost:
        the results that could not be written first (the run did not do its job), then the skipped pairs."""
        parts = []
        if self.not_written:
            parts.append(
                f"{len(self.not_written)} result(s) could not be written: {name_list(sorted(self.not_written))}"
            )
        if self.skipped:
            n = len(self.skipped)
            parts.append(f"{n} pair{'s' if n != 1 else ''} skipped: {name_list(self.skipped)}")
        return "; ".join(parts) or None


_HOST_THREADS_LOCK = threading.Lock()
_host_threads: dict[str, Any] = {"users": 0, "saved": None}


@contextmanager
def one_host_thread() -> Iterator[None]:
    """torch and OpenCV on one thread in this process while it lasts. With the network on a GPU and
    the decoding and encoding in worker processes, their thread pools only spin on the cores the workers
    need (H200 host, 16 cores, 1024² pairs: 27.7 -> 31.9 pairs/s; docs/PERFORMANCE.md). Runs that
    overlap (two batch dialogs) share it: the first saves the counts, the last puts them back."""
    with _HOST_THREADS_LOCK:
        if _host_threads["users"] == 0:
            _host_threads["saved"] = (torch.get_num_threads(), cv2.getNumThreads())
            torch.set_num_threads(1)
            cv2.setNumThreads(1)
        _host_threads["users"] += 1
    try:
        yield
    finally:
        with _HOST_THREADS_LOCK:
            _host_threads["users"] -= 1
            if _host_threads["users"] == 0:
                torch_threads, cv2_threads = _host_threads["saved"]
                torch.set_num_threads(torch_threads)
                cv2.setNumThreads(cv2_threads)


def relight_jobs(
    relighter: Relighter | NormalsBatch,
    jobs: list[PairFiles],
    out: str | Path,
    *,
    guide_for: Callable[[Input], Input] | None = None,
    fill: Callable[[Input, str], Input] | None = None,
    suffix: str = ".png",
    bit_depth: int = 16,
    mode: str = "auto",
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    batch_size: int | None = None,
    io_threads: int | None = None,
    io_processes: int | None = None,
    compose: ComposeSettings | None = None,
) -> BatchReport:
    """Relight every job into `out`/<name><suffix> with S3Net, or with the normals engine's
    ``NormalsBatch`` (one light, no guides read). `guide_for(source)` supplies the guide (one guide
    photo, or the light compass) instead of the job's own; `fill(input, role)` completes missing depth.
    Progress messages are "N/M name" as each file is written, or "N/M skipped name: problem" for a
    pair that failed. On cancel no further pair is relit, the ones already relit are written, and the
    report (``cancelled``) is returned.

    Reading and decoding the next pairs and encoding/writing finished ones run in `io_threads` threads
    while the network works; consecutive pairs of one size go through the network as one batch. With
    `io_processes` (None: one per core but one, for a folder of 16 pairs or more on 4 cores or more;
    0: none) the threads hand the reading and the writing to worker processes (``core.engine.batch_io``):
    the same files, messages and order of progress."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    from core.base.errors import Cancelled

    # PNG/TIFF decoding and encoding release the GIL: one thread per core keeps up with the network
    io_threads = io_threads or min(8, os.cpu_count() or 2)
    io_processes = auto_processes(len(jobs)) if io_processes is None else io_processes
    # the fast CUDA path captures one graph per input shape: a batch shape would mean another compile
    batch_size = batch_size or (1 if relighter.graphed is not None else 4)
    out = Path(out)
    if suffix.lower() in EIGHT_BIT_ONLY:
        bit_depth = 8
    check_output_folder(jobs, out)
    jobs = unique_names(jobs)  # one output file per job, or a refusal before any work
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (OSError, RuntimeError) as exc:
        raise RelightError(f"cannot create the output folder ({getattr(exc, 'strerror', None) or exc})", out) from None
    report = BatchReport(out, total=len(jobs))
    fill = fill or (lambda inp, role: inp)
    done = 0
    lock = threading.Lock()  # files finish in the writer threads
    written: dict[int, Path] = {}

    needs_guide = getattr(relighter, "needs_guide", True)  # the normals engine: a light, no guide
    window = max(2, batch_size * 2)  # pairs read ahead of the network
    if io_processes > 0:  # enough to keep every worker busy; each thread waits on one worker's reply
        window = max(window, read_window(jobs, io_processes))
        io_threads = max(io_threads, 2 * window + 2)
    workers = None
    if io_processes > 0:
        try:
            workers = IOWorkers(io_processes)
        except (OSError, RuntimeError):  # no process semaphores (no /dev/shm), a process limit: threads only
            workers = None
    read = workers.read if workers else read_job
    write = workers.write if workers else write_image

    def load(job: PairFiles):
        src, gui = read(job, needs_guide and not guide_for)
        src = fill(src, "source")  # depth estimation and guides stay here, with the engines
        if not needs_guide:
            return src.image, None, src.require_depth(), None
        if guide_for:
            gui = guide_for(src)
        else:
            assert gui is not None  # read with the job
            gui = fill(gui, "guide")
        return src.image, gui.image, src.require_depth(), gui.require_depth()

    def finish(name: str, note: str) -> None:
        nonlocal done
        with lock:  # one count and one message at a time, in order
            done += 1
            if progress:
                progress(done / len(jobs), f"{done}/{len(jobs)} {note}")

    def fail(name: str, exc: Exception) -> None:
        with lock:
            report.failed.append((name, str(exc)))
        finish(name, f"skipped {name}: {exc}")

    def on_written(k: int, fut) -> None:
        """In the writer thread, as soon as a file is on disk: the bar moves with the files."""
        try:
            path = fut.result()
        except WriteError as exc:  # relit but not saved (disk full, ...): the command exits non-zero
            with lock:
                report.not_written.append(jobs[k].name)
            fail(jobs[k].name, exc)
            return
        except RelightError as exc:
            fail(jobs[k].name, exc)
            return
        with lock:
            written[k] = path
        finish(jobs[k].name, jobs[k].name)

    device = getattr(relighter, "device", None)
    own_threads = (
        one_host_thread() if workers is not None and getattr(device, "type", None) == "cuda" else nullcontext()
    )
    # the threads end before the workers they wait on are shut down
    with workers or nullcontext(), own_threads, ThreadPoolExecutor(max(1, io_threads)) as pool:
        reads: deque = deque()  # (index, future) in job order
        writes: deque = deque()  # (index, future) in job order
        next_read = 0

        def read_ahead() -> None:
            nonlocal next_read
            while next_read < len(jobs) and len(reads) < window:
                reads.append((next_read, pool.submit(load, jobs[next_read])))
                next_read += 1

        def collect(block: bool) -> None:
            """Wait for finished writes (all with `block`; else only beyond the read-ahead window)."""
            while writes and (block or writes[0][1].done() or len(writes) > window):
                exc = writes.popleft()[1].exception()
                if exc is not None and not isinstance(exc, RelightError):
                    raise exc  # a bug, not a bad pair (on_written reported the pair's own problems)

        def run(group: list[tuple[int, tuple]]) -> None:
            try:
                results = relighter.relight_many(
                    [a for _, a in group], mode=mode, compose=compose, batch_size=batch_size, cancel=cancel
                )
            except Cancelled:
                report.cancelled = True  # this group is dropped; the ones before it are written
                return
            except RelightError as exc:
                for k, _ in group:
                    fail(jobs[k].name, exc)
                return
            for (k, _), res in zip(group, results):
                fut = pool.submit(write, out / f"{jobs[k].name}{suffix}", res.image, bit_depth)
                fut.add_done_callback(lambda f, k=k: on_written(k, f))
                writes.append((k, fut))
            collect(block=False)

        group: list[tuple[int, tuple]] = []  # consecutive pairs of one size, run as one batch
        read_ahead()
        while reads and not report.cancelled:
            if cancel is not None and cancel.cancelled:
                report.cancelled = True
                break
            i, fut = reads.popleft()
            read_ahead()
            try:
                arrays = fut.result()
            except RelightError as exc:
                fail(jobs[i].name, exc)
                continue
            if group and (len(group) == batch_size or arrays[0].shape != group[0][1][0].shape):
                run(group)
                group = []
            group.append((i, arrays))
        if group and not report.cancelled:
            run(group)
        for _, fut in reads:  # reads ahead of a cancel are not needed
            fut.cancel()
        collect(block=True)
    report.written = [written[k] for k in sorted(written)]
    return report
