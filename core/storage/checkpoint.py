"""Checkpoints: native safetensors + JSON metadata, and the official S3Net ``weight.pkl``.

Native files hold the weights (any float dtype; loaded as float32) and string metadata:
``relight.preset``, ``relight.version`` and JSON blobs ``relight.training``/``relight.metrics``/
``relight.card``. The official file is ``torch.save({'state_dict': ...})`` and is read with
``torch.load(weights_only=True)``, so it cannot run code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import torch
from torch import nn

from core import __version__
from core.base.errors import RelightError
from core.base.resources import bundled_model_path
from core.base.vocab import CheckpointFormat
from core.model import PRESETS, S3Net, create_model
from core.storage.io import atomic_write_bytes
from core.storage.safe_load import check_regular, load_torch_file, open_regular

BUNDLED_MODEL = bundled_model_path()


@dataclass
class CheckpointInfo:
    path: Path | None
    preset: str
    format: CheckpointFormat
    metadata: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name if self.path else f"{self.preset} (in memory)"

    @property
    def trained(self) -> bool:
        return self.format is CheckpointFormat.OFFICIAL or bool(self.metadata.get("trained", True))


@cache
def preset_shapes(preset: str) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        model = create_model(preset)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _unwrap(state: dict) -> dict:
    for key in ("state_dict", "model", "model_state_dict"):
        if key in state and isinstance(state[key], dict):
            state = state[key]
            break
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def identify_preset(state: dict) -> tuple[str | None, str]:
    """Which preset these weights fit exactly (or best), and a description of any mismatch."""
    shapes = {k: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}
    best, best_score, best_msg = None, -1.0, ""
    for preset in PRESETS:
        ref = preset_shapes(preset)
        missing = sorted(set(ref) - set(shapes))
        unexpected = sorted(set(shapes) - set(ref))
        misshaped = sorted(k for k in set(ref) & set(shapes) if ref[k] != shapes[k])
        if not missing and not unexpected and not misshaped:
            return preset, ""
        score = (len(ref) - len(missing) - len(misshaped)) / max(len(ref), len(shapes))
        if score > best_score:
            parts = []
            if missing:
                parts.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:3])})")
            if unexpected:
                parts.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
            if misshaped:
                k = misshaped[0]
                parts.append(f"{len(misshaped)} keys with other shapes (e.g. {k}: {shapes[k]} vs {ref[k]})")
            best, best_score, best_msg = preset, score, "; ".join(parts)
    if best_score < 0.5:
        return None, "it does not look like any S3Net preset (" + best_msg + ")"
    return None, f"closest preset is '{best}', but {best_msg}"


MAX_HEADER_BYTES = 100 << 20  # a safetensors JSON header (tensor table + metadata)
MAX_META_CHARS = 1 << 20


def _plain_json(v, depth: int = 0):
    """Metadata as plain values: at most 16 levels deep, numbers finite and of sane size."""
    if depth > 16:
        raise ValueError("metadata nested too deeply")
    if isinstance(v, dict):
        return {str(k): _plain_json(x, depth + 1) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain_json(x, depth + 1) for x in v]
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, int):
        if abs(v) > 2**63:
            raise ValueError("number too large")
        return v
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError("non-finite number")
        return v
    raise ValueError(f"unexpected {type(v).__name__}")


def read_state_dict(path: str | Path) -> tuple[dict, dict, CheckpointFormat]:
    """-> (state_dict, metadata, format). Safetensors are native; anything else is read as a torch file."""
    path = Path(path)
    if not path.exists():
        raise RelightError("checkpoint not found", path)
    check_regular(path)  # a FIFO or device named like a checkpoint is refused, not waited on
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with open_regular(path) as f:  # the JSON header's length comes first: check it before parsing
            head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if not 0 < n <= MAX_HEADER_BYTES or n + 8 > path.stat().st_size:
            raise RelightError("not a readable safetensors file (bad or oversized header)", path)
        try:
            with safe_open(str(path), framework="pt") as f:
                raw_meta = f.metadata() or {}
                state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is no dict: keys() only)
        except Exception as exc:
            raise RelightError(f"not a readable safetensors file ({exc})", path) from None
        meta: dict = {}
        for k, v in raw_meta.items():
            key = k.removeprefix("relight.")
            try:
                meta[key] = _plain_json(json.loads(v)) if len(v) <= MAX_META_CHARS else v[:200]
            except (ValueError, TypeError, RecursionError):  # not JSON, too deep, or a huge number
                meta[key] = v[:2000]
        return state, meta, CheckpointFormat.NATIVE
    state = _unwrap(load_torch_file(path))
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise RelightError("checkpoint holds entries that are not tensors", path)
    return state, {}, CheckpointFormat.OFFICIAL


def load_checkpoint(path: str | Path, expect_preset: str | None = None) -> tuple[S3Net, CheckpointInfo]:
    """Build the matching preset and load the weights strictly (float32, eval mode, on CPU)."""
    path = Path(path)
    state, meta, fmt = read_state_dict(path)
    preset, why = identify_preset(state)
    if preset is None:
        raise RelightError(f"not an S3Net checkpoint: {why}", path)
    if expect_preset is not None and preset != expect_preset:
        raise RelightError(f"checkpoint is preset '{preset}', expected '{expect_preset}'", path)
    model = create_model(preset)
    expected = model.state_dict()
    # integer or boolean weights are not a float checkpoint stored at another precision: loading them
    # would silently cast (a damaged or foreign file); integer buffers (BatchNorm's step count) stay integer
    wrong = [k for k, v in state.items() if k in expected and v.is_floating_point() != expected[k].is_floating_point()]
    if wrong:
        raise RelightError(
            f"{len(wrong)} tensors have the wrong kind of number (e.g. {wrong[0]} is {state[wrong[0]].dtype}, "
            f"expected {expected[wrong[0]].dtype}); the file is damaged or not S3Net weights",
            path,
        )
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise RelightError(
            f"{len(bad)} weight tensors hold NaN or infinite values (e.g. {bad[0]}); the file is damaged", path
        )
    model.load_state_dict(state, strict=True)
    model.eval()
    return model, CheckpointInfo(path, preset, fmt, meta)


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    preset: str,
    *,
    half: bool = False,
    extra: dict | None = None,
) -> Path:
    """Write weights + metadata as safetensors, atomically. ``extra`` values are stored as JSON."""
    from safetensors.torch import save

    path = Path(path)
    module = getattr(model, "module", model)  # unwrap DistributedDataParallel
    state = {}
    for k, v in module.state_dict().items():
        v = v.detach().to("cpu").contiguous()
        if half and v.is_floating_point():
            v = v.half()
        state[k] = v
    meta = {"relight.preset": preset, "relight.version": __version__, "relight.format": "s3net-native-1"}
    for k, v in (extra or {}).items():
        meta[f"relight.{k}"] = json.dumps(v)
    atomic_write_bytes(path, save(state, metadata=meta))
    return path


def official_state_dict_bytes(model: nn.Module) -> bytes:
    """Serialise as the official release does: torch.save({'state_dict': model.state_dict()})."""
    import io

    buf = io.BytesIO()
    torch.save({"state_dict": getattr(model, "module", model).state_dict()}, buf)
    return buf.getvalue()


def resolve_checkpoint(path: str | Path | None) -> Path:
    """The user's checkpoint, or the bundled default model when none is given."""
    if path is not None:
        return Path(path)
    if BUNDLED_MODEL.is_file():
        return BUNDLED_MODEL
    raise RelightError(
        "no checkpoint given and no bundled model found; pass --checkpoint (e.g. the official weight.pkl)",
        BUNDLED_MODEL,
    )


def export_checkpoint(src: str | Path, dst: str | Path, half: bool = True, extra: dict | None = None) -> Path:
    """Re-save a checkpoint (native or official) as native safetensors, fp16 by default, keeping its metadata."""
    model, info = load_checkpoint(src)
    meta = {k: v for k, v in info.metadata.items() if k not in ("preset", "version", "format")}
    meta.update(extra or {})
    return save_checkpoint(dst, model, info.preset, half=half, extra=meta)
