"""The S3Net training loop: one implementation driven by the CLI (`relight train`) and the GUI.

Reports through callbacks, stops safely on a cancel token (finishes the step, writes a
checkpoint), resumes exactly from ``RUN/state.pt`` (model, optimiser, scheduler, scaler,
step, data position), and runs under ``torchrun`` with DistributedDataParallel.
"""

from __future__ import annotations

import glob
import io
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, Sampler

from core.base.cancel import CancelToken
from core.base.device import AUTOCAST, pad_to_multiple, pick_device
from core.base.errors import RelightError, clean, name_list
from core.base.progress import Progress
from core.base.vocab import PRECISIONS, Init, Precision
from core.model import PRESETS, S3Net, adds_colour_path, create_model, with_colour_path
from core.storage.checkpoint import load_checkpoint, read_state_dict, save_checkpoint
from core.storage.io import atomic_write_bytes
from core.storage.safe_load import check_regular, read_regular
from core.storage.weights import find_res2net, find_vgg19, load_imagenet_encoder
from core.train.graph_step import GraphedStep
from core.train.losses import LossWeights, RelightLoss
from core.train.metrics import psnr, ssim

log = logging.getLogger("relight.train")


def _short(value) -> str:
    """A value as a message may quote it: short, on one line, safe for nested or self-referencing data."""
    import reprlib

    r = reprlib.Repr()
    r.maxlevel, r.maxstring, r.maxother, r.maxlist, r.maxdict, r.maxlong = 2, 40, 40, 4, 4, 40
    return clean(r.repr(value))


def _show(value) -> str:
    if isinstance(value, str):
        return "the text " + _short(value)
    return _short(value) if isinstance(value, (bool, int, float)) else f"{type(value).__name__} {_short(value)}"


@dataclass(frozen=True)
class Setting:
    """What one TrainConfig field may hold: its type, its range (ends open or closed), its choices,
    whether None is allowed, and a value that means "off" outside the range (crop 0)."""

    kind: type | str  # int, float, bool, str, or "pair" (two floats)
    low: float | None = None
    high: float | None = None
    optional: bool = False
    choices: tuple[str, ...] = ()
    off: int | None = None
    open_low: bool = False
    open_high: bool = False

    def check(self, name: str, value, path: Path | None = None) -> None:
        problem = self.problem(name, value)
        if problem:
            raise RelightError(problem, path)

    def problem(self, name: str, value) -> str | None:
        if value is None:
            return None if self.optional else f"{name} must be set, not null"
        if self.kind == "pair":
            if not isinstance(value, (list, tuple)) or len(value) != 2:
                return f"{name} must be two numbers, not {_show(value)}"
            for v in value:
                bad = self._number(name, v, float)
                if bad:
                    return bad
            return None
        if self.kind is bool:
            return None if isinstance(value, bool) else f"{name} must be true or false, not {_show(value)}"
        if self.kind is str:
            if not isinstance(value, str):
                return f"{name} must be text, not {_show(value)}"
            if len(value) > 4096 or "\0" in value:
                return f"{name} is not a usable name (over 4096 characters or a NUL character)"
            if self.choices and value not in self.choices:
                return f"unknown {name} {_short(value)} (use {', '.join(self.choices)})"
            return None
        return self._number(name, value, self.kind)

    def _number(self, name: str, value, kind) -> str | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{name} must be a {'whole ' if kind is int else ''}number, not {_show(value)}"
        if kind is int and not isinstance(value, int):
            return f"{name} must be a whole number, not {_show(value)}"
        if not math.isfinite(value):
            return f"{name} must be a finite number, not {_show(value)}"
        if self.off is not None and value == self.off:
            return None
        if self.low is not None and (value < self.low or (self.open_low and value == self.low)):
            return f"{name} must be {'more than' if self.open_low else 'at least'} {self.low:g}, not {_show(value)}"
        if self.high is not None and (value > self.high or (self.open_high and value == self.high)):
            return f"{name} must be {'less than' if self.open_high else 'at most'} {self.high:g}, not {_show(value)}"
        return None


_STEPS = 1e9


def training_precision(device: torch.device) -> str:
    """What precision 'auto' trains in on `device`: bf16 where the GPU computes it natively (compute
    capability 8.0 and later: A100, H100, H200, RTX 30xx on), fp32 elsewhere (emulated bf16 is slower)."""
    if device.type != "cuda":
        return "fp32"
    return "bf16" if torch.cuda.get_device_capability(device)[0] >= 8 else "fp32"


def _not_the_same_run(setting: str, was: object, now: object, out: str | Path) -> RelightError:
    return RelightError(
        f"the run was started with {setting} '{was}'; resuming with '{now}' is not "
        "the same run (start a new one, e.g. with --init from its checkpoint)",
        Path(out),
    )


