"""The Relight tab and its one Session: widgets edit the session, the session's changes show in the
widgets (the stale result included), the batch dialog relights with the session's light or guide."""

import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("pytestqt")
from PySide6.QtWidgets import QMessageBox  # noqa: E402

import test_gui  # noqa: E402
from core.base.vocab import Engine, OutputMode  # noqa: E402
from core.inputs import Input, InputFiles  # noqa: E402
from core.render.light import Light  # noqa: E402
from core.session import OutputSettings, Session  # noqa: E402
from test_gui import _collect_garbage_on_the_gui_thread, _load_both, make_pair, mime  # noqa: E402,F401

window = test_gui.window  # the fixture: a main window with a small model loaded


def relit(qtbot, rt):
    with qtbot.waitSignal(rt.resultReady, timeout=30000) as blocker:
        rt.relight()
    qtbot.waitUntil(lambda: rt.worker is None, timeout=10000)
    return blocker.args[0]


def test_editing_the_widgets_edits_the_session(qtbot, window, tmp_path):
    rt = window.relight_tab
    session = rt.session
    _load_both(qtbot, rt, tmp_path)
    assert session.source is rt.source_card.input and session.guide is rt.guide_card.input
    assert session.source.files.image.name == "src.png" and session.light is None
    rt.mode_combo.setCurrentText("gain-map")
    rt.exposure_combo.setCurrentIndex(rt.exposure_combo.findData("network"))
    rt.ev_spin.setValue(-0.5)
    assert session.output == OutputSettings(OutputMode.GAIN_MAP, False, -0.5)
    assert window.settings.get("mode") == "gain-map" and window.settings.get("exposure") == "network"
    rt.guide_tabs.setCurrentIndex(1)  # the light compass: the session takes its light
    assert session.light == rt.compass.light and session.uses_light and session.engine is Engine.S3NET
    rt.compass.set_engine("normals")
    assert session.engine is Engine.NORMALS
    qtbot.waitUntil(lambda: rt.worker is None and rt.result is not None, timeout=20000)
    rt.guide_tabs.setCurrentIndex(0)  # back to the guide photo: no light, S3Net
    assert session.light is None and session.engine is Engine.S3NET
    rt.swap()
    assert session.source.files.image.name == "gui.png" and rt.source_card.image_path.name == "gui.png"


def test_session_changes_show_in_the_widgets(qtbot, window, tmp_path):
    rt = window.relight_tab
    session = rt.session
    session.update(light=Light(90, 5000), engine="normals")
    assert rt.guide_tabs.currentIndex() == 1 and rt.compass.light.azimuth == 90 and rt.compass.light.kelvin == 5000
    assert rt.compass.engine == "normals" and rt.compass.normals_box.isVisibleTo(rt.compass)
    assert rt.worker is None  # shown, not relit: only the user's release relights
    session.update(light=None, engine="s3net")
    assert rt.guide_tabs.currentIndex() == 0
    session.output = OutputSettings("full", True, 1.5)
    assert rt.mode_combo.currentText() == "full" and rt.exposure_combo.currentData() == "keep"
    assert rt.ev_spin.value() == 1.5 and window.settings.get("exposure_ev") == 1.5
    # files named in the session are read and shown on their card
    img, dep = make_pair(tmp_path, "named")
    session.source = InputFiles(img, dep)
    qtbot.waitUntil(lambda: isinstance(session.source, Input), timeout=10000)
    assert rt.source_card.image_path == img and rt.compare.before is session.source.image
    assert "guide" in rt.compare.placeholder  # the next step follows the session


def test_a_result_goes_stale_when_the_source_or_the_light_changes(qtbot, window, tmp_path):
    rt = window.relight_tab
    session = rt.session
    _load_both(qtbot, rt, tmp_path)
    res = relit(qtbot, rt)
    assert session.result is res and not session.stale and rt.compare.labels[1] == "relit"
    assert "stale" not in rt.save_button.toolTip()
    session.update(light=Light(180, 3000))  # a change made outside the widgets
    assert session.stale and rt.stale and rt.result_label.text().startswith("Stale")
    assert rt.compare.labels[1] == "relit (stale)" and "stale" in rt.save_button.toolTip()
    relit(qtbot, rt)
    assert not rt.stale and rt.result_from["guide"] == Light(180, 3000).describe()
    rt.source_card.handle_mime(mime(*make_pair(tmp_path, "other", seed=9)))
    qtbot.waitUntil(lambda: rt.source_card.image_path.name == "other.png", timeout=10000)
    assert session.stale and rt.result_label.text().startswith("Stale")
    assert rt.compare.after is None and rt.compare.before is session.source.image  # the new source on view


