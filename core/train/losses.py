"""S3Net training losses: Charbonnier, SSIM, wavelet SSIM (W-SSIM) and the VGG19 perceptual loss.

Total: ``w_c * Charbonnier + w_w * W-SSIM + w_p * perceptual`` with weights 1.0 / 1.1 / 0.1.

W-SSIM is reported as ``2 - [SSIM + sum of band SSIMs weighted as in Y-net]``: the same
gradients as Y-net's ``-[...]`` form, but with minimum 0 for identical images.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# pywt.Wavelet('haar').dec_lo / dec_hi (orthonormal, not renormalised).
HAAR_DEC_LO = (0.7071067811865476, 0.7071067811865476)
HAAR_DEC_HI = (-0.7071067811865476, 0.7071067811865476)


def charbonnier(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    return torch.sqrt((pred - target) ** 2 + eps).mean()


@functools.lru_cache(maxsize=32)
def _on_device(make, device: torch.device, dtype: torch.dtype, *args) -> torch.Tensor:
    """A constant filter made once per device and dtype: no host-to-device copy in each step (which
    a CUDA graph capture of the training step forbids)."""
    made: torch.Tensor = make(*args)
    return made.to(device=device, dtype=dtype)


def gaussian_kernel(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """The 1-D normalised Gaussian; the 2-D SSIM window is its outer product."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).float()


