import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QMimeData, QPoint, QPointF, QSettings, Qt, QUrl  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QMessageBox  # noqa: E402

from core.storage.io import read_image, write_depth_npy, write_image  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def window(qtbot, tmp_path, lite_checkpoint):
    from relight_gui.main_window import MainWindow
    from relight_gui.settings import Settings

    s = Settings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    s.set("checkpoint", str(lite_checkpoint))
    s.set("device", "cpu")
    s.set("output_dir", str(tmp_path))
    win = MainWindow(s)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.model.relighter is not None, timeout=30000)
    yield win
    win.close()  # cancels and joins every worker thread


@pytest.fixture(autouse=True)
def _collect_garbage_on_the_gui_thread():
    """Earlier tests' garbage (cycles holding Qt objects) must not be collected in a worker thread."""
    import gc

    gc.collect()
    yield


def mime(*paths):
    m = QMimeData()
    m.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    return m


def make_pair(folder: Path, name: str, size=(64, 96), seed=0):
    rng = np.random.default_rng(seed)
    img = write_image(folder / f"{name}.png", rng.random((*size, 3)), 8)
    dep = write_depth_npy(folder / f"{name}.npy", rng.random(size))
    return img, dep


def dialogs(win):
    return [b for b in win.findChildren(QMessageBox) if b.isVisible()]


def test_drop_image_and_depth_on_each_card(qtbot, window, tmp_path):
    rt = window.relight_tab
    img, dep = make_pair(tmp_path, "a")
    assert rt.source_card.handle_mime(mime(img, dep))
    qtbot.waitUntil(lambda: rt.source_card.loaded, timeout=10000)
    assert rt.source_card.image.shape == (64, 96, 3) and rt.source_card.depth_path == dep
    assert not rt.relight_button.isEnabled()  # the guide is missing
    assert "guide" in rt.banner.text()
    g_img, g_dep = make_pair(tmp_path, "b_depth_src", seed=1)
    (tmp_path / "g.png").write_bytes(g_img.read_bytes())
    os.replace(g_dep, tmp_path / "g_depth.npy")  # X.png + X_depth.npy rule
    rt.guide_card.handle_mime(mime(tmp_path / "g.png"))
    qtbot.waitUntil(lambda: rt.guide_card.loaded, timeout=10000)
    assert rt.guide_card.depth_path.name == "g_depth.npy"
    assert rt.relight_button.isEnabled()


def test_two_pairs_and_ntire_folder_fill_both_cards(qtbot, window, tmp_path):
    rt = window.relight_tab
    a = make_pair(tmp_path, "a")
    b = make_pair(tmp_path, "b", seed=2)
    rt.guide_card.handle_mime(mime(*a, *b))
    qtbot.waitUntil(lambda: rt.source_card.loaded and rt.guide_card.loaded, timeout=10000)
    assert rt.source_card.image_path.name == "a.png" and rt.guide_card.image_path.name == "b.png"
    from core.train.synthetic import synthesize

    synthesize(tmp_path / "s", scenes=0, size=64, pairs=1)
    rt.source_card.clear()
    rt.source_card.handle_mime(mime(tmp_path / "s" / "pairs"))
    qtbot.waitUntil(lambda: rt.source_card.loaded and rt.guide_card.image_path.parent.name == "guide", timeout=10000)
    assert rt.source_card.image_path == tmp_path / "s" / "pairs" / "input" / "Pair000.png"