def test_a_result_arrives_stale_when_the_light_moved_while_it_ran(qtbot, window, tmp_path):
    rt = window.relight_tab
    _load_both(qtbot, rt, tmp_path)
    with qtbot.waitSignal(rt.resultReady, timeout=30000):
        rt.relight()
        rt.session.update(light=Light(200, 3000))  # before the result reaches the GUI thread
    qtbot.waitUntil(lambda: rt.worker is None, timeout=10000)
    assert rt.session.result is not None and rt.stale
    assert rt.result_label.text().startswith("Stale") and rt.compare.labels[1] == "relit (stale)"


def test_the_batch_dialog_relights_with_the_sessions_light_or_guide(qtbot, window, tmp_path, monkeypatch):
    import relight_gui.batch_dialog as batch_dialog

    rt = window.relight_tab
    _load_both(qtbot, rt, tmp_path)
    (tmp_path / "in").mkdir()
    make_pair(tmp_path / "in", "p0")
    seen = []

    def fake_relight_folder(session, jobs, out, engines, **kw):
        seen.append((session.light, session.guide, session.engine, engines))
        return SimpleNamespace(written=[], total=len(jobs), cancelled=False, failed=[], out=out)

    monkeypatch.setattr(batch_dialog, "relight_folder", fake_relight_folder)
    light = Light(270, 6500)
    rt.session.update(light=light)
    dlg = rt.open_batch()
    qtbot.addWidget(dlg)
    assert dlg.session is rt.session and dlg.engines is rt.engines
    assert dlg.compass.isChecked() and light.describe() in dlg.compass.text()
    dlg.input.setText(str(tmp_path / "in"))
    dlg.output.setText(str(tmp_path / "out"))
    w = dlg.start()
    qtbot.waitUntil(lambda: w.done and dlg.worker is None, timeout=20000)
    assert seen[-1][:3] == (light, None, Engine.S3NET) and seen[-1][3] is rt.engines
    dlg.one_photo.setChecked(True)  # the session's guide photo for every source
    w = dlg.start()
    qtbot.waitUntil(lambda: w.done and dlg.worker is None, timeout=20000)
    assert seen[-1][0] is None and seen[-1][1] is rt.session.guide
    assert rt.session.light == light  # the dialog's choice stays in its own copy of the session
    dlg.close()


def batch_dialog_on_one_pair(qtbot, window, tmp_path, monkeypatch, hold: threading.Event | None = None):
    """The batch dialog, lit from E at 3500 K, with a folder of one pair in tmp_path/in; the folder
    relight is replaced by one that records (light, output folder), waits for `hold` if given, and
    writes nothing. Returns the dialog and the records."""
    import relight_gui.batch_dialog as batch_dialog

    seen: list = []

    def fake_relight_folder(session, jobs, out, engines, **kw):
        seen.append((session.light, Path(out)))
        if hold is not None:
            hold.wait(20)
        return SimpleNamespace(written=[], total=len(jobs), cancelled=False, failed=[], out=out)

    monkeypatch.setattr(batch_dialog, "relight_folder", fake_relight_folder)
    (tmp_path / "in").mkdir()
    make_pair(tmp_path / "in", "p0")
    window.relight_tab.session.update(light=Light(90, 3500))
    dlg = window.relight_tab.open_batch()
    qtbot.addWidget(dlg)
    return dlg, seen