def gaussian_blur(x: torch.Tensor, size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-channel Gaussian blur with zero padding, as two 1-D passes: the same sums as the 2-D
    window (zero padding keeps the separation exact at the borders) at 2k instead of k² taps, and a
    depthwise 1-D convolution is far cheaper to differentiate than an 11x11 one."""
    c, pad = x.shape[1], size // 2
    g = _on_device(gaussian_kernel, x.device, x.dtype, size, sigma)
    x = F.conv2d(x, g.view(1, 1, 1, size).expand(c, 1, 1, size), padding=(0, pad), groups=c)
    return F.conv2d(x, g.view(1, 1, size, 1).expand(c, 1, size, 1), padding=(pad, 0), groups=c)


def ssim_map(
    x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5, c1: float = 0.01**2, c2: float = 0.03**2
) -> torch.Tensor:
    """Per-channel SSIM map (Gaussian window, zero padding keeps the map the input's size)."""
    # the five local moments in one blur: one pair of kernel launches instead of five
    moments = gaussian_blur(torch.cat([x, y, x * x, y * y, x * y], 1), window, sigma)
    mu_x, mu_y, exx, eyy, exy = moments.chunk(5, 1)
    sxx = exx - mu_x**2
    syy = eyy - mu_y**2
    sxy = exy - mu_x * mu_y
    return ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ssim_map(x, y).mean()


def haar_filters() -> torch.Tensor:
    """(4, 1, 2, 2) analysis filters LL, LH, HL, HH. Reversed so that conv2d's correlation is
    the convolution pywt applies: band k equals pywt.dwt2(x, 'haar') [cA, cH, cV, cD][k]."""
    lo = torch.tensor(HAAR_DEC_LO[::-1], dtype=torch.float64)
    hi = torch.tensor(HAAR_DEC_HI[::-1], dtype=torch.float64)
    f = torch.stack([lo[:, None] * lo[None], hi[:, None] * lo[None], lo[:, None] * hi[None], hi[:, None] * hi[None]])
    return f[:, None].float()


def dwt_haar(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One level of the 2-D Haar DWT as a stride-2 depthwise convolution. -> LL, LH, HL, HH."""
    n, c, h, w = x.shape
    if h % 2 or w % 2:
        x = F.pad(x, (0, w % 2, 0, h % 2), mode="reflect")
    f = _on_device(haar_filters, x.device, x.dtype).repeat(c, 1, 1, 1)
    y = F.conv2d(x, f, stride=2, groups=c)
    y = y.view(n, c, 4, y.shape[-2], y.shape[-1])
    return y[:, :, 0], y[:, :, 1], y[:, :, 2], y[:, :, 3]


def wssim_weights(levels: int = 2, r: float = 0.7) -> list[tuple[float, float, float]]:
    """(l, m, h) per level, starting from 1 and updated as in Y-net."""
    out, l = [], 1.0
    for _ in range(levels):
        l, m, h = l * r * r, l * r * (1 - r), l * (1 - r) * (1 - r)
        out.append((l, m, h))
    return out


def wssim_loss(x: torch.Tensor, y: torch.Tensor, levels: int = 2, r: float = 0.7) -> torch.Tensor:
    total = ssim(x, y)
    for l, m, h in wssim_weights(levels, r):
        xll, xlh, xhl, xhh = dwt_haar(x)
        yll, ylh, yhl, yhh = dwt_haar(y)
        total = total + 2 * m * ssim(torch.cat([xlh, xhl], 1), torch.cat([ylh, yhl], 1)) + h * ssim(xhh, yhh)
        x, y = xll, yll
    total = total + wssim_weights(levels, r)[-1][0] * ssim(x, y)
    return 2.0 - total


VGG_SLICES = ((0, 2), (2, 7), (7, 12))  # relu1_1, relu2_1, relu3_1 of torchvision's vgg19().features
VGG_WEIGHTS = (1 / 32, 1 / 16, 1 / 8)


class VGGPerceptual(nn.Module):
    """L1 between frozen VGG19 features of prediction and (detached) target."""

    def __init__(self, weights_path: str | Path):
        super().__init__()
        from torchvision.models import vgg19

        from core.storage.safe_load import load_torch_file

        features = vgg19(weights=None).features[: VGG_SLICES[-1][1]]
        state = load_torch_file(weights_path)
        own = {f"features.{k}": v for k, v in features.state_dict().items()}
        missing = [k for k in own if k not in state]
        if missing:
            from core.base.errors import RelightError

            raise RelightError(f"not VGG19 ImageNet weights (missing {missing[:2]})", weights_path)
        features.load_state_dict({k.removeprefix("features."): state[k] for k in own})
        self.slices = nn.ModuleList(features[a:b] for a, b in VGG_SLICES)
        self.weights = VGG_WEIGHTS
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):
        return super().train(False)  # always frozen, never in training mode

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = pred.new_zeros(())
        a, b = pred, target.detach()
        for w, sl in zip(self.weights, self.slices):
            a = sl(a)
            with torch.no_grad():
                b = sl(b)
            loss = loss + w * F.l1_loss(a, b)
        return loss


def colour_loss(pred: torch.Tensor, target: torch.Tensor, pool: int = 4, floor: float = 0.05) -> torch.Tensor:
    """The objects' own colours: L1 between pred's and target's chromaticities with each image's
    overall colour cast divided out, plus the cast itself, at 1/pool resolution.

    Chromaticity is a pixel's colour over its channel mean (a grey pixel is (1, 1, 1) whatever its
    brightness). Dividing it by the image's mean chromaticity removes the light's colour, so the first
    part sees only how colours differ across the picture. Both parts matter because the sign of an L1
    gradient follows the largest error: where the cast is wrong (it must be guessed from a guide of
    another scene) a plain chromaticity L1 - like Charbonnier on RGB - pushes every pixel the same
    way and says nothing about the albedo's colours, and a network trained so keeps only the cast
    (its output, white-balanced, holds a fifth of the target's chroma). ``floor`` keeps near-black
    pixels, whose colour is noise, from dominating."""
    p = F.avg_pool2d(pred.float(), pool) if pool > 1 else pred.float()
    t = F.avg_pool2d(target.float(), pool) if pool > 1 else target.float()
    cp = p / (p.mean(1, keepdim=True) + floor)
    ct = t / (t.mean(1, keepdim=True) + floor)
    cast_p = cp.mean((2, 3), keepdim=True)
    cast_t = ct.mean((2, 3), keepdim=True)
    spatial = (cp / cast_p - ct / cast_t).abs().mean()
    return spatial + (cast_p - cast_t).abs().mean()


@dataclass
class LossWeights:
    charbonnier: float = 1.0
    wssim: float = 1.1
    perceptual: float = 0.1
    colour: float = 0.0  # not in the paper's recipe; the bundled model trains with it


class RelightLoss(nn.Module):
    """The paper's total loss. Without VGG19 weights the perceptual term is off (never random VGG)."""

    def __init__(self, weights: LossWeights = LossWeights(), vgg_path: str | Path | None = None):
        super().__init__()
        self.weights = weights
        self.perceptual = VGGPerceptual(vgg_path) if (vgg_path and weights.perceptual > 0) else None
        self.perceptual_off_reason = None
        if self.perceptual is None and weights.perceptual > 0:
            self.perceptual_off_reason = "VGG19 ImageNet weights not found; perceptual loss term is OFF"

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        pred, target = pred.float(), target.float()
        c = charbonnier(pred, target)
        w = wssim_loss(pred, target)
        total = self.weights.charbonnier * c + self.weights.wssim * w
        terms = {"charbonnier": c.detach(), "wssim": w.detach()}
        if self.perceptual is not None:
            p = self.perceptual(pred, target)
            total = total + self.weights.perceptual * p
            terms["perceptual"] = p.detach()
        if self.weights.colour > 0:
            k = colour_loss(pred, target)
            total = total + self.weights.colour * k
            terms["colour"] = k.detach()
        terms["total"] = total.detach()
        return total, terms
