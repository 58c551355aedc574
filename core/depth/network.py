"""What a depth-model folder must hold, checked before anything is built, and building the model from
its local files only.

One architecture is supported: Depth Anything V2 Small (a DINOv2 ViT-S/14 backbone and a DPT head,
``transformers.DepthAnythingForDepthEstimation``), or the same architecture scaled down (no size,
layer count or width above the Small model's; the tests use such a tiny one). A folder is checked
field by field against that architecture: file kinds and sizes, every size in ``config.json`` and
``preprocessor_config.json``, and the weights' names, shapes and dtypes in the safetensors header.
Nothing is taken from the files but the checked values, so a config cannot name a remote backbone,
remote code or another architecture. The model is built from a config made of those values and the
weights are loaded strictly from the local safetensors file: no hub call, no environment flag.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from core.base.errors import RelightError
from core.storage.safe_load import check_regular, open_regular, read_regular

CONFIG, PREPROCESSOR, WEIGHTS = "config.json", "preprocessor_config.json", "model.safetensors"
MAX_JSON_BYTES = 64 << 10  # the released config.json is 950 bytes, the preprocessor's 775
MAX_WEIGHTS_BYTES = 200 << 20  # the released weights are 99 MB (float32)
MAX_SAFETENSORS_HEADER = 4 << 20
MAX_INPUT_SIZE = 1036  # the network's input side: 518 as released, at most twice that

# Depth Anything V2 Small, as released (depth-anything/Depth-Anything-V2-Small-hf): the upper bound of
# every size checked below.
SMALL = {
    "hidden_size": 384,
    "num_hidden_layers": 12,
    "num_attention_heads": 6,
    "mlp_ratio": 4,
    "image_size": 518,
    "patch_size": 14,
    "neck_hidden_sizes": (48, 96, 192, 384),
    "fusion_hidden_size": 64,
    "head_hidden_size": 32,
    "reassemble_factors": (4, 2, 1, 0.5),
    "out_indices": (3, 6, 9, 12),
}
# Weight names written by older transformers versions (the released file) and the current ones: both are read.
_LEGACY_NAMES = (
    ("attention.attention.query.", "attention.q_proj."),
    ("attention.attention.key.", "attention.k_proj."),
    ("attention.attention.value.", "attention.v_proj."),
    ("attention.output.dense.", "attention.o_proj."),
)
_OPTIONAL_WEIGHTS = ("backbone.embeddings.mask_token",)  # used only for masked training, never at inference
_DTYPES = {"F32": 4, "F16": 2, "BF16": 2}


def _canonical(key: str) -> str:
    for old, new in _LEGACY_NAMES:
        key = key.replace(old, new)
    return key


@dataclass(frozen=True)
class DepthModelSpec:
    """A checked folder: the architecture's values and the preprocessing, nothing else from its files."""

    folder: Path
    backbone: dict  # Dinov2Config keyword arguments
    head: dict  # DepthAnythingConfig keyword arguments (without the backbone)
    size: int
    multiple: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    weights: dict  # {name in the file: (dtype, shape)}

    def describe(self) -> str:
        b = self.backbone
        small = all(b[k] == SMALL[k] for k in ("hidden_size", "num_hidden_layers", "num_attention_heads"))
        return (
            "Depth Anything V2 Small"
            if small
            else f"Depth Anything V2, scaled down ({b['num_hidden_layers']} layers, width {b['hidden_size']})"
        )


def _read_json(path: Path, required: bool) -> dict | None:
    try:
        check_regular(path)
    except RelightError:
        if not required and not path.exists():
            return None
        raise
    raw = read_regular(path, MAX_JSON_BYTES)
    try:
        value = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise RelightError(f"not valid JSON ({type(exc).__name__})", path) from None
    if not isinstance(value, dict):
        raise RelightError(f"expected a JSON object, found {type(value).__name__}", path)
    return value


