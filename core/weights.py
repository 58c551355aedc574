"""Where optional pretrained weights are looked for on disk (nothing is ever downloaded)."""
from __future__ import annotations

import os
from pathlib import Path

VGG19_FILE = "vgg19-dcbb9e9d.pth"
RES2NET_FILE = "res2net101_v1b_26w_4s-0812c246.pth"


def torch_hub_checkpoints() -> Path:
    home = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache")), "torch")
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
