"""Running core work off the GUI thread, with progress, cancel, success and failure signals.

A `Worker` lives in the GUI thread; its `_Runner` does the work in a QThread and forwards every
signal through queued connections, so whatever is connected to a Worker's signals (lambdas
included) runs in the GUI thread.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from core.cancel import CancelToken
from core.errors import Cancelled, RelightError

log = logging.getLogger("relight.gui")
QUEUED = Qt.ConnectionType.QueuedConnection


class _Runner(QObject):
    progress = Signal(float, str)
    succeeded = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    finished = Signal()

    def __init__(self, fn, name: str, token: CancelToken):
        super().__init__()
        self.fn, self.name, self.token = fn, name, token

    @Slot()
    def run(self) -> None:
        try:
            result = self.fn(lambda f, m="": self.progress.emit(float(f), str(m)), self.token)
        except Cancelled:
            self.cancelled.emit()
        except RelightError as exc:
            log.warning("%s failed: %s", self.name, exc)
            self.failed.emit(str(exc))
        except (KeyboardInterrupt, SystemExit) as exc:  # must neither end the run silently nor the app
            log.error("%s was interrupted (%s)", self.name, type(exc).__name__)
            self.failed.emit(f"{self.name} was interrupted ({type(exc).__name__})")
        except MemoryError:
            log.exception("%s ran out of memory", self.name)
            self.failed.emit("Out of memory. Try a smaller image, the CPU, or the gain-map mode.")
        except Exception as exc:  # a bug: log the traceback, tell the user, keep the app usable
            log.error("%s crashed:\n%s", self.name, traceback.format_exc())
            self.failed.emit(
                f"{self.name} failed unexpectedly: {type(exc).__name__}: {exc}\n(details are in the log file)"
            )
        else:
            self.succeeded.emit(result)
        finally:
            self.finished.emit()


class Worker(QObject):
    """``fn(progress, cancel)`` run in a QThread; ``progress(fraction, message)``; ``cancel`` is a
    core CancelToken the work checks between and within items."""

    progress = Signal(float, str)
    succeeded = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    finished = Signal()

    def __init__(self, fn: Callable[[Callable[[float, str], None], CancelToken], Any], name: str = "task"):
        super().__init__()
        self.fn, self.name = fn, name
        self.cancel_token = CancelToken()
        self.thread: QThread | None = None
        self.runner: _Runner | None = None  # holds the runner (a QObject moved to the thread) while it runs
        self.done = False
        self.finished.connect(self._mark_done)

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


# Every running worker, whoever started it: closing the window stops and joins them all, so no
# tab can forget one (a QThread destroyed while running aborts the process).
RUNNING: set = set()


def stop_workers(msecs: int = 30000) -> None:
    """Cancel every running worker and wait for its thread (before the window is destroyed)."""
    for worker in list(RUNNING):
        worker.cancel()
    for worker in list(RUNNING):
        worker.wait(msecs)


def start_worker(parent: QObject, worker: Worker) -> Worker:
    """Run `worker` in a new QThread; the thread and runner are cleaned up when it finishes.
    Work asked for by a window that is closing (its `closing` is set: it has joined its threads,
    and Qt 6's quit() closes windows while the event loop still runs timers and focus handlers)
    is returned unstarted and never reports: nothing would join its thread."""
    owner = parent
    while owner is not None:
        if getattr(owner, "closing", False):
            log.info("%s not started: the window is closing", worker.name)
            return worker
        owner = owner.parent()
    thread = QThread(parent)
    runner = _Runner(worker.fn, worker.name, worker.cancel_token)
    runner.moveToThread(thread)
    worker.thread, worker.runner = thread, runner
    for name in ("progress", "succeeded", "failed", "cancelled", "finished"):
        getattr(runner, name).connect(getattr(worker, name), QUEUED)
    thread.started.connect(runner.run)
    # direct: QThread.quit is thread-safe, and a queued call would need the GUI loop, which
    # stop_workers() blocks while it waits
    runner.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
    # no runner.deleteLater: that would destroy the runner (a Python subclass) in the worker thread,
    # where its destructor waits for the GIL while holding a Qt connection lock that the GUI thread
    # (holding the GIL, e.g. in QMenu.addAction -> QObject::connect) may be waiting for: both hang.
    # The runner goes with its Worker, on the GUI thread.
    thread.finished.connect(thread.deleteLater)
    RUNNING.add(worker)
    # a slot of the worker (a GUI-thread object): the last reference to the worker and its runner is
    # dropped on the GUI thread, never in the finishing thread (a plain lambda would run there)
    thread.finished.connect(worker._thread_finished)
    thread.start()
    return worker


class LatestOnly(QObject):
    """A background thread that runs only the newest request: a request that arrives while one runs
    replaces any still waiting (stale requests are dropped, latest wins). For live previews."""

    succeeded = Signal(object)
    failed = Signal(str)

    def __init__(self, name: str, parent: QObject | None = None):
        super().__init__(parent)
        import threading

        self.name = name
        self._cond = threading.Condition()
        self._pending: Callable[[], Any] | None = None
        self._stop = False
        self.busy = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()
        RUNNING.add(self)

    def submit(self, job: Callable[[], Any]) -> None:
        with self._cond:
            self._pending = job
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                job, self._pending = self._pending, None
                self.busy = True
            try:
                result = job()
            except RelightError as exc:
                self.failed.emit(str(exc))
            except Exception as exc:  # a bug: log it, keep the app usable
                log.error("%s crashed:\n%s", self.name, traceback.format_exc())
                self.failed.emit(f"{self.name} failed unexpectedly: {type(exc).__name__}: {exc}")
            else:
                self.succeeded.emit(result)
            finally:
                self.busy = False

    def idle(self) -> bool:
        with self._cond:
            return self._pending is None and not self.busy

    def cancel(self) -> None:
        with self._cond:
            self._stop = True
            self._pending = None
            self._cond.notify()

    def wait(self, msecs: int = 30000) -> bool:
        self._thread.join(msecs / 1000)
        if not self._thread.is_alive():
            RUNNING.discard(self)
        return not self._thread.is_alive()
