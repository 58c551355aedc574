"""VIDIT-style synthetic scenes with exact ground truth, written in the VIDIT/NTIRE layouts.

Scene: simple solids (boxes, spheres, cylinders) on a ground plane, optionally a back wall,
procedural albedo (checks, stripes, noise, flat). A perspective camera looks at the scene from
the south, slightly from above. One point light at a fixed elevation circles the scene at the
8 compass azimuths; **N points away from the camera (into the scene, up in the image), E to
the camera's right**. Colour temperatures are black-body colours (Planck + CIE 1931).

Shading is Lambertian with cast shadows, inverse-square falloff and a weak ambient term, then
exposure, a soft shoulder and the sRGB transfer curve. Temperature only scales the light's
colour, so a scene's 40 images cost 8 shading renders (one per direction) and one geometry pass.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..io import write_depth_npy, write_image
from .color_temperature import kelvin_to_linear_rgb

TEMPERATURES = (2500, 3500, 4500, 5500, 6500)
DIRECTIONS = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")
AZIMUTH_DEG = {d: 45.0 * i for i, d in enumerate(DIRECTIONS)}  # clockwise from N seen from above
LIGHT_ELEVATION_DEG = 30.0
LIGHT_DISTANCE = 6.5
LIGHT_POWER = 38.0
AMBIENT = 0.025
EXPOSURE = 1.0
DEPTH_FAR = 30.0  # camera-space depth mapped to normalized_depth 1.0 (sky)

_INF = np.float32(np.inf)


@dataclass
class Solid:
    kind: str  # box | sphere | cylinder
    center: np.ndarray  # (x, y, z); boxes/cylinders stand on the ground (y = 0 at the bottom)
    size: np.ndarray  # box: half extents (x, y, z); sphere: (r,); cylinder: (r, height)
    angle: float = 0.0  # rotation about the vertical axis (boxes)
    texture: dict = field(default_factory=dict)


@dataclass
class Scene:
    solids: list[Solid]
    ground_texture: dict
    wall_z: float | None  # back wall plane z = wall_z, facing the camera
    wall_texture: dict


def light_position(direction: str) -> np.ndarray:
    az = math.radians(AZIMUTH_DEG[direction])
    el = math.radians(LIGHT_ELEVATION_DEG)
    horiz = LIGHT_DISTANCE * math.cos(el)
    # x = east (camera right), z = north (away from the camera), y = up; scene centre (0, 0, 2)
    return np.array([horiz * math.sin(az), LIGHT_DISTANCE * math.sin(el), 2.0 + horiz * math.cos(az)], np.float32)


def _random_texture(rng: np.random.Generator) -> dict:
    kind = rng.choice(["checks", "stripes", "noise", "flat"], p=[0.3, 0.25, 0.25, 0.2])
    c1 = rng.uniform(0.1, 0.95, 3).astype(np.float32)
    c2 = np.clip(c1 * rng.uniform(0.2, 0.7) + rng.uniform(0.0, 0.3, 3), 0.02, 0.98).astype(np.float32)
    return {
        "kind": str(kind), "c1": c1, "c2": c2, "scale": float(rng.uniform(0.15, 0.6)),
        "axis": int(rng.integers(0, 3)),
        "freqs": rng.normal(0, 6, (4, 3)).astype(np.float32), "phases": rng.uniform(0, 6.3, 4).astype(np.float32),
    }


def random_scene(rng: np.random.Generator) -> Scene:
    solids: list[Solid] = []
    for _ in range(int(rng.integers(3, 8))):
        kind = str(rng.choice(["box", "sphere", "cylinder"]))
        x, z = rng.uniform(-3.2, 3.2), rng.uniform(-0.5, 5.0)
        if kind == "box":
            he = rng.uniform(0.25, 0.9, 3).astype(np.float32)
            he[1] = rng.uniform(0.2, 1.3)
            solids.append(Solid(kind, np.array([x, he[1], z], np.float32), he, float(rng.uniform(0, np.pi)), _random_texture(rng)))
        elif kind == "sphere":
            r = rng.uniform(0.3, 0.9)
            solids.append(Solid(kind, np.array([x, r, z], np.float32), np.array([r], np.float32), 0.0, _random_texture(rng)))
        else:
            r, hgt = rng.uniform(0.2, 0.6), rng.uniform(0.4, 2.2)
            solids.append(Solid(kind, np.array([x, 0.0, z], np.float32), np.array([r, hgt], np.float32), 0.0, _random_texture(rng)))
    wall = float(rng.uniform(6.0, 8.0)) if rng.random() < 0.5 else None
    return Scene(solids, _random_texture(rng), wall, _random_texture(rng))


# ---- ray intersections (vectorised over rays; o, d: (N, 3) float32) ----------------------

def _hit_plane_y0(o, d):
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -o[:, 1] / d[:, 1]
    t = np.where((t > 1e-4) & np.isfinite(t), t, _INF)
    n = np.zeros_like(o)
    n[:, 1] = 1.0
    return t, n


def _hit_wall(o, d, z):
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (z - o[:, 2]) / d[:, 2]
    t = np.where((t > 1e-4) & np.isfinite(t), t, _INF)
    n = np.zeros_like(o)
    n[:, 2] = -1.0
    return t, n


def _hit_sphere(o, d, c, r):
    oc = o - c
    b = (oc * d).sum(1)
    cc = (oc * oc).sum(1) - r * r
    disc = b * b - cc
    sq = np.sqrt(np.maximum(disc, 0))
    t = -b - sq
    t = np.where(t > 1e-4, t, -b + sq)
    t = np.where((disc >= 0) & (t > 1e-4), t, _INF)
    p = o + d * np.where(np.isfinite(t), t, 0)[:, None]
    return t, (p - c) / r


def _rot_y(v, angle):
    ca, sa = math.cos(angle), math.sin(angle)
    out = v.copy()
    out[:, 0] = ca * v[:, 0] + sa * v[:, 2]
    out[:, 2] = -sa * v[:, 0] + ca * v[:, 2]
    return out


def _hit_box(o, d, c, he, angle):
    lo_ = _rot_y(o - c, -angle)
    ld = _rot_y(d, -angle)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / np.where(np.abs(ld) < 1e-9, 1e-9, ld)
        t1, t2 = (-he - lo_) * inv, (he - lo_) * inv
    tmin_axes = np.minimum(t1, t2)
    tnear = tmin_axes.max(1)
    tfar = np.maximum(t1, t2).min(1)
    t = np.where((tnear <= tfar) & (tnear > 1e-4), tnear, _INF)
    axis = tmin_axes.argmax(1)
    nl = np.zeros_like(o)
    nl[np.arange(len(o)), axis] = -np.sign(ld[np.arange(len(o)), axis])
    return t, _rot_y(nl, angle)


def _hit_cylinder(o, d, c, r, h):
    ox, oz = o[:, 0] - c[0], o[:, 2] - c[2]
    a = d[:, 0] ** 2 + d[:, 2] ** 2
    b = ox * d[:, 0] + oz * d[:, 2]
    cc = ox * ox + oz * oz - r * r
    disc = b * b - a * cc
    with np.errstate(divide="ignore", invalid="ignore"):
        ts = (-b - np.sqrt(np.maximum(disc, 0))) / a
    y = o[:, 1] + ts * d[:, 1]
    t_side = np.where((disc >= 0) & (ts > 1e-4) & (y >= 0) & (y <= h) & (a > 1e-12), ts, _INF)
    with np.errstate(divide="ignore", invalid="ignore"):
        tc = (h - o[:, 1]) / d[:, 1]
    px, pz = ox + tc * d[:, 0], oz + tc * d[:, 2]
    t_cap = np.where((tc > 1e-4) & (px * px + pz * pz <= r * r) & np.isfinite(tc), tc, _INF)
    t = np.minimum(t_side, t_cap)
    n = np.zeros_like(o)
    side = t_side <= t_cap
    tt = np.where(np.isfinite(t), t, 0)
    n[:, 0] = np.where(side, (ox + tt * d[:, 0]) / r, 0)
    n[:, 2] = np.where(side, (oz + tt * d[:, 2]) / r, 0)
    n[:, 1] = np.where(side, 0, 1)
    return t, n


def _hit_solid(o, d, s: Solid):
    if s.kind == "sphere":
        return _hit_sphere(o, d, s.center, float(s.size[0]))
    if s.kind == "box":
        return _hit_box(o, d, s.center, s.size, s.angle)
    return _hit_cylinder(o, d, s.center, float(s.size[0]), float(s.size[1]))


def _albedo(tex: dict, p: np.ndarray) -> np.ndarray:
    kind, c1, c2, s = tex["kind"], tex["c1"], tex["c2"], tex["scale"]
    if kind == "flat":
        return np.broadcast_to(c1, p.shape).copy()
    if kind == "checks":
        m = (np.floor(p / s).astype(np.int64).sum(1) % 2).astype(np.float32)
    elif kind == "stripes":
        m = (np.sin(p[:, tex["axis"]] * (math.pi / s)) > 0).astype(np.float32)
    else:
        v = sum(np.sin(p @ f + ph) for f, ph in zip(tex["freqs"], tex["phases"]))
        m = (0.5 + 0.125 * v).clip(0, 1)
    return c1 * m[:, None] + c2 * (1 - m[:, None])


class Camera:
    def __init__(self, width: int, height: int, fov_deg: float = 50.0):
        self.origin = np.array([0.0, 4.0, -6.5], np.float32)
        target = np.array([0.0, 0.4, 2.2], np.float32)
        fwd = target - self.origin
        self.forward = fwd / np.linalg.norm(fwd)
        right = np.cross(np.array([0, 1, 0], np.float32), self.forward)
        self.right = right / np.linalg.norm(right)
        self.up = np.cross(self.forward, self.right)
        self.width, self.height = width, height
        self.tan = math.tan(math.radians(fov_deg) / 2)

    def rays(self) -> tuple[np.ndarray, np.ndarray]:
        w, h = self.width, self.height
        aspect = w / h
        xs = ((np.arange(w, dtype=np.float32) + 0.5) / w * 2 - 1) * self.tan * aspect
        ys = (1 - (np.arange(h, dtype=np.float32) + 0.5) / h * 2) * self.tan
        gx, gy = np.meshgrid(xs, ys)
        d = self.forward[None] + gx.reshape(-1, 1) * self.right[None] + gy.reshape(-1, 1) * self.up[None]
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        return np.broadcast_to(self.origin, d.shape).astype(np.float32), d.astype(np.float32)


@dataclass
class Geometry:
    points: np.ndarray  # (N, 3) hit points
    normals: np.ndarray  # (N, 3)
    albedo: np.ndarray  # (N, 3)
    hit: np.ndarray  # (N,) bool
    depth: np.ndarray  # (H, W) camera-space z-depth, DEPTH_FAR where nothing was hit


def trace_geometry(scene: Scene, cam: Camera) -> Geometry:
    o, d = cam.rays()
    n_rays = len(o)
    best = np.full(n_rays, _INF)
    normals = np.zeros((n_rays, 3), np.float32)
    owner = np.full(n_rays, -1, np.int32)
    surfaces = [("ground", None)] + ([("wall", None)] if scene.wall_z is not None else []) + [(i, s) for i, s in enumerate(scene.solids)]
    for idx, (name, solid) in enumerate(surfaces):
        if name == "ground":
            t, n = _hit_plane_y0(o, d)
        elif name == "wall":
            t, n = _hit_wall(o, d, scene.wall_z)
        else:
            t, n = _hit_solid(o, d, solid)
        closer = t < best
        best = np.where(closer, t, best)
        normals[closer] = n[closer]
        owner[closer] = idx
    hit = np.isfinite(best) & (best < DEPTH_FAR * 2)
    tt = np.where(hit, best, 0)
    p = o + d * tt[:, None]
    albedo = np.zeros((n_rays, 3), np.float32)
    for idx, (name, solid) in enumerate(surfaces):
        sel = (owner == idx) & hit
        if not sel.any():
            continue
        tex = scene.ground_texture if name == "ground" else scene.wall_texture if name == "wall" else solid.texture
        albedo[sel] = _albedo(tex, p[sel])
    # flip normals that face away from the camera (e.g. inside of caps seen from below)
    facing = (normals * d).sum(1) > 0
    normals[facing] *= -1
    zdepth = np.where(hit, tt * (d @ cam.forward), DEPTH_FAR)
    depth = np.minimum(zdepth, DEPTH_FAR).reshape(cam.height, cam.width).astype(np.float32)
    return Geometry(p.astype(np.float32), normals, albedo, hit, depth)


def shade(scene: Scene, geo: Geometry, light: np.ndarray) -> np.ndarray:
    """Linear-light irradiance times albedo for a white light of unit colour: (N, 3)."""
    p, n = geo.points[geo.hit], geo.normals[geo.hit]
    to_l = light[None] - p
    dist = np.linalg.norm(to_l, axis=1)
    ldir = to_l / dist[:, None]
    lambert = np.clip((n * ldir).sum(1), 0, None)
    origin = p + n * 1e-3
    visible = np.ones(len(p), bool)
    for s in scene.solids:
        t, _ = _hit_solid(origin, ldir, s)
        visible &= ~(t < dist)
    if scene.wall_z is not None:
        t, _ = _hit_wall(origin, ldir, scene.wall_z)
        visible &= ~(t < dist)
    direct = LIGHT_POWER * lambert * visible / (dist * dist)
    out = np.zeros_like(geo.albedo)
    out[geo.hit] = geo.albedo[geo.hit] * (direct + AMBIENT)[:, None]
    return out


def tone_map(linear: np.ndarray) -> np.ndarray:
    x = 1.0 - np.exp(-EXPOSURE * linear)  # soft shoulder instead of hard clipping
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(np.maximum(x, 0), 1 / 2.4) - 0.055).astype(np.float32)


def render_scene(scene: Scene, size: int, directions=DIRECTIONS, temperatures=TEMPERATURES) -> tuple[dict, np.ndarray]:
    """-> ({(temp, dir): sRGB image (H, W, 3)}, normalized depth (H, W))."""
    cam = Camera(size, size)
    geo = trace_geometry(scene, cam)
    images = {}
    for dname in directions:
        lin = shade(scene, geo, light_position(dname))
        for temp in temperatures:
            img = tone_map(lin * kelvin_to_linear_rgb(temp)[None])
            images[(temp, dname)] = img.reshape(size, size, 3)
    return images, geo.depth / DEPTH_FAR


def _scene_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, index])


def write_vidit_scene(out: Path, index: int, seed: int, size: int) -> None:
    scene = random_scene(_scene_rng(seed, index))
    images, depth = render_scene(scene, size)
    name = f"Image{index:03d}"
    for (temp, dname), img in images.items():
        write_image(out / f"{name}_{temp}_{dname}.png", img, 8)
    write_depth_npy(out / f"{name}.npy", depth, float(depth[size // 2, size // 2] * DEPTH_FAR))


def write_ntire_pair(out: Path, index: int, seed: int, size: int) -> None:
    """A held-out pair: scene A under s1 (input), scene B under s2 (guide), scene A under s2 (target)."""
    rng = np.random.default_rng([seed, 1_000_000 + index])
    s1 = (int(rng.choice(TEMPERATURES)), str(rng.choice(DIRECTIONS)))
    s2 = (int(rng.choice(TEMPERATURES)), str(rng.choice(DIRECTIONS)))
    while s2 == s1:
        s2 = (int(rng.choice(TEMPERATURES)), str(rng.choice(DIRECTIONS)))
    scene_a = random_scene(_scene_rng(seed, 2_000_000 + 2 * index))
    scene_b = random_scene(_scene_rng(seed, 2_000_001 + 2 * index))
    imgs_a, depth_a = render_scene(scene_a, size, directions=(s1[1], s2[1]), temperatures=(s1[0], s2[0]))
    imgs_b, depth_b = render_scene(scene_b, size, directions=(s2[1],), temperatures=(s2[0],))
    name = f"Pair{index:03d}"
    write_image(out / "input" / f"{name}.png", imgs_a[s1], 8)
    write_depth_npy(out / "input" / f"{name}.npy", depth_a)
    write_image(out / "guide" / f"{name}.png", imgs_b[s2], 8)
    write_depth_npy(out / "guide" / f"{name}.npy", depth_b)
    write_image(out / "target" / f"{name}.png", imgs_a[s2], 8)


def synthesize(
    out: str | Path,
    scenes: int,
    size: int = 256,
    seed: int = 0,
    pairs: int = 0,
    progress: Callable[[int, int, str], None] | None = None,
    cancel=None,
    workers: int = 1,
) -> Path:
    """Write `scenes` VIDIT-layout scenes into out/ (and `pairs` NTIRE pairs into out/pairs).

    Each scene depends only on (seed, index), so the output is the same for any worker count.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(write_vidit_scene, out, i, f"scene {i}") for i in range(scenes)]
    jobs += [(write_ntire_pair, out / "pairs", k, f"pair {k}") for k in range(pairs)]
    if workers <= 1:
        for done, (fn, folder, i, note) in enumerate(jobs, 1):
            if cancel is not None:
                cancel.check()
            fn(folder, i, seed, size)
            if progress:
                progress(done, len(jobs), note)
        return out
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(workers) as pool:
        futures = {pool.submit(fn, folder, i, seed, size): note for fn, folder, i, note in jobs}
        for done, fut in enumerate(as_completed(futures), 1):
            fut.result()
            if progress:
                progress(done, len(jobs), futures[fut])
            if cancel is not None and cancel.cancelled:
                for f in futures:
                    f.cancel()
                cancel.check()
    return out


def write_demo_pair(out: str | Path, size: int = 384, seed: int = 7) -> dict[str, Path]:
    """The bundled demo: scene A lit from the west at 6500 K (source), scene B lit from the east at
    2500 K (guide), and scene A lit like the guide (the exact answer, for comparison)."""
    out = Path(out)
    scene_a = random_scene(_scene_rng(seed, 0))
    scene_b = random_scene(_scene_rng(seed, 1))
    imgs_a, depth_a = render_scene(scene_a, size, directions=("W", "E"), temperatures=(6500, 2500))
    imgs_b, depth_b = render_scene(scene_b, size, directions=("E",), temperatures=(2500,))
    files = {
        "source": write_image(out / "source.png", imgs_a[(6500, "W")], 8),
        "source_depth": write_depth_npy(out / "source.npy", depth_a),
        "guide": write_image(out / "guide.png", imgs_b[(2500, "E")], 8),
        "guide_depth": write_depth_npy(out / "guide.npy", depth_b),
        "target": write_image(out / "target.png", imgs_a[(2500, "E")], 8),
    }
    return files
