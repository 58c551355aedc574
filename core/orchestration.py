"""The one orchestration: a session in, a result out. Every face runs a relight through here — the
library's relight(), the command line (one pair and folder mode), the batch runner, the app's
relight, its live preview and its batch:

    complete the inputs   read them (memory checked from the headers first), estimate a missing depth
                          map (DepthFiller: checked to be the image's size)
    build the guide       the guide photo, or the light compass's guide at the network's working shape
    run the engine        S3Net (Relighter) or the normals engine
    compose the output    inside the engine, with the session's output settings (core.engine.compose)

``Engines`` owns the engines and caches a face uses (relighter, normals engine, compass guides, depth
estimator, the live preview's prepared source); each is safe to share between threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.base.errors import RelightError
from core.base.vocab import Engine
from core.inputs.input import Input, InputFiles, PairFiles, check_memory, load_input
from core.session import EngineSettings, Session

if TYPE_CHECKING:
    from core.base.cancel import CancelToken
    from core.base.progress import Progress
    from core.depth.estimation import DepthFiller
    from core.engine.batch import BatchReport
    from core.engine.guides import CompassGuides, FolderGuides
    from core.engine.inference import Relighter, RelightResult
    from core.engine.live import LivePreview
    from core.engine.normals import NormalsPreview, NormalsRelighter

Notify = Callable[[str], None]


class Engines:
    """The engines and caches one face owns. A relighter given here (the app loads its own) is used
    whatever the settings say; otherwise one is loaded from the settings' checkpoint and kept."""

    def __init__(
        self,
        relighter: Relighter | None = None,
        guides: CompassGuides | FolderGuides | None = None,
        notify: Notify | None = None,
    ):
        self._lock = threading.RLock()  # what is made on first use is made once
        self._given = relighter
        self._loaded: tuple[tuple[object, ...], Relighter] | None = None
        self._guides = guides
        self._normals: tuple[tuple[object, ...], NormalsRelighter] | None = None
        self._fillers: dict[tuple[str, str], DepthFiller] = {}
        self._preview: tuple[tuple[object, ...], LivePreview | NormalsPreview] | None = None
        self.notify = notify  # hears one line per estimated depth map

    def use_relighter(self, relighter: Relighter | None) -> None:
        with self._lock:
            self._given = relighter

    def relighter(self, settings: EngineSettings) -> Relighter:
        with self._lock:
            if self._given is not None:
                return self._given
            from core.engine.inference import Relighter
            from core.storage.checkpoint import resolve_checkpoint

            path = resolve_checkpoint(settings.checkpoint)
            key = (str(path), settings.device, settings.precision, settings.fast, settings.max_pixels)
            if self._loaded is None or self._loaded[0] != key:
                relighter = Relighter.from_checkpoint(
                    path,
                    device=settings.device,
                    precision=settings.precision,
                    max_pixels=settings.max_pixels,
                    accelerate=settings.fast,
                )
                self._loaded = (key, relighter)
            return self._loaded[1]

    def guides(self) -> CompassGuides | FolderGuides:
        """The compass's guides (rendered; full-size ones kept on disk in the app's data folder), or
        the guide library given."""
        with self._lock:
            if self._guides is None:
                from core.base.logs import data_dir
                from core.engine.guides import CompassGuides

                self._guides = CompassGuides(data_dir() / "guides")
            return self._guides

    def normals(self, settings: EngineSettings) -> NormalsRelighter:
        with self._lock:
            key = (settings.device, settings.fov_deg, settings.light_distance, settings.shadows)
            if self._normals is None or self._normals[0] != key:
                from core.engine.normals import NormalsRelighter

                engine = NormalsRelighter(
                    settings.device,
                    fov_deg=settings.fov_deg,
                    distance=settings.light_distance,
                    shadows=settings.shadows,
                )
                self._normals = (key, engine)
            return self._normals[1]

    def depth_filler(self, settings: EngineSettings) -> DepthFiller:
        """The depth estimator for missing depth maps (loaded at the first map it fills)."""
        with self._lock:
            key = (str(settings.depth_model or ""), settings.device)
            if key not in self._fillers:
                from core.depth.estimation import DepthFiller

                self._fillers.clear()  # one depth model in memory
                self._fillers[key] = DepthFiller(settings.depth_model, settings.device, notify=self.notify)
            return self._fillers[key]

    def preview(self, session: Session) -> LivePreview | NormalsPreview | None:
        """The live preview for the session's source and engine (prepared once per source), or None
        when there is nothing to preview yet (no source, no depth, no model)."""
        src = session.source
        if not isinstance(src, Input) or not src.has_depth:
            return None
        check_depth_shape(src)
        with self._lock:
            if session.engine is Engine.NORMALS:
                engine: object = self.normals(session.settings)
            else:
                engine = self._given if self._given is not None else self._loaded_relighter()
                if engine is None:
                    return None
            key = (id(src), id(engine), session.settings.preview_pixels)
            if self._preview is None or self._preview[0] != key:
                self._preview = (key, _make_preview(session, src, engine, self))
            return self._preview[1]

    def _loaded_relighter(self) -> Relighter | None:
        return self._loaded[1] if self._loaded is not None else None