# The one table of what a run's settings may hold: config.json, --config YAML, resume, the CLI and the app.
SETTINGS: dict[str, Setting] = {
    "data": Setting(str),
    "out": Setting(str),
    "preset": Setting(str, choices=tuple(PRESETS)),
    "init": Setting(str),
    "imagenet_weights": Setting(str, optional=True),
    "freeze_encoder": Setting(bool),
    "epochs": Setting(int, 1, 1e6),
    "steps": Setting(int, 1, _STEPS, optional=True),
    "batch": Setting(int, 1, 4096),
    "crop": Setting(int, 32, 8192, optional=True, off=0),
    "resize": Setting(int, 32, 8192, optional=True, off=0),
    "hflip": Setting(bool),
    "same_scene_guide": Setting(bool),
    "val_fraction": Setting(float, 0, 1, open_high=True),
    "val_data": Setting(str, optional=True),
    "val_limit": Setting(int, 0, 1e6),
    "lr": Setting(float, 0, 1, open_low=True, open_high=True),
    "betas": Setting("pair"),
    "weight_decay": Setting(float, 0, 10),
    "decay_every_epochs": Setting(int, 1, 1e6),
    "decay_every_steps": Setting(int, 1, _STEPS, optional=True),
    "decay_gamma": Setting(float, 0, 1, open_low=True),
    "loss_charbonnier": Setting(float, 0, 1000),
    "loss_wssim": Setting(float, 0, 1000),
    "loss_perceptual": Setting(float, 0, 1000),
    "loss_colour": Setting(float, 0, 1000),
    "vgg_weights": Setting(str, optional=True),
    "precision": Setting(str, choices=("auto", *PRECISIONS)),
    "grad_clip": Setting(float, 0, 1e6, optional=True, open_low=True),
    "seed": Setting(int, 0, 2**32 - 1),
    "val_every": Setting(int, 1, _STEPS, optional=True),
    "ckpt_every": Setting(int, 1, _STEPS, optional=True),
    "log_every": Setting(int, 1, _STEPS),
    "num_workers": Setting(int, 0, 256),
    "frame_cache": Setting(bool),
    "cache_dir": Setting(str, optional=True),
    "device": Setting(str),
    "channels_last": Setting(bool),
    "cuda_graph": Setting(bool),
    "max_minutes": Setting(float, 0, 1e7, optional=True, open_low=True),
}
MAX_SETTINGS_BYTES = 1 << 20


def read_settings_file(path: Path) -> dict:
    """A JSON or YAML file of settings as a dict; anything else (not text, not a mapping, too deep, a
    YAML tag that builds objects) is one RelightError naming the file."""
    data = read_regular(path, MAX_SETTINGS_BYTES)  # a FIFO or a folder is refused, not waited on
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RelightError(f"is not UTF-8 text (byte {exc.start})", path) from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            raw = yaml.safe_load(text)
            raw = {} if raw is None else raw
        else:
            raw = json.loads(text)
    except RecursionError:
        raise RelightError("is nested too deeply to be a config", path) from None
    except ValueError as exc:  # json.JSONDecodeError, or an integer with too many digits
        raise RelightError(f"is not valid JSON ({clean(exc)})", path) from None
    except Exception as exc:  # yaml.YAMLError: bad syntax, or a tag such as !!python/object
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise RelightError(f"is not a valid settings file ({type(exc).__name__}: {first})", path) from None
    if not isinstance(raw, dict):
        raise RelightError(f"must hold a mapping of settings, not a {type(raw).__name__}", path)
    return raw


@dataclass
class TrainConfig:
    data: str = ""
    out: str = "runs/run"
    preset: str = "s3net"
    init: str = "scratch"  # scratch | imagenet | path to a native checkpoint or the official weight.pkl
    imagenet_weights: str | None = None
    freeze_encoder: bool = False
    epochs: int = 100
    steps: int | None = None  # when set, overrides epochs
    batch: int = 3  # per process
    crop: int | None = None  # None: full images, no crops (the paper's recipe)
    resize: int | None = None
    hflip: bool = False
    same_scene_guide: bool = False
    val_fraction: float = 0.1
    val_data: str | None = None  # an NTIRE-layout folder to validate on instead of a VIDIT split
    val_limit: int = 16
    lr: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = 0.01
    decay_every_epochs: int = 20  # lr x decay_gamma every this many epochs
    decay_every_steps: int | None = None  # the same in steps (used with `steps`)
    decay_gamma: float = 0.1
    loss_charbonnier: float = 1.0
    loss_wssim: float = 1.1
    loss_perceptual: float = 0.1
    loss_colour: float = 0.0  # chromaticity L1 (core.train.losses.colour_loss); 0 = the paper's loss
    vgg_weights: str | None = None
    # auto | fp32 | bf16 | fp16 (grad scaler for fp16 only); auto: training_precision (bf16 where the GPU
    # computes it natively: with the graphed step 2.2x the fp32 eager step for s3net, same loss curve)
    precision: str = "auto"
    grad_clip: float | None = None
    seed: int = 0
    val_every: int | None = None  # steps; default once per epoch
    ckpt_every: int | None = None  # steps; default once per epoch
    log_every: int = 10
    num_workers: int = 2
    frame_cache: bool = False  # VIDIT layout: decode once into memory-mapped frames (core.train.frame_cache)
    cache_dir: str | None = None  # where frame caches live; default the app's data folder
    device: str = "auto"
    channels_last: bool = False  # measured slower for S3Net's step on an H200 (docs/PERFORMANCE.md)
    cuda_graph: bool = True  # one CUDA GPU: replay the whole step as one CUDA graph (core.train.graph_step)
    max_minutes: float | None = None  # stop safely (with a checkpoint) after this much training time

    @classmethod
    def from_file(cls, path: str | Path) -> TrainConfig:
        """A config from JSON (a run's config.json) or YAML, every field checked against SETTINGS."""
        path = Path(path)
        raw = read_settings_file(path)
        unknown = sorted(str(k) for k in raw if k not in SETTINGS)
        if unknown:
            raise RelightError(f"unknown config keys: {name_list(unknown)}", path)
        for name, value in raw.items():
            SETTINGS[name].check(name, value, path)
        if "betas" in raw:
            raw["betas"] = tuple(raw["betas"])
        return cls(**raw)

    def validate(self) -> None:
        """Refuse settings that cannot train (one message naming the setting): the same table as files."""
        for f in fields(self):
            SETTINGS[f.name].check(f.name, getattr(self, f.name))

    # Changing these on resume would not continue the same run.
    FIXED_ON_RESUME = ("preset", "precision")

    @classmethod
    def for_resume(cls, out: str | Path, overrides: dict) -> tuple[TrainConfig, list[str]]:
        """The run's saved config with `overrides` applied; -> (config, what changed). Changing the
        preset or the precision is refused; other changes are allowed and listed (and the saved
        config.json records them when the run continues)."""
        path = Path(out) / "config.json"
        if not path.exists() and not path.is_symlink():  # anything else there is read, or refused naming it
            raise RelightError("nothing to resume: no config.json in the run folder", Path(out))
        cfg = cls.from_file(path)
        changes = []
        for k, v in overrides.items():
            if v is None or getattr(cfg, k) == v or (k == "precision" and v == "auto"):
                continue
            if k in cls.FIXED_ON_RESUME:
                raise _not_the_same_run(k, getattr(cfg, k), v, out)
            changes.append(f"{k}: {getattr(cfg, k)} -> {v}")
            setattr(cfg, k, v)
        # the run continues where the user pointed, never in the folder its config.json names (a copied
        # run would otherwise overwrite the original)
        cfg.out = str(out)
        return cfg, changes

    def keep_the_runs_precision(self) -> None:
        """Resuming from a settings file (--config): the run goes on in the precision it was started
        in ('auto' takes it; another one is refused), as a resume from its config.json does."""
        path = Path(self.out) / "config.json"
        if not path.is_file():
            return  # the trainer says there is nothing to resume
        was = TrainConfig.from_file(path).precision
        if self.precision not in ("auto", was):
            raise _not_the_same_run("precision", was, self.precision, self.out)
        self.precision = was

    def save(self, path: str | Path) -> None:
        path = Path(path)
        data = asdict(self)
        data["betas"] = list(self.betas)
        if path.suffix in (".yaml", ".yml"):
            import yaml

            text = yaml.safe_dump(data, sort_keys=False)
        else:
            text = json.dumps(data, indent=2)
        atomic_write_bytes(path, text.encode())