def test_the_open_batch_dialog_follows_the_session_and_never_starts_silently_or_into_the_working_folder(
    qtbot, window, tmp_path, monkeypatch
):
    """The dialog stays open beside the window: it said 'light from E' after the compass was turned to
    W, and relit with W. An empty folder field read the working folder ('.: no images'); Start while
    the model loaded did nothing at all."""
    dlg, seen = batch_dialog_on_one_pair(qtbot, window, tmp_path, monkeypatch)
    rt = window.relight_tab
    assert "light from E (90°), 3500 K" in dlg.compass.text() and not dlg.one_photo.isEnabled()
    rt.session.update(light=Light(270, 6500))  # the compass turned while the dialog is open
    assert "light from W (270°), 6500 K" in dlg.compass.text()

    def refused(needle):
        boxes = [b for b in dlg.findChildren(QMessageBox) if b.isVisible()]
        assert dlg.start() is None and dlg.worker is None
        qtbot.waitUntil(lambda: any(b.isVisible() for b in dlg.findChildren(QMessageBox)), timeout=5000)
        box = [b for b in dlg.findChildren(QMessageBox) if b.isVisible() and b not in boxes][-1]
        assert needle in box.text(), box.text()
        box.accept()

    dlg.output.setText(str(tmp_path / "out"))
    refused("Choose the folder to relight")
    dlg.input.setText(str(tmp_path / "in"))
    dlg.output.setText("  ")
    refused("Choose where the results go")
    dlg.output.setText(str(tmp_path / "out"))
    window.model.busy = True  # a reload after a device change
    refused("still loading")
    window.model.busy = False
    assert not seen
    w = dlg.start()
    qtbot.waitUntil(lambda: w.done and dlg.worker is None, timeout=20000)
    assert seen == [(Light(270, 6500), tmp_path / "out")]  # the light the dialog names
    # a guide photo opened while the dialog is open is offered at once; on the Guide photo tab the
    # compass choice still names the compass's light
    rt.guide_card.handle_mime(mime(*make_pair(tmp_path, "gui", seed=3)))
    qtbot.waitUntil(lambda: dlg.one_photo.isEnabled(), timeout=10000)
    rt.guide_tabs.setCurrentIndex(0)
    assert rt.session.light is None and "light from W (270°), 6500 K" in dlg.compass.text()
    dlg.close()


def test_the_batch_dialog_names_the_light_of_the_running_batch_until_it_ends(qtbot, window, tmp_path, monkeypatch):
    """While a batch runs, the compass turned (or the guide photo removed) in the window: the dialog kept
    naming the running batch's light and choice only until then; it said W while the batch relit E."""
    release = threading.Event()
    dlg, seen = batch_dialog_on_one_pair(qtbot, window, tmp_path, monkeypatch, hold=release)
    rt = window.relight_tab
    dlg.input.setText(str(tmp_path / "in"))
    dlg.output.setText(str(tmp_path / "out"))
    w = dlg.start()
    qtbot.waitUntil(lambda: len(seen) == 1, timeout=10000)
    try:
        rt.session.update(light=Light(270, 6500))  # the compass turned while the batch runs
        assert "light from E (90°), 3500 K" in dlg.compass.text() and dlg.compass.isChecked()
    finally:
        release.set()
    qtbot.waitUntil(lambda: w.done and dlg.worker is None, timeout=20000)
    assert [light for light, _out in seen] == [Light(90, 3500)]
    assert "light from W (270°), 6500 K" in dlg.compass.text()  # the next Start's light, once it has ended
    dlg.close()


def test_session_changes_from_a_worker_thread_reach_the_widgets_on_the_gui_thread(qtbot, window):
    rt = window.relight_tab
    threads = []
    rt.session_view.changed.connect(lambda name: threads.append(threading.current_thread()))
    worker = threading.Thread(target=lambda: rt.session.update(light=Light(45, 4000)))
    worker.start()
    worker.join()
    qtbot.waitUntil(lambda: rt.guide_tabs.currentIndex() == 1, timeout=5000)
    assert rt.compass.light.azimuth == 45 and threads and all(t is threading.main_thread() for t in threads)


def test_the_session_view_stops_listening_when_it_goes(qtbot):
    from relight_gui.session_view import SessionView

    session = Session()
    view = SessionView(session)
    heard = []
    view.changed.connect(heard.append)
    session.light = Light(0, 3500)
    assert heard == ["light"]
    view.deleteLater()
    qtbot.waitUntil(lambda: not session.events._listeners, timeout=5000)
    session.light = None  # nobody listens: no error


def test_the_compass_draws_its_guide_for_its_own_starting_light(qtbot, window):
    rt = window.relight_tab
    start = rt.compass.light  # the light the compass opens with: setting it changes no dial
    rt.compass.show_guide(None)
    rt.session.update(light=Light(start.azimuth, start.kelvin))
    qtbot.waitUntil(lambda: not rt.compass.guide_view.pixmap().isNull(), timeout=10000)


def test_the_batch_dialog_is_one_window_shown_again_not_one_more_listener_per_opening(qtbot, window):
    rt = window.relight_tab
    before = len(rt.session.events._listeners)
    first = rt.open_batch()
    first.input.setText("/somewhere/photos")
    first.close()
    again = rt.open_batch()
    assert again is first and again.isVisible() and again.input.text() == "/somewhere/photos"
    assert len(rt.session.events._listeners) == before + 1  # the one dialog follows the session once
    again.deleteLater()
    qtbot.waitUntil(lambda: rt._batch_dialog is None, timeout=5000)
    assert rt.open_batch() is not first