class _Fields:
    """Reads one JSON object's fields, each checked; errors name the file and the field."""

    def __init__(self, raw: dict, path: Path, prefix: str = ""):
        self.raw, self.path, self.prefix = raw, path, prefix

    def fail(self, name: str, why: str):
        value = repr(self.raw.get(name))
        raise RelightError(f"{self.prefix}{name} is {value[:60]}; {why}", self.path)

    def int(self, name: str, default: int | None, lo: int, hi: int) -> int:
        v = self.raw.get(name, default)
        if isinstance(v, bool) or not isinstance(v, int):
            self.fail(name, "expected an integer")
        if not lo <= v <= hi:
            self.fail(name, f"expected {lo}" + (f" to {hi}" if hi != lo else "") + " for Depth Anything V2 Small")
        return v

    def num(self, name: str, default: float, lo: float, hi: float) -> float:
        v = self.raw.get(name, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
            self.fail(name, f"expected a number from {lo:g} to {hi:g}")
        return float(v)

    def choice(self, name: str, default, allowed: tuple):
        v = self.raw.get(name, default)
        if v not in allowed or type(v) is not type(allowed[0]):
            self.fail(name, f"expected {' or '.join(map(repr, allowed))}")
        return v

    def ints(self, name: str, default, count: int, lo: int, his: tuple[int, ...]) -> tuple[int, ...]:
        v = self.raw.get(name, default)
        if (
            not isinstance(v, (list, tuple))
            or len(v) != count
            or any(isinstance(x, bool) or not isinstance(x, int) for x in v)
        ):
            self.fail(name, f"expected a list of {count} integers")
        if any(not lo <= x <= hi for x, hi in zip(v, his)):
            self.fail(name, f"expected values from {lo} up to {list(his)}")
        return tuple(v)


def _check_remote_free(raw: dict, path: Path, prefix: str = "") -> None:
    """A config may not point anywhere but this folder: no hub or timm backbone, no remote code."""
    if raw.get("backbone") not in (None, ""):
        raise RelightError(
            f"{prefix}backbone names {str(raw['backbone'])[:60]!r}; only the built-in DINOv2 backbone "
            "is loaded (nothing is fetched from the network)",
            path,
        )
    for key in ("use_timm_backbone", "use_pretrained_backbone"):
        if raw.get(key):
            raise RelightError(
                f"{prefix}{key} is set; a backbone would be fetched from the network, which is never done", path
            )
    if raw.get("backbone_kwargs"):
        raise RelightError(f"{prefix}backbone_kwargs is set; only the built-in DINOv2 backbone is loaded", path)
    if "auto_map" in raw:
        raise RelightError(f"{prefix}auto_map names remote code; it is never run", path)


def _check_config(raw: dict, path: Path) -> tuple[dict, dict]:
    top = _Fields(raw, path)
    top.choice("model_type", None, ("depth_anything",))
    _check_remote_free(raw, path)
    bc = raw.get("backbone_config")
    if not isinstance(bc, dict):
        top.fail("backbone_config", "expected the DINOv2 backbone's settings")
    _check_remote_free(bc, path, "backbone_config.")
    b = _Fields(bc, path, "backbone_config.")
    b.choice("model_type", None, ("dinov2",))
    hidden = b.int("hidden_size", 768, 1, SMALL["hidden_size"])
    layers = b.int("num_hidden_layers", 12, 1, SMALL["num_hidden_layers"])
    heads = b.int("num_attention_heads", 12, 1, SMALL["num_attention_heads"])
    if hidden % heads:
        b.fail("hidden_size", f"must be a multiple of num_attention_heads ({heads})")
    mlp = b.int("mlp_ratio", 4, 1, SMALL["mlp_ratio"])
    image = b.int("image_size", 224, 14, SMALL["image_size"])
    if image % 14:
        b.fail("image_size", "must be a multiple of the patch size (14)")
    b.int("patch_size", 14, 14, 14)
    b.int("num_channels", 3, 3, 3)
    out = bc.get("out_indices")
    if out is None and isinstance(bc.get("out_features"), list):
        try:
            out = [int(str(s).removeprefix("stage")) for s in bc["out_features"]]
        except ValueError:
            b.fail("out_features", "expected stage names")
    out = _Fields({"out_indices": out}, path, "backbone_config.").ints("out_indices", None, 4, 1, (layers,) * 4)
    if list(out) != sorted(set(out)):
        b.fail("out_indices", "expected four increasing layer numbers")
    b.choice("reshape_hidden_states", False, (False,))
    b.choice("use_swiglu_ffn", False, (False,))
    b.choice("hidden_act", "gelu", ("gelu",))
    backbone = {
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "mlp_ratio": mlp,
        "image_size": image,
        "patch_size": 14,
        "num_channels": 3,
        "out_indices": list(out),
        "reshape_hidden_states": False,
        "apply_layernorm": b.choice("apply_layernorm", True, (True, False)),
        "qkv_bias": b.choice("qkv_bias", True, (True, False)),
        "layer_norm_eps": b.num("layer_norm_eps", 1e-6, 1e-12, 1e-3),
    }
    top.int("patch_size", 14, 14, 14)
    top.int("reassemble_hidden_size", 384, hidden, hidden)
    if [
        float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else x
        for x in (raw.get("reassemble_factors") or SMALL["reassemble_factors"])
    ] != list(SMALL["reassemble_factors"]):
        top.fail("reassemble_factors", f"expected {list(SMALL['reassemble_factors'])}")
    top.int("head_in_index", -1, -1, -1)
    top.choice("depth_estimation_type", "relative", ("relative",))
    head = {
        "reassemble_hidden_size": hidden,
        "patch_size": 14,
        "neck_hidden_sizes": list(
            top.ints("neck_hidden_sizes", SMALL["neck_hidden_sizes"], 4, 1, SMALL["neck_hidden_sizes"])
        ),
        "fusion_hidden_size": top.int("fusion_hidden_size", 64, 1, SMALL["fusion_hidden_size"]),
        "head_hidden_size": top.int("head_hidden_size", 32, 1, SMALL["head_hidden_size"]),
    }
    return backbone, head


def _check_preprocessor(raw: dict | None, path: Path) -> tuple[int, int, tuple, tuple]:
    if raw is None:  # absent: the released model's values
        return SMALL["image_size"], 14, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    f = _Fields(raw, path)
    size = raw.get("size", SMALL["image_size"])
    if isinstance(size, dict):
        h = _Fields(size, path, "size.").int("height", None, 14, MAX_INPUT_SIZE)
        w = _Fields(size, path, "size.").int("width", h, 14, MAX_INPUT_SIZE)
        if h != w:
            f.fail("size", "expected the same height and width")
        size = h
    else:
        size = f.int("size", None, 14, MAX_INPUT_SIZE)
    multiple = f.int("ensure_multiple_of", 14, 14, 14)
    if size % multiple:
        f.fail("size", f"expected a multiple of {multiple}")
    f.choice("keep_aspect_ratio", True, (True,))
    stats = []
    for name, default, lo, hi in (
        ("image_mean", (0.485, 0.456, 0.406), -10.0, 10.0),
        ("image_std", (0.229, 0.224, 0.225), 1e-3, 10.0),
    ):
        v = raw.get(name, default)
        if (
            not isinstance(v, (list, tuple))
            or len(v) != 3
            or any(
                isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or not lo <= x <= hi
                for x in v
            )
        ):
            f.fail(name, f"expected three numbers from {lo:g} to {hi:g}")
        stats.append(tuple(float(x) for x in v))
    return size, multiple, stats[0], stats[1]


def read_safetensors_header(path: Path) -> dict:
    """{name: (dtype, shape)} from a safetensors file's header, every entry checked against the file's
    length (nothing else is read)."""
    with open_regular(path) as f:
        import os

        file_size = os.fstat(f.fileno()).st_size
        if file_size > MAX_WEIGHTS_BYTES:
            raise RelightError(
                f"file is {file_size / 2**20:.0f} MB, more than the {MAX_WEIGHTS_BYTES >> 20} MB "
                "Depth Anything V2 Small can take",
                path,
            )
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if not 2 <= n <= min(MAX_SAFETENSORS_HEADER, file_size - 8):
            raise RelightError("not a safetensors file (bad or oversized header; cut off?)", path)
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise RelightError("not a safetensors file (its header is not JSON)", path) from None
    if not isinstance(header, dict):
        raise RelightError("not a safetensors file (its header is not a table)", path)
    out, end = {}, 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        ok = (
            isinstance(entry, dict)
            and entry.get("dtype") in _DTYPES
            and isinstance(entry.get("shape"), list)
            and len(entry["shape"]) <= 4
            and all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 1 << 31 for x in entry["shape"])
            and isinstance(entry.get("data_offsets"), list)
            and len(entry["data_offsets"]) == 2
            and all(isinstance(x, int) and not isinstance(x, bool) for x in entry["data_offsets"])
        )
        if not ok:
            raise RelightError(f"weight {name[:80]!r} is not a float tensor entry", path)
        a, b = entry["data_offsets"]
        if not 0 <= a <= b or b - a != math.prod(entry["shape"]) * _DTYPES[entry["dtype"]]:
            raise RelightError(f"weight {name[:80]!r} has data that does not match its shape", path)
        out[name] = (entry["dtype"], tuple(entry["shape"]))
        end = max(end, b)
    if 8 + n + end != file_size:
        raise RelightError(
            f"file is {file_size} bytes but its header describes {8 + n + end} (cut off or padded)", path
        )
    return out


