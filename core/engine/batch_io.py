"""Reading a folder job's files and writing its result, in the batch runner's threads or in worker
processes (``core.engine.batch``). Both paths call the same functions: the safe readers of
``core.inputs.input`` / ``core.storage.io`` and ``write_image``.

At 1024² a pair takes ~40 ms of decoding and its 16-bit PNG ~65 ms of conversion and encoding on one
core, and OpenCV's PNG codec and numpy's conversions hold the interpreter lock for part of that: threads
alone stop at ~16 pairs/s on 16 cores. Worker processes have no shared lock. Arrays cross between
processes as files in a memory-backed folder (/dev/shm where there is one) that the receiver maps,
so the relighting process never copies or unpickles the pixels (a 1024² pair is 32 MiB of float32).

This module imports no torch: a worker process starts with numpy, OpenCV and Pillow only."""

from __future__ import annotations

import errno
import io
import mmap
import os
import pickle
import shutil
import signal
import sys
import tempfile
import threading
import types
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path, PosixPath, PurePosixPath, PureWindowsPath, WindowsPath
from typing import Any

import numpy as np

from core.base.errors import RelightError
from core.base.vocab import DepthOrigin
from core.inputs.input import Input, InputFiles, PairFiles, check_memory, load_input, pair_memory_budget
from core.storage.io import DepthMap, write_image

# below this many pairs starting the worker processes (~1 s) costs more than it gains
PROCESS_MIN_PAIRS = 16
# a machine with fewer cores has none to spare for workers beside the network and its feeding thread
PROCESS_MIN_CPUS = 4
_ALIGN = 64  # each array starts on a cache line in the mapped file
_MAIN_SWAP = threading.Lock()  # one thread at a time starts workers without the main module


def read_job(job: PairFiles, with_guide: bool) -> tuple[Input, Input | None]:
    """The job's source and (`with_guide`) guide read through the safe readers, memory checked for the
    pair from the headers first."""
    check_memory(job.source, job.guide if with_guide else None)
    source = load_input(job.source, checked=True)
    return source, load_input(job.guide, checked=True) if with_guide else None


def auto_processes(pairs: int) -> int:
    """Worker processes for a folder of `pairs` (0: threads only): one per core but one (the relighting
    process needs a core), when the folder is large enough to pay for starting them."""
    # the cores this process may run on (a container's or taskset's share), not all the machine's
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(cpus - 1, 32) if pairs >= PROCESS_MIN_PAIRS and cpus >= PROCESS_MIN_CPUS else 0


def read_window(jobs: list[PairFiles], processes: int) -> int:
    """Pairs read ahead of the network when `processes` decode: enough to keep them busy, but no more
    than a quarter of the memory budget holds (4K pairs take GBs each)."""
    try:
        need = check_memory(jobs[0].source, jobs[0].guide)
    except RelightError:  # the first pair is bad: reported when it is read
        need = 0
    fits = pair_memory_budget()[0] // (4 * need) if need else processes
    return int(max(2, min(processes, fits)))


# ---- passing arrays between processes ----------------------------------------------------------


@dataclass(frozen=True)
class Parcel:
    """A picklable object whose arrays wait in a file of `folder` (None: they travel in `meta`)."""

    meta: bytes
    path: str | None = None
    spans: tuple[tuple[int, int], ...] = ()  # (offset, length) of each array's bytes in the file


def pack(obj: Any, folder: str | None) -> Parcel:
    """`obj` for another process: its arrays written to a file in `folder` (pickle protocol 5 hands
    them over without a copy), the rest pickled. Without a folder, or when it is full, all pickled."""
    if folder is None:
        return Parcel(pickle.dumps(obj, protocol=5))
    buffers: list[pickle.PickleBuffer] = []
    meta = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    try:
        fd, path = tempfile.mkstemp(dir=folder, suffix=".arrays")
    except OSError:  # the folder is gone or out of inodes
        return Parcel(pickle.dumps(obj, protocol=5))
    spans, at = [], 0
    try:
        with os.fdopen(fd, "wb", buffering=0) as f:
            for b in buffers:
                raw = b.raw()
                at += -at % _ALIGN
                f.seek(at)
                # a write, not a mapping: a full tmpfs is an OSError here, not a SIGBUS later; a write
                # cut short (the tmpfs filled up during it) is one too
                if f.write(raw) != raw.nbytes:
                    raise OSError(errno.ENOSPC, "no space left for the arrays", path)
                spans.append((at, raw.nbytes))
                at += raw.nbytes
    except OSError:
        os.unlink(path)
        return Parcel(pickle.dumps(obj, protocol=5))
    return Parcel(meta, path, tuple(spans))


# What a parcel may build: arrays, the read inputs' own types, paths and plain values. Parcels come from
# this program's own workers, but a worker decodes files from the internet: a decoder taken over there
# must not get to build arbitrary objects in the relighting process.
_PARCEL_CLASSES = {
    (c.__module__, c.__qualname__)
    for c in (Input, InputFiles, DepthMap, DepthOrigin, PosixPath, WindowsPath, PurePosixPath, PureWindowsPath)
}
_NUMPY_NAMES = {"_frombuffer", "_reconstruct", "dtype", "ndarray", "scalar"}
_BUILTIN_NAMES = {"tuple", "list", "dict", "str", "bytes", "bytearray", "int", "float", "bool", "complex"}


