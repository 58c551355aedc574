"""The inference engine used by the CLI and the GUI: padding, precision, large images, cancel.

One Relighter may be shared by several threads (the app's preview, its relight and its batch): each
forward pass, with its upload buffer and the fast path's static graph input, runs under the
relighter's lock, so concurrent callers never see each other's inputs or outputs."""

from __future__ import annotations

import contextlib
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from core.base.cancel import BackgroundThreads, CancelToken
from core.base.defaults import DEFAULTS, use_fast_path
from core.base.device import MULTIPLE, autocast, pad_to_multiple, pick_device, resolve_precision
from core.base.errors import RelightError
from core.base.progress import Progress
from core.base.vocab import OUTPUT_MODES, CheckpointFormat, OutputMode, Precision, checked
from core.engine.compose import ComposeSettings, exposure_kept
from core.engine.compose import compose as compose_output
from core.engine.gainmap import carry_to_full_resolution
from core.model import S3Net
from core.storage.checkpoint import CheckpointInfo, load_checkpoint
from core.storage.io import DepthMap

__all__ = ["MULTIPLE", "Relighter", "RelightResult", "pad_to_multiple", "pick_device", "working_shape"]
DEFAULT_WORKING_SIDE = 1024  # the official weights were trained on 1024x1024 VIDIT images


