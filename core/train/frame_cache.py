"""A VIDIT-layout dataset decoded once into memory-mapped integer arrays.

Decoding PNGs in the loader workers cannot keep several GPUs busy. The frame cache decodes every
image once into one file of uint8 (or uint16) frames and one file of float32 depth maps; a training
sample is then a few slice copies out of the page cache, and the conversion to float and the flips
run on the GPU (`core.train.training.to_device`). The frames hold exactly what `read_image` returns
(uint8 for 8-bit sources; uint16, within 1/131070, for 16-bit or resized ones), so a run reads the
same numbers with or without the cache.

Layout of a cache folder: `frames.u8` or `frames.u16` (N, H, W, 3), `depth.f32` (M, H, W) and
`index.json` (written last: a folder without it is unfinished). Its name is a hash of the dataset's
file names, sizes and times and the resize, so a changed dataset gets a new cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from core.base.cancel import CancelToken
from core.base.errors import RelightError, clean, name_list
from core.base.progress import Progress
from core.inputs.layouts import VIDITIndex
from core.storage.io import read_depth, read_image

CACHE_VERSION = 1
Setting = tuple[int, str]
log = logging.getLogger("relight.cache")

# What this program writes under a cache root, by name: KEY/ (a cache), KEY.tmp-PID/ (a build in progress,
# or left by a killed one) and KEY.lock (held by the builder of KEY). Nothing else there is ours.
KEY_NAME = re.compile(r"[0-9a-f]{20}")
BUILD_NAME = re.compile(r"([0-9a-f]{20})\.tmp-(\d{1,10})")
LOCK_NAME = re.compile(r"([0-9a-f]{20})\.lock")
CACHE_FILES = ("index.json", "frames.u8", "frames.u16", "depth.f32")
MAX_INDEX_BYTES = 64 << 20
MAX_SIDE = 65536


def default_cache_root() -> Path:
    from core.base.logs import data_dir

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
    def open(cls, folder: Path) -> FrameCache:
        """The cache in `folder`, after checking that its index and files are what this program writes
        (any other content is refused with one line naming the folder and the problem)."""
        meta = _read_index(folder)
        dtype = {"uint8": np.uint8, "uint16": np.uint16}[meta["dtype"]]
        frames = {(s, (t, d)): i for i, (s, t, d) in enumerate(meta["frames"])}
        depth = {s: i for i, s in enumerate(meta["depth"])}
        if len(frames) != len(meta["frames"]) or len(depth) != len(meta["depth"]):
            raise RelightError("frame cache is damaged (its index names a frame twice)", folder)
        cache = cls(folder, tuple(meta["shape"]), dtype, frames, depth)
        h, w = cache.shape
        for f, expect in (
            (cache.frames_file, len(frames) * h * w * 3 * np.dtype(dtype).itemsize),
            (folder / "depth.f32", len(depth) * h * w * 4),
        ):
            size = _regular_size(f)
            if size != expect:
                what = "missing" if size is None else f"{size} bytes, not {expect}"
                raise RelightError(f"frame cache is damaged ({f.name} is {what})", folder)
        return cache

    def holds(self, keys: list[tuple[str, Setting]], scenes: list[str]) -> bool:
        """Whether every frame and depth map of a dataset is in the cache."""
        return all(k in self.frame_rows for k in keys) and all(s in self.depth_rows for s in scenes)


def _regular_size(path: Path) -> int | None:
    """The size of a regular file (not a link, FIFO or folder), else None."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def _read_index(folder: Path) -> dict:
    """index.json checked field by field: version, dtype, shape, frames, depth (and dataset, text)."""

    def bad(why: str) -> RelightError:
        return RelightError(f"frame cache is damaged ({why})", folder)

    path = folder / "index.json"
    size = _regular_size(path)
    if size is None:
        raise bad("no index.json")
    if size > MAX_INDEX_BYTES:
        raise bad(f"index.json is larger than {MAX_INDEX_BYTES >> 20} MB")
    try:
        meta = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # unreadable, not UTF-8, not JSON, too deep
        raise bad(f"index.json is not readable JSON: {type(exc).__name__}") from None
    if not isinstance(meta, dict):
        raise bad(f"index.json holds a {type(meta).__name__}, not a mapping")
    if meta.get("version") != CACHE_VERSION or isinstance(meta.get("version"), bool):
        raise bad(f"version {clean(repr(meta.get('version')))[:40]}, not {CACHE_VERSION}")
    if meta.get("dtype") not in ("uint8", "uint16"):
        raise bad("unknown frame type" if "dtype" in meta else "no frame type")

    def whole(v, lo: int, hi: int) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi

    shape = meta.get("shape")
    if not (isinstance(shape, list) and len(shape) == 2 and all(whole(v, 1, MAX_SIDE) for v in shape)):
        raise bad("no valid frame shape")
    frames, depth = meta.get("frames"), meta.get("depth")
    if not (
        isinstance(frames, list)
        and frames
        and all(
            isinstance(f, list)
            and len(f) == 3
            and isinstance(f[0], str)
            and whole(f[1], 0, 10**6)
            and isinstance(f[2], str)
            for f in frames
        )
    ):
        raise bad("no valid list of frames")
    if not (isinstance(depth, list) and depth and all(isinstance(d, str) for d in depth)):
        raise bad("no valid list of depth maps")
    if not isinstance(meta.get("dataset", ""), str):
        raise bad("the dataset is not a path")
    return meta


