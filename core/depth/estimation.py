"""Depth maps for photos that have none: a small estimator interface and Depth Anything V2 Small.

Depth Anything V2 (Yang et al. 2024) predicts *relative inverse depth*: larger = nearer, with an
unknown scale and shift. S3Net reads VIDIT's ``normalized_depth``: larger = farther, about 0.15-0.5
on typical scenes (our renderer writes camera depth / 30 m: 0.16-0.46 on the demo scene). The
conversion (``inverse_to_network_depth``) is explicit: the 1st-99th percentile range of the inverse
depth is normalised to n in [0, 1] (1 = nearest) and turned back into depth between NEAR and FAR,
``depth = 1 / (1/FAR + n (1/NEAR - 1/FAR))``, so nearest = 0.15, farthest = 0.5, and depth grows
like a real depth (not linearly in the inverse).

Weights are read from a local folder in ``save_pretrained`` layout (config.json,
model.safetensors, preprocessor_config.json), checked first (core.depth.network) and never downloaded
here (see core.depth.store).
Only the Small model is offered: Apache-2.0; Base/Large/Giant are CC-BY-NC.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import torch

from core.base.defaults import DEFAULTS
from core.base.device import pick_device
from core.base.errors import RelightError
from core.base.vocab import DEPTH_MODEL_NAME, DEPTH_MODEL_TITLE, DepthOrigin
from core.depth.network import build_model, check_model_folder
from core.storage.io import DepthMap

DEPTH_PRECISION = DEFAULTS.depth_precision
NEAR, FAR = 0.15, 0.5  # network depth of the nearest and the farthest point of an estimated map
DEPTH_MODEL_ENV = "RELIGHT_DEPTH_MODEL"


class DepthEstimator(Protocol):
    """Image in (float32 RGB (H, W, 3) in [0, 1]), depth map in the network's convention out."""

    name: str

    def estimate(self, image: np.ndarray) -> DepthMap: ...


def inverse_to_network_depth(inverse: np.ndarray, near: float = NEAR, far: float = FAR) -> np.ndarray:
    """Relative inverse depth (larger = nearer, any scale and shift) -> network depth (larger = farther)."""
    inv = np.asarray(inverse, np.float64)
    if not np.isfinite(inv).all():
        inv = np.nan_to_num(inv, nan=np.nanmin(inv[np.isfinite(inv)]) if np.isfinite(inv).any() else 0.0)
    lo, hi = np.percentile(inv, [1.0, 99.0])
    if hi - lo <= 1e-12 * max(1.0, abs(hi)):
        return np.full(inv.shape, (near + far) / 2, np.float32)  # a flat prediction: one depth everywhere
    n = np.clip((inv - lo) / (hi - lo), 0.0, 1.0)
    return (1.0 / (1.0 / far + n * (1.0 / near - 1.0 / far))).astype(np.float32)


def inverse_to_network_depth_torch(inverse: torch.Tensor, near: float = NEAR, far: float = FAR) -> torch.Tensor:
    """``inverse_to_network_depth`` as float32 torch ops on the tensor's own device, with no host sync
    (no data-dependent branch): NaN becomes the smallest finite value, +inf the largest, -inf the
    smallest; the percentiles are numpy's linear ones (two order statistics each)."""
    v = inverse.float()
    finite = torch.isfinite(v)
    # Python scalars, not new tensors: making a tensor from a number is a host-to-device copy, which
    # a CUDA graph cannot capture
    small = torch.where(finite, v, float("inf")).amin()
    big = torch.where(finite, v, float("-inf")).amax()
    small = torch.where(torch.isfinite(small), small, torch.zeros_like(small))  # nothing finite: 0 everywhere
    big = torch.where(torch.isfinite(big), big, small)
    v = torch.where(finite, v, torch.where(v > 0, big, small))  # +inf: the largest; -inf, NaN: the smallest
    lo, hi = _percentiles(v.reshape(-1), (1.0, 99.0))
    span = hi - lo
    is_flat = span <= 1e-12 * torch.clamp(hi.abs(), min=1.0)
    n = ((v - lo) / torch.where(is_flat, torch.ones_like(span), span)).clamp_(0.0, 1.0)
    depth = torch.reciprocal(n.mul_(1.0 / near - 1.0 / far).add_(1.0 / far))
    return torch.where(is_flat, torch.full_like(depth, (near + far) / 2), depth)


