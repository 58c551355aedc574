"""One call from Python: relight a source to a guide, or to a light given as numbers.

from core.api import relight, Light
result = relight("photo.jpg", light=Light(azimuth=45, kelvin=3500))   # depth estimated if missing
result = relight(("src.png", "src.npy"), guide=("guide.png", "guide.npy"), checkpoint="weight.pkl")
result = relight(("photo.jpg", "photo.npy"), light=Light(azimuth=135, elevation=35, softness=0.5), engine="normals")
"""

from __future__ import annotations

from pathlib import Path

from core.base.defaults import DEFAULTS
from core.base.errors import RelightError
from core.base.vocab import Engine, checked
from core.engine.guides import CompassGuides, FolderGuides, compass_guide
from core.engine.inference import Relighter, RelightResult
from core.inputs.input import Input, InputFiles
from core.orchestration import Engines
from core.orchestration import relight as relight_session
from core.render.light import Light
from core.session import EngineSettings, OutputSettings, Session

__all__ = ["Light", "compass_guides", "guide_for_light", "relight"]


def compass_guides() -> CompassGuides:
    """A light compass with its disk cache in the app's data folder (the caller keeps it)."""
    from core.base.logs import data_dir

    return CompassGuides(data_dir() / "guides")


def guide_for_light(
    light: Light,
    source_shape: tuple[int, int],
    working_pixels: int | None,
    guides: CompassGuides | FolderGuides | None = None,
) -> Input:
    """A guide for `light` with the source's aspect ratio, at the model's working area."""
    return compass_guide(light, source_shape, working_pixels, guides or compass_guides())


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
    device: str = DEFAULTS.device,
    precision: str = DEFAULTS.precision,
    fast: bool = DEFAULTS.fast,
    mode: str = DEFAULTS.mode,
    depth_model: str | Path | None = None,
    guides: CompassGuides | FolderGuides | None = None,
    keep_exposure: bool | None = DEFAULTS.keep_exposure,
    exposure: float = DEFAULTS.exposure_ev,
    engine: Engine | str = DEFAULTS.engine,
    progress=None,
    cancel=None,
) -> RelightResult:
    """Relight `source` like `guide`, or under `light` (a guide from the light compass).

    Inputs may be Input objects, paths, or (image, depth) path pairs; a missing depth map is
    estimated with the installed depth model. precision: auto (bf16 on a CPU with native bf16, fp32
    otherwise), fp32, bf16 or fp16; fast: the fast CUDA path where CUDA runs the network.
    keep_exposure: the output keeps the source's mean brightness (default: yes under a compass
    light, no with a guide image); exposure: stops up/down. With ``engine="normals"`` the light is
    added from the source's depth map (its elevation, intensity, ambient, softness and flatten are
    used); no guide and no checkpoint are read."""
    engine = checked(Engine, engine, "engine", " or ")
    if engine == Engine.NORMALS:
        if guide is not None or light is None:
            raise RelightError("the normals engine adds a light: give light=Light(...), not a guide")
    elif (guide is None) == (light is None):
        raise RelightError("give either a guide or a light")
    if light is not None and not isinstance(light, Light):
        raise RelightError(f"light must be a Light, e.g. Light(azimuth=45, kelvin=3500), not {_describe(light)}")
    if relighter is not None and not isinstance(relighter, Relighter):
        raise RelightError(f"relighter must be a Relighter, not {_describe(relighter)}")
    for name, value in (("checkpoint", checkpoint), ("depth_model", depth_model)):
        if value is not None and not _is_path(value):
            raise RelightError(f"{name} must be a file path, not {_describe(value)}")
    for name, value in (("device", device), ("mode", mode), ("precision", precision)):
        if not isinstance(value, str):
            raise RelightError(f"{name} must be a string, not {_describe(value)}")
    session = Session(
        source=_as_files(source, "source"),
        guide=_as_files(guide, "guide") if guide is not None else None,
        light=light,
        engine=engine,
        output=OutputSettings(mode, keep_exposure, exposure),
        settings=EngineSettings(
            device=device,
            precision=precision,
            fast=fast,
            checkpoint=checkpoint,
            depth_model=depth_model,
        ),
    )
    session.compose()  # the exposure is checked before any model loads
    engines = Engines(relighter, guides)
    if engine != Engine.NORMALS:
        engines.relighter(session.settings)  # a missing or damaged checkpoint is said before depth is estimated
    return relight_session(session, engines, progress=progress, cancel=cancel).result