def _decode(index: VIDITIndex, scene: str, setting: Setting, resize: int | None) -> np.ndarray:
    return _resized(read_image(index.scenes[scene][setting]), resize)


def build_frame_cache(
    index: VIDITIndex,
    root: str | Path | None = None,
    resize: int | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    threads: int | None = None,
) -> FrameCache:
    """Open the cache of `index` under `root`, decoding the dataset into it first if needed.
    Processes that call this together (one per GPU) wait for one builder (a file lock)."""
    from concurrent.futures import ThreadPoolExecutor

    root = Path(root) if root else default_cache_root()
    root.mkdir(parents=True, exist_ok=True)
    folder = root / cache_key(index, resize)
    scenes = sorted(s for s in index.scenes if s in index.depth)
    keys = [(s, k) for s in scenes for k in sorted(index.scenes[s])]
    if not keys:
        raise RelightError("no scene has both images and depth", index.root)
    with open(root / f"{folder.name}.lock", "a+") as lock:
        _flock(lock, wait=True)  # released when the file closes, also if the builder dies
        if os.path.lexists(folder):
            try:
                cache = FrameCache.open(folder)
                if cache.holds(keys, scenes):
                    return cache
                raise RelightError("frame cache does not hold every frame of the dataset", folder)
            except RelightError as exc:
                try:  # under the lock: no one else reads it now
                    _delete_cache_folder(folder, must_be_valid=False)
                except (OSError, RelightError) as gone:
                    why = gone.detail if isinstance(gone, RelightError) else gone.strerror or str(gone)
                    raise RelightError(f"{exc.detail}; it cannot be rebuilt: {why}", folder) from None
                log.warning("%s; rebuilding it", exc)  # one line
        first = _decode(index, *keys[0], resize)
        h, w = first.shape[:2]
        dtype = np.uint8 if _as_uint8(first) is not None else np.uint16
        need = len(keys) * h * w * 3 * np.dtype(dtype).itemsize + len(scenes) * h * w * 4
        free = shutil.disk_usage(root).free
        if need + (1 << 30) > free:  # keep a gigabyte for everything else
            raise RelightError(
                f"the frame cache of this dataset needs {_size(need)}; {_size(free)} are free "
                "there, and 1 GB stays free (choose another cache folder)",
                root,
            )
        tmp = root / f"{folder.name}.tmp-{os.getpid()}"
        if os.path.lexists(tmp):  # left by a killed builder that had this process id
            _delete_cache_folder(tmp, must_be_valid=False)
        tmp.mkdir()
        try:
            suffix = "u8" if dtype == np.uint8 else "u16"
            fm = np.memmap(tmp / f"frames.{suffix}", dtype, "w+", shape=(len(keys), h, w, 3))
            dm = np.memmap(tmp / "depth.f32", np.float32, "w+", shape=(len(scenes), h, w))
            total = len(keys) + len(scenes)

            def put_frame(i: int) -> None:
                img = _decode(index, *keys[i], resize)
                if img.shape[:2] != (h, w):
                    raise RelightError(
                        f"is {img.shape[1]}x{img.shape[0]}, the dataset's first image "
                        f"{w}x{h}; give a resize to cache images of mixed sizes",
                        index.scenes[keys[i][0]][keys[i][1]],
                    )
                if dtype == np.uint16:
                    fm[i] = np.rint(img * 65535.0).astype(np.uint16)
                    return
                frame = _as_uint8(img)
                if frame is None:
                    raise RelightError(
                        "mixes 8-bit and 16-bit images; the frame cache needs one kind",
                        index.scenes[keys[i][0]][keys[i][1]],
                    )
                fm[i] = frame

            def put_depth(j: int) -> None:
                d = _resized(read_depth(index.depth[scenes[j]]).data, resize)
                if d.shape != (h, w):
                    raise RelightError(
                        f"depth is {d.shape[1]}x{d.shape[0]}, the images {w}x{h}", index.depth[scenes[j]]
                    )
                dm[j] = d

            done = 0
            with ThreadPoolExecutor(threads or min(16, os.cpu_count() or 2)) as pool:
                jobs = [pool.submit(put_frame, i) for i in range(len(keys))] + [
                    pool.submit(put_depth, j) for j in range(len(scenes))
                ]
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
            meta = {
                "version": CACHE_VERSION,
                "dataset": str(index.root),
                "resize": resize,
                "shape": [h, w],
                "dtype": np.dtype(dtype).name,
                "frames": [[s, t, d] for s, (t, d) in keys],
                "depth": scenes,
            }
            (tmp / "index.json").write_text(json.dumps(meta))
            if os.path.lexists(folder):  # damaged, unfinished or from an older version
                _delete_cache_folder(folder, must_be_valid=False)
            os.replace(tmp, folder)
        except BaseException:
            try:
                _delete_cache_folder(tmp, must_be_valid=False)
            except (OSError, RelightError):
                pass  # the error being raised says more; `relight cache clear` removes leftovers
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