def _expected_weights(backbone: dict, head: dict, path: Path) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the weights this architecture has, from the model built on the meta device
    (no memory, no time: every size was checked first)."""
    import torch

    cls = _model_class()
    try:
        with torch.device("meta"):
            model = cls(_make_config(backbone, head))
    except Exception as exc:  # a combination of checked values transformers still refuses
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise RelightError(f"transformers cannot build this architecture ({first})", path) from None
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _model_class():
    try:
        from transformers import DepthAnythingForDepthEstimation
        from transformers.utils import logging as hf_logging
    except ImportError:
        raise RelightError("depth estimation needs the 'transformers' package") from None
    hf_logging.disable_progress_bar()  # no loading bars on the command line
    return DepthAnythingForDepthEstimation


def _make_config(backbone: dict, head: dict):
    from transformers import DepthAnythingConfig, Dinov2Config

    # the config is made of checked values only: nothing else from the folder's config.json reaches transformers
    return DepthAnythingConfig(backbone_config=Dinov2Config(**backbone), **head)


def check_model_folder(folder: str | Path) -> DepthModelSpec:
    """Check a depth-model folder against Depth Anything V2 Small before anything is built; a RelightError
    names the folder's file and the field that is wrong."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RelightError("not a depth model folder (expected config.json and model.safetensors)", folder)
    config = _read_json(folder / CONFIG, required=True)
    backbone, head = _check_config(config, folder / CONFIG)
    size, multiple, mean, std = _check_preprocessor(
        _read_json(folder / PREPROCESSOR, required=False), folder / PREPROCESSOR
    )
    weights_path = folder / WEIGHTS
    found = read_safetensors_header(weights_path)
    expected = _expected_weights(backbone, head, folder / CONFIG)
    by_name = {_canonical(k): (dtype, shape) for k, (dtype, shape) in found.items()}
    required = [k for k in expected if k not in _OPTIONAL_WEIGHTS]
    missing = [k for k in required if _canonical(k) not in by_name]
    if missing:
        what = (
            "none of the"
            if len(missing) == len(required)
            else f"only {len(required) - len(missing)} of the {len(required)}"
        )
        raise RelightError(
            f"holds {what} weights this architecture needs (missing e.g. {', '.join(missing[:2])})", weights_path
        )
    for k, shape in expected.items():
        got = by_name.get(_canonical(k))
        if got is not None and got[1] != shape:
            raise RelightError(f"weight {k} has shape {list(got[1])}, the config needs {list(shape)}", weights_path)
    return DepthModelSpec(folder, backbone, head, size, multiple, mean, std, found)


