"""One relight session: what to relight, under which light, with which engine and settings, and the
result with whether it still belongs to those inputs. A plain object (no Qt): the app's widgets
observe and edit it, the command line, the library and the batch runner build one.

    session = Session(source=InputFiles("photo.jpg"), light=Light(45, 3500))
    session.events.connect(lambda name: print(name, "changed"))
    session.output = OutputSettings(exposure=0.5)   # prints "output changed" (and "stale" once a result exists)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from core.base.defaults import DEFAULTS
from core.base.vocab import Engine, OutputMode, Precision, checked
from core.engine.compose import ComposeSettings, settings_for
from core.inputs.input import Input, InputFiles
from core.render.addlight import DEFAULT_DISTANCE
from core.render.light import Light
from core.render.normals import DEFAULT_FOV_DEG

Listener = Callable[[str], None]


class Events:
    """Plain change notifications: ``connect(callback)``; each change calls it with the field's name.
    Callbacks run in the thread that made the change (a GUI marshals them to its own thread)."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def connect(self, callback: Listener) -> Listener:
        with self._lock:
            self._listeners.append(callback)
        return callback

    def disconnect(self, callback: Listener) -> None:
        with self._lock:
            self._listeners = [c for c in self._listeners if c is not callback]

    def emit(self, name: str) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for callback in listeners:
            callback(name)


@dataclass(frozen=True)
class EngineSettings:
    """How the engines run: device, precision, the fast CUDA path, the full-resolution pixel budget,
    which checkpoint and depth model, the live preview's size and the normals engine's optics."""

    device: str = DEFAULTS.device
    precision: Precision = DEFAULTS.precision
    fast: bool = DEFAULTS.fast
    max_pixels: int | None = None  # None: from the device's memory
    checkpoint: str | Path | None = None  # None: the bundled model
    depth_model: str | Path | None = None  # None: $RELIGHT_DEPTH_MODEL or the installed one
    preview_pixels: int = DEFAULTS.preview_pixels
    fov_deg: float = DEFAULT_FOV_DEG
    light_distance: float = DEFAULT_DISTANCE
    shadows: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "precision", checked(Precision, self.precision, "precision"))


@dataclass(frozen=True)
class OutputSettings:
    """What the user gets: the output mode and, in detail mode, the exposure of the result."""

    mode: OutputMode = DEFAULTS.mode
    keep_exposure: bool | None = DEFAULTS.keep_exposure  # None: the default for the kind of target
    exposure: float = DEFAULTS.exposure_ev  # stops up (+) or down (-)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", checked(OutputMode, self.mode, "mode"))

    def compose(self, light: Light | None) -> ComposeSettings:
        """The composition for this target: a compass light's temperature, or a guide image's."""
        return settings_for(light.kelvin if light is not None else None, self.keep_exposure, self.exposure)


Source = Input | InputFiles


@dataclass
class _State:
    source: Source | None = None
    guide: Source | None = None  # a guide photo; used when no light is set
    light: Light | None = None  # a light from numbers (the compass): the guide is rendered, or added
    engine: Engine = DEFAULTS.engine
    output: OutputSettings = field(default_factory=OutputSettings)
    settings: EngineSettings = field(default_factory=EngineSettings)


class Session:
    """The inputs of one relight and its result. Setting an input emits its name and, when a result
    exists, marks it stale (emitting "stale"); ``set_result`` stores a fresh one ("result")."""

    INPUTS = ("source", "guide", "light", "engine", "output", "settings")

    def __init__(self, **inputs: Any) -> None:
        object.__setattr__(self, "events", Events())
        object.__setattr__(self, "_state", _State())
        object.__setattr__(self, "result", None)
        object.__setattr__(self, "stale", False)
        for name, value in inputs.items():
            setattr(self, name, value)

    def __getattr__(self, name: str) -> Any:
        if name in Session.INPUTS:
            return getattr(self._state, name)
        raise AttributeError(name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in Session.INPUTS:
            raise AttributeError(f"a session holds {', '.join(Session.INPUTS)}; set the result with set_result")
        if name == "engine":
            value = checked(Engine, value, "engine", " or ")
        if getattr(self._state, name) is value:
            return
        setattr(self._state, name, value)
        self.events.emit(name)
        if self.result is not None and not self.stale:
            object.__setattr__(self, "stale", True)
            self.events.emit("stale")

    def update(self, **inputs: Any) -> None:
        for name, value in inputs.items():
            setattr(self, name, value)

    def set_result(self, result: Any, made_from: Session | None = None) -> None:
        """Store a result; `made_from` is the snapshot it was computed from: when an input has changed
        since (the user moved on while it ran), the result arrives already stale."""
        changed = made_from is not None and any(
            getattr(made_from._state, n) is not getattr(self._state, n) for n in Session.INPUTS
        )
        object.__setattr__(self, "result", result)
        object.__setattr__(self, "stale", changed)
        self.events.emit("result")
        if changed:
            self.events.emit("stale")

    @property
    def uses_light(self) -> bool:
        """The light is the target (a compass guide, or the normals engine); else the guide photo."""
        return self.light is not None

    def compose(self) -> ComposeSettings:
        output: OutputSettings = self.output
        return output.compose(self.light)

    def snapshot(self) -> Session:
        """A copy of the inputs for work in another thread: later edits do not reach it."""
        copy = Session()
        object.__setattr__(copy, "_state", replace(self._state))
        return copy