def test_a_photo_without_depth_gets_an_estimate_from_its_card(qtbot, window, tmp_path, tiny_depth_model, monkeypatch):
    monkeypatch.delenv("RELIGHT_DEPTH_MODEL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    window.settings_tab.auto_depth.setChecked(False)  # the Estimate button by hand
    rt = window.relight_tab
    img = write_image(tmp_path / "photo.png", np.random.default_rng(4).random((64, 96, 3)), 8)
    rt.source_card.handle_mime(mime(img))  # a photo alone is an offer, not a refusal
    qtbot.waitUntil(lambda: rt.source_card.loaded, timeout=10000)
    card = rt.source_card
    assert not card.ready and card.no_depth.isVisible() and not dialogs(window)
    assert not card.estimate_button.isEnabled() and card.download_button.isVisible()  # no model installed yet
    assert "no depth map" in rt.banner.text()
    window.settings_tab.depth_model.setText(str(tiny_depth_model))  # the app's setting
    window.settings_tab.depth_model.editingFinished.emit()
    assert "Depth model:" in window.settings_tab.depth_status.text()
    assert card.estimate_button.isEnabled() and not card.download_button.isVisible()
    qtbot.mouseClick(card.estimate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: card.ready, timeout=20000)
    assert card.depth.shape == (64, 96) and "estimated (Depth Anything (32-wide backbone))" in card.info.text()
    assert not card.no_depth.isVisible() and card.save_depth_button.isVisible()
    with qtbot.waitSignal(rt.save_depth(card, tmp_path / "photo_depth.png").succeeded, timeout=10000):
        pass
    from core.storage.io import read_depth

    np.testing.assert_allclose(read_depth(tmp_path / "photo_depth.png").data, card.depth.data, atol=1 / 65535 + 1e-7)
    rt.guide_card.handle_mime(mime(*make_pair(tmp_path, "g")))
    qtbot.waitUntil(lambda: rt.relight_button.isEnabled(), timeout=10000)


def test_photos_get_depth_on_open_and_when_the_depth_model_arrives(
    qtbot, window, tmp_path, tiny_depth_model, monkeypatch
):
    monkeypatch.delenv("RELIGHT_DEPTH_MODEL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    rt = window.relight_tab
    assert window.settings_tab.auto_depth.isChecked()  # on by default
    photo = write_image(tmp_path / "photo.png", np.random.default_rng(5).random((64, 96, 3)), 8)
    rt.source_card.handle_mime(mime(photo))
    qtbot.waitUntil(lambda: rt.source_card.loaded, timeout=10000)
    assert not rt.source_card.ready and "no depth map" in rt.banner.text()  # no model yet: nothing to run
    window.settings_tab.depth_model.setText(str(tiny_depth_model))  # the model arrives
    window.settings_tab.depth_model.editingFinished.emit()
    qtbot.waitUntil(lambda: rt.source_card.ready, timeout=20000)
    assert "estimated (Depth Anything (32-wide backbone))" in rt.source_card.info.text()
    guide = write_image(tmp_path / "guide.png", np.random.default_rng(6).random((64, 96, 3)), 8)
    rt.guide_card.handle_mime(mime(guide))  # with the model installed, opening is enough
    qtbot.waitUntil(lambda: rt.relight_button.isEnabled(), timeout=20000)
    assert rt.guide_card.ready and "estimated" in rt.guide_card.info.text() and not dialogs(window)


def test_corrupt_file_gives_an_error_dialog_and_app_stays_usable(qtbot, window, tmp_path):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    write_depth_npy(tmp_path / "bad.npy", np.zeros((40, 40)))
    window.relight_tab.source_card.handle_mime(mime(tmp_path / "bad.png", tmp_path / "bad.npy"))
    qtbot.waitUntil(lambda: bool(dialogs(window)), timeout=5000)
    assert "bad.png" in dialogs(window)[0].text() and "not a readable image" in dialogs(window)[0].text()
    for d in dialogs(window):
        d.accept()
    img, dep = make_pair(tmp_path, "ok")
    window.relight_tab.source_card.handle_mime(mime(img, dep))
    qtbot.waitUntil(lambda: window.relight_tab.source_card.loaded, timeout=10000)


def _load_both(qtbot, rt, tmp_path, size=(64, 96)):
    rt.source_card.handle_mime(mime(*make_pair(tmp_path, "src", size)))
    rt.guide_card.handle_mime(mime(*make_pair(tmp_path, "gui", size, seed=3)))
    qtbot.waitUntil(lambda: rt.relight_button.isEnabled(), timeout=10000)


def test_full_relight_through_the_worker_then_save_and_swap(qtbot, window, tmp_path):
    rt = window.relight_tab
    _load_both(qtbot, rt, tmp_path)
    with qtbot.waitSignal(rt.resultReady, timeout=30000) as blocker:
        rt.relight()
    res = blocker.args[0]
    assert res.image.shape == (64, 96, 3) and res.mode == "detail"
    assert rt.compare.after is res.image and "detail" in window.run_label.text()
    with qtbot.waitSignal(rt.save(tmp_path / "out.png", 16).succeeded, timeout=10000):
        pass
    np.testing.assert_allclose(read_image(tmp_path / "out.png"), res.image, atol=1 / 65535)
    assert rt.save(rt.source_card.image_path, 16) is None  # never overwrite an input
    qtbot.waitUntil(lambda: bool(dialogs(window)), timeout=5000)
    before = rt.source_card.image_path
    assert rt.suggested_name() == "src_relit"
    rt.swap()
    assert rt.guide_card.image_path == before
    # the old result is marked stale; the view shows the new source; Save's name follows the result's source
    assert rt.result_label.text().startswith("Stale") and rt.compare.after is None
    assert rt.compare.before is rt.source_card.image and rt.suggested_name() == "src_relit"
    # re-run with another guide without reloading the source
    rt.guide_card.handle_mime(mime(*make_pair(tmp_path, "other", seed=9)))
    qtbot.waitUntil(lambda: rt.guide_card.image_path.name == "other.png", timeout=10000)
    with qtbot.waitSignal(rt.resultReady, timeout=30000):
        rt.relight()


def test_cancel_during_a_run(qtbot, window, tmp_path):
    rt = window.relight_tab
    _load_both(qtbot, rt, tmp_path, size=(256, 256))
    worker = rt.relight()
    rt.cancel()  # the engine checks the token before every network stage
    with qtbot.waitSignal(worker.cancelled, timeout=30000):
        pass
    qtbot.waitUntil(lambda: rt.worker is None, timeout=10000)
    assert rt.result is None and rt.relight_button.isEnabled()


def test_untrained_checkpoint_is_not_presented_as_a_result(qtbot, window, tmp_path):
    from core.model import create_model
    from core.storage.checkpoint import save_checkpoint

    path = save_checkpoint(
        tmp_path / "untrained.safetensors", create_model("s3net-lite"), "s3net-lite", extra={"trained": False}
    )
    window.use_checkpoint(str(path))
    qtbot.waitUntil(
        lambda: (
            window.model.relighter is not None and not window.model.busy and window.model.relighter.info.path == path
        ),
        timeout=30000,
    )
    window.relight_tab.update_state()
    assert "untrained" in window.relight_tab.banner.text()
    assert not window.relight_tab.relight_button.isEnabled()


def test_compare_view_divider_and_synchronised_zoom(qtbot):
    from relight_gui.widgets.compare_view import CompareView

    view = CompareView()
    qtbot.addWidget(view)
    view.resize(800, 400)
    view.show()
    a = np.zeros((100, 200, 3), np.float32)
    b = np.ones((100, 200, 3), np.float32)
    view.set_images(a, b)
    QTest.mousePress(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, view.rect().center())
    QTest.mouseMove(view, view.rect().center() + type(view.rect().center())(200, 0))
    QTest.mouseRelease(
        view,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
        view.rect().center() + type(view.rect().center())(200, 0),
    )
    assert view.divider == pytest.approx(0.75, abs=0.01)
    view.set_mode("side")
    left, right = view.panes()
    p_left = QPointF(left.left() + 100, left.top() + 80)
    view.zoom_at(2.0, p_left)
    assert view.scale > 1.0
    img_pt = view.pane_to_image(0, p_left)
    same = view.pane_to_image(1, p_left - left.topLeft() + right.topLeft())
    assert (img_pt.x(), img_pt.y()) == pytest.approx((same.x(), same.y()))  # both panes show the same spot
    view.fit()
    assert view.scale == pytest.approx(min(left.width() / 200, left.height() / 100))
    view.actual_size()
    assert view.scale == pytest.approx(1.0)
    view.set_mode("difference")
    view.grab()  # paints without error in every mode


def test_depth_preview_value_and_colormap(qtbot, window, tmp_path):
    rt = window.relight_tab
    img = write_image(tmp_path / "d.png", np.zeros((40, 50, 3)), 8)
    d = np.linspace(0, 1, 2000, dtype=np.float32).reshape(40, 50)
    np.save(tmp_path / "d.npy", d)
    rt.source_card.handle_mime(mime(img, tmp_path / "d.npy"))
    qtbot.waitUntil(lambda: rt.source_card.loaded, timeout=10000)
    panel = rt.source_card.depth_panel
    assert panel.range == pytest.approx((0.0, 1.0))
    assert panel.value_at(10, 20) == pytest.approx(float(d[20, 10]))
    rt.source_card._show_value(10, 20)
    assert f"{d[20, 10]:.4f}" in rt.source_card.hover.text()
    window.settings_tab.colormap.setCurrentText("gray")
    assert panel.cmap == "gray"
    np.save(tmp_path / "z.npy", np.zeros((40, 50), np.float32))
    rt.guide_card.handle_mime(mime(img, tmp_path / "z.npy"))
    qtbot.waitUntil(lambda: rt.guide_card.loaded, timeout=10000)
    assert "all zeros" in rt.guide_card.warning_label.text()


def test_finetune_runs_plots_checkpoints_stops_and_resumes(qtbot, window, tmp_path):
    from core.train.synthetic import synthesize

    synthesize(tmp_path / "data", scenes=3, size=64, seed=0, pairs=2)
    ft = window.finetune_tab
    ft.data.setText(str(tmp_path / "data"))
    with qtbot.waitSignal(ft.scan().succeeded, timeout=10000):
        pass
    assert "3 scenes" in ft.data_summary.text()
    ft.base.setCurrentText("Scratch")
    ft.preset.setCurrentText("s3net-lite")
    ft.batch.setValue(2)
    ft.steps.setValue(4)
    ft.val_every.setValue(2)
    ft.ckpt_every.setValue(2)
    ft.out.setText(str(tmp_path / "run"))
    assert not ft.config().frame_cache
    ft.frame_cache.setChecked(True)
    assert ft.config().frame_cache
    ft.frame_cache.setChecked(False)
    w = ft.start()
    qtbot.waitUntil(lambda: w.done, timeout=120000)
    assert len(ft.history["total"][0]) == 4 and len(ft.curves["wssim"].getData()[0]) == 4
    assert len(ft.val_history[0]) == 2 and ft.psnr_curve.getData()[1] is not None
    assert ft.preview.pixmap() is not None and not ft.preview.pixmap().isNull()
    assert ft.last_checkpoint == tmp_path / "run" / "last.safetensors" and ft.last_checkpoint.is_file()
    assert ft.use_button.isEnabled()
    # stop safely, then resume to the end
    ft.out.setText(str(tmp_path / "run2"))
    ft.steps.setValue(30)
    w = ft.start()
    ft.bridge.step.connect(lambda info: ft.stop() if info.step == 2 else None)
    qtbot.waitUntil(lambda: w.done, timeout=120000)
    assert (tmp_path / "run2" / "state.pt").is_file() and ft.resume_button.isEnabled()
    stopped_at = ft.history["total"][0][-1]
    assert stopped_at < 30
    ft.bridge.step.disconnect()
    ft.bridge.step.connect(ft._on_step)
    w = ft.start(resume=True)
    qtbot.waitUntil(lambda: w.done, timeout=180000)
    assert ft.history["total"][0][-1] == 30
    with qtbot.waitSignal(window.model.loaded, timeout=30000):
        ft.use_button.click()
    assert window.model.relighter.info.path == tmp_path / "run2" / "last.safetensors"
    assert ft.speed.text().strip() == ""  # no stale speed/ETA after the run
    # a second Start on a folder that holds a run makes a new folder by itself
    ft.steps.setValue(2)
    w = ft.start()
    qtbot.waitUntil(lambda: w.done, timeout=120000)
    assert ft.out.text() == str(tmp_path / "run2-2") and (tmp_path / "run2-2" / "state.pt").is_file()
    assert window.settings.get("finetune_data") == str(tmp_path / "data") and window.settings.get("finetune_steps") == 2
    assert window.settings.get("finetune_frame_cache") is False
    # a changed precision applies at once: the model reloads in the background
    st = window.settings_tab
    with qtbot.waitSignal(window.model.loaded, timeout=30000):
        st.precision.setCurrentIndex(st.precision.findData("bf16"))
    assert window.model.relighter.precision == "bf16"


def test_demo_screenshot_command(tmp_path):
    out = tmp_path / "shot.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "relight_gui",
            "--demo",
            "--screenshot",
            str(out),
            "--settings",
            str(tmp_path / "s.ini"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    img = read_image(out)
    assert img.shape == (900, 1400, 3)
    assert img.std() > 0.05  # not blank


def test_no_worker_starts_once_the_window_is_closing(qtbot, window):
    # Qt 6's quit() closes the windows while the event loop still runs: a timer or focus handler may
    # ask for work after the close joined every thread; that work must not start (nothing would join it)
    from PySide6.QtCore import QObject

    from relight_gui.workers import RUNNING, Operation

    ran = []
    window.close()
    w = Operation(window.relight_tab, "Late", lambda p, c: ran.append(1)).run()
    qtbot.wait(200)
    assert w.thread is None and not ran and w not in RUNNING
    owner = QObject()  # work not owned by the closing window runs
    w = Operation(owner, "Elsewhere", lambda p, c: ran.append(2))
    with qtbot.waitSignal(w.finished, timeout=5000):
        w.run()
    assert ran == [2] and w.wait(5000)


def test_at_its_smallest_the_window_keeps_every_button_readable_and_apart(qtbot, window):
    rt = window.relight_tab
    window.resize(window.minimumSizeHint())
    qtbot.waitUntil(lambda: window.size() == window.minimumSizeHint(), timeout=5000)
    assert window.minimumSizeHint().width() <= 640 and window.minimumSizeHint().height() <= 400
    QTest.qWait(100)
    for row in (rt.run_row, rt.view_row):
        widgets = [w for w in row.controls if w.isVisible()] + [row.more]
        assert len(widgets) >= 2 and row.more.isVisible()  # the rest is in the More menu
        for a, b in zip(widgets, widgets[1:]):
            assert a.geometry().right() < b.geometry().left(), (a, b)  # no overlap
        for w in widgets:
            if hasattr(w, "text") and w.text() and not w.inherits("QLabel"):
                assert w.width() >= w.fontMetrics().horizontalAdvance(w.text()) + 8, w.text()


def test_the_loss_legend_covers_no_falling_curve(qtbot, window):
    import math

    from core.train.training import StepInfo

    ft = window.finetune_tab
    window.resize(1400, 900)
    window.tabs.setCurrentWidget(ft)
    for step in range(1, 501, 10):  # losses fall fast and then flatten, as in a real run
        t = math.exp(-step / 150)
        ft._last_plot = 0.0
        ft._on_step(
            StepInfo(
                step,
                500,
                0,
                {"charbonnier": 0.1 + 0.2 * t, "wssim": 0.4 + 1.2 * t, "total": 0.5 + 1.4 * t},
                1e-4,
                30.0,
                10.0,
            )
        )
    QTest.qWait(300)
    vb, legend = ft.loss_plot.getViewBox(), ft.loss_plot.plotItem.legend.sceneBoundingRect()
    covered = [
        (k, x)
        for k, (xs, ys) in ft.history.items()
        for x, y in zip(xs, ys)
        if legend.contains(vb.mapViewToScene(QPointF(x, y)))
    ]
    assert not covered, covered[:5]


def test_worker_reports_bugs_and_progress_on_the_gui_thread(qtbot, caplog):
    from PySide6.QtCore import QObject, QThread

    from relight_gui.workers import Operation

    parent = QObject()
    gui_thread = QThread.currentThread()
    seen = []

    def work(progress, cancel):
        progress(0.5, "half")
        return 1 / 0

    w = Operation(parent, "Boom", work, failure=lambda m: None)
    w.progress.connect(lambda f, m: seen.append((f, m, QThread.currentThread() is gui_thread)))
    with qtbot.waitSignal(w.failed, timeout=5000) as blocker:
        w.run()
    assert "ZeroDivisionError" in blocker.args[0] and "log file" in blocker.args[0]
    assert seen == [(0.5, "half", True)]
    assert any("Boom crashed" in r.message and "ZeroDivisionError" in r.message for r in caplog.records)
    assert w.wait(5000)
    # KeyboardInterrupt / SystemExit inside work neither end it silently nor take the app down
    for exc in (KeyboardInterrupt, SystemExit):

        def interrupted(progress, cancel, exc=exc):
            raise exc()

        w = Operation(parent, "Halt", interrupted, failure=lambda m: None)
        with qtbot.waitSignal(w.failed, timeout=5000) as blocker:
            w.run()
        assert "interrupted" in blocker.args[0] and exc.__name__ in blocker.args[0]
        assert w.wait(5000)


def test_files_on_the_command_line_are_paired_and_relit(tmp_path):
    a = make_pair(tmp_path, "a", (64, 64))
    b = make_pair(tmp_path, "b", (64, 64), seed=5)
    out = tmp_path / "shot.png"
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "PYTHONPATH": str(ROOT),
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / ".local" / "share"),
    }
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "relight_gui",
            *map(str, (*a, *b)),
            "--screenshot",
            str(out),
            "--settings",
            str(tmp_path / "s.ini"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert read_image(out).shape == (900, 1400, 3)
    log = (tmp_path / ".local" / "share" / "RelightStudio" / "Relight Studio" / "relight-studio.log").read_text()
    assert "screenshot run failed" not in log
    assert f"relighting {a[0]} with the guide {b[0]}" in log


def test_screenshot_run_with_a_depth_map_of_the_wrong_size_says_so_once_and_exits_2(tmp_path):
    photo, _ = make_pair(tmp_path, "photo", (64, 96))
    depth = tmp_path / "depth.npy"
    np.save(depth, np.zeros((10, 10), np.float32))
    out = tmp_path / "shot.png"
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "PYTHONPATH": str(ROOT),
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / ".local" / "share"),
    }
    args = ["--light", "E", "--temperature", "5000", "--screenshot", out, "--settings", tmp_path / "s.ini"]
    r = subprocess.run(
        [sys.executable, "-m", "relight_gui", *map(str, args), str(photo), str(depth)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    problem = f"{depth}: depth is 10x10 but its image is 96x64"
    assert r.returncode == 2, r.stderr[-2000:]
    assert r.stderr.count("depth is 10x10") == 1, r.stderr  # not once per operation, dialog and run
    last = r.stderr.strip().splitlines()[-1]
    assert last == f"relight-gui: screenshot run failed: Cannot open the source: {problem}", r.stderr
    assert "Traceback" not in r.stderr and not out.exists()
    log = (tmp_path / ".local" / "share" / "RelightStudio" / "Relight Studio" / "relight-studio.log").read_text()
    assert problem in log  # the log file keeps every record


def test_the_app_refuses_a_temperature_without_a_light_as_the_command_line_does(capsys):
    from relight_gui.app import main

    with pytest.raises(SystemExit) as exit_:
        main(["--temperature", "3000", "photo.png"])  # it was ignored: the compass stayed at 6500 K
    assert exit_.value.code == 2 and "--temperature is the colour of the --light" in capsys.readouterr().err


def test_a_screenshot_run_holds_console_warnings_and_drops_the_ones_repeating_its_failure():
    import io
    import logging

    from relight_gui.app import HeldProblems

    stream = io.StringIO()
    console = logging.StreamHandler(stream)
    held = HeldProblems(console)
    log = logging.getLogger("test.held")
    log.addHandler(console)
    try:
        log.warning("Opening a.png failed: d.npy: too small")
        log.warning("depth map d.npy is flat")
        log.error("Cannot open the source: d.npy: too small")
        assert stream.getvalue() == ""
        held.release("d.npy: too small")
        assert stream.getvalue() == "depth map d.npy is flat\n"
    finally:
        log.removeHandler(console)


def test_generate_synthetic_dataset_from_the_tab_and_cancel(qtbot, window, tmp_path):
    from relight_gui.finetune_tab import SynthDialog

    ft = window.finetune_tab
    dlg = SynthDialog(ft, str(tmp_path / "gen"))
    dlg.scenes.setValue(2)
    dlg.size.setValue(64)
    dlg.pairs.setValue(1)
    w = ft.generate_synthetic(dlg)
    assert not ft.synth_cancel.isHidden()
    with qtbot.waitSignal(w.succeeded, timeout=60000):
        pass
    qtbot.waitUntil(lambda: "2 scenes" in ft.data_summary.text() and w.done, timeout=10000)
    assert ft.data.text() == str(tmp_path / "gen") and ft.synth_cancel.isHidden()
    dlg.folder.setText(str(tmp_path / "gen2"))
    dlg.scenes.setValue(50)
    w = ft.generate_synthetic(dlg)
    ft.synth_cancel.click()
    with qtbot.waitSignal(w.cancelled, timeout=60000):
        pass
    assert len(list((tmp_path / "gen2").glob("Image*_*.png"))) < 50 * 40
    assert "cancelled" in ft.data_summary.text()


def test_light_compass_drag_gives_live_previews_then_the_full_result(qtbot, window, tmp_path):
    rt = window.relight_tab
    rt.source_card.handle_mime(mime(*make_pair(tmp_path, "src", (96, 128))))
    qtbot.waitUntil(lambda: rt.source_card.ready, timeout=10000)
    rt.guide_tabs.setCurrentIndex(1)  # "Light compass": no guide photo needed
    assert rt.compass_active and rt.relight_button.isEnabled()
    dial = rt.compass.dial
    c = dial.rect().center()
    r = min(dial.width(), dial.height()) / 2 - 20  # points on the dial's ring, whatever its size

    def at(deg: float) -> QPoint:
        import math

        return c + QPoint(round(r * math.sin(math.radians(deg))), round(-r * math.cos(math.radians(deg))))

    previews = []
    rt.preview.succeeded.connect(lambda p: previews.append(p[0]))
    QTest.mousePress(dial, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(0))  # N
    assert dial.azimuth == 0
    for deg in (30, 60, 88):  # towards E, snapping to NE then E
        QTest.mouseMove(dial, at(deg))
        qtbot.wait(30)
    # a result is delivered to the GUI thread after its job ends: wait for the newest one to arrive
    qtbot.waitUntil(
        lambda: (
            rt.preview.idle()
            and bool(previews)
            and previews[-1].azimuth == 90
            and "Live preview" in rt.result_label.text()
        ),
        timeout=20000,
    )
    qtbot.wait(200)
    assert dial.azimuth == 90 and previews[-1].azimuth == 90  # the newest request won; nothing older came after
    assert rt.compare.after.shape[:2] == (96, 128)  # preview at display size (the source is small)
    QTest.mouseRelease(dial, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(88))
    qtbot.waitUntil(lambda: rt.result is not None and rt.worker is None, timeout=30000)
    assert rt.result.image.shape == (96, 128, 3) and rt.result.mode == "detail"
    assert "E (90°)" in rt.compass.light_label.text() and rt.guide_image is not None
    # Shift: any azimuth
    QTest.mousePress(dial, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, at(20))
    QTest.mouseRelease(dial, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, at(20))
    assert 15 < dial.azimuth < 25


def test_saving_formats_view_keys_difference_gain_and_settings(qtbot, window, tmp_path):
    import cv2
    import torch

    rt = window.relight_tab
    _load_both(qtbot, rt, tmp_path)
    with qtbot.waitSignal(rt.resultReady, timeout=30000):
        rt.relight()
    qtbot.waitUntil(lambda: rt.worker is None, timeout=10000)  # "finished" comes after the result
    assert "Ready." in rt.banner.text()
    # a typed extension is honoured (JPEG is 8-bit); an unknown one becomes PNG and is said
    with qtbot.waitSignal(rt.save(tmp_path / "sub" / "r.jpg", 16).succeeded, timeout=10000):
        pass
    assert cv2.imread(str(tmp_path / "sub" / "r.jpg")).dtype == np.uint8
    # Open… starts in the last input folder; the output-folder field shows where results went
    assert window.settings.get("input_dir") == str(tmp_path)
    window.tabs.setCurrentWidget(window.settings_tab)
    assert window.settings_tab.output_dir.text() == str(tmp_path / "sub")
    window.tabs.setCurrentWidget(rt)
    messages = []
    rt.statusMessage.connect(messages.append)
    with qtbot.waitSignal(rt.save(tmp_path / "r.xyz", 16).succeeded, timeout=10000):
        pass
    assert (tmp_path / "r.png").is_file() and any("saving as PNG" in m for m in messages)
    # compare-mode buttons never take the keyboard: Space keeps flipping the view after a click
    toggle = rt.findChild(type(rt.save_button), "mode_toggle")
    assert toggle.focusPolicy() == Qt.FocusPolicy.NoFocus
    qtbot.mouseClick(toggle, Qt.MouseButton.LeftButton)
    assert rt.compare.mode == "toggle"
    QTest.keyPress(rt.compare, Qt.Key.Key_Space)
    assert rt.compare.flipped
    QTest.keyRelease(rt.compare, Qt.Key.Key_Space)
    assert not rt.compare.flipped
    # the gain is offered only in the Difference view, however the view was chosen (button or View menu)
    assert not rt.gain.isEnabled()
    window._cycle_compare()  # toggle -> difference (the "C" key)
    assert rt.compare.mode == "difference" and rt.gain.isEnabled()
    assert rt.findChild(type(rt.save_button), "mode_difference").isChecked() and not toggle.isChecked()
    window._cycle_compare()  # difference -> split
    assert not rt.gain.isEnabled() and rt.findChild(type(rt.save_button), "mode_split").isChecked()
    qtbot.mouseClick(rt.findChild(type(rt.save_button), "mode_difference"), Qt.MouseButton.LeftButton)
    assert rt.gain.isEnabled()
    # difference gain x1..x16
    rt.gain.setCurrentText("×16")
    assert rt.compare.gain == 16.0
    diff16 = rt.compare._qd.copy()
    rt.gain.setCurrentText("×1")
    assert rt.compare._qd != diff16
    # the fast CUDA path is never shown ticked where there is no CUDA
    if not torch.cuda.is_available():
        assert not window.settings_tab.fast.isChecked() and not window.settings_tab.fast.isEnabled()


def test_batch_dialog_relights_a_folder_lists_bad_pairs_and_opens_the_output(qtbot, window, tmp_path):
    from core.train.synthetic import synthesize

    synthesize(tmp_path / "s", scenes=0, size=64, seed=0, pairs=3)
    pairs = tmp_path / "s" / "pairs"
    (pairs / "guide" / "Pair001.npy").write_bytes(b"broken")
    rt = window.relight_tab
    dlg = rt.open_batch()
    qtbot.addWidget(dlg)
    dlg.input.setText(str(pairs))
    dlg.output.setText(str(pairs / "input"))  # a folder holding inputs is refused
    assert dlg.start() is None
    qtbot.waitUntil(lambda: bool([b for b in dlg.findChildren(QMessageBox) if b.isVisible()]), timeout=5000)
    dlg.output.setText(str(tmp_path / "out"))
    w = dlg.start()
    qtbot.waitUntil(lambda: w.done, timeout=60000)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["Pair000.png", "Pair002.png"]
    assert (
        dlg.errors.count() == 1
        and "Pair001" in dlg.errors.item(0).text()
        and "Pair001.npy" in dlg.errors.item(0).text()
    )
    assert "wrote 2 of 3" in dlg.status.text() and dlg.open_button.isEnabled()
    assert dlg.progress.value() == 1000
    # many sources with the light compass
    dlg.compass.setChecked(True)
    dlg.output.setText(str(tmp_path / "lit"))
    w = dlg.start()
    qtbot.waitUntil(lambda: w.done, timeout=60000)
    assert len(list((tmp_path / "lit").iterdir())) == 3
    dlg.close()


def test_compare_view_centres_small_images_and_never_pans_off_the_image(qtbot):
    from relight_gui.widgets.compare_view import CompareView

    v = CompareView()
    qtbot.addWidget(v)
    v.resize(800, 400)
    v.show()
    img = np.random.default_rng(0).random((300, 200, 3)).astype(np.float32)
    v.set_images(img, img)
    v.actual_size()  # 1:1: the 200x300 image is smaller than the 800x400 pane
    v.set_mode("side")  # two 399-px panes: still centred on the image
    pane = v.panes()[0]
    assert v.scale == pytest.approx(1.0)
    assert v.offset.x() == pytest.approx((200 - pane.width()) / 2) and v.offset.y() == pytest.approx(
        (300 - pane.height()) / 2
    )
    v.zoom_at(4.0, QPointF(100, 100))  # now larger than the pane: panning stops at the edges
    for start, end in (((50, 50), (390, 390)), ((390, 390), (50, 50))):  # drag far right-down, then left-up
        for _ in range(6):
            QTest.mousePress(v, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(*start))
            for t in (0.25, 0.5, 0.75, 1.0):
                QTest.mouseMove(
                    v, QPoint(round(start[0] + t * (end[0] - start[0])), round(start[1] + t * (end[1] - start[1])))
                )
            QTest.mouseRelease(v, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(*end))
        vis_w, vis_h = v.panes()[0].width() / v.scale, v.panes()[0].height() / v.scale
        assert -1e-6 <= v.offset.x() <= 200 - vis_w + 1e-6 and -1e-6 <= v.offset.y() <= 300 - vis_h + 1e-6
        edge = 0.0 if end[0] > start[0] else 200 - vis_w  # dragging the image right shows its left edge
        assert v.offset.x() == pytest.approx(edge, abs=1e-6)


def test_garbage_cycles_are_collected_on_the_gui_thread_while_workers_allocate(qtbot, window):
    import gc
    import threading

    from relight_gui.workers import Operation

    assert not gc.isenabled()  # the window keeps collection on the GUI thread
    where = []

    class Cycle:
        def __init__(self):
            self.me = self

        def __del__(self):
            where.append(threading.current_thread() is threading.main_thread())

    Cycle()  # unreachable from now on, freed only by the cyclic collector
    # a worker that allocates enough to cross the collector's thresholds many times over
    kept = []  # net allocations are what cross the thresholds
    w = Operation(window, "Allocate", lambda progress, cancel: kept.append([[i] for i in range(200_000)])).run()
    qtbot.waitUntil(lambda: w.done, timeout=30000)
    qtbot.waitUntil(lambda: bool(where), timeout=10000)  # the GUI thread's timer collected it
    assert where == [True]
    window.close()
    assert gc.isenabled()


def test_the_compass_handle_leaves_the_direction_letters_readable(qtbot):
    """The handle sits inside the rim; the letters are drawn outside it (centred 10 px beyond it)."""
    from relight_gui.widgets.compass import HANDLE_RADIUS, CompassDial

    dial = CompassDial()
    qtbot.addWidget(dial)
    dial.resize(180, 180)
    c, r = dial._geometry()
    for az in (0.0, 90.0, 180.0, 270.0, 33.0):
        dial.set_azimuth(az)
        h = dial.handle_position()
        d = ((h.x() - c.x()) ** 2 + (h.y() - c.y()) ** 2) ** 0.5
        assert d + HANDLE_RADIUS <= r  # wholly on the dial, so clear of the letters beyond the rim
        assert abs(math.degrees(math.atan2(h.x() - c.x(), -(h.y() - c.y()))) % 360 - az) < 1e-6


def test_the_finetune_paths_have_whole_rows_and_browse_buttons(qtbot, window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    ft = window.finetune_tab
    window.resize(1400, 900)
    window.tabs.setCurrentWidget(ft)
    qtbot.waitExposed(ft)
    # the run folder and weight.pkl fields span the box beside their label: wider than a spin box column
    assert ft.out.width() > 2 * ft.lr.width() and ft.base_file.width() > 2 * ft.lr.width()
    from PySide6.QtWidgets import QScrollArea

    form = ft.findChild(QScrollArea)
    assert form.horizontalScrollBar().maximum() == 0  # the form starts as wide as it needs: nothing clipped
    picked = tmp_path / "runs" / "mine"
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(picked))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(tmp_path / "weight.pkl"), ""))
    ft.browse_run_folder()
    assert ft.out.text() == str(picked)
    assert not ft.base_file_browse.isEnabled()  # the official weights are not the base yet
    ft.base.setCurrentIndex(1)
    assert ft.base_file_browse.isEnabled() and ft.base_file.isEnabled()
    ft.browse_base_file()
    assert ft.base_file.text() == str(tmp_path / "weight.pkl")
