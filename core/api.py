"""One call from Python: relight a source to a guide, or to a light given as numbers.

from core.api import relight, Light
result = relight("photo.jpg", light=Light(azimuth=45, kelvin=3500))   # depth estimated if missing
result = relight(("src.png", "src.npy"), guide=("guide.png", "guide.npy"), checkpoint="weight.pkl")
result = relight(("photo.jpg", "photo.npy"), light=Light(azimuth=135, elevation=35, softness=0.5), engine="normals")
"""

from __future__ import annotations

from pathlib import Path

from .compose import settings_for
from .errors import RelightError
from .guides import CompassGuides, FolderGuides
from .inference import Relighter, RelightResult, working_shape
from .inputs import Input, InputFiles, check_memory, complete_depth, load_input
from .render.light import Light
from .vocab import ENGINES, Engine

__all__ = ["Light", "compass_guides", "guide_for_light", "relight"]

_GUIDES: CompassGuides | None = None


def compass_guides() -> CompassGuides:
    """The light compass, with its disk cache in the app's data folder."""
    global _GUIDES
    if _GUIDES is None:
        from .logs import data_dir

        _GUIDES = CompassGuides(data_dir() / "guides")
    return _GUIDES


def guide_for_light(
    light: Light,
    source_shape: tuple[int, int],
    working_pixels: int | None,
    guides: CompassGuides | FolderGuides | None = None,
) -> Input:
    """A guide for `light` with the source's aspect ratio, at the model's working area."""
    gw, gh = working_shape(*source_shape, working_pixels or 384 * 384)  # the network's own shape
    return (guides or compass_guides()).guide(light, gw, gh)


def _is_path(x) -> bool:
    return isinstance(x, (str, Path)) or (hasattr(x, "__fspath__") and not isinstance(x, bytes))


def _describe(x) -> str:
    if isinstance(x, tuple):
        return "a tuple of " + ", ".join(type(v).__name__ for v in x[:4]) + (", ..." if len(x) > 4 else "")
    return "None" if x is None else type(x).__name__


def _as_files(x, role: str) -> Input | InputFiles:
    if isinstance(x, (Input, InputFiles)):
        return x
    if _is_path(x):
        return InputFiles(x)
    if isinstance(x, tuple) and len(x) == 2 and _is_path(x[0]) and (x[1] is None or _is_path(x[1])):
        return InputFiles(*x)
    raise RelightError(
        f"the {role} must be an Input, InputFiles, an image path or (image, depth) paths, not {_describe(x)}"
    )


def relight(
    source,
    guide=None,
    *,
    light: Light | None = None,
    relighter: Relighter | None = None,
    checkpoint: str | Path | None = None,
    device: str = "auto",
    mode: str = "auto",
    depth_model: str | Path | None = None,
    guides: CompassGuides | FolderGuides | None = None,
    keep_exposure: bool | None = None,
    exposure: float = 0.0,
    engine: Engine = "s3net",
    progress=None,
    cancel=None,
) -> RelightResult:
    """Relight `source` like `guide`, or under `light` (a guide from the light compass).

    Inputs may be Input objects, paths, or (image, depth) path pairs; a missing depth map is
    estimated with the installed depth model. keep_exposure: the output keeps the source's mean
    brightness (default: yes under a compass light, no with a guide image); exposure: stops up/down.
    With ``engine="normals"`` the light is added from the source's depth map (its elevation,
    intensity, ambient, softness and flatten are used); no guide and no checkpoint are read."""
    if engine not in ENGINES:
        raise RelightError(f"unknown engine '{engine}' (use {' or '.join(ENGINES)})")
    if engine == "normals":
        if guide is not None or light is None:
            raise RelightError("the normals engine adds a light: give light=Light(...), not a guide")
        from .normals_engine import NormalsRelighter

        src = _as_files(source, "source")
        src = load_input(src) if isinstance(src, InputFiles) else src
        if not src.has_depth:
            from .depth_estimation import load_estimator

            src = complete_depth(src, load_estimator(depth_model, device).estimate)
        return NormalsRelighter(device).relight(src.image, src.depth, light, progress=progress, cancel=cancel)
    if (guide is None) == (light is None):
        raise RelightError("give either a guide or a light")
    if light is not None and not isinstance(light, Light):
        raise RelightError(f"light must be a Light, e.g. Light(azimuth=45, kelvin=3500), not {_describe(light)}")
    if relighter is not None and not isinstance(relighter, Relighter):
        raise RelightError(f"relighter must be a Relighter, not {_describe(relighter)}")
    for name, value in (("checkpoint", checkpoint), ("depth_model", depth_model)):
        if value is not None and not _is_path(value):
            raise RelightError(f"{name} must be a file path, not {_describe(value)}")
    for name, value in (("device", device), ("mode", mode)):
        if not isinstance(value, str):
            raise RelightError(f"{name} must be a string, not {_describe(value)}")
    settings = settings_for(light.kelvin if light is not None else None, keep_exposure, exposure)
    if relighter is None:
        from .checkpoint import resolve_checkpoint

        relighter = Relighter.from_checkpoint(resolve_checkpoint(checkpoint), device=device)
    src, gui = _as_files(source, "source"), _as_files(guide, "guide") if guide is not None else None
    if isinstance(src, InputFiles):  # the pair's memory need, from the headers, before decoding
        check_memory(src, gui if isinstance(gui, InputFiles) else None)
        src = load_input(src, checked=True)
    if isinstance(gui, InputFiles):
        gui = load_input(gui)
    estimate = None
    if not src.has_depth or (gui is not None and not gui.has_depth):
        from .depth_estimation import load_estimator

        estimate = load_estimator(depth_model, device).estimate
    src = complete_depth(src, estimate)
    if gui is None:
        gui = guide_for_light(light, src.image.shape[:2], relighter.working_pixels, guides)
    else:
        gui = complete_depth(gui, estimate)
    return relighter.relight(
        src.image, gui.image, src.depth, gui.depth, mode=mode, compose=settings, progress=progress, cancel=cancel
    )
