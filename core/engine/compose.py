"""Colour-true, edge-aware composition: the network decides the light, the photo keeps its colours.

The network runs at a small working size and its own image is smooth and, on photographs, loses
colour. What the output takes from it is only what light changes:

1. **Shading** — a luminance gain in the log domain, ``log(Y_relit + e) - log(Y_source + e)`` in
   linear light at working size. ``e`` keeps near-black regions from turning a little network
   noise into a large gain.
2. **Edge-aware transfer** — the gain is brought to full resolution with a guided filter (He, Sun,
   Tang 2013) whose guide is the source's *log luminance*: per window the gain is modelled as
   ``a * log Y + b``, the coefficients are smoothed and upsampled, and applied to the full-resolution
   log luminance. Where the network removed an old shadow, the gain anti-correlates with the
   source's luminance step, so ``a < 0`` and the correction follows the old shadow's edge exactly
   (no outline); on texture the gain does not follow the luminance, ``a`` is near 0 and the texture
   passes through untouched; new shadows keep the edge the network gives them (the ``b`` term).
   ``a`` is clamped to [-1, 0.5]: -1 flattens a step completely, and a positive slope above 0.5
   would only sharpen noise.
3. **Light colour** — one global chroma change for the whole picture, taken from the network's
   mean colour change and projected onto the black-body axis (warm/cool): lights are black
   bodies here, and the network's green/magenta shifts (a washed-out dominant material) are not
   a change of light. Under a neutral light a red cup stays red; a 2500 K light warms everything.
4. **Exposure** — optionally the output keeps the source's mean luminance (a relight moves the
   light, it does not darken the frame), plus an exposure offset in stops.

The gain is applied to the source in linear light, all channels alike, so the photo's own
chromaticity and detail are kept by construction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
BLACK = 0.002  # linear luminance (about 0.03 in sRGB) below which a pixel's colour is mostly noise


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0).astype(np.float32)
    return np.where(x <= 0.04045, x / 12.92, np.power((x + 0.055) / 1.055, 2.4)).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0).astype(np.float32)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055).astype(np.float32)


def _box(x: np.ndarray, r: int) -> np.ndarray:
    return cv2.blur(x, (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REFLECT)


def _warm_axis() -> np.ndarray:
    """Unit vector of a black-body light's change from 6500 K to 2500 K in log-RGB, with the
    luminance direction removed (a change along it is a change of colour, not of brightness)."""
    from core.render.color import kelvin_to_linear_rgb

    d = np.log(kelvin_to_linear_rgb(2500) + 1e-6) - np.log(kelvin_to_linear_rgb(6500) + 1e-6)
    d = d - d.mean()
    return (d / np.linalg.norm(d)).astype(np.float32)


WARM_AXIS = _warm_axis()
NEUTRAL_KELVIN = 6500.0  # a white-balanced photo looks lit by this (sRGB's white is D65)


def kelvin_colour(kelvin: float) -> np.ndarray:
    """Per-channel factor (luminance 1) that turns a neutral light into a black body at `kelvin`."""
    from core.render.color import kelvin_to_linear_rgb

    c = kelvin_to_linear_rgb(kelvin) / kelvin_to_linear_rgb(NEUTRAL_KELVIN)
    return (c / float(c @ LUMA)).astype(np.float32)


@dataclass(frozen=True)
class ComposeSettings:
    """How the network's lighting is carried onto the source (defaults: measured, docs/COMPOSITION.md)."""

    radius: int = 1  # guided-filter window radius, in working-size pixels
    eps: float = 0.1  # guided-filter regularisation on log luminance (larger: fewer source edges followed)
    dark: float = 0.01  # linear-light offset under the logs: near-black areas get a smooth gain
    source_blur: float = 1.0  # the network's blur (working px): the source's log luminance is blurred this much
    # where it is compared with the network's images
    smooth: float = 0.0  # extra Gaussian smoothing of the gain (working px) against the network's blotches
    slope: tuple[float, float] = (-1.0, 0.5)  # clamp of the guided filter's slope a
    keep_exposure: bool = False  # output mean luminance = source mean luminance
    exposure_ev: float = 0.0  # then this many stops up (+) or down (-)
    colour: bool = True  # change the light's colour (one global change on the black-body axis)
    light_kelvin: float | None = None  # the target light's temperature when known (the compass): the photo is
    # taken as white-balanced (NEUTRAL_KELVIN) and warmed or cooled to it; None: the network's change
    max_colour: float = 2.2  # bound on the warm/cool change along WARM_AXIS (2500 K <-> 6500 K is 1.93)


