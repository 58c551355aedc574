"""Add a light to a photo from its depth map: the normals engine's renderer (torch, CPU and CUDA).

Per pixel, in linear light (sRGB decoded): optionally divide out the photo's existing large-scale
light ("flatten"), then multiply by a gain

    gain = ambient + intensity * colour * wrap_lambert(n . l) * visibility * falloff

and encode again. A gain multiplies what the photo already holds, so its colours and detail stay
(a dark shirt stays a dark shirt, texture is only brightened or darkened). The light sits at an
azimuth on the compass (N = away from the camera, E = its right; ``core.render.light``) and an
elevation above the horizon, at ``distance`` times the scene's median depth from the scene's
centre (``inf``: a sun, the same direction everywhere); its colour is the renderer's black body
relative to a photo's 6500 K white. Cast shadows come from marching the depth map towards the
light; the light's angular size (``softness``) widens their penumbra.

Camera space as in ``core.render.normals``: x right, y up, z away from the camera.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .color import light_colour
from .light import Light, light_direction
from .normals import DEFAULT_FOV_DEG, focal_px, normals_from_depth, prepare_depth, unit

DEFAULT_WRAP = 0.2  # light reaching this far past the terminator (in n.l) softens the shading's edge
DEFAULT_DISTANCE = 3.0  # light distance from the scene centre, in median depths: a gentle falloff across the frame
MAX_FALLOFF = 4.0  # inverse-square gain cap for surfaces near the light
MAX_PENUMBRA_DEG = 12.0  # angular radius of the light at softness 1
SHADOW_STEPS = 48
WORK_SIDE = 512  # the light is worked out at this longer side (it is smooth), then brought up edge-aware
SHADOW_THICKNESS = (
    0.3  # an occluder is taken as this deep (fraction of its depth): a ray passing farther behind it is free
)
FLATTEN_SIGMA = 0.04  # blur of the photo's log luminance for "flatten", as a fraction of the diagonal
HIGHLIGHT_KNEE = 0.8  # linear values above this roll off towards 1 (hue kept) instead of clipping
LUMA = (0.2126, 0.7152, 0.0722)


@dataclass(frozen=True)
class Optics:
    """How the depth map is read and the light placed (engine options, not per-light settings)."""

    fov_deg: float = DEFAULT_FOV_DEG
    distance: float = DEFAULT_DISTANCE  # math.inf: a directional light
    wrap: float = DEFAULT_WRAP
    shadows: bool = True
    work_side: int = WORK_SIDE  # normals, shading and shadows at this longer side; the gain comes back edge-aware
    shadow_steps: int = SHADOW_STEPS


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x <= 0.04045, x / 12.92, ((x.clamp_min(0) + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp_min(0.0031308) ** (1 / 2.4) - 0.055)


def luminance(lin: torch.Tensor) -> torch.Tensor:
    r, g, b = lin.unbind(1)
    return (LUMA[0] * r + LUMA[1] * g + LUMA[2] * b).unsqueeze(1)


@dataclass
class Geometry:
    """A depth map read as a surface at the working size, and the full-size log depth that steers
    the way the light comes back to the image's size."""

    depth: torch.Tensor  # (B, 1, h, w) positive, at the working size
    points: torch.Tensor  # (B, 3, h, w)
    normals: torch.Tensor  # (B, 3, h, w)
    centre: float  # median depth: where the light circles
    fov_deg: float
    log_depth: torch.Tensor  # (B, 1, H, W) at the image's size
    log_small: torch.Tensor  # (B, 1, h, w)

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.log_depth.shape[-2:])


def geometry(depth: torch.Tensor, optics: Optics = Optics()) -> Geometry:
    """Points and normals of a depth map (H, W) or (B, 1, H, W) at the working size."""
    z = prepare_depth(depth.float())
    h, w = z.shape[-2:]
    s = optics.work_side / max(h, w)
    zs = F.interpolate(z, size=(max(8, round(h * s)), max(8, round(w * s))), mode="area") if s < 1 else z
    points, normals = normals_from_depth(zs, optics.fov_deg)
    lz, ls = z.log(), zs.log()
    return Geometry(zs, points, normals, float(zs.median()), optics.fov_deg, lz, ls)


