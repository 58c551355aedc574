"""Res2Net v1b encoder (deep stem, avg-down), stages 1-3, built with timm.

timm's ``res2net101d`` is the release's Res2Net-101 v1b 26w x 4s: the same state_dict names and
shapes as the official checkpoint's ``encoder.*`` entries and the same arithmetic.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import RelightError


def build_encoder(layers: tuple[int, int, int], channels: tuple[int, int, int], in_chans: int = 8) -> nn.Module:
    import timm  # imported here: timm's import costs ~1 s and only model building needs it

    # layer4 is built by timm's ResNet and dropped by features_only (it stops after layer3).
    kwargs = dict(features_only=True, out_indices=(1, 2, 3), in_chans=in_chans, pretrained=False)
    if tuple(layers) == (3, 4, 23) and tuple(channels) == (64, 128, 256):
        return timm.create_model("res2net101d", **kwargs)
    return timm.create_model(
        "res2net50d",
        layers=[*layers, 1],
        channels=(*channels, channels[-1] * 2),
        **kwargs,
    )


def widen_stem(weight: torch.Tensor, in_chans: int = 8) -> torch.Tensor:
    """Turn an RGB stem kernel (out, 3, k, k) into one for [src RGB, guide RGB, src D, guide D].

    Both image slots get a copy of the RGB kernel, each depth slot the mean over RGB; the whole
    kernel is then scaled by 3/8 so a grey input gives the same response as the RGB network.
    """
    if weight.shape[1] != 3 or in_chans != 8:
        raise ValueError("widen_stem expects a 3-channel kernel and 8 output channels")
    depth = weight.mean(dim=1, keepdim=True)
    wide = torch.cat([weight, weight, depth, depth], dim=1)
    return wide * (3.0 / 8.0)


def load_imagenet_encoder(encoder: nn.Module, path: str | Path) -> list[str]:
    """Initialise the encoder from an ImageNet Res2Net v1b file (e.g. res2net101_v1b_26w_4s-0812c246.pth).

    Returns the names of encoder tensors that the file did not provide.
    """
    from ..safe_load import load_torch_file

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
