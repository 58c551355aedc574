"""Surface normals from a depth map (torch; the same code on the CPU and on CUDA).

Depth is in the product's convention: larger = farther (VIDIT's ``normalized_depth``, the renderer's
camera depth / 30 m, or an estimate already converted by ``core.depth.estimation``). Each pixel is
back-projected through a pinhole camera, so the normals do not depend on the depth's unit: scaling
a depth map scales the scene, not its shape. Camera space: x = the camera's right (E), y = up,
z = away from the camera (N); a surface facing the camera has a normal with z < 0.

Texture that leaked into the depth (estimators copy fine photo detail into their maps) is a tiny
depth change per pixel but a large slope, because a pixel is small against the focal length. The
normals are therefore smoothed with a guided filter (He, Sun, Tang 2010) steered by the log depth:
where the depth varies less than the filter's epsilon inside a window (texture, bumps) the normals
are averaged; across a depth edge (an object in front of its background) the fit follows the edge,
so no halo of sideways normals appears around objects.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

DEFAULT_FOV_DEG = 50.0  # across the longer side; the renderer's camera (square images)
SMOOTH_RADIUS = 0.02  # guided-filter radius as a fraction of the longer side
SMOOTH_EPS = 1e-4  # (1 % of depth)^2 in log depth: depth variation below this inside a window is texture


def focal_px(height: int, width: int, fov_deg: float = DEFAULT_FOV_DEG) -> float:
    """Focal length in pixels for a field of view across the longer side."""
    return 0.5 * max(height, width) / math.tan(math.radians(fov_deg) / 2)


def backproject(depth: torch.Tensor, fov_deg: float = DEFAULT_FOV_DEG) -> torch.Tensor:
    """(B, 1, H, W) depth -> (B, 3, H, W) camera-space points (x right, y up, z away)."""
    _, _, h, w = depth.shape
    f = focal_px(h, w, fov_deg)
    u = (torch.arange(w, device=depth.device, dtype=depth.dtype) + 0.5 - w / 2) / f
    v = (torch.arange(h, device=depth.device, dtype=depth.dtype) + 0.5 - h / 2) / f
    return torch.cat([depth * u.view(1, 1, 1, w), -depth * v.view(1, 1, h, 1), depth], 1)


def _robust_diff(p: torch.Tensor, dim: int) -> torch.Tensor:
    """Derivative of the points along `dim` (3 = columns, 2 = rows): central differences, but at a
    depth discontinuity the one-sided difference on the pixel's own surface (the smaller depth step)."""
    d = p.diff(dim=dim)
    back = F.pad(d, (0, 0, 1, 0) if dim == 2 else (1, 0, 0, 0), mode="replicate")  # p[i] - p[i-1]
    fwd = F.pad(d, (0, 0, 0, 1) if dim == 2 else (0, 1, 0, 0), mode="replicate")  # p[i+1] - p[i]
    zb, zf = back[:, 2:3], fwd[:, 2:3]
    # a second difference well above the first ones is an edge, not curvature
    edge = (zf - zb).abs() > 0.5 * (zf.abs() + zb.abs()) + 2e-3 * p[:, 2:3]
    one_sided = torch.where(zf.abs() < zb.abs(), fwd, back)
    return torch.where(edge, one_sided, 0.5 * (fwd + back))


def unit(v: torch.Tensor) -> torch.Tensor:
    """Vectors along dim 1 (B, 3, H, W) scaled to length 1 (an explicit sum: linalg's norm over a
    3-long strided dimension is many times slower on the CPU)."""
    x, y, z = v.unbind(1)
    inv = torch.rsqrt((x * x + y * y + z * z).clamp_min_(1e-24))
    return v * inv.unsqueeze(1)


