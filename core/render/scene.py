"""The project's renderer: VIDIT-style scenes with exact ground truth, at any light azimuth.

Scene: simple solids (boxes, spheres, cylinders) on a ground plane, optionally a back wall,
procedural albedo (checks, stripes, noise, flat). A perspective camera looks at the scene from
the south, slightly from above. One point light at a fixed elevation circles the scene
(see ``core.render.light`` for the compass convention). Colour temperatures are black-body
colours (Planck + CIE 1931).

Shading is Lambertian with cast shadows, inverse-square falloff and a weak ambient term, then
exposure, a soft shoulder and the sRGB transfer curve. Temperature only scales the light's
colour, so a scene's images cost one shading render per direction and one geometry pass.

Training data (``core.train.synthetic``) and compass guides (``core.engine.guides``) both render here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from core.base.vocab import TEMPERATURES, VIDIT_DIRECTIONS

from .color import kelvin_to_linear_rgb
from .light import azimuth_of, light_position

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
    ambient: float = AMBIENT  # fill light (sky, bounce), in the light's colour


def _random_texture(rng: np.random.Generator) -> dict:
    kind = rng.choice(["checks", "stripes", "noise", "flat"], p=[0.3, 0.25, 0.25, 0.2])
    c1 = rng.uniform(0.1, 0.95, 3).astype(np.float32)
    c2 = np.clip(c1 * rng.uniform(0.2, 0.7) + rng.uniform(0.0, 0.3, 3), 0.02, 0.98).astype(np.float32)
    return {
        "kind": str(kind),
        "c1": c1,
        "c2": c2,
        "scale": float(rng.uniform(0.15, 0.6)),
        "axis": int(rng.integers(0, 3)),
        "freqs": rng.normal(0, 6, (4, 3)).astype(np.float32),
        "phases": rng.uniform(0, 6.3, 4).astype(np.float32),
    }


def _photo_texture(rng: np.random.Generator, count: int) -> dict:
    """A photograph mapped onto a surface (planar projection along `axis`), at a random scale and offset."""
    return {
        "kind": "photo",
        "photo": int(rng.integers(0, count)),
        "scale": float(rng.uniform(1.5, 5.0)),
        "axis": int(rng.integers(0, 3)),
        "offset": rng.uniform(0, 1, 2).astype(np.float32),
        "c1": rng.uniform(0.35, 1.0, 3).astype(np.float32),
        "c2": np.zeros(3, np.float32),
    }  # c1: a tint


def random_scene(rng: np.random.Generator, photo_textures: bool = False) -> Scene:
    """A random scene. With `photo_textures`, about half the surfaces wear photographs (scikit-image's
    sample photos) and the fill light varies per scene, as in photos; without, the draw is unchanged."""
    if photo_textures:
        from .photos import texture_photos

        count = len(texture_photos())
        base = _random_texture

        def _random_texture_or_photo(r):  # noqa: ANN001
            return _photo_texture(r, count) if r.random() < 0.5 else base(r)

        texture = _random_texture_or_photo
    else:
        texture = _random_texture
    solids: list[Solid] = []
    for _ in range(int(rng.integers(3, 8))):
        kind = str(rng.choice(["box", "sphere", "cylinder"]))
        x, z = rng.uniform(-3.2, 3.2), rng.uniform(-0.5, 5.0)
        if kind == "box":
            he = rng.uniform(0.25, 0.9, 3).astype(np.float32)
            he[1] = rng.uniform(0.2, 1.3)
            solids.append(
                Solid(kind, np.array([x, he[1], z], np.float32), he, float(rng.uniform(0, np.pi)), texture(rng))
            )
        elif kind == "sphere":
            r = rng.uniform(0.3, 0.9)
            solids.append(Solid(kind, np.array([x, r, z], np.float32), np.array([r], np.float32), 0.0, texture(rng)))
        else:
            r, hgt = rng.uniform(0.2, 0.6), rng.uniform(0.4, 2.2)
            solids.append(
                Solid(kind, np.array([x, 0.0, z], np.float32), np.array([r, hgt], np.float32), 0.0, texture(rng))
            )
    wall = float(rng.uniform(6.0, 8.0)) if rng.random() < 0.5 else None
    scene = Scene(solids, texture(rng), wall, texture(rng))
    if photo_textures:
        scene.ambient = float(rng.uniform(0.03, 0.35))
    return scene


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
    if kind == "photo":
        from .photos import texture_photos

        img = texture_photos()[tex["photo"]]
        h, w = img.shape[:2]
        uv = np.delete(p, tex["axis"], axis=1) / s + tex["offset"]
        # mirrored repeat: no seams where the photo tiles
        uv = np.abs((uv % 2.0) - 1.0)
        x = np.minimum((uv[:, 0] * (w - 1)).astype(np.int64), w - 1)
        y = np.minimum(((1 - uv[:, 1]) * (h - 1)).astype(np.int64), h - 1)
        return img[y, x] * c1
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
    surfaces = (
        [("ground", None)]
        + ([("wall", None)] if scene.wall_z is not None else [])
        + [(i, s) for i, s in enumerate(scene.solids)]
    )
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
    out[geo.hit] = geo.albedo[geo.hit] * (direct + scene.ambient)[:, None]
    return out


def tone_map(linear: np.ndarray) -> np.ndarray:
    x = 1.0 - np.exp(-EXPOSURE * linear)  # soft shoulder instead of hard clipping
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(np.maximum(x, 0), 1 / 2.4) - 0.055).astype(np.float32)


def render_scene(
    scene: Scene, size: int, directions=VIDIT_DIRECTIONS, temperatures=TEMPERATURES
) -> tuple[dict, np.ndarray]:
    """-> ({(temp, direction): sRGB image (H, W, 3)}, normalized depth (H, W)).

    A direction is a compass name (N, NNE, ..., NW) or an azimuth in degrees."""
    cam = Camera(size, size)
    geo = trace_geometry(scene, cam)
    images = {}
    for dname in directions:
        lin = shade(scene, geo, light_position(azimuth_of(dname)))
        for temp in temperatures:
            img = tone_map(lin * kelvin_to_linear_rgb(temp)[None])
            images[(temp, dname)] = img.reshape(size, size, 3)
    return images, geo.depth / DEPTH_FAR


def scene_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, index])


def _texture(kind: str, c1, c2, scale: float = 0.5, axis: int = 0) -> dict:
    return {
        "kind": kind,
        "c1": np.asarray(c1, np.float32),
        "c2": np.asarray(c2, np.float32),
        "scale": scale,
        "axis": axis,
        "freqs": np.zeros((4, 3), np.float32),
        "phases": np.zeros(4, np.float32),
    }


def reference_scene() -> Scene:
    """The compass's fixed scene: neutral solids that show where the light comes from (lit faces,
    cast shadows on the floor and the wall) and its colour (a near-white sphere)."""
    grey, white = (0.55, 0.55, 0.55), (0.85, 0.85, 0.85)
    solids = [
        Solid(
            "sphere",
            np.array([-1.6, 0.8, 2.4], np.float32),
            np.array([0.8], np.float32),
            0.0,
            _texture("flat", white, white),
        ),
        Solid(
            "box",
            np.array([1.5, 0.7, 2.8], np.float32),
            np.array([0.7, 0.7, 0.7], np.float32),
            0.6,
            _texture("flat", grey, grey),
        ),
        Solid(
            "cylinder",
            np.array([0.1, 0.0, 4.6], np.float32),
            np.array([0.45, 1.9], np.float32),
            0.0,
            _texture("stripes", (0.7, 0.7, 0.7), (0.4, 0.4, 0.4), 0.3, 1),
        ),
    ]
    floor = _texture("checks", (0.62, 0.62, 0.6), (0.42, 0.42, 0.4), 0.8)
    wall = _texture("flat", (0.7, 0.7, 0.68), (0.7, 0.7, 0.68))
    return Scene(solids, floor, None, wall)  # no wall: a wall would hide lights from the north
