"""The app's one way to run long work: an `Operation` runs ``fn(progress, cancel)`` in a QThread and
reports progress, success, failure (an error dialog unless the caller handles it) and cancel on the
GUI thread. `LatestWins` runs operations for live previews, newest request first. `stop_workers`
cancels and joins every operation, and the threads core starts by itself (the fast path's compile).

An Operation lives in the GUI thread; its `_Runner` does the work in a QThread and forwards every
signal through queued connections, so whatever is connected (lambdas included) runs in the GUI thread.
"""

from __future__ import annotations

import logging
import traceback
import weakref
from collections.abc import Callable
from typing import Any, Protocol

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot
from PySide6.QtWidgets import QWidget

from core.base.cancel import BackgroundThreads, CancelToken
from core.base.errors import Cancelled, RelightError

from .dialogs import show_error

log = logging.getLogger("relight.gui")
QUEUED = Qt.ConnectionType.QueuedConnection
Work = Callable[[Callable[[float, str], None], CancelToken], Any]
UNEXPECTED = "failed unexpectedly"  # in the message of a failure that is a bug, not a user's problem


def failure_message(name: str, exc: BaseException) -> str:
    """What the user reads when `name` failed: core's own message (it names the file and the problem),
    else what kind of failure it was; bugs are logged with their traceback."""
    if isinstance(exc, RelightError):
        log.warning("%s failed: %s", name, exc)
        return str(exc)
    if isinstance(exc, (KeyboardInterrupt, SystemExit)):  # must neither end the run silently nor the app
        log.error("%s was interrupted (%s)", name, type(exc).__name__)
        return f"{name} was interrupted ({type(exc).__name__})"
    if isinstance(exc, MemoryError):
        log.error("%s ran out of memory", name, exc_info=exc)
        return "Out of memory. Try a smaller image, the CPU, or the gain-map mode."
    log.error("%s crashed:\n%s", name, "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    return f"{name} {UNEXPECTED}: {type(exc).__name__}: {exc}\n(details are in the log file)"


class _Runner(QObject):
    progress = Signal(float, str)
    succeeded = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    finished = Signal()

    def __init__(self, fn: Work, name: str, token: CancelToken):
        super().__init__()
        self.fn, self.name, self.token = fn, name, token

    @Slot()
    def run(self) -> None:
        try:
            result = self.fn(lambda f, m="": self.progress.emit(float(f), str(m)), self.token)
        except Cancelled:
            self.cancelled.emit()
        except BaseException as exc:  # a bug or an interrupt: said, and the app stays usable
            self.failed.emit(failure_message(self.name, exc))
        else:
            self.succeeded.emit(result)
        finally:
            self.finished.emit()


class Operation(QObject):
    """``fn(progress, cancel)`` run off the GUI thread by `run()`: ``progress(fraction, message)``;
    ``cancel`` is a core CancelToken the work checks between and within items. The callbacks run on
    the GUI thread; without `failure`, a failure is shown in an error dialog titled `error_title`."""

    progress = Signal(float, str)
    succeeded = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    finished = Signal()

    def __init__(
        self,
        owner: QObject | None,
        name: str,
        fn: Work,
        *,
        progress: Callable[[float, str], Any] | None = None,
        success: Callable[[Any], Any] | None = None,
        failure: Callable[[str], Any] | None = None,
        cancelled: Callable[[], Any] | None = None,
        finished: Callable[[], Any] | None = None,
        error_title: str | None = None,
    ):
        super().__init__()  # no Qt parent: a preview makes one per request; RUNNING keeps it while it runs
        self.owner, self.name, self.fn = owner, name, fn
        self.error_title = error_title or f"{name} failed"
        self.cancel_token = CancelToken()
        self.thread: QThread | None = None
        self.runner: _Runner | None = None  # the runner (a QObject moved to the thread) while it runs
        self.done = False
        self.finished.connect(self._mark_done)
        self.failed.connect(failure or self._show_failure)
        for signal, slot in (
            (self.progress, progress),
            (self.succeeded, success),
            (self.cancelled, cancelled),
            (self.finished, finished),
        ):
            if slot is not None:
                signal.connect(slot)

    def _show_failure(self, message: str) -> None:
        parent = self.owner if isinstance(self.owner, QWidget) else None
        show_error(parent, self.error_title, message)

    def _mark_done(self) -> None:
        self.done = True

    @Slot()
    def _thread_finished(self) -> None:
        RUNNING.discard(self)

    def cancel(self) -> None:
        self.cancel_token.cancel()

    def wait(self, msecs: int = 30000) -> bool:
        """Block until the work's thread has ended (True), or the timeout passed (False)."""
        try:
            return self.thread is None or self.thread.wait(msecs)
        except RuntimeError:  # the QThread was already deleted: it had finished
            return True

    def run(self) -> Operation:
        """Start the work in a new QThread; the thread and runner are cleaned up when it finishes.
        Work asked for by a window that is closing (its `closing` is set: it has joined its threads,
        and Qt 6's quit() closes windows while the event loop still runs timers and focus handlers)
        is not started and never reports: nothing would join its thread."""
        owner = self.owner
        while owner is not None:
            if getattr(owner, "closing", False):
                log.info("%s not started: the window is closing", self.name)
                return self
            owner = owner.parent()
        thread = QThread(self.owner)
        runner = _Runner(self.fn, self.name, self.cancel_token)
        runner.moveToThread(thread)
        self.thread, self.runner = thread, runner
        for name in ("progress", "succeeded", "failed", "cancelled", "finished"):
            getattr(runner, name).connect(getattr(self, name), QUEUED)
        thread.started.connect(runner.run)
        # direct: QThread.quit is thread-safe, and a queued call would need the GUI loop, which
        # stop_workers() blocks while it waits
        runner.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        # no runner.deleteLater: that would destroy the runner (a Python subclass) in the worker thread,
        # where its destructor waits for the GIL while holding a Qt connection lock that the GUI thread
        # (holding the GIL, e.g. in QMenu.addAction -> QObject::connect) may be waiting for: both hang.
        # The runner goes with its Operation, on the GUI thread.
        thread.finished.connect(thread.deleteLater)
        RUNNING.add(self)
        # a slot of the operation (a GUI-thread object): the last reference to it and its runner is
        # dropped on the GUI thread, never in the finishing thread (a plain lambda would run there)
        thread.finished.connect(self._thread_finished)
        thread.start()
        return self


class LatestWins(QObject):
    """Live previews: one operation at a time; a request that arrives while one runs replaces any
    still waiting (stale requests are dropped, the newest wins). Jobs take no arguments."""

    succeeded = Signal(object)
    failed = Signal(str)

    def __init__(self, name: str, parent: QObject | None = None):
        super().__init__(parent)
        self.name = name
        self.running: Operation | None = None
        self._pending: Callable[[], Any] | None = None

    def submit(self, job: Callable[[], Any]) -> None:
        self._pending = job
        if self.running is None:
            self._start_next()

    def _start_next(self) -> None:
        job, self._pending = self._pending, None
        if job is None:
            return
        op = Operation(
            self,
            self.name,
            lambda progress, cancel: job(),
            success=self.succeeded.emit,
            failure=self.failed.emit,  # said in the status line: no dialog while the light moves
            finished=self._finished,
        ).run()
        self.running = op if op.thread is not None else None

    def _finished(self) -> None:
        self.running = None
        self._start_next()

    def idle(self) -> bool:
        return self._pending is None and self.running is None

    def cancel(self) -> None:
        self._pending = None
        if self.running is not None:
            self.running.cancel()


class Stoppable(Protocol):
    def cancel(self) -> None: ...
    def wait(self, msecs: int = 30000) -> bool: ...


class _CoreThreads:
    """Threads core started by itself, watched so that closing the window cancels and joins them.
    Held weakly: an engine that is gone (and whose threads have ended) is no longer watched."""

    def __init__(self, threads: BackgroundThreads):
        self.ref = weakref.ref(threads)

    def cancel(self) -> None:
        threads = self.ref()
        if threads is not None:
            threads.cancel()

    def wait(self, msecs: int = 30000) -> bool:
        threads = self.ref()
        done = threads is None or threads.join(msecs / 1000)
        if done:
            RUNNING.discard(self)
        return done


# Every running operation, whoever started it, and the threads core runs by itself: closing the
# window stops and joins them all, so none is forgotten (a QThread destroyed while running aborts).
RUNNING: set[Stoppable] = set()


def watch_core_threads(threads: BackgroundThreads | None) -> None:
    """Have `stop_workers` cancel and join the threads an engine starts by itself."""
    for gone in [h for h in RUNNING if isinstance(h, _CoreThreads) and h.ref() is None]:
        RUNNING.discard(gone)
    if threads is not None:
        RUNNING.add(_CoreThreads(threads))


def stop_workers(msecs: int = 30000) -> None:
    """Cancel every operation and core thread, and wait for each (before the window is destroyed)."""
    for worker in list(RUNNING):
        worker.cancel()
    for worker in list(RUNNING):
        worker.wait(msecs)