def box(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over a (2r+1)^2 window, windows shrunk at the border (separable)."""
    if r <= 0:
        return x
    x = F.avg_pool2d(x, (1, 2 * r + 1), stride=1, padding=(0, r), count_include_pad=False)
    return F.avg_pool2d(x, (2 * r + 1, 1), stride=1, padding=(r, 0), count_include_pad=False)


def guided_filter(guide: torch.Tensor, src: torch.Tensor, radius: int, eps: float, subsample: int = 1) -> torch.Tensor:
    """Edge-aware smoothing of `src` (B, C, H, W) steered by `guide` (B, 1, H, W). With `subsample`
    > 1 the linear coefficients are fitted on a smaller grid and applied at full size with the
    full-size guide (He and Sun 2015, the fast guided filter): the same edges at a fraction of the cost."""
    h, w = guide.shape[-2:]
    s = max(1, int(subsample))
    if s > 1:
        size = (max(1, h // s), max(1, w // s))
        g, p = F.interpolate(guide, size=size, mode="area"), F.interpolate(src, size=size, mode="area")
        r = max(1, round(radius / s))
    else:
        g, p, r = guide, src, radius
    mg, mp = box(g, r), box(p, r)
    var = box(g * g, r) - mg * mg
    a = (box(g * p, r) - mg * mp) / (var.clamp_min(0) + eps)
    b = mp - a * mg
    a, b = box(a, r), box(b, r)
    if s > 1:
        a = F.interpolate(a, size=(h, w), mode="bilinear", align_corners=False)
        b = F.interpolate(b, size=(h, w), mode="bilinear", align_corners=False)
    return a * guide + b


def prepare_depth(depth: torch.Tensor) -> torch.Tensor:
    """(H, W) or (B, 1, H, W) depth -> (B, 1, H, W) strictly positive depth. Zero depth (a min-max
    normalised map's nearest point) cannot be back-projected: it is lifted to a small positive value."""
    if depth.ndim == 2:
        depth = depth[None, None]
    top = depth.amax(dim=(-2, -1), keepdim=True).clamp_min(1e-6)
    return depth.clamp_min(0).maximum(1e-3 * top)


def smooth_normals(
    log_depth: torch.Tensor, normals: torch.Tensor, radius: int, eps: float = SMOOTH_EPS
) -> torch.Tensor:
    """Edge-aware smoothing of unit normals (B, 3, H, W), steered by the log depth (B, 1, H, W).

    The guided filter averages normals wherever the depth is smooth inside a window. Next to a depth
    edge its linear fit cannot follow a surface that curves away (a sphere's rim), so there the raw
    normals are kept: windows whose log depth departs from a plane by more than the texture level
    (its residual variance after the best plane in u and v) count as edge windows."""
    h, w = log_depth.shape[-2:]
    s = max(1, radius // 3)  # the fit needs about 3 samples per radius
    size = (max(1, h // s), max(1, w // s))
    g = F.interpolate(log_depth, size=size, mode="area") if s > 1 else log_depth
    r = max(1, round(radius / s))
    u = torch.arange(size[1], device=g.device, dtype=g.dtype).view(1, 1, 1, -1).expand_as(g)
    v = torch.arange(size[0], device=g.device, dtype=g.dtype).view(1, 1, -1, 1).expand_as(g)
    mg, mu, mv = box(g, r), box(u, r), box(v, r)
    var_g = box(g * g, r) - mg * mg
    var_u, var_v = box(u * u, r) - mu * mu, box(v * v, r) - mv * mv
    cu, cv = box(g * u, r) - mg * mu, box(g * v, r) - mg * mv
    residual = (var_g - cu * cu / var_u.clamp_min(1e-6) - cv * cv / var_v.clamp_min(1e-6)).clamp_min(0)
    edge = box(residual / (residual + 4 * eps), r)
    if s > 1:
        edge = F.interpolate(edge, size=(h, w), mode="bilinear", align_corners=False)
    smooth = guided_filter(log_depth, normals, radius, eps, subsample=s)
    out = smooth + edge * (normals - smooth)
    return unit(out)


def normals_from_depth(
    depth: torch.Tensor, fov_deg: float = DEFAULT_FOV_DEG, smooth: float = SMOOTH_RADIUS, eps: float = SMOOTH_EPS
) -> tuple[torch.Tensor, torch.Tensor]:
    """Camera-space points and unit normals, both (B, 3, H, W), from depth (H, W) or (B, 1, H, W).

    `smooth` is the edge-aware smoothing radius as a fraction of the longer side (0: raw normals)."""
    z = prepare_depth(depth)
    p = backproject(z, fov_deg)
    du, dv = _robust_diff(p, 3), _robust_diff(p, 2)
    n = torch.linalg.cross(du, dv, dim=1)  # u right, v down: points towards the camera
    n = unit(n)
    radius = round(smooth * max(z.shape[-2:]))
    if radius >= 1:
        n = smooth_normals(z.log(), n, radius, eps)
    return p, n
