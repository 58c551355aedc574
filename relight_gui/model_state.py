"""The active checkpoint, loaded into a core Relighter off the GUI thread."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from core.engine.inference import Relighter
from core.services import resolve_checkpoint

from .workers import Operation, watch_core_threads


class ModelState(QObject):
    loading = Signal(str)
    loaded = Signal(object)  # Relighter
    failed = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.relighter: Relighter | None = None
        self.path: Path | None = None
        self.error: str | None = None
        self.busy = False

    @property
    def ready(self) -> bool:
        return self.relighter is not None and not self.busy

    @property
    def trained(self) -> bool:
        return self.relighter is not None and (self.relighter.info is None or self.relighter.info.trained)

    def load(self, checkpoint: str | None, device: str, precision: str, fast: bool) -> Operation:
        self.busy = True
        self.loading.emit(checkpoint or "bundled model")

        def work(progress, cancel):
            path = resolve_checkpoint(checkpoint or None)
            progress(0.2, f"loading {path.name}")
            return Relighter.from_checkpoint(path, device=device, precision=precision, accelerate=fast)

        # failure: the window says it (and the Relight tab's banner) when `failed` is emitted
        return Operation(self, "Loading the checkpoint", work, success=self._ok, failure=self._fail).run()

    def _ok(self, relighter: Relighter) -> None:
        self.relighter, self.busy, self.error = relighter, False, None
        watch_core_threads(relighter.background)  # the fast path compiles in threads of its own
        self.path = relighter.info.path if relighter.info else None
        self.loaded.emit(relighter)

    def _fail(self, msg: str) -> None:
        self.busy, self.error = False, msg
        self.failed.emit(msg)

    def describe(self) -> str:
        if self.relighter is None:
            return "no model" if not self.busy else "loading model…"
        info = self.relighter.info
        return f"{info.name} ({info.preset})" if info else "S3Net"