def _percentiles(flat: torch.Tensor, qs: tuple[float, ...], by_sort: bool | None = None) -> list[torch.Tensor]:
    """numpy's default ('linear') percentiles of a 1-D tensor, as 0-d tensors on its device: two
    order statistics each, by selection on the CPU (O(n)) and from one sort on a GPU (a multi-block
    radix sort; selection there runs in one thread block)."""
    n = flat.numel()
    by_sort = flat.device.type != "cpu" if by_sort is None else by_sort
    ordered = torch.sort(flat).values if by_sort else None

    def nth(k: int) -> torch.Tensor:  # the k-th smallest, 0-based
        return ordered[k] if ordered is not None else torch.kthvalue(flat, k + 1).values

    out = []
    for q in qs:
        pos = q / 100.0 * (n - 1)
        i = int(math.floor(pos))
        frac = pos - i
        a = nth(i)
        if frac == 0.0 or i + 1 >= n:
            out.append(a)
        else:
            b = nth(i + 1)
            out.append(a + (b - a) * frac)
    return out


def preprocess_reference(image: np.ndarray, size: tuple[int, int], mean, std) -> np.ndarray:
    """The network's input as the first release made it on the CPU (OpenCV bicubic resize, clip,
    normalise): (3, ih, iw) float32. Kept as the reference the torch path is tested against."""
    ih, iw = size
    x = cv2.resize(np.ascontiguousarray(image, np.float32), (iw, ih), interpolation=cv2.INTER_CUBIC)
    x = (np.clip(x, 0, 1) - np.array(mean, np.float32)) / np.array(std, np.float32)
    return x.transpose(2, 0, 1).copy()


