"""A core Session seen from Qt: its change notifications as a Qt signal delivered on the GUI thread.

    view = SessionView(session, parent)
    view.changed.connect(lambda name: ...)   # "source", "light", …, "stale", "result"

A change made on the GUI thread is delivered at once; one made in a worker thread is queued to the
thread this object lives in (the GUI thread).
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from core.session import Session


class SessionView(QObject):
    changed = Signal(str)  # the name of what changed
    _from_worker = Signal(str)

    def __init__(self, session: Session, parent: QObject | None = None):
        super().__init__(parent)
        self.session = session
        self._from_worker.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        listener = session.events.connect(self._forward)
        self.destroyed.connect(lambda _obj=None: session.events.disconnect(listener))

    def _forward(self, name: str) -> None:
        if QThread.currentThread() is self.thread():
            self.changed.emit(name)
        else:
            self._from_worker.emit(name)

    @Slot(str)
    def _deliver(self, name: str) -> None:
        self.changed.emit(name)
