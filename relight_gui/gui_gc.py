"""Python's garbage collection, kept on the GUI thread.

Python runs its cyclic collector in whichever thread happens to allocate when a threshold is
crossed. With background workers, that is often a worker thread; a reference cycle that holds Qt
objects (a dialog and the lambdas connected to it, a finished window) is then destroyed off the GUI
thread, which Qt does not allow: a crash or a deadlock, at random. So while the app is open the
automatic collector is off, and a timer on the GUI thread collects with the same thresholds.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

_users = 0  # windows holding the guard (tests open several in one process)


class GuiThreadGC(QObject):
    def __init__(self, parent: QObject, interval_ms: int = 500):
        global _users
        super().__init__(parent)
        _users += 1
        self.active = True
        gc.disable()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.collect)
        self.timer.start(interval_ms)

    @staticmethod
    def collect() -> int:
        """Collect the generations whose thresholds are exceeded (as the automatic collector would)."""
        counts, thresholds = gc.get_count(), gc.get_threshold()
        gen = -1
        for g in range(3):
            if thresholds[g] and counts[g] > thresholds[g]:
                gen = g
        return gc.collect(gen) if gen >= 0 else 0

    def stop(self) -> None:
        """Back to automatic collection (no worker is running any more), after collecting here."""
        global _users
        if not self.active:
            return
        self.active = False
        self.timer.stop()
        _users -= 1
        gc.collect()
        if _users == 0:
            gc.enable()
