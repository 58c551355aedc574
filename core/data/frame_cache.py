"""A VIDIT-layout dataset decoded once into memory-mapped integer arrays.

Decoding PNGs in the loader workers cannot keep several GPUs busy. The frame cache decodes every
image once into one file of uint8 (or uint16) frames and one file of float32 depth maps; a training
sample is then a few slice copies out of the page cache, and the conversion to float and the flips
run on the GPU (`core.training.to_device`). The frames hold exactly what `read_image` returns
(uint8 for 8-bit sources; uint16, within 1/131070, for 16-bit or resized ones), so a run reads the
same numbers with or without the cache.

Layout of a cache folder: `frames.u8` or `frames.u16` (N, H, W, 3), `depth.f32` (M, H, W) and
`index.json` (written last: a folder without it is unfinished). Its name is a hash of the dataset's
file names, sizes and times and the resize, so a changed dataset gets a new cache.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..cancel import CancelToken
from ..errors import RelightError
from ..io import read_depth, read_image
from ..progress import Progress
from .layouts import VIDITIndex

CACHE_VERSION = 1
Setting = tuple[int, str]


def default_cache_root() -> Path:
    from ..logs import data_dir

    return data_dir() / "dataset-cache"


def cache_key(index: VIDITIndex, resize: int | None) -> str:
    """Names the cache of this dataset state: every file's name, size and modification time."""
    h = hashlib.sha256(f"frame-cache v{CACHE_VERSION} resize={resize}\n{index.root.resolve()}\n".encode())
    files = [p for settings in index.scenes.values() for p in settings.values()] + list(index.depth.values())
    for p in sorted(files):
        st = p.stat()
        h.update(f"{p.name} {st.st_size} {st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def _flock(handle, wait: bool) -> bool:
    """Lock `handle` exclusively (released when it closes). Where the OS has no advisory locks
    (Windows) nothing is locked: one process per cache folder is then up to the user."""
    try:
        import fcntl
    except ImportError:
        return True
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        return True
    except OSError:
        return False


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"


def _resized(a: np.ndarray, resize: int | None) -> np.ndarray:
    if resize and a.shape[:2] != (resize, resize):
        a = cv2.resize(a, (resize, resize), interpolation=cv2.INTER_AREA)
    return a


def _as_uint8(img: np.ndarray) -> np.ndarray | None:
    """The uint8 frame when the float image is exactly k/255 everywhere (an 8-bit source), else None."""
    q = np.rint(img * 255.0)
    return q.astype(np.uint8) if np.array_equal(q.astype(np.float32) / 255.0, img) else None


@dataclass
class FrameCache:
    folder: Path
    shape: tuple[int, int]
    dtype: type
    frame_rows: dict[tuple[str, Setting], int]
    depth_rows: dict[str, int]

    def __post_init__(self):
        self._frames: np.memmap | None = None
        self._depth: np.memmap | None = None

    def __getstate__(self):  # loader workers map the files themselves
        state = self.__dict__.copy()
        state["_frames"] = state["_depth"] = None
        return state

    @property
    def frames_file(self) -> Path:
        return self.folder / ("frames.u8" if self.dtype == np.uint8 else "frames.u16")

    def _maps(self) -> tuple[np.memmap, np.memmap]:
        if self._frames is None:
            h, w = self.shape
            self._frames = np.memmap(self.frames_file, self.dtype, "r", shape=(len(self.frame_rows), h, w, 3))
            self._depth = np.memmap(self.folder / "depth.f32", np.float32, "r", shape=(len(self.depth_rows), h, w))
        return self._frames, self._depth

    def frame(self, scene: str, setting: Setting) -> np.ndarray:
        """(H, W, 3) integer frame, a view into the mapped file (slicing it reads only that window)."""
        return self._maps()[0][self.frame_rows[(scene, setting)]]

    def depth(self, scene: str) -> np.ndarray:
        return self._maps()[1][self.depth_rows[scene]]

    @classmethod
    def open(cls, folder: Path) -> "FrameCache":
        meta = json.loads((folder / "index.json").read_text())
        if meta.get("version") != CACHE_VERSION:
            raise RelightError(f"frame cache version {meta.get('version')} is not {CACHE_VERSION}", folder)
        dtype = {"uint8": np.uint8, "uint16": np.uint16}[meta["dtype"]]
        frames = {(s, (int(t), d)): i for i, (s, t, d) in enumerate(meta["frames"])}
        depth = {s: i for i, s in enumerate(meta["depth"])}
        cache = cls(folder, tuple(meta["shape"]), dtype, frames, depth)
        h, w = cache.shape
        expect = len(frames) * h * w * 3 * np.dtype(dtype).itemsize
        if not cache.frames_file.is_file() or cache.frames_file.stat().st_size != expect:
            raise RelightError("frame cache is damaged (frames file has the wrong size); delete it", folder)
        return cache


def _decode(index: VIDITIndex, scene: str, setting: Setting, resize: int | None) -> np.ndarray:
    return _resized(read_image(index.scenes[scene][setting]), resize)


def build_frame_cache(index: VIDITIndex, root: str | Path | None = None, resize: int | None = None,
                      progress: Progress | None = None, cancel: CancelToken | None = None,
                      threads: int | None = None) -> FrameCache:
    """Open the cache of `index` under `root`, decoding the dataset into it first if needed.
    Processes that call this together (one per GPU) wait for one builder (a file lock)."""
    from concurrent.futures import ThreadPoolExecutor

    root = Path(root) if root else default_cache_root()
    root.mkdir(parents=True, exist_ok=True)
    folder = root / cache_key(index, resize)
    with open(root / f"{folder.name}.lock", "a+") as lock:
        _flock(lock, wait=True)  # released when the file closes, also if the builder dies
        if (folder / "index.json").is_file():
            return FrameCache.open(folder)
        scenes = sorted(s for s in index.scenes if s in index.depth)
        keys = [(s, k) for s in scenes for k in sorted(index.scenes[s])]
        if not keys:
            raise RelightError("no scene has both images and depth", index.root)
        first = _decode(index, *keys[0], resize)
        h, w = first.shape[:2]
        dtype = np.uint8 if _as_uint8(first) is not None else np.uint16
        need = len(keys) * h * w * 3 * np.dtype(dtype).itemsize + len(scenes) * h * w * 4
        free = shutil.disk_usage(root).free
        if need + (1 << 30) > free:  # keep a gigabyte for everything else
            raise RelightError(f"the frame cache of this dataset needs {_size(need)}; {_size(free)} are free "
                               "there, and 1 GB stays free (choose another cache folder)", root)
        tmp = root / f"{folder.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            suffix = "u8" if dtype == np.uint8 else "u16"
            fm = np.memmap(tmp / f"frames.{suffix}", dtype, "w+", shape=(len(keys), h, w, 3))
            dm = np.memmap(tmp / "depth.f32", np.float32, "w+", shape=(len(scenes), h, w))
            total = len(keys) + len(scenes)

            def put_frame(i: int) -> None:
                img = _decode(index, *keys[i], resize)
                if img.shape[:2] != (h, w):
                    raise RelightError(f"is {img.shape[1]}x{img.shape[0]}, the dataset's first image "
                                       f"{w}x{h}; give a resize to cache images of mixed sizes",
                                       index.scenes[keys[i][0]][keys[i][1]])
                if dtype == np.uint16:
                    fm[i] = np.rint(img * 65535.0).astype(np.uint16)
                    return
                frame = _as_uint8(img)
                if frame is None:
                    raise RelightError("mixes 8-bit and 16-bit images; the frame cache needs one kind",
                                       index.scenes[keys[i][0]][keys[i][1]])
                fm[i] = frame

            def put_depth(j: int) -> None:
                d = _resized(read_depth(index.depth[scenes[j]]).data, resize)
                if d.shape != (h, w):
                    raise RelightError(f"depth is {d.shape[1]}x{d.shape[0]}, the images {w}x{h}", index.depth[scenes[j]])
                dm[j] = d

            done = 0
            with ThreadPoolExecutor(threads or min(16, os.cpu_count() or 2)) as pool:
                jobs = [pool.submit(put_frame, i) for i in range(len(keys))] + [pool.submit(put_depth, j) for j in range(len(scenes))]
                for job in jobs:
                    if cancel is not None and cancel.cancelled:
                        for j in jobs:
                            j.cancel()
                        cancel.check()
                    job.result()
                    done += 1
                    if progress and (done % 50 == 0 or done == total):
                        progress(done / total, f"decoding the dataset once: {done}/{total}")
            fm.flush()
            dm.flush()
            del fm, dm
            meta = {"version": CACHE_VERSION, "dataset": str(index.root), "resize": resize, "shape": [h, w],
                    "dtype": np.dtype(dtype).name, "frames": [[s, t, d] for s, (t, d) in keys], "depth": scenes}
            (tmp / "index.json").write_text(json.dumps(meta))
            shutil.rmtree(folder, ignore_errors=True)  # an unfinished folder from an older tool
            os.replace(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return FrameCache.open(folder)


@dataclass
class CacheEntry:
    folder: Path
    dataset: str
    frames: int
    shape: tuple[int, int]
    bytes: int

    def describe(self) -> str:
        h, w = self.shape
        return f"{self.folder.name}: {self.dataset}, {self.frames} frames of {w}x{h}, {_size(self.bytes)}"


def list_caches(root: str | Path | None = None) -> list[CacheEntry]:
    """The finished frame caches under `root` (default: the app's data folder)."""
    root = Path(root) if root else default_cache_root()
    out = []
    for index in sorted(root.glob("*/index.json")) if root.is_dir() else []:
        try:
            meta = json.loads(index.read_text())
            size = sum(f.stat().st_size for f in index.parent.iterdir() if f.is_file())
            out.append(CacheEntry(index.parent, str(meta.get("dataset", "?")), len(meta.get("frames", [])),
                                  tuple(meta.get("shape", (0, 0))), size))
        except (OSError, ValueError, TypeError):
            continue  # being written or damaged: not listed
    return out


def remove_cache(folder: Path) -> None:
    """Delete one cache, unless a training run is building it right now (its lock is held)."""
    with open(folder.parent / f"{folder.name}.lock", "a+") as lock:
        if not _flock(lock, wait=False):
            raise RelightError("is being built by a running training; not removed", folder)
        shutil.rmtree(folder)
    (folder.parent / f"{folder.name}.lock").unlink(missing_ok=True)
