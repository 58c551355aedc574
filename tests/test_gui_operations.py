"""The app's one way to run long work (relight_gui.workers): failures shown once, cancel, closing
joins every thread (the fast path's compile included), live previews newest first."""

import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QMessageBox, QWidget  # noqa: E402

from core.base.cancel import BackgroundThreads  # noqa: E402
from core.base.errors import RelightError  # noqa: E402
from relight_gui.workers import RUNNING, LatestWins, Operation, watch_core_threads  # noqa: E402


@pytest.fixture
def window(qtbot, tmp_path, lite_checkpoint):
    from relight_gui.main_window import MainWindow
    from relight_gui.settings import Settings

    s = Settings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    s.set("checkpoint", str(lite_checkpoint))
    s.set("device", "cpu")
    win = MainWindow(s)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.model.relighter is not None, timeout=30000)
    yield win
    win.close()


def error_dialogs(widget):
    return [b for b in widget.findChildren(QMessageBox) if b.objectName() == "errorDialog" and b.isVisible()]


def until_cancelled(started: threading.Event | None = None):
    def work(progress, cancel):
        if started is not None:
            started.set()
        while True:
            cancel.check()
            time.sleep(0.01)

    return work


def test_a_failing_operation_shows_one_dialog_with_cores_message(qtbot):
    parent = QWidget()
    qtbot.addWidget(parent)
    parent.show()
    path = Path("/photos/broken.png")

    def work(progress, cancel):
        raise RelightError("cannot read the image (truncated PNG)", path)

    succeeded = []
    op = Operation(parent, "Opening broken.png", work, success=succeeded.append, error_title="Cannot open the source")
    with qtbot.waitSignal(op.finished, timeout=5000):
        op.run()
    qtbot.waitUntil(lambda: len(error_dialogs(parent)) == 1, timeout=5000)
    qtbot.wait(100)
    (box,) = error_dialogs(parent)
    assert box.windowTitle() == "Cannot open the source"
    assert "broken.png" in box.text() and "truncated PNG" in box.text()
    assert not succeeded and op.done and op.wait(5000)
    # a bug is said too, under the operation's name, and the app keeps running
    op = Operation(parent, "Relighting", lambda p, c: 1 / 0)
    with qtbot.waitSignal(op.finished, timeout=5000):
        op.run()
    qtbot.waitUntil(lambda: len(error_dialogs(parent)) == 2, timeout=5000)
    box = next(b for b in error_dialogs(parent) if b.windowTitle() == "Relighting failed")
    assert "ZeroDivisionError" in box.text()


def test_cancel_stops_the_operation_and_reports_cancelled(qtbot):
    parent = QWidget()
    qtbot.addWidget(parent)
    started, outcome = threading.Event(), []
    op = Operation(
        parent,
        "Endless",
        until_cancelled(started),
        success=lambda r: outcome.append("success"),
        failure=lambda m: outcome.append("failure"),
        cancelled=lambda: outcome.append("cancelled"),
        finished=lambda: outcome.append("finished"),
    ).run()
    assert started.wait(5)
    assert not op.done
    with qtbot.waitSignal(op.finished, timeout=5000):
        op.cancel()
    assert outcome == ["cancelled", "finished"] and op.wait(5000)
    assert not error_dialogs(parent)


def test_closing_during_running_operations_joins_every_thread(qtbot, window):
    before = set(threading.enumerate())
    started = threading.Event()
    op = Operation(window.relight_tab, "Endless", until_cancelled(started)).run()
    assert started.wait(5)
    # a thread core started by itself (as the fast path's background compile does)
    compile_threads = BackgroundThreads()
    compiling = threading.Event()

    def compile_shape():
        compiling.set()
        while not compile_threads.token.cancelled:
            time.sleep(0.01)

    assert compile_threads.start(compile_shape, name="compile S3Net")
    watch_core_threads(compile_threads)
    assert compiling.wait(5)
    previewing = threading.Event()
    light = window.relight_tab.compass.light

    def preview():
        previewing.set()
        time.sleep(0.3)
        return light, None, None, None  # a preview with nothing to show yet

    window.relight_tab.preview.submit(preview)
    assert previewing.wait(5)
    preview_op = window.relight_tab.preview.running
    running = [op, preview_op]
    assert all(o.thread.isRunning() for o in running) and compile_threads.alive == 1
    window.close()  # cancels and joins: nothing of ours runs after it returns
    assert all(o.wait(0) for o in running) and compile_threads.alive == 0
    assert not (set(threading.enumerate()) - before - {t for t in threading.enumerate() if t.name.startswith("Dummy")})
    assert not compile_threads.start(compile_shape, name="compile S3Net")  # no new compile once closed
    qtbot.wait(100)
    assert op not in RUNNING


def test_the_live_preview_runs_the_newest_request_only(qtbot):
    preview = LatestWins("Live preview")
    release, ran, results = threading.Event(), [], []
    preview.succeeded.connect(results.append)

    def job(name, block=False):
        def run():
            ran.append(name)
            if block:
                release.wait(5)
            return name

        return run

    preview.submit(job("first", block=True))
    qtbot.waitUntil(lambda: ran == ["first"], timeout=5000)
    for name in ("second", "third", "newest"):  # asked while the first runs: each replaces the last
        preview.submit(job(name))
    assert not preview.idle()
    release.set()
    qtbot.waitUntil(preview.idle, timeout=5000)
    assert ran == ["first", "newest"] and results == ["first", "newest"]
    # a failure is reported as a signal (the tab puts it in the status line), not a dialog
    failures = []
    preview.failed.connect(failures.append)
    preview.submit(lambda: 1 / 0)
    qtbot.waitUntil(lambda: preview.idle() and bool(failures), timeout=5000)
    assert "ZeroDivisionError" in failures[0]