@dataclass
class StepInfo:
    step: int
    total_steps: int
    epoch: int
    terms: dict[str, float]
    lr: float
    images_per_s: float
    eta_s: float


@dataclass
class ValInfo:
    step: int
    psnr: float
    ssim: float
    preview: np.ndarray | None = None  # (H, 4W, 3): source | guide | prediction | target


@dataclass
class TrainResult:
    out: Path
    step: int
    stopped: bool
    last_checkpoint: Path
    perceptual_on: bool
    history: list[dict] = field(default_factory=list)


@dataclass
class Callbacks:
    on_step: Callable[[StepInfo], None] | None = None
    on_validation: Callable[[ValInfo], None] | None = None
    on_message: Callable[[str], None] | None = None
    on_checkpoint: Callable[[Path], None] | None = None


class ResumableSampler(Sampler[int]):
    """A per-epoch permutation seeded by (seed, epoch), sharded by rank, starting at a position."""

    def __init__(self, n: int, seed: int, rank: int = 0, world: int = 1):
        self.n, self.seed, self.rank, self.world = n, seed, rank, world
        self.epoch, self.start = 0, 0

    def per_rank(self) -> int:
        return self.n // self.world

    def __iter__(self):
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        mine = order[self.rank : self.per_rank() * self.world : self.world]
        return iter(mine[self.start :].tolist())

    def __len__(self) -> int:
        return self.per_rank() - self.start


def _dist_info() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")), world


def build_datasets(
    cfg: TrainConfig, progress: Progress | None = None, cancel: CancelToken | None = None
) -> tuple[Dataset, Dataset | None, str]:
    from functools import partial

    from core.inputs.layouts import detect_layout, scan_ntire, scan_vidit
    from core.train.datasets import Augment, CachedVIDITTriplets, PairDataset, VIDITTriplets

    aug = Augment(crop=cfg.crop, hflip=cfg.hflip, resize=cfg.resize)
    val_aug = Augment(crop=None, hflip=False, resize=cfg.resize)
    layout = detect_layout(cfg.data)
    if layout == "vidit":
        index = scan_vidit(cfg.data)
        triplets = partial(VIDITTriplets, index)
        if cfg.frame_cache:
            from core.train.frame_cache import build_frame_cache

            cache = build_frame_cache(index, cfg.cache_dir, cfg.resize, progress=progress, cancel=cancel)
            triplets = partial(CachedVIDITTriplets, index, cache)
        train = triplets("train", cfg.val_fraction, cfg.seed, aug, cfg.same_scene_guide)
        val = triplets("val", cfg.val_fraction, cfg.seed, val_aug, cfg.same_scene_guide)
        summary = index.summary() + f"; split {len(train.scenes)} train / {len(val.scenes)} val scenes"
    else:
        recs = scan_ntire(cfg.data)
        train = PairDataset(recs, aug, cfg.seed)
        val = None
        summary = f"NTIRE pair layout: {len(train)} pairs with ground truth"
        if cfg.frame_cache:
            summary += " (the frame cache is for VIDIT-layout data: reading the image files)"
    if cfg.val_data:
        val = PairDataset(scan_ntire(cfg.val_data), val_aug)
    if len(train) == 0:
        raise RelightError("no training samples found", cfg.data)
    return train, (val if val is not None and len(val) else None), summary


