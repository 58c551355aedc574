"""Optional pretrained weights: where they are looked for on disk (nothing is ever downloaded) and
how the ImageNet encoder weights are read into the model (core.model itself knows no files)."""

from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from core.base.errors import RelightError
from core.model.encoder import widen_stem

VGG19_FILE = "vgg19-dcbb9e9d.pth"
RES2NET_FILE = "res2net101_v1b_26w_4s-0812c246.pth"


def torch_hub_checkpoints() -> Path:
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache")), "torch"
    )
    return Path(home) / "hub" / "checkpoints"


def find_weights(filename: str, explicit: str | Path | None = None) -> Path | None:
    if explicit:
        p = Path(explicit)
        return p if p.is_file() else None
    p = torch_hub_checkpoints() / filename
    return p if p.is_file() else None


def find_vgg19(explicit: str | Path | None = None) -> Path | None:
    return find_weights(VGG19_FILE, explicit or os.environ.get("RELIGHT_VGG19"))


def find_res2net(explicit: str | Path | None = None) -> Path | None:
    return find_weights(RES2NET_FILE, explicit or os.environ.get("RELIGHT_RES2NET"))


def load_imagenet_encoder(encoder: nn.Module, path: str | Path) -> list[str]:
    """Initialise the encoder from an ImageNet Res2Net v1b file (e.g. res2net101_v1b_26w_4s-0812c246.pth).

    Returns the names of encoder tensors that the file did not provide.
    """
    from core.storage.safe_load import load_torch_file

    state = load_torch_file(path)
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    state = {k.removeprefix("module."): v for k, v in state.items()}
    own = encoder.state_dict()
    stem = "conv1.0.weight"
    if stem in state and state[stem].shape[1] == 3:
        state[stem] = widen_stem(state[stem])
    used = {k: v for k, v in state.items() if k in own}
    bad = [k for k, v in used.items() if tuple(v.shape) != tuple(own[k].shape)]
    if bad:
        raise RelightError(f"ImageNet weights do not fit this encoder (shape differs for {bad[:3]})", path)
    if len(used) < len(own) // 2:
        raise RelightError("this file does not look like Res2Net v1b ImageNet weights", path)
    encoder.load_state_dict(used, strict=False)
    return sorted(set(own) - set(used))
