"""Black-body colour temperature -> linear sRGB, via Planck's law and the CIE 1931 observer.

The colour-matching functions use the multi-lobe Gaussian fit of Wyman, Sloan and Shirley
(JCGT 2013), accurate to well under a percent of the tabulated CIE data for this purpose.
"""

from __future__ import annotations

import numpy as np

_XYZ_TO_SRGB = np.array(
    [[3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415], [0.0557, -0.2040, 1.0570]], dtype=np.float64
)


def _lobe(lam, mu, s1, s2):
    s = np.where(lam < mu, s1, s2)
    return np.exp(-0.5 * ((lam - mu) / s) ** 2)


def cie_xyz_bar(lam_nm: np.ndarray) -> np.ndarray:
    x = (
        1.056 * _lobe(lam_nm, 599.8, 37.9, 31.0)
        + 0.362 * _lobe(lam_nm, 442.0, 16.0, 26.7)
        - 0.065 * _lobe(lam_nm, 501.1, 20.4, 26.2)
    )
    y = 0.821 * _lobe(lam_nm, 568.8, 46.9, 40.5) + 0.286 * _lobe(lam_nm, 530.9, 16.3, 31.1)
    z = 1.217 * _lobe(lam_nm, 437.0, 11.8, 36.0) + 0.681 * _lobe(lam_nm, 459.0, 26.0, 13.8)
    return np.stack([x, y, z], axis=-1)


def planck(lam_nm: np.ndarray, kelvin: float) -> np.ndarray:
    h, c, k = 6.62607015e-34, 2.99792458e8, 1.380649e-23
    lam = lam_nm * 1e-9
    return 1.0 / (lam**5 * (np.exp(h * c / (lam * k * kelvin)) - 1.0))


def kelvin_to_linear_rgb(kelvin: float) -> np.ndarray:
    """Linear sRGB of a black body at `kelvin`, scaled to luminance Y = 1."""
    lam = np.arange(380.0, 781.0, 1.0)
    xyz = (planck(lam, kelvin)[:, None] * cie_xyz_bar(lam)).sum(axis=0)
    xyz = xyz / xyz[1]
    rgb = _XYZ_TO_SRGB @ xyz
    return np.clip(rgb, 0.0, None).astype(np.float32)


WHITE_KELVIN = 6500.0  # sRGB's white (D65, about 6504 K): a photo's neutral light


def light_colour(kelvin: float) -> np.ndarray:
    """A light's colour relative to a photo's white: the black body at `kelvin` divided by the one at
    6500 K, scaled to luminance 1. A 6500 K light adds no colour cast; 2500 K is warm, 10000 K cool."""
    rgb = kelvin_to_linear_rgb(kelvin) / kelvin_to_linear_rgb(WHITE_KELVIN)
    return (rgb / float(rgb @ np.array([0.2126, 0.7152, 0.0722], np.float32))).astype(np.float32)