def light_field(
    points: torch.Tensor, light: Light, centre: float, distance: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Per pixel: unit vector to the light (B, 3, H, W), inverse-square falloff (B, 1, H, W), normalised
    to 1 at the scene centre, and the distance to the light (B, 1, H, W; None for a sun)."""
    d = torch.tensor(light_direction(light.azimuth, light.elevation), device=points.device, dtype=points.dtype)
    if not math.isfinite(distance):
        return d.view(1, 3, 1, 1).expand_as(points), torch.ones_like(points[:, :1]), None
    pos = torch.tensor([0.0, 0.0, centre], device=points.device, dtype=points.dtype) + distance * centre * d
    v = pos.view(1, 3, 1, 1) - points
    x, y, z = v.unbind(1)
    r2 = (x * x + y * y + z * z).clamp_min_(1e-12).unsqueeze(1)
    falloff = ((distance * centre) ** 2 / r2).clamp_(max=MAX_FALLOFF)
    return v * r2.rsqrt(), falloff, r2.sqrt()


def wrap_lambert(normals: torch.Tensor, to_light: torch.Tensor, wrap: float) -> torch.Tensor:
    """Lambert's cosine with a soft wrap past the terminator: (n.l + w) / (1 + w), at least 0."""
    ndl = (normals * to_light).sum(1, keepdim=True)
    return ((ndl + wrap) / (1 + wrap)).clamp(0, 1)


def cast_shadows(
    geo: Geometry,
    to_light: torch.Tensor,
    light_dist: torch.Tensor | None,
    softness: float,
    steps: int = SHADOW_STEPS,
    chunk: int | None = None,
) -> torch.Tensor:
    """Visibility of the light (B, 1, h, w) in [0, 1] at the working size.

    Every pixel marches towards the light at once: `steps` points along its ray, geometrically spaced
    from one pixel to the far side of the frame, projected into the image and compared with the depth
    map there (one grid_sample per chunk of steps). A ray is blocked where the depth map lies in front
    of it, up to SHADOW_THICKNESS behind the surface. The smallest clearance angle along the ray gives
    the visibility: hard (softness 0) or a smooth ramp over the light's angular size."""
    z, p, n = geo.depth, geo.points, geo.normals
    b, _, h, w = z.shape
    f = focal_px(h, w, geo.fov_deg)
    # past the terminator the ray is bent into the tangent plane: the shading's own falloff handles
    # that side, and a self-shadow there would cut the wrap off with a hard line
    ndl = (n * to_light).sum(1, keepdim=True)
    ray = to_light - ndl.clamp(max=0) * n
    ray = unit(ray)
    origin = p + n * (z / f)  # one pixel off the surface
    # the ray at length tau * z: numerators and depth are affine in tau; the image scale is folded in
    sx, sy = 2 * f / w, -2 * f / h
    ax, bx = origin[:, 0:1] * sx, z * ray[:, 0:1] * sx
    ay, by = origin[:, 1:2] * sy, z * ray[:, 1:2] * sy
    az, bz = origin[:, 2:3], z * ray[:, 2:3]
    inv_z, slack = 1 / z, 1 / f  # clearance in depth units per unit length; one pixel of slack
    # the pixel's own tangent plane, seen along the camera ray through each ray point, is at depth
    # rz * (n.p) / (n.r): only samples in front of it occlude, so a flat or convex surface never
    # shadows itself (that is the shading's job) while a concave corner still does
    n_p = (n * p).sum(1, keepdim=True)
    n_o, n_b = (n * origin).sum(1, keepdim=True), (n * ray).sum(1, keepdim=True) * z
    tau_light = None if light_dist is None else light_dist * inv_z  # rays end at the light
    reach = 2.4 * math.tan(math.radians(geo.fov_deg) / 2) + 0.1  # relative ray length that crosses the frame
    taus = torch.logspace(math.log10(1.5 / f), math.log10(reach), steps, device=z.device, dtype=z.dtype)
    # each pixel of a 2x2 block marches a quarter step further: four pixels together sample the ray
    # four times as finely, so shadow ends and penumbrae do not come in plateaus of one step
    ratio = (reach * f / 1.5) ** (1 / max(1, steps - 1))
    quarter = torch.tensor([[0.0, 0.25], [0.5, 0.75]], device=z.device, dtype=z.dtype)
    dither = (ratio**quarter).repeat((h + 1) // 2, (w + 1) // 2)[:h, :w]
    # inverse depth is sampled: linear across a plane in the image, and 0 (infinitely far, never an
    # occluder) outside the picture, where a ray that left it reads nothing
    inv_depth = z.reciprocal()
    # GPU: every step in one launch per op; CPU: about 256k samples per op, small enough to stay in cache
    chunk = chunk or (steps if z.device.type != "cpu" else max(1, 2**18 // (b * h * w)))
    clear = torch.full_like(z, math.inf)
    inf = torch.tensor(math.inf, device=z.device, dtype=z.dtype)
    for k0 in range(0, steps, chunk):
        tk = taus[k0 : k0 + chunk].view(1, -1, 1, 1) * dither  # (1, K, H, W)
        k = tk.shape[1]
        rz = torch.addcmul(az, tk, bz).clamp_min_(1e-4)  # behind the camera: projected far away, never blocks
        inv = rz.reciprocal()
        grid = torch.stack([torch.addcmul(ax, tk, bx) * inv, torch.addcmul(ay, tk, by) * inv], -1)
        zs = (
            F.grid_sample(
                inv_depth, grid.view(b, k * h, w, 2), mode="bilinear", padding_mode="zeros", align_corners=False
            )
            .view(b, k, h, w)
            .reciprocal_()
        )
        gap = zs - rz  # > 0: the ray passes in front of the surface there
        angle = (gap * inv_z + slack) / tk  # clearance seen from the pixel (tangent of the angle)
        n_r = torch.addcmul(n_o, tk, n_b)
        tangent = torch.where(n_r < -1e-6, rz * n_p / n_r.clamp(max=-1e-6), inf)
        # a ray far behind an occluder is not blocked
        counts = (gap > -SHADOW_THICKNESS * zs) & (zs < tangent - z * slack)
        if tau_light is not None:
            counts &= tk < tau_light  # nothing beyond the light
        clear = torch.minimum(clear, torch.where(counts, angle, inf).amin(1, keepdim=True))
    tan_r = math.tan(math.radians(max(softness, 0.0) * MAX_PENUMBRA_DEG))
    if tan_r <= 0:
        return (clear >= 0).to(z.dtype)
    x = ((clear / tan_r + 1) / 2).clamp(0, 1)  # 0.5 on the geometric shadow edge
    return x * x * (3 - 2 * x)


def to_full_size(small: torch.Tensor, geo: Geometry) -> torch.Tensor:
    """A map (B, C, h, w) from the working size to the image's size, its edges following the
    full-size depth: a guided filter's linear fit on the small grid, applied with the full-size guide."""
    if small.shape[-2:] == geo.log_depth.shape[-2:]:
        return small
    lo, hi = geo.log_small, geo.log_depth
    mg, mp = _box3(lo), _box3(small)
    a = (_box3(lo * small) - mg * mp) / (_box3(lo * lo) - mg * mg + 1e-4)
    b = mp - a * mg
    a = F.interpolate(_box3(a), size=hi.shape[-2:], mode="bilinear", align_corners=False)
    b = F.interpolate(_box3(b), size=hi.shape[-2:], mode="bilinear", align_corners=False)
    return torch.addcmul(b, a, hi).clamp_min_(0)


def _box3(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


def flatten_gain(lin: torch.Tensor, amount: float) -> torch.Tensor:
    """A gain (B, 1, H, W) that divides out the photo's large-scale light: exp(-amount * (blurred log
    luminance - its mean)). The blur runs on a small copy (it is wide) and comes back bilinearly."""
    h, w = lin.shape[-2:]
    s = min(1.0, 128 / max(h, w))
    small = F.interpolate(lin, size=(max(4, round(h * s)), max(4, round(w * s))), mode="area")
    logy = luminance(small).clamp_min(1e-4).log()
    sigma = FLATTEN_SIGMA * math.hypot(*small.shape[-2:])
    r = max(1, int(3 * sigma))
    x = torch.arange(-r, r + 1, device=lin.device, dtype=lin.dtype)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = k / k.sum()
    pad = F.pad(logy, (r, r, r, r), mode="replicate")
    blurred = F.conv2d(F.conv2d(pad, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1))
    gain = torch.exp(-amount * (blurred - blurred.mean(dim=(-2, -1), keepdim=True)))
    return F.interpolate(gain, size=(h, w), mode="bilinear", align_corners=False)


def roll_off(lin: torch.Tensor, knee: float = HIGHLIGHT_KNEE) -> torch.Tensor:
    """Bring values above `knee` smoothly under 1, scaling all three channels of a pixel together so
    its hue stays (clipping one channel would shift the colour)."""
    m = lin.amax(1, keepdim=True).clamp_min_(knee)
    target = torch.tanh((m - knee) / (1 - knee)).mul_(1 - knee).add_(knee)  # = m near the knee
    return lin * target.div_(m)


def shading(geo: Geometry, light: Light, optics: Optics = Optics()) -> torch.Tensor:
    """The added light's strength (B, 1, h, w) at the working size, before colour: wrap-Lambert x
    cast-shadow visibility x falloff; 1 = a surface facing the light at the scene centre, unshadowed."""
    to_light, falloff, dist = light_field(geo.points, light, geo.centre, optics.distance)
    lit = wrap_lambert(geo.normals, to_light, optics.wrap) * falloff
    if optics.shadows:
        lit = lit * cast_shadows(geo, to_light, dist, light.softness, optics.shadow_steps)
    return lit


def add_light(
    image: torch.Tensor, geo: Geometry, light: Light, optics: Optics = Optics(), linear: torch.Tensor | None = None
) -> torch.Tensor:
    """The photo (B, 3, H, W) sRGB in [0, 1] under the added light; `linear` is its decoded copy when
    the caller keeps one (the live preview decodes once)."""
    lin = srgb_to_linear(image) if linear is None else linear
    colour = torch.tensor(light_colour(light.kelvin), device=image.device, dtype=lin.dtype).view(1, 3, 1, 1)
    lit = to_full_size(shading(geo, light, optics), geo)
    if light.flatten > 0:
        lin = lin * flatten_gain(lin, light.flatten)
    gain = torch.addcmul(torch.full_like(colour, light.ambient), lit, light.intensity * colour)
    return linear_to_srgb(roll_off(lin * gain)).clamp_(0, 1)
