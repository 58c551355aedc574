"""The app as a new user meets it: stale results, batch with photos that lack depth, batch progress and
cancel, resuming an interrupted fine-tune, small windows, the next-step hint, the depth model offline
and when chosen, consistent defaults, and which model made a result."""

import json
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox  # noqa: E402

from core.inputs.input import InputFiles  # noqa: E402
from core.storage.io import read_image, write_image  # noqa: E402
from test_gui import _collect_garbage_on_the_gui_thread, _load_both, dialogs, make_pair, mime, window  # noqa: E402,F401

DEMO = Path(__file__).resolve().parent.parent / "resources" / "demo"


def visible_boxes(name: str | None = None) -> list[QMessageBox]:
    return [
        w
        for w in QApplication.topLevelWidgets()
        if isinstance(w, QMessageBox) and w.isVisible() and (name is None or w.objectName() == name)
    ]


def click_later(qtbot, name: str, button_text: str, done: list) -> None:
    """Answer the modal box `name` (opened next) with the button whose text starts with `button_text`."""

    def answer():
        boxes = visible_boxes(name)
        if not boxes:
            QTimer.singleShot(50, answer)
            return
        box = boxes[0]
        done.append(box.text())
        button = next(b for b in box.buttons() if b.text().replace("&", "").startswith(button_text))
        button.click()

    QTimer.singleShot(50, answer)


def relit(qtbot, rt):
    with qtbot.waitSignal(rt.resultReady, timeout=30000) as blocker:
        rt.relight()
    qtbot.waitUntil(lambda: rt.worker is None, timeout=10000)
    return blocker.args[0]


# ---- 1. a stale result --------------------------------------------------------------------
def test_a_stale_result_is_saved_after_a_warning_under_the_name_of_its_own_source(qtbot, window, tmp_path, monkeypatch):
    rt = window.relight_tab
    _load_both(qtbot, rt, tmp_path)  # src.png + gui.png
    res = relit(qtbot, rt)
    rt.source_card.handle_mime(mime(*make_pair(tmp_path, "rocket", seed=7)))  # another photo opens
    qtbot.waitUntil(lambda: rt.source_card.image_path.name == "rocket.png", timeout=10000)
    assert rt.suggested_name() == "src_relit"  # the result's own source, not the photo open now
    starts = []

    def fake_save_dialog(parent, title, start, filters):
        starts.append(start)
        return str(tmp_path / "saved.png"), "PNG 16-bit (*.png)"

    monkeypatch.setattr(QFileDialog, "getSaveFileName", fake_save_dialog)
    asked = []
    click_later(qtbot, "staleSaveDialog", "Cancel", asked)
    rt.save_dialog()  # Ctrl+S
    assert asked and "src.png" in asked[0] and not starts  # warned; cancelled: nothing written
    click_later(qtbot, "staleSaveDialog", "Save", asked)
    rt.save_dialog()
    assert len(asked) == 2 and starts and Path(starts[0]).name == "src_relit.png"
    qtbot.waitUntil(lambda: (tmp_path / "saved.png").is_file(), timeout=10000)
    np.testing.assert_allclose(read_image(tmp_path / "saved.png"), res.image, atol=1 / 65535)
    # a current result saves without a question
    relit(qtbot, rt)
    assert not rt.stale and rt.suggested_name() == "rocket_relit"
    rt.save_dialog()
    assert len(asked) == 2 and Path(starts[-1]).name == "rocket_relit.png"