def preprocess_torch(image: torch.Tensor, size: tuple[int, int], mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """``preprocess_reference`` as torch ops on the image's device: (H, W, 3) float32 -> (1, 3, ih, iw)
    float32. Bicubic like OpenCV's (a = -0.75, pixel centres, edge pixels repeated); no resize when
    the size is already the network's."""
    x = image.permute(2, 0, 1)[None]
    if tuple(size) != tuple(image.shape[:2]):
        x = torch.nn.functional.interpolate(x, size=tuple(size), mode="bicubic", align_corners=False)
    return ((x.clamp(0, 1) - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)).contiguous()


def default_model_dir() -> Path:
    from core.base.logs import data_dir

    return data_dir() / "models" / DEPTH_MODEL_NAME


def missing_model_message(start: str = "no depth model found") -> str:
    return (
        f"{start}; get {DEPTH_MODEL_TITLE} (Apache-2.0, about 99 MB) with "
        f"'relight models download {DEPTH_MODEL_NAME}', or give --depth-model DIR "
        f"(or set {DEPTH_MODEL_ENV})"
    )


class NoDepthModel(RelightError):
    """No depth model is installed or given (a RelightError: one line, exit code 2)."""


def is_model_dir(folder: Path) -> bool:
    """The folder holds the model's files (any kind of entry: a FIFO in their place is refused when read)."""
    return all((folder / n).exists() and not (folder / n).is_dir() for n in ("config.json", "model.safetensors"))


BACKBONE_SIZES = {384: "Small", 768: "Base", 1024: "Large", 1536: "Giant"}  # DINOv2 width -> model size


def _read_json(path: Path, limit: int = 1 << 20) -> dict:
    try:
        if path.stat().st_size > limit:
            raise RelightError("is too large for a model configuration", path)
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        raise RelightError("is not a readable JSON file (damaged or incomplete copy?)", path) from None
    if not isinstance(data, dict):
        raise RelightError("is not a model configuration (expected a JSON object)", path)
    return data


def depth_model_title(config: dict, folder: Path | None = None) -> str:
    """A depth model's name as its files say: the hub name it was saved from, else a Depth Anything
    folder name that agrees with the backbone's size, else the backbone's size."""
    import re

    hidden = (config.get("backbone_config") or {}).get("hidden_size")
    size = BACKBONE_SIZES.get(hidden) if isinstance(hidden, int) else None

    def title(name: str) -> str:
        words = [w for w in re.split(r"[-_ ]+", re.sub(r"[-_]hf$", "", name, flags=re.I)) if w]
        return " ".join(w.upper() if re.fullmatch(r"v\d+", w, re.I) else w[:1].upper() + w[1:] for w in words)

    name = str(config.get("_name_or_path") or "").rstrip("/").split("/")[-1]
    if name:
        return title(name)
    if (
        folder is not None
        and re.search(r"depth[-_ ]?anything", folder.name, re.I)
        and size
        and size.lower() in folder.name.lower()
    ):
        return title(folder.name)
    return f"Depth Anything {size}" if size else f"Depth Anything ({hidden or '?'}-wide backbone)"


def inspect_depth_model(folder: str | Path) -> str:
    """Check a depth model folder fully without loading the network (every file, field and weight
    shape, core.depth.network); -> its title as its files say. A damaged file is a RelightError naming it."""
    from core.depth.network import check_model_folder

    folder = Path(folder)
    check_model_folder(folder)
    return depth_model_title(_read_json(folder / "config.json"), folder)


def find_depth_model(explicit: str | Path | None = None) -> Path | None:
    """The depth model folder: `explicit` (must be valid), $RELIGHT_DEPTH_MODEL, then the app's data folder."""
    if explicit:
        folder = Path(explicit)
        if not is_model_dir(folder):
            raise RelightError(
                "not a depth model folder (expected config.json and model.safetensors as written by save_pretrained)",
                folder,
            )
        return folder
    env = os.environ.get(DEPTH_MODEL_ENV)
    if env:
        folder = Path(env)
        if not is_model_dir(folder):
            raise RelightError(f"{DEPTH_MODEL_ENV} does not point to a depth model folder", folder)
        return folder
    folder = default_model_dir()
    return folder if is_model_dir(folder) else None


class DepthAnything:
    """Depth Anything V2 (Small) through transformers, from a local folder, on a chosen device.

    The default path does every step as torch ops on the model's device: the image goes to the
    device once as float32, is resized (bicubic), clipped and normalised there, runs through the
    network (rewritten for inference by core.depth.fast; fp16 on CUDA when asked for), is resized
    back and converted to the network's depth convention there, and only the finished depth map
    comes back. On CUDA the whole chain is captured in a CUDA graph for an input shape seen twice
    (``graphs="auto"``; True: at once; False: never), and the image's cache key is computed on the
    CPU while the GPU works. ``fast=False`` is the first release's path (OpenCV resize and
    normalisation, float64 conversion on the CPU), kept for comparison (bench/depth.py, tests)."""

    name = DEPTH_MODEL_TITLE  # each instance: the name its config.json gives
    max_graphs = 2  # CUDA graphs kept (each holds its own activation memory), the least recently used dropped

    def __init__(
        self,
        folder: str | Path,
        device: str | torch.device = "auto",
        precision: str = "fp32",
        cache_size: int = 8,
        fast: bool = True,
        graphs: bool | str = "auto",
    ):
        self.folder = Path(folder)
        self.device = pick_device(device) if isinstance(device, str) else device
        self.dtype = torch.float16 if precision == "fp16" and self.device.type == "cuda" else torch.float32
        with _LOAD_LOCK:
            # every file, size and weight is checked before anything is built; the model is made from the
            # checked values and the local safetensors file alone (nothing can reach the network)
            try:
                spec = check_model_folder(self.folder)
                model = build_model(spec)
            except RelightError as exc:
                raise RelightError(f"cannot load the depth model: {exc}") from None
        self.spec = spec
        self.name = depth_model_title(_read_json(self.folder / "config.json"), self.folder)  # checked above
        self.pre = {"size": spec.size, "multiple": spec.multiple, "mean": spec.mean, "std": spec.std}
        self.fast = fast
        self.graphs = graphs if self.device.type == "cuda" else False
        if fast:  # rewritten in fp32 (layer scales folded before any rounding to fp16), then moved
            from core.depth.fast import prepare_for_inference

            self.rewritten = prepare_for_inference(model, self.device, self.dtype)
        self.model = model.to(self.device, self.dtype)
        self._mean = torch.tensor(spec.mean, dtype=torch.float32, device=self.device)
        self._std = torch.tensor(spec.std, dtype=torch.float32, device=self.device)
        self._cache: OrderedDict[str, DepthMap] = OrderedDict()
        self.cache_size = cache_size
        self._seen: dict[tuple, int] = {}  # input shapes met (CUDA graphs: captured at the second)
        self._graphs: OrderedDict[tuple, tuple] = OrderedDict()  # shape -> (graph, static input, static output)
        self._graph_failed = False
        self._lock = threading.Lock()  # folder mode reads (and estimates) in several threads

    def _input_size(self, h: int, w: int) -> tuple[int, int]:
        """Like the DPT processor with keep_aspect_ratio: one scale (the one nearer 1) for both sides,
        each side a multiple of the patch size and at least the configured size where scaled up."""
        size, m = self.pre["size"], self.pre["multiple"]
        sh, sw = size / h, size / w
        scale = sw if abs(1 - sw) < abs(1 - sh) else sh
        # a very long, thin image would give the attention a huge number of patches: at most the
        # patches of a 4:1 image at the configured size
        scale = min(scale, size * 2 / math.sqrt(h * w))
        return max(m, int(round(h * scale / m)) * m), max(m, int(round(w * scale / m)) * m)

    def estimate(self, image: np.ndarray) -> DepthMap:
        with self._lock:
            return self._estimate_fast(image) if self.fast else self._estimate(image)

    def clear_cache(self) -> None:
        self._cache.clear()

    def _cached(self, key: str) -> DepthMap | None:
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        return None

    def _remember(self, key: str, data: np.ndarray) -> DepthMap:
        depth = DepthMap(
            data,
            None,
            f"relative inverse depth mapped to {NEAR} (near) - {FAR} (far)",
            f"estimated ({self.name})",
            DepthOrigin.ESTIMATED,
        )
        self._cache[key] = depth
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return depth

    @torch.inference_mode()
    def _estimate(self, image: np.ndarray) -> DepthMap:
        """The first release's path: OpenCV resize and normalisation, float64 conversion on the CPU."""
        key = "ref:" + hashlib.blake2b(np.ascontiguousarray(image).view(np.uint8), digest_size=16).hexdigest()
        hit = self._cached(key)
        if hit is not None:
            return hit
        h, w = image.shape[:2]
        ih, iw = self._input_size(h, w)
        x = preprocess_reference(image, (ih, iw), self.pre["mean"], self.pre["std"])
        t = torch.from_numpy(x[None]).to(self.device, self.dtype)
        pred = self.model(pixel_values=t).predicted_depth  # (1, ih, iw) relative inverse depth
        pred = torch.nn.functional.interpolate(pred[:, None].float(), size=(h, w), mode="bicubic", align_corners=False)
        return self._remember(key, inverse_to_network_depth(pred[0, 0].cpu().numpy()))

    @staticmethod
    def _key(img: np.ndarray) -> str:
        # SHA-256 (hardware-accelerated on current x86 and ARM CPUs: ~3x BLAKE2b's speed here), with
        # the shape: two images of the same bytes and another shape are different images
        h = hashlib.sha256(repr(img.shape).encode())
        h.update(img.view(np.uint8).reshape(-1))
        return h.hexdigest()

    def _pipeline(self, image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """(H, W, 3) float32 image on the device -> (H, W) float32 network depth on the device."""
        h, w = image.shape[:2]
        x = preprocess_torch(image, size, self._mean, self._std).to(self.dtype)
        pred = self.model(pixel_values=x).predicted_depth[:, None].float()  # (1, 1, ih, iw) inverse depth
        if tuple(size) != (h, w):
            pred = torch.nn.functional.interpolate(pred, size=(h, w), mode="bicubic", align_corners=False)
        return inverse_to_network_depth_torch(pred[0, 0])

    def _graph(self, image: torch.Tensor, size: tuple[int, int]):
        """The CUDA graph of the whole chain for this image's shape (captured now if due), or None;
        `image` may be on the CPU (copied into the graph's input)."""
        shape = (tuple(image.shape), tuple(size))
        if shape in self._graphs:
            self._graphs.move_to_end(shape)
            return self._graphs[shape]
        self._seen[shape] = self._seen.get(shape, 0) + 1
        if self._graph_failed or (self.graphs == "auto" and self._seen[shape] < 2):
            return None
        try:
            static_in = torch.empty(image.shape, dtype=torch.float32, device=self.device)
            static_in.copy_(image)
            side = torch.cuda.Stream(self.device)  # type: ignore[no-untyped-call]
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                for _ in range(2):  # warm-up outside the capture (cuBLAS/cuDNN handles, workspaces)
                    self._pipeline(static_in, size)
            torch.cuda.current_stream(self.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            # thread_local: other threads (relighting, reading) may keep using the GPU meanwhile
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                static_out = self._pipeline(static_in, size)
        except Exception as exc:  # an op that cannot be captured: eager from now on
            import logging

            logging.getLogger(__name__).warning("depth: CUDA graph capture failed, running eagerly (%s)", exc)
            self._graph_failed = True
            return None
        self._graphs[shape] = (graph, static_in, static_out)
        while len(self._graphs) > self.max_graphs:
            self._graphs.popitem(last=False)
        return self._graphs[shape]

    @torch.inference_mode()
    def _estimate_fast(self, image: np.ndarray) -> DepthMap:
        img = np.ascontiguousarray(image, np.float32)
        h, w = img.shape[:2]
        size = self._input_size(h, w)
        cuda = self.device.type == "cuda"
        if not cuda:  # on the CPU the hash is ~1 % of the call: look in the cache first
            key = self._key(img)
            hit = self._cached(key)
            if hit is not None:
                return hit
        src = torch.from_numpy(img)
        if cuda:
            with torch.cuda.device(self.device):  # streams and graphs of the model's GPU, whichever is current
                captured = self._graph(src, size) if self.graphs else None
                if captured is not None:
                    graph, static_in, out = captured
                    static_in.copy_(src)  # straight into the graph's input
                    graph.replay()
                else:
                    out = self._pipeline(src.to(self.device), size)
                key = self._key(img)  # on the CPU while the GPU works (hashlib lets go of the interpreter lock)
                hit = self._cached(key)
                if hit is not None:
                    return hit
                data = out.cpu().numpy()  # the one wait for the device
        else:
            data = self._pipeline(src, size).numpy()
        return self._remember(key, np.ascontiguousarray(data, np.float32))


_LOADED: dict[tuple, DepthAnything] = {}
# Loads go one at a time: transformers' lazily imported classes fail ("cannot import name") when two
# threads import them at once, and two cards estimating together should share one model.
_LOAD_LOCK = threading.RLock()


def load_estimator(model_dir: str | Path | None = None, device: str = "auto", precision: str = "fp32") -> DepthAnything:
    """The estimator for `model_dir` (or the configured one), loaded once per process."""
    folder = find_depth_model(model_dir)
    if folder is None:
        raise NoDepthModel(missing_model_message())
    key = (str(folder.resolve()), str(device), precision)
    with _LOAD_LOCK:
        if key not in _LOADED:
            _LOADED.clear()  # one model in memory at a time
            _LOADED[key] = DepthAnything(folder, device, precision)
        return _LOADED[key]


class DepthFiller:
    """The one way a missing depth map is filled (``fill(input, role)``): the library, the command
    line, the batch runner and the app all use it. The model loads once, at the first input that
    needs it; safe to call from several reading threads; the estimate is checked to be the image's
    size. `notify` hears one line per estimated input."""

    def __init__(
        self,
        model_dir: str | Path | None = None,
        device: str = "auto",
        precision: str = DEPTH_PRECISION,
        notify=None,
    ):
        self.model_dir, self.device, self.precision, self.notify = model_dir, device, precision, notify
        self.estimator: DepthAnything | None = None
        self._lock = threading.Lock()

    def load(self) -> DepthAnything:
        with self._lock:
            if self.estimator is None:
                self.estimator = load_estimator(self.model_dir, self.device, self.precision)
            return self.estimator

    def __call__(self, inp, role: str, *, again: bool = False):
        """The input with its depth estimated when it has none (or always, with `again`)."""
        from dataclasses import replace

        from core.inputs.input import estimated_depth

        if inp.has_depth and not again:
            return inp
        try:
            estimator = self.load()
        except NoDepthModel:
            if inp.files is None:
                raise
            # the photo is named (a folder run lists one line per pair), and why it needed the model
            raise RelightError(
                missing_model_message("has no depth map, and no depth model to estimate one"), inp.files.image
            ) from None
        if self.notify is not None:
            self.notify(f"{role} {inp.name}: no depth map given, estimating it with {estimator.name}")
        return replace(inp, depth=estimated_depth(inp, estimator.estimate))


def estimate_depth(
    image: np.ndarray, model_dir: str | Path | None = None, device: str = "auto", precision: str = "fp32"
) -> DepthMap:
    """One call from Python: a depth map for `image` (float RGB in [0, 1]) in the network's convention."""
    if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1 or not math.isfinite(float(image.sum())):
        raise RelightError("estimate_depth needs a finite float RGB image (H, W, 3)")
    return load_estimator(model_dir, device, precision).estimate(image)