def light_colour(source_work_lin: np.ndarray, relit_work_lin: np.ndarray, limit: float = 2.2) -> np.ndarray:
    """Per-channel factor (mean 1 in log) of the light's colour change: the network's global colour
    change projected onto the black-body warm/cool axis."""
    ms = source_work_lin.reshape(-1, 3).mean(0) + 1e-4
    mr = relit_work_lin.reshape(-1, 3).mean(0) + 1e-4
    d = np.log(mr) - np.log(ms)
    alpha = float(np.clip(d @ WARM_AXIS, -limit, limit))
    c = np.exp(alpha * WARM_AXIS)
    return (c / float(c @ LUMA)).astype(np.float32)  # a change of colour, not of brightness


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(x, (0, 0), sigma, borderType=cv2.BORDER_REFLECT) if sigma > 0 else x


def log_gain(
    source_work: np.ndarray, relit_work: np.ndarray, s: ComposeSettings, reference_work: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(log luminance of the source blurred like the network's images, log-luminance gain of the
    relit image), both at working size. The gain is taken against the reference (the network's image of the source under its own light)
    when there is one, else against that blurred source."""
    # the source as the network sees it: blurred in sRGB, as the network's own images are
    ys = srgb_to_linear(_blur(np.ascontiguousarray(source_work, np.float32), s.source_blur)) @ LUMA
    yr = srgb_to_linear(relit_work) @ LUMA
    guide = np.log(ys + s.dark).astype(np.float32)
    base = srgb_to_linear(reference_work) @ LUMA if reference_work is not None else ys
    gain = np.log(yr + s.dark) - np.log(base + s.dark)
    return guide, _blur(gain.astype(np.float32), s.smooth)


def edge_aware_gain(
    guide_work: np.ndarray,
    gain_work: np.ndarray,
    guide_full: np.ndarray,
    radius: int,
    eps: float,
    slope: tuple[float, float] = (-1.0, 0.5),
) -> np.ndarray:
    """The log gain at full resolution: a guided filter fitted at working size (gain ~ a*guide + b per
    window), its smoothed coefficients upsampled and applied to the full-resolution guide.

    `guide_work` should be as smooth as the gain (the network's blur): the slope is then fitted
    between equally sharp signals, so an old shadow's step gets a = -1 exactly, and applied to the
    sharp full-resolution guide it removes the step along its own edge."""
    mg = _box(guide_work, radius)
    mt = _box(gain_work, radius)
    cov = _box(guide_work * gain_work, radius) - mg * mt
    var = _box(guide_work * guide_work, radius) - mg * mg
    a = np.clip(cov / (var + eps), *slope)
    b = mt - a * mg
    a, b = _box(a, radius), _box(b, radius)
    h, w = guide_full.shape
    if a.shape != (h, w):
        shrink = a.shape[0] * a.shape[1] > h * w
        interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        a = cv2.resize(a, (w, h), interpolation=interp)
        b = cv2.resize(b, (w, h), interpolation=interp)
    return a * guide_full + b


def _keep_exposure(y: np.ndarray, factor: np.ndarray) -> float:
    """The scale that gives y * factor * scale the same mean *displayed* brightness (sRGB-encoded
    luminance) as y: what a viewer judges. A few fixed-point steps on a subsample."""
    ys, fs = y[::3, ::3], factor[::3, ::3]
    target = float(linear_to_srgb(ys).mean()) + 1e-4
    scale = (float(ys.mean()) + 1e-4) / (float((ys * fs).mean()) + 1e-4)  # linear-light guess
    for _ in range(4):
        now = float(linear_to_srgb(ys * fs * scale).mean()) + 1e-4
        scale *= (target / now) ** 2.2
    return float(np.clip(scale, 1 / 64, 64))


def compose(
    source_full: np.ndarray,
    source_work: np.ndarray,
    relit_work: np.ndarray,
    settings: ComposeSettings = ComposeSettings(),
    reference_work: np.ndarray | None = None,
) -> np.ndarray:
    """The source at full resolution under the network's lighting (all arrays sRGB in [0, 1]).

    reference_work: the network's own image of the source with the source as its guide (the light
    unchanged). The change of light is then measured between two images of the network, so its own
    blur, greying and blotches cancel out instead of entering the gain."""
    s = settings
    guide_w, gain_w = log_gain(source_work, relit_work, s, reference_work)
    lin = srgb_to_linear(source_full)
    y = lin @ LUMA
    guide_full = np.log(y + s.dark).astype(np.float32)
    g = edge_aware_gain(guide_w, gain_w, guide_full, s.radius, s.eps, s.slope)
    factor = np.exp(g)
    if s.keep_exposure:
        factor *= _keep_exposure(y, factor)
    # the new luminance in the offset domain the gain was measured in, (Y + dark) * factor - dark; a
    # pixel keeps its chromaticity, except near black (Y << BLACK), whose colour is sensor noise: it
    # keeps its values and gets the added light as neutral fill instead of amplified noise
    new_y = np.maximum((y + s.dark) * factor - s.dark, 0.0)
    keep = y / (y + BLACK)
    out = (
        lin * (keep * new_y / np.maximum(y, 1e-6) + (1.0 - keep))[:, :, None] + ((1.0 - keep) * (new_y - y))[:, :, None]
    )
    if s.exposure_ev:
        out *= 2.0**s.exposure_ev
    if s.colour:
        if s.light_kelvin is not None:
            out *= kelvin_colour(s.light_kelvin)[None, None]
        else:
            before = reference_work if reference_work is not None else source_work
            out *= light_colour(srgb_to_linear(before), srgb_to_linear(relit_work), s.max_colour)[None, None]
    return linear_to_srgb(roll_off_highlights(out))


HIGHLIGHT_KNEE = 0.75  # linear light (0.88 displayed): where a brightened highlight starts to roll off


def roll_off_highlights(lin: np.ndarray, knee: float = HIGHLIGHT_KNEE) -> np.ndarray:
    """Bring light above 1 back into range with its gradation: each pixel's brightest channel above
    `knee` follows an extended Reinhard shoulder (slope 1 at the knee) that puts the image's brightest
    highlight (99.9th percentile) at 1, and the pixel's three channels are scaled together, so a lit
    white stays white with its detail instead of clipping to a flat patch, and no hue shifts. An image
    already in range is left as it is."""
    peak = lin.max(axis=2)
    top = float(np.percentile(peak[::2, ::2], 99.9))
    if top <= 1.0:
        return lin
    w = 1.0 - knee
    x = np.maximum(peak - knee, 0.0) / w
    xmax = (top - knee) / w
    shoulder = knee + w * x * (1.0 + x / (xmax * xmax)) / (1.0 + x)
    new_peak = np.where(peak > knee, np.minimum(shoulder, 1.0), peak)
    out = lin * (new_peak / np.maximum(peak, 1e-6))[:, :, None]
    # the few pixels above the percentile: scaled into range, still without a hue shift
    over = out.max(axis=2, keepdims=True)
    return np.where(over > 1.0, out / np.maximum(over, 1e-6), out)


def exposure_kept(settings: ComposeSettings) -> str:
    ev = f", {settings.exposure_ev:+g} EV" if settings.exposure_ev else ""
    return ("exposure kept" if settings.keep_exposure else "network's exposure") + ev


__all__ = [
    "ComposeSettings",
    "compose",
    "edge_aware_gain",
    "compass_settings",
    "kelvin_colour",
    "light_colour",
    "roll_off_highlights",
    "settings_for",
    "linear_to_srgb",
    "srgb_to_linear",
]


def compass_settings(kelvin: float = NEUTRAL_KELVIN, **changes) -> ComposeSettings:
    """Defaults when the light is given as numbers (the light compass): the photo keeps its exposure,
    since a direction and a colour say nothing about brightness, and takes the light's colour from
    its temperature. With a guide image the guide's brightness and colour are part of the target,
    so both come from the network instead."""
    return ComposeSettings(**{"keep_exposure": True, "light_kelvin": float(kelvin), **changes})


def settings_for(
    light_kelvin: float | None, keep_exposure: bool | None = None, exposure_ev: float = 0.0
) -> ComposeSettings:
    """The composition every face uses. light_kelvin: the compass light's temperature, None with a
    guide image. keep_exposure None = the default for the kind of target (kept under a compass
    light, the guide's with a guide image)."""
    if not math.isfinite(exposure_ev) or abs(exposure_ev) > 8:
        from core.base.errors import RelightError

        raise RelightError(f"exposure must be between -8 and +8 stops, not {exposure_ev:g}")
    keep = light_kelvin is not None if keep_exposure is None else bool(keep_exposure)
    return ComposeSettings(keep_exposure=keep, exposure_ev=float(exposure_ev), light_kelvin=light_kelvin)