def build_model(spec: DepthModelSpec):
    """The model of a checked folder, its weights read strictly from the local safetensors file."""
    import torch
    from safetensors import safe_open

    with torch.device("meta"):
        model = _model_class()(_make_config(spec.backbone, spec.head))
    wanted = {_canonical(k): k for k in model.state_dict()}
    state = {}
    try:
        with safe_open(str(spec.folder / WEIGHTS), framework="pt") as f:
            for name in f.keys():
                key = wanted.get(_canonical(name))
                if key is not None:
                    state[key] = f.get_tensor(name).float()
    except Exception as exc:  # changed since it was checked, or damaged past its header
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise RelightError(f"cannot read the weights ({first})", spec.folder / WEIGHTS) from None
    for key in _OPTIONAL_WEIGHTS:
        if key in wanted.values() and key not in state:
            state[key] = torch.zeros(model.state_dict()[key].shape)
    bad = [k for k, v in state.items() if not bool(torch.isfinite(v).all())]
    if bad:
        raise RelightError(
            f"{len(bad)} weights hold NaN or infinite values (e.g. {bad[0]}); the file is damaged",
            spec.folder / WEIGHTS,
        )
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        first = (str(exc).splitlines() or ["mismatch"])[0][:200]
        raise RelightError(f"weights do not fit the config ({first})", spec.folder / WEIGHTS) from None
    return model.eval()
