"""Decoder building blocks of S3Net, named as in the official release so its weights load strictly."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ChannelAttention(nn.Module):
    """Global average pool -> 1x1 (c -> c/8) -> ReLU -> 1x1 (c/8 -> c) -> sigmoid, used as a gate."""

    def __init__(self, channels: int):
        super().__init__()
        self.ca = nn.Sequential(
            nn.Conv2d(channels, channels // 8, 1, bias=True),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels // 8, channels, 1, bias=True),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.ca(F.adaptive_avg_pool2d(x, 1))


class PixelAttention(nn.Module):
    """Per-pixel gate: 1x1 (c -> c/8) -> ReLU -> 1x1 (c/8 -> 1) -> sigmoid."""

    def __init__(self, channels: int):
        super().__init__()
        self.pa = nn.Sequential(
            nn.Conv2d(channels, channels // 8, 1, bias=True),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels // 8, 1, 1, bias=True),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.pa(x)


class AttentionBlock(nn.Module):
    """Residual + channel + pixel attention (the release's ``DehazeBlock``).

    r = conv2(relu(conv1(x)) + x); r = r * CA(r); r = r * PA(r); return r + x
    """

    def __init__(self, channels: int, kernel_size: int = 3):
        super().__init__()
        pad = kernel_size // 2
        self.conv1 = nn.Conv2d(channels, channels, kernel_size, padding=pad, bias=True)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size, padding=pad, bias=True)
        self.calayer = ChannelAttention(channels)
        self.palayer = PixelAttention(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.act1(self.conv1(x)) + x
        r = self.conv2(r)
        r = self.calayer(r)
        r = self.palayer(r)
        return r + x


class Enhancer(nn.Module):
    """EPDN-style multi-scale refinement at full resolution.

    Pools the 20-channel map with kernels 32/16/8/4, squeezes each to one channel, upsamples
    (nearest) and concatenates [p32, p16, p8, p4, map] before the last 3x3 conv and tanh.
    """

    def __init__(self, in_channels: int = 28, mid_channels: int = 20):
        super().__init__()
        self.refine1 = nn.Conv2d(in_channels, mid_channels, 3, padding=1)
        self.refine2 = nn.Conv2d(mid_channels, mid_channels, 3, padding=1)
        self.conv1010 = nn.Conv2d(mid_channels, 1, 1)
        self.conv1020 = nn.Conv2d(mid_channels, 1, 1)
        self.conv1030 = nn.Conv2d(mid_channels, 1, 1)
        self.conv1040 = nn.Conv2d(mid_channels, 1, 1)
        self.refine3 = nn.Conv2d(mid_channels + 4, in_channels, 3, padding=1)
        self.act = nn.LeakyReLU(0.2, inplace=True)
        # Unused by the forward pass; kept because the released checkpoint holds it.
        self.batch1 = nn.InstanceNorm2d(100, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.act(self.refine1(x))
        f = self.act(self.refine2(f))
        size = f.shape[-2:]
        maps = []
        for k, conv in ((32, self.conv1010), (16, self.conv1020), (8, self.conv1030), (4, self.conv1040)):
            p = self.act(conv(F.avg_pool2d(f, k)))
            maps.append(F.interpolate(p, size=size, mode="nearest"))
        return torch.tanh(self.refine3(torch.cat([*maps, f], dim=1)))