def _init_model(cfg: TrainConfig, notify: Callable[[str], None]):
    torch.manual_seed(cfg.seed)
    preset = cfg.preset
    grow = False  # the checkpoint is the same network without the colour path
    init = Init.of(cfg.init)
    if init is Init.CHECKPOINT:
        _, info = load_checkpoint(cfg.init)
        grow = adds_colour_path(preset, info.preset)
        if info.preset != preset and not grow:
            notify(f"using preset '{info.preset}' from {Path(cfg.init).name} (config said '{preset}')")
            preset = info.preset
    model = create_model(preset)
    init_note = cfg.init
    if init is Init.IMAGENET:
        path = find_res2net(cfg.imagenet_weights)
        if path is None:
            raise RelightError(
                "ImageNet Res2Net weights not found; give imagenet_weights or put "
                "res2net101_v1b_26w_4s-0812c246.pth in the torch hub cache"
            )
        missing = load_imagenet_encoder(model.encoder, path)
        init_note = f"imagenet encoder from {path.name} ({len(missing)} encoder tensors not in file)"
    elif init is Init.CHECKPOINT:
        state, _, _ = read_state_dict(cfg.init)
        state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
        model.load_state_dict(with_colour_path(state) if grow else state, strict=True)
        init_note = f"weights from {Path(cfg.init).name}" + (" with a colour path starting at zero" if grow else "")
    return model, preset, init_note