# ---- 6. the next step ---------------------------------------------------------------------
def test_the_view_says_the_next_step_and_a_new_source_replaces_the_old_pairs_result(qtbot, window, tmp_path):
    rt = window.relight_tab
    view = rt.compare
    assert "source" in view.placeholder and view.before is None
    rt.source_card.handle_mime(mime(*make_pair(tmp_path, "src")))
    qtbot.waitUntil(lambda: rt.source_card.ready, timeout=10000)
    assert "guide" in view.placeholder and view.before is rt.source_card.image and view.after is None
    rt.guide_card.handle_mime(mime(*make_pair(tmp_path, "gui", seed=3)))
    qtbot.waitUntil(lambda: rt.relight_button.isEnabled(), timeout=10000)
    assert "press Relight" in view.placeholder
    view.grab()  # paints the source with the hint over it
    res = relit(qtbot, rt)
    assert view.after is res.image
    rt.source_card.handle_mime(mime(*make_pair(tmp_path, "next", seed=8)))
    qtbot.waitUntil(lambda: rt.source_card.image_path.name == "next.png", timeout=10000)
    assert view.after is None and view.before is rt.source_card.image  # not the previous pair's result
    assert "press Relight" in view.placeholder
    rt.against.setCurrentText("guide")  # the compare choice does not bring the old result back
    assert view.after is None
    # the demo pair: the view asks for Relight
    rt.load_into(rt.source_card, InputFiles(DEMO / "source.png", DEMO / "source.npy"))
    rt.load_into(rt.guide_card, InputFiles(DEMO / "guide.png", DEMO / "guide.npy"))
    qtbot.waitUntil(
        lambda: rt.source_card.image_path.name == "source.png" and rt.guide_card.image_path.name == "guide.png",
        timeout=10000,
    )
    assert "press Relight" in view.placeholder


def test_banner_and_view_agree_on_what_a_photo_without_depth_needs(qtbot, window, tmp_path, monkeypatch):
    """Without the depth model the banner said 'estimate it on its card' beside a disabled Estimate
    depth button (and 'the source and the guide has no depth map'); now it says what the view says."""
    monkeypatch.delenv("RELIGHT_DEPTH_MODEL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # no depth model anywhere
    rng = np.random.default_rng(4)
    rt = window.relight_tab
    rt.source_card.handle_mime(mime(write_image(tmp_path / "photo.png", rng.random((48, 64, 3)), 8)))
    rt.guide_card.handle_mime(mime(write_image(tmp_path / "guide.png", rng.random((48, 64, 3)), 8)))
    qtbot.waitUntil(lambda: rt.source_card.loaded and rt.guide_card.loaded, timeout=10000)
    assert not rt.source_card.estimate_button.isEnabled() and not rt.guide_card.estimate_button.isEnabled()
    banner = rt.banner.text()
    assert "estimate it" not in banner, banner
    assert "The source has no depth map" in banner and "The guide has no depth map" in banner, banner
    assert banner.count("Download model…") == 2 and "Download model…" in rt.compare.placeholder
    # a photo with its depth under the light compass: the view does not speak of two inputs
    rt.source_card.handle_mime(mime(*make_pair(tmp_path, "src")))
    rt.guide_tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: rt.relight_button.isEnabled(), timeout=10000)
    assert "The source and the light are ready: press Relight" in rt.compare.placeholder


# ---- 10. which model ran ------------------------------------------------------------------
def test_the_result_says_which_model_ran_and_flags_the_bundled_synthetic_model(qtbot, window, tmp_path):
    rt = window.relight_tab
    _load_both(qtbot, rt, tmp_path)
    relit(qtbot, rt)
    assert "lite.safetensors" in rt.result_label.text() and "preset s3net-lite" in rt.result_label.text()
    assert rt.model_note.isHidden()  # no note for a model of one's own
    ft = window.finetune_tab  # fine-tuning from the active checkpoint takes its preset
    assert ft.base.currentIndex() == 0 and ft.preset.currentText() == "s3net-lite"
    with qtbot.waitSignal(window.model.loaded, timeout=60000):
        window.use_checkpoint("")  # the bundled model
    assert ft.preset.currentText() == "s3net-lite-colour"
    ft.base.setCurrentText("Scratch")
    ft.preset.setCurrentText("s3net")  # from scratch the preset is the user's choice
    assert ft.preset.currentText() == "s3net"
    ft.base.setCurrentIndex(0)
    assert ft.preset.currentText() == "s3net-lite-colour"
    relit(qtbot, rt)
    note = rt.model_note.text()
    assert "s3net-lite-synthetic" in rt.result_label.text() and "synthetic scenes only" in note
    assert "s3net-lite-synthetic.md" in note and "<a href=" in note
    assert rt.model_note.isVisible()
    rt.model_note.linkActivated.emit("card")
    assert window.tabs.currentWidget() is window.settings_tab and "Model card" in window.settings_tab.card.toPlainText()