def working_shape(h: int, w: int, pixels: int) -> tuple[int, int]:
    """(width, height) of about `pixels` with the image's aspect, for the network's working size.

    Sides snap down to a grid (32 px; 64 px from about 0.6 MP), so images of similar shape share one
    network shape: the fast path compiles once per bucket, not per image, and a folder of mixed sizes
    batches. The stretch this adds (under one grid step) is undone when the result is carried back
    to the source's size."""
    step = 64 if pixels >= 768 * 768 else MULTIPLE
    scale = math.sqrt(pixels / (h * w))
    return max(step, int(w * scale) // step * step), max(step, int(h * scale) // step * step)


def default_max_pixels(device: torch.device) -> int:
    """Full-resolution budget: above it the network runs at a working resolution (gain-map mode)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        # about 1 GiB per megapixel of peak activation memory in fp32 eager inference
        return int(max(1.0, min(16.0, free / 2**30 * 0.5)) * 2**20)
    return int(1.5 * 2**20)


def pack_inputs(items: list[list[np.ndarray]], out: np.ndarray) -> np.ndarray:
    """[[source, guide, source_depth, guide_depth], ...] ((H, W, C) or (H, W) arrays) written into
    `out` (N, channels, H, W) float32: one strided pass per array (half the time of a transposed copy
    and a concatenation, for a 1024² pair 3.5 ms instead of 7.2 ms on one core)."""
    for k, item in enumerate(items):
        c = 0
        for a in item:
            if a.ndim == 2:
                out[k, c] = a
                c += 1
            else:
                out[k, c : c + a.shape[2]] = a.transpose(2, 0, 1)
                c += a.shape[2]
    return out


@dataclass
class RelightResult:
    image: np.ndarray  # float32 (H, W, 3) in [0, 1]
    mode: str  # "full", "gain-map" or "detail": what ran
    working_size: tuple[int, int]  # (width, height) the network ran at
    seconds: float
    device: str
    precision: str
    model: str
    compose: ComposeSettings | None = None  # detail mode: how the light was carried onto the source

    def describe(self) -> str:
        w, h = self.working_size
        kept = f", {exposure_kept(self.compose)}" if self.compose is not None else ""
        where = {
            "full": "full resolution (the network's own image)",
            "gain-map": f"working resolution {w}x{h} + gain map",
            "detail": f"detail-preserving: the network's light at {w}x{h} on the source's own colours and detail{kept}",
        }[self.mode]
        return f"{self.model} on {self.device} ({self.precision}), {where}, {self.seconds:.2f} s"


@contextlib.contextmanager
def _stage_hooks(model: S3Net, cancel: CancelToken | None, report: Callable[[int, int], None] | None):
    """Check the cancel token and report progress before each major stage of the forward pass."""
    enc = model.encoder
    stages = [getattr(enc, n) for n in ("layer1", "layer2", "layer3") if hasattr(enc, n)]
    stages += [model.mid_conv, model.attention1, model.attention2, model.enhancer, model.tail]
    handles = []
    for i, mod in enumerate(stages):

        def hook(_m, _inp, i=i):
            if cancel is not None:
                cancel.check()
            if report is not None:
                report(i, len(stages))

        handles.append(mod.register_forward_pre_hook(hook))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


class Relighter:
    """Runs an S3Net on (source, guide, source depth, guide depth) arrays of any size."""

    def __init__(
        self,
        model: S3Net,
        info: CheckpointInfo | None = None,
        device: str | torch.device = "auto",
        precision: str = Precision.FP32,  # the engine as built; every face passes DEFAULTS.precision
        max_pixels: int | None = None,
        accelerate: bool | None = False,
    ):
        self.device = pick_device(device) if isinstance(device, str) else device
        self.precision = resolve_precision(precision, self.device)
        self.info = info
        self.model = model.eval().to(self.device)
        # channels_last: faster convolutions on CUDA and on CPU (2x for s3net-lite at 512^2 on 2 cores)
        self.channels_last = self.device.type in ("cuda", "cpu")
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.max_pixels = max_pixels or default_max_pixels(self.device)
        # CUDA only: folded BatchNorm + fp16 + CUDA graphs (see core.engine.accel); ~50 dB PSNR vs fp32.
        self.graphed = None
        if use_fast_path(accelerate, self.device.type):
            from core.engine.accel import CompiledS3Net, GraphedS3Net

            # the CUDA graph serves at once; the compiled graph takes over per shape when ready
            self.graphed = CompiledS3Net(GraphedS3Net(self.model, self.device))
        # CUDA: inputs are assembled in a reused page-locked buffer, copied to the GPU by DMA
        self.pin_memory = self.device.type == "cuda"
        self._pinned: tuple[torch.Tensor, torch.cuda.Event] | None = None
        # one forward pass at a time: the upload buffer, the graphs' static inputs and the stage
        # hooks on the shared model belong to the pass that holds it
        self._lock = threading.RLock()

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, device: str = DEFAULTS.device, precision: str = Precision.FP32, **kw
    ) -> Relighter:
        model, info = load_checkpoint(path)
        return cls(model, info, device=device, precision=precision, **kw)

    @property
    def background(self) -> BackgroundThreads | None:
        """Threads the engine runs on its own (the fast path's compile): cancel and join them on exit."""
        return self.graphed.background if self.graphed is not None else None

    @property
    def precision_label(self) -> str:
        return self.graphed.label if self.graphed is not None else self.precision

    @property
    def working_pixels(self) -> int | None:
        """The image area the model was trained at (detail mode runs the network there), or None
        when the checkpoint does not say (then detail mode runs it at the image's own size)."""
        if self.info is None:
            return None
        if self.info.format is CheckpointFormat.OFFICIAL:
            return DEFAULT_WORKING_SIDE**2
        side = self.info.metadata.get("working_size")
        if isinstance(side, str) and re.fullmatch(r"[0-9]{1,5}", side.strip()):  # written as text by another tool
            side = int(side)
        if isinstance(side, bool) or not isinstance(side, (int, float)) or not MULTIPLE <= side <= 16384:
            return None
        return int(side) ** 2

    @property
    def default_mode(self) -> str:
        """What 'auto' runs for this checkpoint: its recorded recommendation; the official weights
        give their own output (full resolution), other checkpoints the colour-true detail output."""
        if self.info is None:
            return "detail"
        if self.info.format is CheckpointFormat.OFFICIAL:
            return OutputMode.FULL
        mode = self.info.metadata.get("output_mode")
        return mode if mode in OUTPUT_MODES and mode != "auto" else "detail"

    @property
    def model_name(self) -> str:
        return self.info.name if self.info else "S3Net"

    def _autocast(self):
        return autocast(self.precision, self.device)

    def _upload(self, items: list[list[np.ndarray]]) -> torch.Tensor:
        """[[source, guide, source_depth, guide_depth], ...] -> the packed (N, 8, H, W) float32
        network input on the device (padding to a multiple of 32 happens there)."""
        first = items[0]
        shape = (len(items), sum(a.shape[2] if a.ndim == 3 else 1 for a in first), *first[0].shape[:2])
        if not self.pin_memory:
            return torch.from_numpy(pack_inputs(items, np.empty(shape, np.float32))).to(self.device)
        if self._pinned is None or tuple(self._pinned[0].shape) != shape:
            self._pinned = (torch.empty(shape, pin_memory=True), torch.cuda.Event())
        buf, copied = self._pinned
        copied.synchronize()  # the previous upload from this buffer has finished
        pack_inputs(items, buf.numpy())
        x = buf.to(self.device, non_blocking=True)
        copied.record(torch.cuda.current_stream(self.device))
        return x

    @torch.inference_mode()
    def run_network(self, source, guide, source_depth, guide_depth, cancel=None, report=None) -> np.ndarray:
        """Network at the arrays' own size (padded to a multiple of 32 and cropped back)."""
        if self.graphed is not None and cancel is not None:
            cancel.check()
        out: np.ndarray = self._forward([[source, guide, source_depth, guide_depth]], cancel, report)[0]
        return out

    def relight(
        self,
        source: np.ndarray,
        guide: np.ndarray,
        source_depth: np.ndarray | DepthMap,
        guide_depth: np.ndarray | DepthMap,
        *,
        mode: str = "auto",
        compose: ComposeSettings | None = None,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> RelightResult:
        """mode: 'detail' (the default 'auto'): the network at the model's working size, its
        lighting carried onto the source's own detail; 'full': the network's image at full resolution
        (falls back to detail above the pixel budget or on CUDA out-of-memory); 'gain-map': the
        network at the budget's working resolution + the guided-filter gain map."""
        t0 = time.perf_counter()
        sd = source_depth.data if isinstance(source_depth, DepthMap) else np.asarray(source_depth, np.float32)
        gd = guide_depth.data if isinstance(guide_depth, DepthMap) else np.asarray(guide_depth, np.float32)
        if sd.shape != source.shape[:2]:
            raise RelightError(
                f"source depth is {sd.shape[1]}x{sd.shape[0]} but the source is {source.shape[1]}x{source.shape[0]}"
            )
        if gd.shape != guide.shape[:2]:
            raise RelightError(
                f"guide depth is {gd.shape[1]}x{gd.shape[0]} but the guide is {guide.shape[1]}x{guide.shape[0]}"
            )
        h, w = source.shape[:2]
        if guide.shape[:2] != (h, w):
            # The guide only carries the lighting; bring it to the source's size.
            guide = cv2.resize(guide, (w, h), interpolation=cv2.INTER_AREA)
            gd = cv2.resize(gd, (w, h), interpolation=cv2.INTER_LINEAR)
        notify = progress or (lambda f, m: None)
        mode = checked(OutputMode, mode, "mode")
        if mode == "auto":
            mode = self.default_mode
        settings = compose or ComposeSettings()
        budget = self.max_pixels
        if mode == "full" and h * w > budget:
            mode = "detail"
        while True:
            try:
                if mode == "full":
                    out, size, ran = self._run_full(source, guide, sd, gd, cancel, notify)
                elif mode == "gain-map":
                    out, size, ran = self._run_working(
                        source, guide, sd, gd, budget, cancel, notify, "gain-map", settings
                    )
                else:
                    pixels = min(self.working_pixels or h * w, budget)
                    out, size, ran = self._run_working(
                        source, guide, sd, gd, pixels, cancel, notify, "detail", settings
                    )
                break
            except torch.cuda.OutOfMemoryError:
                if self.device.type != "cuda" or budget < 256 * 256:
                    raise RelightError("out of GPU memory; try --device cpu or a smaller image") from None
                torch.cuda.empty_cache()
                budget = min(budget, h * w) // 2
                mode = "detail" if mode == "full" else mode
                notify(0.0, f"out of GPU memory, retrying with the network at {budget / 2**20:.1f} MP")
        notify(1.0, "done")
        return RelightResult(
            out,
            ran,
            size,
            time.perf_counter() - t0,
            str(self.device),
            self.precision_label,
            self.model_name,
            settings if ran == "detail" else None,
        )

    def relight_many(
        self,
        pairs: list[tuple],
        *,
        mode: str = "auto",
        compose: ComposeSettings | None = None,
        batch_size: int = 4,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> list[RelightResult]:
        """Relight a list of (source, guide, source_depth, guide_depth) tuples; the same results as
        relight() with the same mode.

        In full and detail modes, consecutive same-size pairs run as one batch through the network
        (at full resolution, or at the model's working size) while the batch fits the pixel budget;
        the others go through relight() one by one."""
        notify = progress or (lambda f, m: None)
        results: list[RelightResult | None] = [None] * len(pairs)
        mode = self.default_mode if mode == "auto" else mode
        settings = compose or ComposeSettings()
        i = 0
        while i < len(pairs):
            if cancel is not None:
                cancel.check()
            src, gui, sd, gd = pairs[i]
            h, w = src.shape[:2]
            ww, wh = self._working_size(h, w, mode)
            group = [i]
            # grow the batch while the whole batch stays within the pixel budget
            while (
                mode in ("full", "detail")
                and len(group) < batch_size
                and group[-1] + 1 < len(pairs)
                and (len(group) + 1) * ww * wh * (2 if mode == "detail" else 1) <= self.max_pixels
                and all(a.shape[:2] == (h, w) for a in pairs[group[-1] + 1])
            ):
                group.append(group[-1] + 1)
            if len(group) == 1:
                results[i] = self.relight(src, gui, sd, gd, mode=mode, compose=settings, cancel=cancel)
            else:
                t0 = time.perf_counter()
                arrays = [[a.data if isinstance(a, DepthMap) else a for a in pairs[j]] for j in group]
                if (ww, wh) != (w, h):
                    arrays = [[cv2.resize(a, (ww, wh), interpolation=cv2.INTER_AREA) for a in item] for item in arrays]
                if mode == "detail":  # each pair with its reference (the source as its own guide), one batch
                    both = self.run_batch(arrays + [[a[0], a[0], a[2], a[2]] for a in arrays], cancel)
                    outs = [
                        compose_output(pairs[j][0], arrays[k][0], both[k], settings, both[len(group) + k])
                        for k, j in enumerate(group)
                    ]
                else:
                    outs = self.run_batch(arrays, cancel)
                dt = (time.perf_counter() - t0) / len(group)
                for j, out in zip(group, outs):
                    results[j] = RelightResult(
                        out,
                        mode,
                        (ww, wh),
                        dt,
                        str(self.device),
                        self.precision_label,
                        self.model_name,
                        settings if mode == "detail" else None,
                    )
            i = group[-1] + 1
            notify(i / len(pairs), f"relit {i} of {len(pairs)}")
        return results  # type: ignore[return-value]

    def _working_size(self, h: int, w: int, mode: str, pixels: int | None = None) -> tuple[int, int]:
        """(width, height) the network runs at for an h x w image in this mode."""
        if mode == "full":
            return w, h
        if pixels is None:
            pixels = min(self.working_pixels or h * w, self.max_pixels) if mode == "detail" else self.max_pixels
        if pixels >= h * w and (mode != "detail" or self.working_pixels is None):
            # within the budget: the gain map never runs the network above the image's size, and a
            # model without a working size runs at the image's own (padded to a multiple of 32)
            return w, h
        return working_shape(h, w, pixels)

    @torch.inference_mode()
    def run_batch(
        self,
        arrays: list[list[np.ndarray]],
        cancel: CancelToken | None = None,
        report: Callable[[int, int], None] | None = None,
    ) -> list[np.ndarray]:
        """One forward pass over same-size pairs [[source, guide, source_depth, guide_depth], ...]."""
        return list(self._forward(arrays, cancel, report))

    @torch.inference_mode()
    def _forward(self, arrays, cancel, report) -> np.ndarray:
        """(N, H, W, 3) network outputs for same-size pairs; the whole pass holds the lock."""
        with self._lock:
            x, (h, w) = pad_to_multiple(self._upload(arrays))
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            if self.graphed is not None:
                y = self.graphed(x)
            else:
                with self._autocast(), _stage_hooks(self.model, cancel, report):
                    y = self.model.forward_packed(x)
            # copied to the host before the lock is let go: the next pass reuses the graph's output;
            # laid out (N, H, W, 3) on the device, so the host gets a contiguous array for what follows
            out: np.ndarray = y[..., :h, :w].float().clamp_(0, 1).permute(0, 2, 3, 1).contiguous().cpu().numpy()
            return out

    def _report(self, notify: Progress, lo: float, hi: float):
        return lambda i, n: notify(lo + (hi - lo) * i / n, f"network stage {i + 1}/{n}")

    def _run_full(self, source, guide, sd, gd, cancel, notify):
        h, w = source.shape[:2]
        notify(0.05, f"relighting at full resolution {w}x{h}")
        out = self.run_network(source, guide, sd, gd, cancel, self._report(notify, 0.05, 0.95))
        return out, (w, h), "full"

    def _run_working(self, source, guide, sd, gd, pixels, cancel, notify, carry: str, settings: ComposeSettings):
        h, w = source.shape[:2]
        ww, wh = self._working_size(h, w, carry, pixels)
        if (ww, wh) == (w, h):
            src_w, gui_w, sd_w, gd_w = source, guide, sd, gd
        else:
            src_w, gui_w, sd_w, gd_w = (
                cv2.resize(a, (ww, wh), interpolation=cv2.INTER_AREA) for a in (source, guide, sd, gd)
            )
        notify(0.02, f"relighting at working resolution {ww}x{wh}")
        reference_w = None
        if carry == "gain-map":
            relit_w = self.run_network(src_w, gui_w, sd_w, gd_w, cancel, self._report(notify, 0.05, 0.85))
        else:  # one batch: the source under the guide's light, and under its own (the reference)
            if cancel is not None:
                cancel.check()
            relit_w, reference_w = self.run_batch(
                [[src_w, gui_w, sd_w, gd_w], [src_w, src_w, sd_w, sd_w]], cancel, self._report(notify, 0.05, 0.85)
            )
        if cancel is not None:
            cancel.check()
        notify(
            0.9, "carrying the relighting to full resolution" if carry == "gain-map" else "keeping the source's detail"
        )
        if carry == "gain-map":
            out = carry_to_full_resolution(source, src_w, relit_w)
        else:
            out = compose_output(source, src_w, relit_w, settings, reference_w)
        return out, (ww, wh), carry