def _lr_at(cfg: TrainConfig, step: int, steps_per_epoch: int) -> float:
    every = cfg.decay_every_steps or max(1, cfg.decay_every_epochs * steps_per_epoch)
    return cfg.lr * (cfg.decay_gamma ** (step // every))


_INT_SCALE = {torch.uint8: 255.0, torch.uint16: 65535.0}


def to_device(batch: dict, device, channels_last: bool) -> dict[str, torch.Tensor]:
    """Move a batch to the device. Integer frames (from the frame cache: a quarter of the bytes to
    copy) become float in [0, 1] there, and a "flip" flag flips that sample's arrays there."""
    flip = batch.get("flip")
    # which samples to flip, decided on the host: no device synchronisation
    rows = (
        torch.nonzero(flip).flatten().to(device, non_blocking=True) if flip is not None and bool(flip.any()) else None
    )
    out = {}
    for k, v in batch.items():
        if k == "flip":
            continue
        v = v.to(device, non_blocking=True)
        if v.dtype in _INT_SCALE:
            v = v.to(torch.float32).div_(_INT_SCALE[v.dtype])
        if rows is not None:
            v[rows] = v[rows].flip(-1)
        out[k] = v.contiguous(memory_format=torch.channels_last) if channels_last else v
    return out


def _preview(batch: dict, pred: torch.Tensor) -> np.ndarray:
    tiles = [batch["source"][0], batch["guide"][0], pred[0].clamp(0, 1), batch["target"][0]]
    return torch.cat([t.float().cpu() for t in tiles], dim=2).permute(1, 2, 0).numpy()


class Trainer:
    """One training run. `run()` is the loop of named steps; everything it works on is on `self`:
    built by `setup()` (data, model, optimiser, schedule), advanced by `train_step()`."""

    def __init__(
        self,
        cfg: TrainConfig,
        callbacks: Callbacks | None = None,
        cancel: CancelToken | None = None,
        resume: bool = False,
    ):
        self.cfg, self.cb, self.cancel, self.resume = cfg, callbacks or Callbacks(), cancel or CancelToken(), resume
        self.rank, self.local_rank, self.world = _dist_info()
        self.out = Path(cfg.out)
        self.state_path = self.out / "state.pt"
        self.last_checkpoint = self.out / "last.safetensors"
        self._owns_process_group = False
        self._held: list[str] | None = []  # messages said once the run is set up
        self._stop_vote: tuple | None = None  # under DDP: the previous step's all-reduced stop vote
        # built by setup()
        self.device = torch.device("cpu")
        self.fused = False  # fused AdamW (CUDA)
        self.graphed: GraphedStep | None = None  # the step as a CUDA graph (one CUDA GPU, no fp16 scaler)
        self.said_graph_failed = False
        self.train_ds: Dataset = None
        self.val_ds: Dataset | None = None
        self.summary = ""  # the dataset, in words
        self.working_size = 0  # the image side the network learns at: detail output runs it there
        self.model: S3Net = None
        self.train_model: torch.nn.Module = None  # the model, or its DistributedDataParallel wrapper
        self.preset = cfg.preset
        self.init_note = cfg.init
        self.criterion: RelightLoss = None
        self.vgg: Path | None = None
        self.channels_last = False
        self.params: list[torch.nn.Parameter] = []
        self.opt: torch.optim.Optimizer = None
        self.scaler: torch.amp.GradScaler = None
        self.amp_dtype: torch.dtype | None = None
        self.sampler: ResumableSampler = None
        self.steps_per_epoch = 1
        self.total = 0
        self.val_every = 1
        self.ckpt_every = 1
        self.meta: dict = {}  # how the weights are made: run.json and every checkpoint's "training"
        # the run's progress
        self.step = 0
        self.epoch = 0
        self.history: list[dict] = []
        self.terms: dict = {}
        self.lr = cfg.lr
        self.stopped = False
        self.t_start = self.t_window = 0.0
        self.images_done = self.images_in_window = 0

    def run(self) -> TrainResult:
        self.setup()
        if self.resume:
            self.resume_training()
        else:
            self.start_new_run()
        self.release_held_messages()
        self.prepare_model_for_training()
        self.begin()
        while self.step < self.total and not self.stopped:
            for batch in self.epoch_loader():
                self.train_step(batch)
                self.log_step()
                self.validate_if_due()
                self.save_or_stop()
                if self.stopped or self.step >= self.total:
                    break
        return self.finish()

    # -- messages -------------------------------------------------------------------------
    def notify(self, msg: str) -> None:
        if self._held is not None:  # said once the run is set up: a setup error is then the only line
            self._held.append(msg)
        else:
            self._say(msg)

    def _say(self, msg: str) -> None:
        if self.rank == 0:
            if self.cb.on_message:
                self.cb.on_message(msg)
            else:
                log.info(msg)

    def release_held_messages(self) -> None:
        held, self._held = self._held or [], None
        for msg in held:
            self.notify(msg)

    def _log_metrics(self, record: dict) -> None:
        if self.rank != 0:
            return
        with open(self.out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    # -- setup ----------------------------------------------------------------------------
    def setup(self) -> None:
        """Everything a run needs, in an order that keeps the random streams of earlier versions."""
        self.cfg.validate()
        self.device = self._setup_device()
        if self.cfg.precision == "auto":  # the run's config.json records what ran
            self.cfg.precision = training_precision(self.device)
        self._prepare_run_folder()
        self._load_data()
        self._build_model()
        self._build_optimiser()
        self._plan_schedule()
        self.meta = self._run_metadata()

    def _setup_device(self) -> torch.device:
        if self.world > 1:
            if not dist.is_initialized():
                backend = "nccl" if torch.cuda.is_available() and self.cfg.device != "cpu" else "gloo"
                dist.init_process_group(backend)
                self._owns_process_group = True
            if torch.cuda.is_available() and self.cfg.device != "cpu":
                torch.cuda.set_device(self.local_rank)
                return torch.device("cuda", self.local_rank)
            return torch.device("cpu")
        return pick_device(self.cfg.device)

    def _prepare_run_folder(self) -> None:
        """Create the run folder, remove temporary files a killed run left, check resume vs new."""
        run_files = ("config.json", "run.json", "metrics.jsonl", "state.pt", self.last_checkpoint.name)
        if self.rank == 0:
            make_run_folder(self.out)
            # a SIGKILL during an atomic write leaves the temporary file of one of the run's files (named as
            # core.storage.io's atomic writes name them); anything else in the folder is not ours to delete
            for name in run_files:
                for tmp in self.out.glob(f".{glob.escape(name)}.*.tmp"):
                    if tmp.is_file() and not tmp.is_symlink():
                        tmp.unlink(missing_ok=True)
        # the files the run writes must be files of its own: a FIFO would hang its first write (metrics are
        # appended), a folder fail its first checkpoint after the first epoch, a link write outside the run
        for name in run_files:
            check_own_file(self.out / name)
        if self.resume and not self.state_path.is_file():
            raise RelightError("nothing to resume: no state.pt in the run folder", self.out)
        if not self.resume and self.state_path.is_file():
            raise RelightError(
                "the run folder already holds a run; resume it (--resume) or choose another folder (--out)", self.out
            )

    def _load_data(self) -> None:
        cfg = self.cfg
        self.train_ds, self.val_ds, self.summary = build_datasets(cfg, lambda f, m: self._say(m), self.cancel)
        self.notify(self.summary)
        if len(self.train_ds) < cfg.batch * self.world:
            raise RelightError(
                f"the training set has {len(self.train_ds)} samples, fewer than one batch "
                f"({cfg.batch} x {self.world} process(es)); lower --batch or add data",
                cfg.data,
            )
        self.working_size = int(max(self.train_ds[0]["source"].shape[-2:]))

    def _build_model(self) -> None:
        cfg, device = self.cfg, self.device
        self.model, self.preset, self.init_note = _init_model(cfg, self.notify)
        cfg.preset = self.preset  # config.json records what trains (a checkpoint's own preset can win)
        self.notify(f"model {self.preset}, init: {self.init_note}")
        self.vgg = find_vgg19(cfg.vgg_weights)
        weights = LossWeights(cfg.loss_charbonnier, cfg.loss_wssim, cfg.loss_perceptual, cfg.loss_colour)
        self.criterion = RelightLoss(weights, self.vgg).to(device)
        if self.criterion.perceptual_off_reason:
            self.notify("WARNING: " + self.criterion.perceptual_off_reason)
        if cfg.freeze_encoder:
            self.model.encoder.requires_grad_(False)
        self.model.enhancer.batch1.requires_grad_(False)  # unused by the forward pass (kept for the checkpoint)
        self.model.to(device)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.channels_last = cfg.channels_last and device.type == "cuda"
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)

    def _build_optimiser(self) -> None:
        cfg = self.cfg
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        # on CUDA one fused kernel updates every tensor: 1.38x the step of s3net at 256² batch 16 on an
        # H200 with the same loss curve (docs/PERFORMANCE.md, bench/train_step.py)
        self.fused = self.device.type == "cuda"
        graph = cfg.cuda_graph and self.fused and self.world == 1 and cfg.precision != Precision.FP16
        # a captured step reads the learning rate from a tensor the schedule fills in place
        lr = torch.tensor(cfg.lr, device=self.device) if graph else cfg.lr
        self.opt = torch.optim.AdamW(
            self.params,
            lr=lr,
            betas=tuple(cfg.betas),
            weight_decay=cfg.weight_decay,
            fused=self.fused or None,
            capturable=graph,
        )
        self.graphed = GraphedStep(self.optimize_parameters) if graph else None
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=cfg.precision == "fp16")
        self.amp_dtype = AUTOCAST[Precision(cfg.precision)]

    def _plan_schedule(self) -> None:
        cfg = self.cfg
        self.sampler = ResumableSampler(len(self.train_ds), cfg.seed, self.rank, self.world)
        self.steps_per_epoch = max(1, self.sampler.per_rank() // cfg.batch)
        self.total = cfg.steps or cfg.epochs * self.steps_per_epoch
        self.val_every = cfg.val_every or self.steps_per_epoch
        self.ckpt_every = cfg.ckpt_every or self.steps_per_epoch

    def _run_metadata(self) -> dict:
        """How this run makes its weights: written to run.json and into every checkpoint."""
        return {
            "preset": self.preset,
            "init": self.init_note,
            "perceptual_on": self.criterion.perceptual is not None,
            "perceptual_note": self.criterion.perceptual_off_reason or f"VGG19 from {self.vgg}",
            "world_size": self.world,
            "global_batch": self.cfg.batch * self.world,
            "cuda_graph": self.graphed is not None,
            "dataset": self.summary,
        }

    def checkpoint_metadata(self, step: int) -> dict:
        """The one metadata record a checkpoint of this run carries."""
        return {
            "training": {**self.meta, "step": step, "config": asdict(self.cfg)},
            "trained": True,
            "working_size": self.working_size,
        }

    # -- start or resume ------------------------------------------------------------------
    def start_new_run(self) -> None:
        if self.rank == 0:
            self.cfg.save(self.out / "config.json")
            (self.out / "run.json").write_text(json.dumps(self.meta, indent=2))

    def resume_training(self) -> None:
        """Load state.pt; make last.safetensors and metrics.jsonl agree with its step."""
        self.step = self._load_state()
        self.notify(f"resumed from step {self.step}")
        if self.rank == 0:
            self.cfg.save(self.out / "config.json")  # records settings changed on resume
            self._trim_metrics(self.step)
            try:
                _, last_meta, _ = read_state_dict(self.last_checkpoint)
                training = last_meta.get("training")
                last_step = training.get("step") if isinstance(training, dict) else None
            except RelightError:
                last_step = None
            if last_step != self.step:  # killed between the two writes: rewrite the export from the state
                self._export(self.step)

    def _load_state(self) -> int:
        state_path = self.state_path
        try:
            st = torch.load(state_path, map_location="cpu", weights_only=True)
            step = st["step"]
            if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= _STEPS:
                raise RelightError(
                    f"cannot resume: the training state's step is {_short(step)}, not a step count", state_path
                )
            self.model.load_state_dict(st["model"])
            saved = st["optimizer"]
            # how the update runs is this run's (its device, its CUDA graph), not the saved run's: a graph
            # captures only a capturable optimiser, and the flags place the step counts on loading (a count
            # of groups that differs is refused by load_state_dict)
            for g, now in zip(saved["param_groups"], self.opt.param_groups, strict=False):
                g.update({k: now[k] for k in ("fused", "capturable", "foreach") if k in now})
            self.opt.load_state_dict(saved)
            if self.graphed is not None:  # a saved float learning rate becomes the tensor the graph reads
                for g in self.opt.param_groups:
                    g["lr"] = torch.tensor(float(g["lr"]), device=self.device)
            self.scaler.load_state_dict(st["scaler"])
            torch.set_rng_state(st["torch_rng"])
        except RelightError:
            raise
        except Exception as exc:  # truncated or foreign file: many failure modes inside torch
            first = clean((str(exc).splitlines() or [type(exc).__name__])[0][:200])
            raise RelightError(
                f"cannot resume: the training state is damaged or from another model ({first})", state_path
            ) from None
        if torch.cuda.is_available() and "cuda_rng" in st and self.device.type == "cuda":
            torch.cuda.set_rng_state(st["cuda_rng"], self.device)
        return step

    def _trim_metrics(self, step: int) -> None:
        """Drop the records of steps after the state's (they will be redone). Lines that are not
        records (a killed append, or anything else) are kept as they are, and said."""
        metrics = self.out / "metrics.jsonl"
        if not metrics.is_file():
            return
        if metrics.stat().st_size > MAX_METRICS_BYTES:
            raise RelightError(f"is larger than {MAX_METRICS_BYTES >> 20} MB; move it away to resume", metrics)
        keep, odd = [], 0
        for line in metrics.read_bytes().splitlines():
            if not line.strip():
                continue
            at = _record_step(line)
            odd += at is None
            if at is None or at <= step:
                keep.append(line)
        if odd:
            self.notify(f"{metrics.name}: {odd} line(s) are not metrics records; kept as they are")
        atomic_write_bytes(metrics, b"\n".join(keep) + b"\n" if keep else b"")

    def prepare_model_for_training(self) -> None:
        self.train_model = self.model
        if self.world > 1:
            # rank 0 writes the checkpoints from its own BatchNorm statistics, so other ranks need no
            # copy of them every step; gradients live in the all-reduce buckets (no copy per step)
            self.train_model = torch.nn.parallel.DistributedDataParallel(
                self.model,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                broadcast_buffers=False,
                gradient_as_bucket_view=True,
            )
        self._train_mode()

    def _train_mode(self) -> None:
        self.model.train()
        if self.cfg.freeze_encoder:
            self.model.encoder.eval()

    # -- the loop -------------------------------------------------------------------------
    def begin(self) -> None:
        cfg = self.cfg
        self.t_start = self.t_window = time.perf_counter()
        self.images_done = self.images_in_window = 0
        self.notify(
            f"training {self.total} steps ({self.steps_per_epoch} per epoch), batch {cfg.batch} x {self.world} "
            f"process(es), {cfg.precision} on {self.device}{', fused AdamW' if self.fused else ''}"
            f"{', the step as a CUDA graph' if self.graphed else ''}"
        )

    def epoch_loader(self) -> DataLoader:
        """The batches from the current step to the end of its epoch (the sampler resumes mid-epoch)."""
        cfg = self.cfg
        self.epoch, pos = divmod(self.step, self.steps_per_epoch)
        self.sampler.epoch, self.sampler.start = self.epoch, pos * cfg.batch
        if hasattr(self.train_ds, "set_epoch"):
            self.train_ds.set_epoch(self.epoch)
        return DataLoader(
            self.train_ds,
            batch_size=cfg.batch,
            sampler=self.sampler,
            num_workers=cfg.num_workers,
            pin_memory=self.device.type == "cuda",
            drop_last=True,
            persistent_workers=False,
            prefetch_factor=4 if cfg.num_workers > 0 else None,
        )

    def train_step(self, batch: dict) -> None:
        self.lr = _lr_at(self.cfg, self.step, self.steps_per_epoch)
        for g in self.opt.param_groups:
            if torch.is_tensor(g["lr"]):
                g["lr"].fill_(self.lr)
            else:
                g["lr"] = self.lr
        b = to_device(batch, self.device, self.channels_last)
        self.terms = (self.graphed or self.optimize_parameters)(b)
        if self.graphed is not None and self.graphed.failed and not self.said_graph_failed:
            self.said_graph_failed = True
            self.notify(f"the step could not be captured as a CUDA graph ({self.graphed.failed}); going on eagerly")
        self.step += 1
        n = b["source"].shape[0] * self.world
        self.images_done += n
        self.images_in_window += n

    def optimize_parameters(self, b: dict) -> dict:
        """One optimiser step on batch `b`; returns the loss terms."""
        amp_dtype = self.amp_dtype
        # autocast's weight cache would keep tensors from outside a captured graph
        with torch.autocast(
            b["source"].device.type, dtype=amp_dtype, enabled=amp_dtype is not None, cache_enabled=self.graphed is None
        ):
            pred = self.train_model(b["source"], b["guide"], b["source_depth"], b["guide_depth"])
        loss, terms = self.criterion(pred, b["target"])
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.grad_clip:
            self.scaler.unscale_(self.opt)
            torch.nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip)
        self.scaler.step(self.opt)
        self.scaler.update()
        return terms

    def log_step(self) -> None:
        """Log the step (metrics.jsonl, callbacks) with the images/s since the last report, when due."""
        step, total = self.step, self.total
        if not (step % self.cfg.log_every == 0 or step == total or step == 1):
            return
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        ips = self.images_in_window / max(time.perf_counter() - self.t_window, 1e-9)
        tv = {k: float(v) for k, v in self.terms.items()}
        eta = (total - step) * (self.cfg.batch * self.world) / max(ips, 1e-9)
        rec = {"step": step, "epoch": self.epoch, "lr": self.lr, "images_per_s": ips, **tv}
        self.history.append(rec)
        self._log_metrics(rec)
        if self.rank == 0 and self.cb.on_step:
            self.cb.on_step(StepInfo(step, total, self.epoch, tv, self.lr, ips, eta))
        self.t_window, self.images_in_window = time.perf_counter(), 0

    def validate_if_due(self) -> None:
        if self.val_ds is not None and (self.step % self.val_every == 0 or self.step == self.total):
            self.validate()
            self._train_mode()

    @torch.no_grad()
    def validate(self) -> None:
        val_ds = self.val_ds
        if self.rank != 0 or val_ds is None:
            return
        model, device, amp_dtype = self.model, self.device, self.amp_dtype
        model.eval()
        ps, ss, preview = [], [], None
        for i in range(min(len(val_ds), self.cfg.val_limit)):
            b = to_device({k: v[None] for k, v in val_ds[i].items()}, device, self.channels_last)
            x = torch.cat([b["source"], b["guide"], b["source_depth"], b["guide_depth"]], 1)
            x, (h, w) = pad_to_multiple(x)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                pred = model.forward_packed(x)[..., :h, :w].float().clamp(0, 1)
            ps.append(psnr(pred[0].cpu(), b["target"][0].cpu()))
            ss.append(ssim(pred.cpu(), b["target"].cpu()))
            if preview is None:
                preview = _preview(b, pred)
        info = ValInfo(self.step, float(np.mean(ps)), float(np.mean(ss)), preview)
        self._log_metrics({"step": self.step, "val_psnr": info.psnr, "val_ssim": info.ssim})
        self.notify(f"step {self.step}: validation PSNR {info.psnr:.2f} dB, SSIM {info.ssim:.4f}")
        if self.cb.on_validation:
            self.cb.on_validation(info)

    def save_or_stop(self) -> None:
        """A checkpoint when one is due or the run stops (cancel, time limit: every rank agrees)."""
        stop_now = self._agree_to_stop()
        if self.step % self.ckpt_every == 0 or self.step == self.total or stop_now:
            self.save()
        if stop_now:
            self.stopped = True
            self.notify(f"stopped at step {self.step}; checkpoint written, the run can be resumed")

    def _agree_to_stop(self) -> bool:
        """Stop on cancel or after max_minutes; under DDP every rank stops at the same step.

        Under DDP each step starts an all-reduce of its own vote and reads the previous step's, so the
        host never waits for the step it has just queued (a blocking read would drain the GPU's queue
        every step, which small launch-bound models feel most). A stop takes effect one step later."""
        device = self.device
        stop_now = self.cancel.cancelled
        if self.cfg.max_minutes is not None and time.perf_counter() - self.t_start > self.cfg.max_minutes * 60:
            stop_now = True
        if self.world == 1:
            return stop_now
        flag = torch.full((1,), 1.0 if stop_now else 0.0, device=device)
        work = dist.all_reduce(flag, async_op=True)
        if device.type == "cuda":
            # reading `flag` later with .item() would wait for everything queued after it, the next
            # step included: copy it to pinned memory behind this step and wait for that copy only
            work.wait()  # the stream (not the host) waits for the all-reduce
            host = torch.empty(1, pin_memory=True)
            host.copy_(flag, non_blocking=True)
            copied = torch.cuda.Event()
            copied.record()
            vote = (copied.synchronize, host)
        else:
            vote = (work.wait, flag)
        previous, self._stop_vote = self._stop_vote, vote
        if previous is None:
            return False
        previous[0]()
        return float(previous[1][0]) > 0

    def _finish_stop_vote(self) -> None:
        """Complete the last step's vote so every rank leaves with no collective in flight."""
        if self._stop_vote is not None:
            self._stop_vote[0]()
            self._stop_vote = None

    # -- checkpoints ----------------------------------------------------------------------
    def save(self) -> None:
        """state.pt (to resume exactly) and last.safetensors (to relight with), on rank 0."""
        if self.rank == 0:
            opt_state = self.opt.state_dict()
            for g in opt_state["param_groups"]:  # a plain number, whatever the next run's step is
                g["lr"] = float(g["lr"])
            st = {
                "model": self.model.state_dict(),
                "optimizer": opt_state,
                "scaler": self.scaler.state_dict(),
                "step": self.step,
                "torch_rng": torch.get_rng_state(),
            }
            if self.device.type == "cuda":
                st["cuda_rng"] = torch.cuda.get_rng_state(self.device)
            buf = io.BytesIO()
            torch.save(st, buf)
            atomic_write_bytes(self.state_path, buf.getvalue())
            path = self._export(self.step)
            if self.cb.on_checkpoint:
                self.cb.on_checkpoint(path)
        if self.world > 1:
            dist.barrier()

    def _export(self, step: int) -> Path:
        """The run's weights as a native checkpoint, with the run's metadata record."""
        return save_checkpoint(self.last_checkpoint, self.model, self.preset, extra=self.checkpoint_metadata(step))

    def finish(self) -> TrainResult:
        self._finish_stop_vote()
        elapsed = time.perf_counter() - self.t_start
        self.notify(f"done: {self.step} steps, {self.images_done} images in {elapsed:.0f} s")
        if self.world > 1:
            dist.barrier()
            if self._owns_process_group:
                dist.destroy_process_group()
        perceptual_on = self.criterion.perceptual is not None
        return TrainResult(self.out, self.step, self.stopped, self.last_checkpoint, perceptual_on, self.history)


MAX_METRICS_BYTES = 512 << 20


def _record_step(line: bytes) -> int | None:
    """The step of one metrics.jsonl line, or None when the line is not a record this program writes."""
    try:
        rec = json.loads(line.decode("utf-8"))
    except (ValueError, RecursionError):  # not UTF-8, not JSON, too deep, too many digits
        return None
    step = rec.get("step") if isinstance(rec, dict) else None
    return step if isinstance(step, int) and not isinstance(step, bool) else None


def check_own_file(path: Path) -> None:
    """A file the run writes is a regular file of its own, or not there yet; else a RelightError naming it."""
    if path.is_symlink():
        raise RelightError("is a link; a run writes its own files (move it away)", path)
    if path.exists():
        check_regular(path)


def make_run_folder(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file of that name, a link loop, no permission
        raise RelightError(f"cannot create the run folder ({exc.strerror or exc})", out) from None


class RunLock:
    """One trainer per run folder: an advisory lock on RUN/.lock, held while training (rank 0)."""

    def __init__(self, out: str | Path):
        self.path = Path(out) / ".lock"
        self.handle = None

    def __enter__(self):
        if int(os.environ.get("RANK", "0")) != 0:
            return self
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks here
            return self
        make_run_folder(self.path.parent)
        check_own_file(self.path)  # a folder or a FIFO was a traceback, a link made its target outside the run
        try:
            self.handle = open(self.path, "a+")
        except OSError as exc:
            raise RelightError(f"cannot be opened ({exc.strerror or exc})", self.path) from None
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.handle.close()
            self.handle = None
            raise RelightError("another training run is using this run folder", self.path.parent) from None
        return self

    def __exit__(self, *exc):
        if self.handle is not None:
            self.handle.close()  # closing releases the lock


def train(
    cfg: TrainConfig, callbacks: Callbacks | None = None, cancel: CancelToken | None = None, resume: bool = False
) -> TrainResult:
    with RunLock(cfg.out):
        return Trainer(cfg, callbacks, cancel, resume).run()