def _delete_cache_folder(folder: Path, must_be_valid: bool) -> None:
    """Delete a folder this program wrote: a link in its place is unlinked (never followed); inside,
    only the files a cache holds are deleted, and a folder holding anything else is refused."""
    if folder.is_symlink() or not folder.is_dir():
        if folder.is_symlink():
            folder.unlink()
            return
        raise RelightError("is not a folder; not removed", folder)
    if must_be_valid:
        FrameCache.open(folder)
    names = os.listdir(folder)
    # a cache file's name on a link or a FIFO is unlinked like the file (no data goes); a folder is not
    others = [n for n in names if n not in CACHE_FILES or not (folder / n).is_symlink() and (folder / n).is_dir()]
    if others:
        raise RelightError(
            f"holds files this program did not write ({name_list(sorted(others), 3)}); not removed", folder
        )
    for n in names:
        (folder / n).unlink()  # a link among them is unlinked, its target left alone
    folder.rmdir()


def list_caches(root: str | Path | None = None) -> list[CacheEntry]:
    """The frame caches under `root` (default: the app's data folder) that check out as this program's;
    links are not followed and nothing else is listed."""
    root = Path(root) if root else default_cache_root()
    out = []
    for entry in _entries(root):
        if not (KEY_NAME.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False)):
            continue
        try:
            cache = FrameCache.open(Path(entry.path))
            meta = _read_index(cache.folder)
        except (OSError, RelightError):
            continue  # being written or damaged: not listed
        size = sum(_regular_size(cache.folder / n) or 0 for n in CACHE_FILES)
        out.append(CacheEntry(cache.folder, str(meta.get("dataset", "?")), len(cache.frame_rows), cache.shape, size))
    return out