class _ParcelUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        numpy = module.split(".")[0] == "numpy" and name in _NUMPY_NAMES
        if numpy or (module, name) in _PARCEL_CLASSES or (module == "builtins" and name in _BUILTIN_NAMES):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"a parcel may not build {module}.{name}")


def _loads(meta: bytes, buffers: list[Any] | None = None) -> Any:
    return _ParcelUnpickler(io.BytesIO(meta), buffers=buffers).load()


def unpack(parcel: Parcel) -> Any:
    """The object of `parcel`, its arrays mapped from the file (copy-on-write: writable, no copy); the
    file is removed at once, the mapping lives as long as the arrays."""
    if parcel.path is None:
        return _loads(parcel.meta)
    try:
        with open(parcel.path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            mapped = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_COPY) if size else None
    finally:
        os.unlink(parcel.path)
    if mapped is None:  # only empty arrays: nothing to map
        return _loads(parcel.meta, buffers=[b"" for _ in parcel.spans])
    view = memoryview(mapped)
    return _loads(parcel.meta, buffers=[view[o : o + n] for o, n in parcel.spans])


def spool_folder() -> str | None:
    """A fresh folder for the parcels of one run: in /dev/shm (memory) where there is one, else the
    temporary folder (the page cache: the files live milliseconds). None on Windows, where a mapped file
    cannot be removed: arrays are pickled there."""
    if os.name != "posix":
        return None
    shm = Path("/dev/shm")
    where = str(shm) if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) else None
    try:
        return tempfile.mkdtemp(prefix="relight-batch-", dir=where)
    except OSError:
        return None


# ---- what the workers run -----------------------------------------------------------------------


def _read_in_worker(job: PairFiles, with_guide: bool, folder: str | None) -> Parcel:
    return pack(read_job(job, with_guide), folder)


def _write_in_worker(path: Path, image: Parcel, bit_depth: int) -> Path:
    return write_image(path, unpack(image), bit_depth)


def _leave_interrupt_to_parent() -> None:
    """Ctrl-C in a terminal reaches every process of its group: the relighting process stops the run
    and shuts the workers down (a worker interrupted itself would print its traceback and break the pool)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def _without_main() -> Iterator[None]:
    """Workers started in this block do not re-run the program's main module. A 'spawn' or 'forkserver'
    child imports it (Python's rule, for functions defined there); these workers only run this module's
    functions, and `relight`'s main imports torch: ~1 s and ~600 MB per worker for nothing. The
    interpreter's __main__ is a bare module for the few milliseconds the workers take to start; runs
    starting workers from two threads take turns (else the second would put back the first's bare one)."""
    with _MAIN_SWAP:
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            sys.modules["__main__"] = main


class IOWorkers:
    """Worker processes that read jobs and write results for one folder run. They are started from a
    fresh interpreter ('forkserver', else 'spawn'): the relighting process may hold CUDA, which a
    forked child cannot use. A worker that dies (a decoder crash, the out-of-memory killer) fails the
    pairs it had in hand; the next call starts new workers."""

    def __init__(self, processes: int):
        import multiprocessing

        methods = multiprocessing.get_all_start_methods()
        self._context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        self._processes = processes
        self._lock = threading.Lock()
        self._pool = self._start()
        self.folder = spool_folder()

    def _start(self) -> ProcessPoolExecutor:
        """A pool with all its workers started now, without the program's main module (see below)."""
        pool = ProcessPoolExecutor(self._processes, mp_context=self._context, initializer=_leave_interrupt_to_parent)
        try:
            with _without_main():
                # each submit finds no idle worker and starts one: all of them start here
                for _ in range(self._processes):
                    pool.submit(int)
        except BaseException:  # the workers started so far are not left behind
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        return pool

    def _call(self, fn: Callable[..., Any], *args: Any, about: Path) -> Any:
        with self._lock:
            pool = self._pool
        try:
            return pool.submit(fn, *args).result()
        except BrokenProcessPool:
            with self._lock:
                if self._pool is pool:  # the first to notice starts new workers
                    with suppress(OSError, RuntimeError):  # none can start now: the next pair tries again
                        self._pool = self._start()
            raise RelightError("the process working on it stopped unexpectedly (out of memory?)", about) from None

    def read(self, job: PairFiles, with_guide: bool) -> tuple[Input, Input | None]:
        """read_job() in a worker."""
        return unpack(self._call(_read_in_worker, job, with_guide, self.folder, about=job.source.image))  # type: ignore[no-any-return]

    def write(self, path: Path, image: np.ndarray, bit_depth: int) -> Path:
        """write_image() in a worker: the float image goes over as it is, the worker converts and encodes."""
        return self._call(_write_in_worker, path, pack(image, self.folder), bit_depth, about=path)  # type: ignore[no-any-return]

    def close(self) -> None:
        try:
            with self._lock:
                self._pool.shutdown(wait=True, cancel_futures=True)
        finally:  # a second Ctrl-C while waiting: the arrays left in memory go all the same
            if self.folder is not None:
                shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> IOWorkers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
