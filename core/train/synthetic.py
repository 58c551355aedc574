"""Synthetic datasets in the VIDIT and NTIRE layouts, rendered by ``core.render``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.base.cancel import CancelToken
from core.base.progress import Progress
from core.base.vocab import TEMPERATURES, VIDIT_DIRECTIONS
from core.render.scene import DEPTH_FAR, random_scene, reference_scene, render_scene, scene_rng
from core.storage.io import write_depth_npy, write_image


def write_vidit_scene(
    out: Path,
    index: int,
    seed: int,
    size: int,
    directions=VIDIT_DIRECTIONS,
    reference_every: int = 0,
    photo_textures: bool = False,
) -> None:
    """Scene `index` under every (temperature, direction). With reference_every = k, every k-th
    scene is the compass's reference scene, so the network learns to read its guides."""
    if reference_every and index % reference_every == reference_every - 1:
        scene = reference_scene()
    else:
        scene = random_scene(scene_rng(seed, index), photo_textures)
    images, depth = render_scene(scene, size, directions=directions)
    name = f"Image{index:03d}"
    for (temp, dname), img in images.items():
        write_image(out / f"{name}_{temp}_{dname}.png", img, 8)
    write_depth_npy(out / f"{name}.npy", depth, float(depth[size // 2, size // 2] * DEPTH_FAR))


def write_ntire_pair(
    out: Path,
    index: int,
    seed: int,
    size: int,
    directions=VIDIT_DIRECTIONS,
    reference_every: int = 0,
    photo_textures: bool = False,
) -> None:
    """A held-out pair: scene A under s1 (input), scene B under s2 (guide), scene A under s2 (target)."""
    rng = np.random.default_rng([seed, 1_000_000 + index])
    s1 = (int(rng.choice(TEMPERATURES)), str(rng.choice(directions)))
    s2 = (int(rng.choice(TEMPERATURES)), str(rng.choice(directions)))
    while s2 == s1:
        s2 = (int(rng.choice(TEMPERATURES)), str(rng.choice(directions)))
    scene_a = random_scene(scene_rng(seed, 2_000_000 + 2 * index), photo_textures)
    scene_b = random_scene(scene_rng(seed, 2_000_001 + 2 * index), photo_textures)
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
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    workers: int = 1,
    directions: tuple[str, ...] = VIDIT_DIRECTIONS,
    reference_every: int = 0,
    photo_textures: bool = False,
) -> Path:
    """Write `scenes` VIDIT-layout scenes into out/ (and `pairs` NTIRE pairs into out/pairs).

    `directions`: VIDIT's eight, or the 16-point compass (COMPASS_DIRECTIONS) for a network that
    must answer any azimuth. Each scene depends only on (seed, index), so the output is the same
    for any worker count.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(write_vidit_scene, out, i, f"scene {i}") for i in range(scenes)]
    jobs += [(write_ntire_pair, out / "pairs", k, f"pair {k}") for k in range(pairs)]
    if photo_textures:
        from core.render.photos import texture_photos

        texture_photos()  # a missing scikit-image is one clear error here, not one per worker
    kw = {"directions": tuple(directions), "reference_every": reference_every, "photo_textures": photo_textures}
    if workers <= 1:
        for done, (fn, folder, i, note) in enumerate(jobs, 1):
            if cancel is not None:
                cancel.check()
            fn(folder, i, seed, size, **kw)
            if progress:
                progress(done / len(jobs), note)
        return out
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(workers) as pool:
        futures = {pool.submit(fn, folder, i, seed, size, **kw): note for fn, folder, i, note in jobs}
        for done, fut in enumerate(as_completed(futures), 1):
            fut.result()
            if progress:
                progress(done / len(jobs), futures[fut])
            if cancel is not None and cancel.cancelled:
                for f in futures:
                    f.cancel()
                cancel.check()
    return out