def _make_preview(session: Session, src: Input, engine: Any, engines: Engines) -> LivePreview | NormalsPreview:
    if session.engine is Engine.NORMALS:
        from core.engine.normals import NormalsPreview

        return NormalsPreview(engine, src)
    from core.engine.guides import CompassGuides
    from core.engine.live import LivePreview

    guides = engines.guides()
    if not isinstance(guides, CompassGuides):  # a folder of photos cannot follow a moving light
        guides = CompassGuides()
    return LivePreview(engine, src, guides, preview_pixels=session.settings.preview_pixels)


def check_depth_shape(inp: Input) -> None:
    """A depth map the size of its image (what the engines need), or an error naming the file."""
    if inp.depth is not None and inp.depth.shape != inp.image.shape[:2]:
        (dh, dw), (h, w) = inp.depth.shape, inp.image.shape[:2]
        raise RelightError(
            f"depth is {dw}x{dh} but its image is {w}x{h}", inp.files.image if inp.files else inp.image_origin
        )


def _as_input(x: Input | InputFiles, checked: bool) -> Input:
    return x if isinstance(x, Input) else load_input(x, checked=checked)


def complete_inputs(session: Session, engines: Engines) -> tuple[Input, Input | None]:
    """The session's source and guide photo, read (the pair's memory checked from the headers before
    anything is decoded) with missing depth estimated. The guide is None under a light."""
    src, gui = session.source, None if session.uses_light else session.guide
    if src is None:
        raise RelightError("no source to relight")
    if gui is None and not session.uses_light:
        raise RelightError("give either a guide or a light")
    if session.engine is Engine.NORMALS and not session.uses_light:
        raise RelightError("the normals engine adds a light: give a light, not a guide")
    if isinstance(src, InputFiles):
        check_memory(src, gui if isinstance(gui, InputFiles) else None)
    source = _as_input(src, checked=True)
    guide = _as_input(gui, checked=False) if gui is not None else None
    for inp, role in ((source, "source"), (guide, "guide")):
        if inp is not None and not inp.has_depth:
            filled = engines.depth_filler(session.settings)(inp, role)
            source, guide = (filled, guide) if role == "source" else (source, filled)
    for inp in (source, guide):
        if inp is not None:
            check_depth_shape(inp)
    return source, guide


@dataclass
class Relit:
    """A relight's result and what it was made from."""

    result: RelightResult
    source: Input
    guide: Input | None  # the guide photo or the rendered compass guide; None for the normals engine


def relight(
    session: Session,
    engines: Engines | None = None,
    *,
    inputs: tuple[Input, Input | None] | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> Relit:
    """Relight the session's source (`inputs`: already completed by complete_inputs)."""
    engines = engines or Engines()
    source, guide = inputs or complete_inputs(session, engines)
    if session.engine is Engine.NORMALS:
        lit = engines.normals(session.settings).relight(
            source.image, source.require_depth(), session.light, progress=progress, cancel=cancel
        )
        return Relit(lit, source, None)
    relighter = engines.relighter(session.settings)
    if guide is None:
        from core.engine.guides import compass_guide

        guide = compass_guide(session.light, source.image.shape[:2], relighter.working_pixels, engines.guides())
    res = relighter.relight(
        source.image,
        guide.image,
        source.require_depth(),
        guide.require_depth(),
        mode=session.output.mode,
        compose=session.compose(),
        progress=progress,
        cancel=cancel,
    )
    return Relit(res, source, guide)


def run(session: Session, engines: Engines | None = None, **kw: Any) -> Relit:
    """relight() on a snapshot of the session; the result is stored on the session."""
    relit = relight(session.snapshot(), engines, **kw)
    session.set_result(relit.result)
    return relit


def relight_folder(
    session: Session,
    jobs: list[PairFiles],
    out: str | Path,
    engines: Engines | None = None,
    *,
    estimate_depth: bool = True,
    **runner: Any,
) -> BatchReport:
    """Relight every job into `out` with the session's engine, output settings and target: its
    light (compass guides, or the normals engine), its guide photo for every source, or — neither
    set — each job's own guide. `estimate_depth`: fill missing depth maps (else such pairs are
    skipped, naming the file). `runner`: the batch runner's options (suffix, bit_depth, progress,
    cancel, batch_size, io_threads)."""
    from core.engine.batch import relight_jobs

    engines = engines or Engines()
    settings = session.settings
    fill = engines.depth_filler(settings) if estimate_depth else None
    if session.engine is Engine.NORMALS:
        from core.engine.normals import NormalsBatch

        if not session.uses_light:
            raise RelightError("the normals engine adds a light: give a light, not a guide")
        return relight_jobs(NormalsBatch(engines.normals(settings), session.light), jobs, out, fill=fill, **runner)
    relighter = engines.relighter(settings)
    guide_for: Callable[[Input], Input] | None = None
    if session.uses_light:
        light, guides = session.light, engines.guides()

        def guide_for(src: Input) -> Input:
            from core.engine.guides import compass_guide

            return compass_guide(light, src.image.shape[:2], relighter.working_pixels, guides)

    elif session.guide is not None:
        guide = session.guide if isinstance(session.guide, Input) else load_input(session.guide)
        if not guide.has_depth and fill is not None:
            guide = fill(guide, "guide")
        check_depth_shape(guide)

        def guide_for(src: Input) -> Input:
            return guide

    return relight_jobs(
        relighter,
        jobs,
        out,
        guide_for=guide_for,
        fill=fill,
        mode=session.output.mode,
        compose=session.compose(),
        **runner,
    )
