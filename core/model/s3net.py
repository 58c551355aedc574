"""S3Net (Yang, Chen, Kuo, CVPRW 2021): single-stream depth-guided relighting network.

Layout and names follow the official release (class ``Dehaze3``) so that its ``weight.pkl``
loads with ``strict=True`` and gives the same output.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
from torch import nn

from .blocks import AttentionBlock, Enhancer
from .encoder import build_encoder


@dataclass(frozen=True)
class S3NetConfig:
    layers: tuple[int, int, int] = (3, 4, 23)
    channels: tuple[int, int, int] = (64, 128, 256)  # bottleneck planes; stage outputs are 4x
    # Not in the paper: the output layer also writes a per-pixel gain, and the image is
    # base + gain x the source's chromaticity (its colours over their brightness). The published
    # decoder rebuilds every colour from quarter-resolution features, and a small one trained briefly
    # greys the objects' own colours. The chromaticity carries colour but not the old shading: a gain on
    # the raw colours let the network copy the source, old shadows included.
    colour_path: bool = False

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


CHROMA_FLOOR = 0.05  # below this brightness the chromaticity fades out instead of amplifying noise


def chromaticity(rgb: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) colours over their brightness (the channel mean): 1 for grey at any level,
    unchanged by a shadow of the light's colour; near black it fades towards 0."""
    return rgb / (rgb.mean(1, keepdim=True).clamp(min=0) + CHROMA_FLOOR)  # never below the floor


class S3Net(nn.Module):
    """forward(source, guide, source_depth, guide_depth) -> relit image (tanh range; clamp to [0,1] to save)."""

    multiple = 32  # H and W must be divisible by this

    def __init__(self, config: S3NetConfig = S3NetConfig()):
        super().__init__()
        self.config = config
        c1, c2, c3 = (4 * c for c in config.channels)
        self.encoder = build_encoder(config.layers, config.channels, in_chans=8)
        self.mid_conv = AttentionBlock(c3)
        self.up_block1 = nn.PixelShuffle(2)
        d1 = c3 // 4
        self.attention1 = AttentionBlock(d1)
        d2 = (d1 + c2) // 4
        self.attention2 = AttentionBlock(d2)
        d3 = (d2 + c1) // 16  # two more pixel shuffles to full resolution
        self.out_channels = d3
        self.enhancer = Enhancer(d3, 20)
        self.tail = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(d3, 6 if config.colour_path else 3, 7), nn.Tanh())
        # zero channels appended before the last pixel shuffles (core.engine.accel.pad_head_channels sets it)
        self.head_padding = 0

    def forward_packed(self, x: torch.Tensor) -> torch.Tensor:
        """x = cat([src_rgb, guide_rgb, src_depth, guide_depth], 1), 8 channels."""
        l1, l2, l3 = self.encoder(x)
        y = self.up_block1(self.mid_conv(l3))
        y = self.attention1(y)
        y = self.up_block1(torch.cat([y, l2], dim=1))
        y = self.attention2(y)
        parts = [y, l1]
        if self.head_padding:
            parts.append(y.new_zeros((y.shape[0], self.head_padding, *y.shape[2:])))
        y = self.up_block1(torch.cat(parts, dim=1))
        y = self.up_block1(y)
        y = self.enhancer(y)
        out = self.tail(y)
        if self.config.colour_path:  # base + gain x source chromaticity, the gain in [-2, 2]
            return out[:, :3] + 2 * out[:, 3:] * chromaticity(x[:, :3])
        return out

    def forward(self, source, guide, source_depth, guide_depth):
        return self.forward_packed(torch.cat([source, guide, source_depth, guide_depth], dim=1))


# Explicit registry (no discovery by import side effects; survives a frozen build).
PRESETS: dict[str, S3NetConfig] = {
    "s3net": S3NetConfig(),
    "s3net-lite": S3NetConfig(layers=(2, 2, 6), channels=(32, 64, 128)),
    "s3net-lite-colour": S3NetConfig(layers=(2, 2, 6), channels=(32, 64, 128), colour_path=True),
}


# What each preset is, in a sentence (the app's preset list shows it).
PRESET_NOTES: dict[str, str] = {
    "s3net": "The published network (Res2Net-101 encoder); the official weights load into it.",
    "s3net-lite": "The same topology, smaller (2/2/6 blocks at half width): CPU use and quick fine-tuning.",
    "s3net-lite-colour": "s3net-lite whose image is base + gain x the source's chromaticity (not in the paper): "
    "the bundled model; started from s3net-lite weights it begins as exactly them.",
}


def create_model(preset: str = "s3net") -> S3Net:
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    return S3Net(PRESETS[preset])


def adds_colour_path(preset: str, base: str) -> bool:
    """Whether `preset` is `base` with the colour path added (weights of `base` can start it)."""
    a, b = PRESETS.get(preset), PRESETS.get(base)
    return a is not None and b is not None and a.colour_path and not b.colour_path and a == replace(b, colour_path=True)


def with_colour_path(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Weights of a network without the colour path for the same network with it: the gain
    channels of the output layer start at zero, so the new network starts as exactly the old one."""
    out = dict(state)
    for key in ("tail.1.weight", "tail.1.bias"):
        v = state[key]
        out[key] = torch.cat([v, torch.zeros_like(v)], dim=0)
    return out


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