def _entries(root: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(root) as it:
            return sorted(it, key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise RelightError(f"cannot list the cache folder ({exc.strerror or exc})", root) from None


@dataclass
class ClearReport:
    removed: list[CacheEntry] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)  # unfinished builds removed
    damaged: list[tuple[str, str]] = field(default_factory=list)  # (name, why) damaged caches removed
    busy: list[str] = field(default_factory=list)  # being built by a running process: kept
    failed: list[tuple[str, str]] = field(default_factory=list)  # (name, why): kept
    others: list[str] = field(default_factory=list)  # not this program's: never touched


def clear_caches(root: str | Path | None = None) -> ClearReport:
    """Delete the frame caches under `root` (damaged ones too) and the build folders a killed build left
    (KEY.tmp-PID/), but only what is provably this program's (a cache's name holding only a cache's
    files) and not being built right now (its lock is free). One bad entry is reported and the rest
    still cleared; links are never followed."""
    root = Path(root) if root else default_cache_root()
    report = ClearReport()
    entries = _entries(root)
    listed = {e.name: e for e in entries}
    caches = {c.folder.name: c for c in list_caches(root)}
    for entry in entries:
        name, path = entry.name, Path(entry.path)
        build = BUILD_NAME.fullmatch(name)
        if (KEY_NAME.fullmatch(name) or build) and entry.is_dir(follow_symlinks=False):
            key = build.group(1) if build else name
            try:
                with open(root / f"{key}.lock", "a+") as lock:
                    if not _flock(lock, wait=False) or (build and int(build.group(2)) == os.getpid()):
                        report.busy.append(name)
                        continue
                    damage = None
                    if not build and name not in caches:
                        try:
                            FrameCache.open(path)
                        except RelightError as exc:
                            damage = exc.detail
                    # a damaged cache is still this program's when it holds only a cache's files
                    _delete_cache_folder(path, must_be_valid=False)
                    if build:
                        report.leftovers.append(name)
                    elif damage:
                        report.damaged.append((name, clean(damage)))
                    else:
                        report.removed.append(caches.get(name) or CacheEntry(path, "?", 0, (0, 0), 0))
            except (OSError, RelightError) as exc:
                why = exc.detail if isinstance(exc, RelightError) else (exc.strerror or str(exc))
                report.failed.append((name, clean(why)))
        elif not LOCK_NAME.fullmatch(name):
            report.others.append(name)
    for name, entry in listed.items():  # lock files whose cache and builds are gone, when no one holds them
        m = LOCK_NAME.fullmatch(name)
        if (
            not m
            or not entry.is_file(follow_symlinks=False)
            or any(n == m.group(1) or n.startswith(m.group(1) + ".tmp-") for n in os.listdir(root))
        ):
            continue
        try:
            with open(entry.path, "a+") as lock:
                if _flock(lock, wait=False):
                    os.unlink(entry.path)
        except OSError:
            pass  # a lock file left is harmless
    return report


def remove_cache(folder: Path) -> None:
    """Delete one cache, unless a training run is building it right now (its lock is held)."""
    with open(folder.parent / f"{folder.name}.lock", "a+") as lock:
        if not _flock(lock, wait=False):
            raise RelightError("is being built by a running training; not removed", folder)
        _delete_cache_folder(folder, must_be_valid=True)
        os.unlink(folder.parent / f"{folder.name}.lock")