# ---- 2. batch estimates missing depth ---------------------------------------------------------
def photos(folder: Path, n: int, size=(48, 64)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(11)
    return [write_image(folder / f"photo{i}.png", rng.random((*size, 3)), 8) for i in range(n)]


def test_batch_estimates_missing_depth_like_a_single_relight(qtbot, window, tmp_path, tiny_depth_model, monkeypatch):
    monkeypatch.delenv("RELIGHT_DEPTH_MODEL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    photos(tmp_path / "in", 3)
    make_pair(tmp_path / "in", "paired", (48, 64))  # one photo has its depth map beside it
    rt = window.relight_tab
    rt.guide_tabs.setCurrentIndex(1)  # every photo lit by the light compass
    dlg = rt.open_batch()
    qtbot.addWidget(dlg)
    assert dlg.compass.isChecked()
    dlg.input.setText(str(tmp_path / "in"))
    # without a depth model: the photos are skipped, in the app's words
    dlg.output.setText(str(tmp_path / "out0"))
    w = dlg.start()
    assert "depth model is installed" in dlg.status.text()
    qtbot.waitUntil(lambda: w.done, timeout=60000)
    assert "wrote 1 of 4" in dlg.status.text() and dlg.errors.count() == 3
    texts = " ".join(dlg.errors.item(i).text() for i in range(dlg.errors.count()))
    assert "flag" not in texts and "relight depth" not in texts and "install the depth model" in texts
    # with the depth model (the app's setting), as the single relight and `relight infer --input-dir` do
    window.settings_tab.depth_model.setText(str(tiny_depth_model))
    window.settings_tab.depth_model.editingFinished.emit()
    dlg.output.setText(str(tmp_path / "out"))
    w = dlg.start()
    qtbot.waitUntil(lambda: w.done, timeout=120000)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "paired.png",
        "photo0.png",
        "photo1.png",
        "photo2.png",
    ]
    assert "wrote 4 of 4" in dlg.status.text() and dlg.errors.count() == 0
    dlg.close()


# ---- 3. batch progress and cancel ---------------------------------------------------------
def test_batch_progress_follows_the_files_and_cancel_stops_after_the_current_pair(qtbot, window, tmp_path, monkeypatch):
    for i in range(10):
        make_pair(tmp_path / "in", f"p{i}", (48, 64), seed=i)
    rt = window.relight_tab
    relighter = window.model.relighter
    real = relighter.relight_many

    def slow(pairs, **kw):  # a pair takes a while, as on a real photo
        time.sleep(1.0)
        return real(pairs, **kw)

    monkeypatch.setattr(relighter, "relight_many", slow)
    rt.guide_tabs.setCurrentIndex(1)
    dlg = rt.open_batch()
    qtbot.addWidget(dlg)
    dlg.input.setText(str(tmp_path / "in"))
    dlg.output.setText(str(tmp_path / "out"))
    dlg.progress.setValue(1000)  # the last batch's bar
    dlg.progress.setFormat("7/7")
    seen = []
    dlg.progress.valueChanged.connect(lambda v: seen.append((v, len(list((tmp_path / "out").glob("*.png"))))))
    w = dlg.start()
    assert dlg.progress.value() == 0 and dlg.progress.format() == "0/10"  # a new batch starts at 0
    qtbot.waitUntil(lambda: dlg.progress.format().startswith("4/10"), timeout=60000)
    dlg.cancel_button.click()
    qtbot.waitUntil(lambda: w.done, timeout=60000)
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == [f"p{i}.png" for i in range(4)]
    assert "wrote 4 of 10 (cancelled)" in dlg.status.text()
    # the bar moved with the files: each step came once its file was on disk
    assert [v for v, _ in seen] == [0, 100, 200, 300, 400] and all(n >= v // 100 for v, n in seen)
    dlg.close()


def test_batch_status_says_where_the_files_went_and_how_many_were_skipped(qtbot, window, tmp_path):
    """'wrote 1 of 2 into OUT; 1 skipped', not 'wrote 1 of 2; 1 skipped into OUT' (the skipped pairs are
    not in the output folder)."""
    make_pair(tmp_path / "in", "good", (48, 64))
    (tmp_path / "in" / "notes.png").write_text("not an image")
    np.save(tmp_path / "in" / "notes.npy", np.zeros((48, 64), np.float32))
    rt = window.relight_tab
    rt.guide_tabs.setCurrentIndex(1)
    dlg = rt.open_batch()
    qtbot.addWidget(dlg)
    dlg.input.setText(str(tmp_path / "in"))
    out = tmp_path / "out"
    dlg.output.setText(str(out))
    w = dlg.start()
    qtbot.waitUntil(lambda: w.done, timeout=60000)
    assert dlg.status.text() == f"wrote 1 of 2 into {out}; 1 skipped (listed below)"
    assert dlg.errors.count() == 1 and "notes.png" in dlg.errors.item(0).text()
    dlg.close()


# ---- 9. consistency -----------------------------------------------------------------------
def test_app_and_command_line_agree_and_controls_hold_still(qtbot, window, tmp_path, monkeypatch):
    from PySide6.QtGui import QDesktopServices

    from core.base.vocab import KELVIN_RANGE
    from core.cli import build_parser
    from core.render.light import Light
    from relight_gui.settings import DEFAULTS

    # precision: the app's default is the command line's
    cli = build_parser().parse_args(["infer", "--source", "a.png", "--output", "b.png"])
    assert DEFAULTS["precision"] == cli.precision == "auto"
    assert window.settings_tab.precision.currentData() == "auto"
    # temperature: the compass offers what `relight infer --temperature` accepts, 1500-12000 K
    compass = window.relight_tab.compass
    assert (compass.slider.minimum() * 100, compass.slider.maximum() * 100) == KELVIN_RANGE == (1500, 12000)
    assert Light.parse("N", 1500).kelvin == 1500 and Light.parse("N", 12000).kelvin == 12000
    # the slider's handle does not jump when its label widens (9900 K -> 10000 K)
    window.resize(1280, 720)
    window.relight_tab.guide_tabs.setCurrentIndex(1)
    compass.set_light(Light(0, 9900))
    QApplication.processEvents()
    before = compass.slider.geometry()
    compass.set_light(Light(0, 10000))
    QApplication.processEvents()
    assert compass.slider.geometry() == before and compass.kelvin_label.text() == "10000 K"
    # Open output folder: says where the files are when no file manager starts
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: False)
    dlg = window.relight_tab.open_batch()
    qtbot.addWidget(dlg)
    dlg.output.setText(str(tmp_path))
    assert dlg.open_output() is False
    qtbot.waitUntil(lambda: bool([b for b in dlg.findChildren(QMessageBox) if b.isVisible()]), timeout=5000)
    box = [b for b in dlg.findChildren(QMessageBox) if b.isVisible()][0]
    assert "No file manager" in box.text() and str(tmp_path) in box.text()
    dlg.close()


def test_finetune_panels_keep_their_width_when_a_run_starts_and_stops(qtbot, window, tmp_path):
    from core.train.synthetic import synthesize

    synthesize(tmp_path / "data", scenes=2, size=64, seed=0, pairs=0)
    ft = window.finetune_tab
    window.resize(1280, 720)
    window.tabs.setCurrentWidget(ft)
    ft.data.setText(str(tmp_path / "data"))
    ft.base.setCurrentText("Scratch")
    ft.preset.setCurrentText("s3net-lite")
    ft.batch.setValue(1)
    ft.steps.setValue(3)
    ft.val_every.setValue(100)
    ft.out.setText(str(tmp_path / "run"))
    QApplication.processEvents()
    left = ft.findChild(type(ft.log_view)).parentWidget()
    width = left.width()
    widths = []
    ft.bridge.step.connect(lambda info: (QApplication.processEvents(), widths.append(left.width())))
    w = ft.start()
    qtbot.waitUntil(lambda: w.done, timeout=120000)
    QApplication.processEvents()
    assert widths and set(widths) == {width} and left.width() == width


# ---- 4. resume after quitting mid-training ------------------------------------------------
def test_quit_mid_training_asks_and_resume_after_relaunch_continues_that_run(qtbot, tmp_path, lite_checkpoint):
    from PySide6.QtCore import QSettings

    from core.train.synthetic import synthesize
    from relight_gui.main_window import MainWindow
    from relight_gui.settings import Settings

    synthesize(tmp_path / "data", scenes=2, size=64, seed=0, pairs=0)
    ini = str(tmp_path / "settings.ini")

    def launch():
        s = Settings(QSettings(ini, QSettings.Format.IniFormat))
        s.set("checkpoint", str(lite_checkpoint))
        s.set("device", "cpu")
        win = MainWindow(s)
        qtbot.addWidget(win)
        win.show()
        return win

    win = launch()
    ft = win.finetune_tab
    ft.data.setText(str(tmp_path / "data"))
    ft.base.setCurrentText("Scratch")
    ft.preset.setCurrentText("s3net-lite")
    ft.batch.setValue(1)
    ft.val_every.setValue(100)
    ft.ckpt_every.setValue(100)
    ft.out.setText(str(tmp_path / "finetune"))
    ft.steps.setValue(2)
    w = ft.start()  # a first run that finishes
    qtbot.waitUntil(lambda: w.done, timeout=120000)
    assert not ft.resume_button.isEnabled()  # nothing left to resume there
    ft.steps.setValue(12)
    w = ft.start()  # the next run goes to finetune-2
    assert ft.out.text() == str(tmp_path / "finetune-2")
    qtbot.waitUntil(lambda: len(ft.history.get("total", ([], []))[0]) >= 3, timeout=120000)
    # quitting asks; Cancel and "keep training" leave the app running
    asked = []
    click_later(qtbot, "quitDuringTraining", "Cancel", asked)
    win.close()
    assert asked and win.isVisible() and not w.done
    click_later(qtbot, "quitDuringTraining", "Stop", asked)
    win.close()  # stop: the step finishes, a checkpoint is written, the window closes
    assert len(asked) == 2 and w.wait(100) and not win.isVisible()
    stopped_at = json.loads((tmp_path / "finetune-2" / "metrics.jsonl").read_text().splitlines()[-1])["step"]
    assert 3 <= stopped_at < 12 and (tmp_path / "finetune-2" / "state.pt").is_file()

    win = launch()  # relaunch
    ft = win.finetune_tab
    assert ft.out.text() == str(tmp_path / "finetune-2")  # the interrupted run, not the finished one
    qtbot.waitUntil(lambda: "2 scenes" in ft.data_summary.text(), timeout=10000)  # the label matches the field
    assert ft.resume_button.isEnabled()
    qtbot.mouseClick(ft.resume_button, Qt.MouseButton.LeftButton)
    assert ft.history["total"][0][:3] == [1, 2, 3]  # the curves start with the earlier steps
    qtbot.waitUntil(lambda: ft.worker is None, timeout=120000)
    assert ft.history["total"][0] == list(range(1, 13))  # every step once, to the end
    assert "resumed from step" in ft.log_view.toPlainText()
    win.close()


# ---- 7. the depth model offline -----------------------------------------------------------
def test_download_failing_offline_says_how_to_bring_the_model_and_offers_its_folder(
    qtbot, window, tmp_path, tiny_depth_model, monkeypatch
):
    import urllib.error
    import urllib.request

    from PySide6.QtCore import QRect

    monkeypatch.delenv("RELIGHT_DEPTH_MODEL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))

    def offline(*a, **k):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(tiny_depth_model))
    window.resize(1280, 720)
    rt = window.relight_tab
    rt.source_card.handle_mime(
        mime(write_image(tmp_path / "photo.png", np.random.default_rng(2).random((48, 64, 3)), 8))
    )
    qtbot.waitUntil(lambda: rt.source_card.loaded, timeout=10000)
    card = rt.source_card
    QApplication.processEvents()
    # the card's message is shown whole ("No depth map for th" was all that showed)
    label = card.no_depth_label
    assert label.isVisible() and "needs the depth model" in label.text()
    need = label.fontMetrics().boundingRect(
        QRect(0, 0, label.contentsRect().width(), 10000), int(Qt.TextFlag.TextWordWrap), label.text()
    )
    assert need.width() <= label.contentsRect().width() and need.height() <= label.contentsRect().height()
    qtbot.mouseClick(card.download_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(visible_boxes("downloadFailed")), timeout=20000)
    box = visible_boxes("downloadFailed")[0]
    assert "cannot reach" in box.text()
    how = box.informativeText()
    assert "relight models install PATH" in how and "model.safetensors" in how and "depth-anything-v2-small" in how
    choose = next(b for b in box.buttons() if b.text() == "Choose folder…")
    choose.click()  # the folder brought from another computer
    assert window.settings.get("depth_model") == str(tiny_depth_model)
    qtbot.waitUntil(lambda: card.ready, timeout=20000)  # the waiting photo gets its depth


# ---- 8. the depth model folder, checked when chosen -----------------------------------------
def test_a_damaged_depth_model_folder_is_refused_at_once_and_a_good_one_estimates_waiting_photos(
    qtbot, window, tmp_path, tiny_depth_model, monkeypatch
):
    import shutil

    monkeypatch.delenv("RELIGHT_DEPTH_MODEL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    broken = tmp_path / "broken-model"
    shutil.copytree(tiny_depth_model, broken)
    (broken / "config.json").write_text('{"model_type": "depth_anything", "backbone_config": {')  # cut short
    rt, st = window.relight_tab, window.settings_tab
    rt.source_card.handle_mime(
        mime(write_image(tmp_path / "photo.png", np.random.default_rng(3).random((48, 64, 3)), 8))
    )
    qtbot.waitUntil(lambda: rt.source_card.loaded, timeout=10000)
    assert not st.set_depth_model(str(broken))  # refused when chosen, not at the next estimate
    qtbot.waitUntil(lambda: bool(dialogs(window)), timeout=5000)
    assert "config.json" in dialogs(window)[0].text() and window.settings.get("depth_model") == ""
    for d in dialogs(window):
        d.accept()
    assert st.depth_model.text() == "" and not rt.source_card.ready
    # a config whose sizes do not match its weights is refused when chosen too (the weights' shapes are checked)
    odd = tmp_path / "odd-model"
    shutil.copytree(tiny_depth_model, odd)
    cfg = json.loads((odd / "config.json").read_text())
    cfg["backbone_config"]["hidden_size"] = 48
    (odd / "config.json").write_text(json.dumps(cfg))
    assert not st.set_depth_model(str(odd))
    qtbot.waitUntil(lambda: bool(dialogs(window)), timeout=20000)
    for d in dialogs(window):
        d.accept()
    assert not rt.source_card.ready
    qtbot.waitUntil(lambda: not rt._estimating, timeout=10000)
    assert st.set_depth_model(str(tiny_depth_model))  # a good one now: the waiting photo gets its depth
    qtbot.waitUntil(lambda: rt.source_card.ready, timeout=20000)
    # the model is named by its config, not always "Depth Anything V2 Small"
    assert "Depth Anything (32-wide backbone)" in st.depth_status.text()
    assert "estimated (Depth Anything (32-wide backbone))" in rt.source_card.info.text()


# ---- 5. small windows ---------------------------------------------------------------------
def buttons_apart_and_readable(widget) -> list[str]:
    """Problems with the visible buttons under `widget`: overlapping another, or narrower than their text."""
    from PySide6.QtCore import QPoint, QRect
    from PySide6.QtWidgets import QAbstractButton, QTabBar

    problems = []
    shown = [
        b
        for b in widget.findChildren(QAbstractButton)
        if b.isVisible() and b.text() and not isinstance(b.parentWidget(), QTabBar) and b.window() is widget.window()
    ]
    rects = {b: QRect(b.mapTo(b.window(), QPoint(0, 0)), b.size()) for b in shown}
    clip = {}
    for b in shown:  # what of the button a scroll area lets through
        r, w = QRect(rects[b]), b.parentWidget()
        while w is not None and w is not b.window():
            r = r.intersected(QRect(w.mapTo(b.window(), QPoint(0, 0)), w.size()))
            w = w.parentWidget()
        clip[b] = r
    for i, a in enumerate(shown):
        text = a.text().replace("&", "")
        if clip[a].width() < a.fontMetrics().horizontalAdvance(text) + 6 and clip[a].width() == rects[a].width():
            problems.append(f"'{text}' is {a.width()} px wide for its text")
        for b in shown[i + 1 :]:
            if clip[a].intersects(clip[b]) and not clip[a].isEmpty():
                problems.append(f"'{text}' overlaps '{b.text()}'")
    return problems


@pytest.mark.parametrize("size", [(640, 400), (800, 500), (1280, 720), (1920, 1080)])
def test_toolbars_keep_every_button_readable_and_apart_at_any_window_size(qtbot, window, tmp_path, size):
    rt = window.relight_tab
    _load_both(qtbot, rt, tmp_path)
    relit(qtbot, rt)
    window.resize(*size)
    qtbot.waitUntil(lambda: (window.width(), window.height()) == size, timeout=5000)
    for tab in (rt, window.finetune_tab, window.settings_tab):
        window.tabs.setCurrentWidget(tab)
        QApplication.processEvents()
        assert buttons_apart_and_readable(tab) == [], (size, tab)
    window.tabs.setCurrentWidget(rt)
    QApplication.processEvents()
    for row in (rt.run_row, rt.view_row):
        hidden = row.hidden_controls()
        assert row.more.isVisible() == bool(hidden)
        shown = [w for w in row.controls if w.isVisible()]
        assert rt.relight_button.isVisible() and shown, size
        for a, b in zip(shown, shown[1:]):
            assert a.geometry().right() < b.geometry().left()
        if hidden:  # what does not fit is one click away, in the More menu
            row._fill_menu()
            entries = [a.text() for a in row.menu.actions()]
            for w in hidden:
                names = (
                    [w.text()]
                    if hasattr(w, "text")
                    else [lab.text().strip(" :") for lab in w.findChildren(type(rt.banner))]
                )
                assert any(n in entries for n in names), (names, entries)
    if size[0] >= 1280:
        assert not rt.run_row.hidden_controls() and not rt.view_row.hidden_controls()  # everything in sight
    if size == (640, 400):  # the menu works: Save… from it opens the save dialog's path
        row = rt.run_row
        row._fill_menu()
        assert any(a.text() == "Batch…" for a in row.menu.actions())


# ---- exposure of the detail output ------------------------------------------------------------
def test_exposure_controls_reach_the_result(qtbot, window, tmp_path):
    from core.train.metrics import exposure_ratio

    rt = window.relight_tab
    _load_both(qtbot, rt, tmp_path)
    rt.mode_combo.setCurrentText("detail")
    rt.exposure_combo.setCurrentIndex(rt.exposure_combo.findData("keep"))
    relit(qtbot, rt)
    src = rt.source_card.input.image
    assert rt.result.compose.keep_exposure and "exposure kept" in rt.result_label.text()
    assert abs(exposure_ratio(rt.result.image, src) - 1) < 0.05  # the photo's own brightness
    kept = rt.result.image.copy()
    rt.ev_spin.setValue(1.0)
    relit(qtbot, rt)
    assert rt.result.compose.exposure_ev == 1.0 and rt.result.image.mean() > kept.mean() + 0.02
    assert window.settings.get("exposure") == "keep" and window.settings.get("exposure_ev") == 1.0
    # auto with a guide photo: the guide's brightness is the target, the network's exposure is used
    rt.exposure_combo.setCurrentIndex(rt.exposure_combo.findData("auto"))
    rt.ev_spin.setValue(0.0)
    relit(qtbot, rt)
    assert not rt.result.compose.keep_exposure


def test_quitting_while_a_folder_is_relit_asks_and_stop_cancels_it(qtbot, window, tmp_path, monkeypatch):
    """A running batch is not cancelled behind the user's back: Cancel keeps it going, Stop cancels it
    and closes the window."""
    import threading
    from types import SimpleNamespace

    import relight_gui.batch_dialog as batch_dialog
    from core.train.synthetic import synthesize

    running, cancelled = threading.Event(), threading.Event()

    def held_relight(session, jobs, out, engines, cancel=None, **kw):  # a folder that takes until cancelled
        running.set()
        while not cancel.cancelled:
            time.sleep(0.01)
        cancelled.set()
        return SimpleNamespace(written=[], total=len(jobs), cancelled=True, failed=[], out=out)

    monkeypatch.setattr(batch_dialog, "relight_folder", held_relight)
    synthesize(tmp_path / "s", scenes=0, size=64, seed=0, pairs=2)
    dlg = window.relight_tab.open_batch()
    dlg.input.setText(str(tmp_path / "s" / "pairs"))
    dlg.output.setText(str(tmp_path / "out"))
    dlg.start()
    qtbot.waitUntil(running.is_set, timeout=10000)
    asked: list[str] = []
    click_later(qtbot, "quitDuringBatch", "Cancel", asked)
    window.close()
    assert asked and str(tmp_path / "out") in asked[0]
    assert window.isVisible() and dlg.worker is not None and not cancelled.is_set()
    click_later(qtbot, "quitDuringBatch", "Stop", asked)
    window.close()
    assert len(asked) == 2 and cancelled.is_set() and not window.isVisible()
