"""Res2Net v1b encoder (deep stem, avg-down), stages 1-3, built with timm.

timm's ``res2net101d`` is the release's Res2Net-101 v1b 26w x 4s: the same state_dict names and
shapes as the official checkpoint's ``encoder.*`` entries and the same arithmetic.
"""

from __future__ import annotations

import torch
from torch import nn


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
