"""The light compass with the normals engine: no model needed, sliders, live preview, full result."""

import math

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QPoint, QSettings, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from core.storage.io import write_depth_npy, write_image  # noqa: E402
from test_gui import _collect_garbage_on_the_gui_thread, mime  # noqa: E402,F401


@pytest.fixture
def window_without_model(qtbot, tmp_path):
    from relight_gui.main_window import MainWindow
    from relight_gui.settings import Settings

    s = Settings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    s.set("checkpoint", str(tmp_path / "missing.safetensors"))  # S3Net cannot load: the normals engine still works
    s.set("device", "cpu")
    s.set("output_dir", str(tmp_path))
    win = MainWindow(s)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: not win.model.busy, timeout=30000)
    yield win
    win.close()


def photo_with_dome(folder, size=(96, 128)):
    import cv2
    import skimage.data

    h, w = size
    img = cv2.resize(skimage.data.astronaut(), (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(xx - w / 2, yy - h / 2) / (0.4 * h)
    depth = 0.4 - 0.1 * np.sqrt(np.clip(1 - r * r, 0, None))
    return write_image(folder / "photo.png", img, 16), write_depth_npy(folder / "photo.npy", depth.astype(np.float32))


def test_normals_engine_on_the_compass_needs_no_model_and_follows_the_light(qtbot, window_without_model, tmp_path):
    win = window_without_model
    rt = win.relight_tab
    assert win.model.relighter is None  # the checkpoint is missing
    for box in [b for b in win.findChildren(__import__("PySide6.QtWidgets").QtWidgets.QMessageBox) if b.isVisible()]:
        box.close()
    rt.source_card.handle_mime(mime(*photo_with_dome(tmp_path)))
    qtbot.waitUntil(lambda: rt.source_card.ready, timeout=10000)
    rt.guide_tabs.setCurrentIndex(1)
    compass = rt.compass
    assert not rt.relight_button.isEnabled() and "No model loaded" in rt.banner.text()
    assert not compass.normals_box.isVisibleTo(compass)
    compass.set_engine("normals")
    assert (
        rt.normals_active and compass.normals_box.isVisibleTo(compass) and not compass.guide_view.isVisibleTo(compass)
    )
    # switching the engine relights at once, without a model
    qtbot.waitUntil(lambda: rt.result is not None and rt.worker is None, timeout=20000)
    assert rt.result.mode == "normals" and "normals engine" in rt.result_label.text()
    first = rt.result.image.copy()

    dial = compass.dial
    c = dial.rect().center()
    r = min(dial.width(), dial.height()) / 2 - 20

    def at(deg: float) -> QPoint:
        return c + QPoint(round(r * math.sin(math.radians(deg))), round(-r * math.cos(math.radians(deg))))

    previews = []
    rt.preview.succeeded.connect(lambda p: previews.append(p))
    QTest.mousePress(dial, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(270))  # W
    for deg in (240, 200, 180):  # round to S: the light comes from the camera
        QTest.mouseMove(dial, at(deg))
        qtbot.wait(20)
    qtbot.waitUntil(
        lambda: (
            rt.preview.idle()
            and bool(previews)
            and previews[-1][0].azimuth == 180
            and "Live preview" in rt.result_label.text()
        ),
        timeout=20000,
    )
    light, image, guide, _session = previews[-1]
    assert image.shape == (96, 128, 3) and guide is None
    QTest.mouseRelease(dial, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(180))
    qtbot.waitUntil(
        lambda: rt.result is not None and rt.worker is None and rt.result.light.azimuth == 180, timeout=20000
    )
    # the sliders reach the light: a lower elevation and more intensity brighten a camera-facing dome
    slider = compass.sliders["elevation"]
    before = rt.result.image.mean()
    slider.setValue(5)
    compass.sliders["intensity"].setValue(200)
    qtbot.waitUntil(
        lambda: rt.worker is None and rt.result.light.elevation == 5 and rt.result.light.intensity == 2, timeout=20000
    )
    assert rt.result.image.mean() > before + 0.02
    assert "elevation 5°" in compass.light_label.text() and compass.slider_labels["elevation"].text() == "5°"
    assert not np.allclose(first, rt.result.image)
    # back to S3Net: the missing model holds the relight up again
    compass.set_engine("s3net")
    assert not rt.relight_button.isEnabled()


def test_batch_dialog_adds_the_compass_light_with_the_normals_engine(qtbot, window_without_model, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(2):
        photo_with_dome(folder)
        (folder / "photo.png").rename(folder / f"p{i}.png")
        (folder / "photo.npy").rename(folder / f"p{i}.npy")
    rt = window_without_model.relight_tab
    rt.guide_tabs.setCurrentIndex(1)
    rt.compass.set_engine("normals")
    dlg = rt.open_batch()
    qtbot.addWidget(dlg)
    assert "normals engine" in dlg.compass.text() and dlg.compass.isChecked()
    dlg.input.setText(str(folder))
    dlg.output.setText(str(tmp_path / "lit"))
    w = dlg.start()  # no S3Net model is loaded: the normals engine needs none
    qtbot.waitUntil(lambda: w.done, timeout=60000)
    assert sorted(p.name for p in (tmp_path / "lit").iterdir()) == ["p0.png", "p1.png"]
    dlg.close()


def test_a_preview_that_finishes_after_the_full_relight_does_not_cover_it(qtbot, window_without_model, tmp_path):
    rt = window_without_model.relight_tab
    rt.source_card.handle_mime(mime(*photo_with_dome(tmp_path)))
    qtbot.waitUntil(lambda: rt.source_card.ready, timeout=10000)
    rt.guide_tabs.setCurrentIndex(1)
    rt.compass.set_engine("normals")
    qtbot.waitUntil(lambda: rt.result is not None and rt.worker is None, timeout=20000)
    session, light = rt.live_preview(), rt.compass.light
    late = (light, session.update(light), None, session)  # a preview asked for before the relight below
    rt.relight()
    qtbot.waitUntil(lambda: rt.worker is None, timeout=20000)
    rt._preview_ready(late)  # ... arriving after its result
    assert "normals engine" in rt.result_label.text() and "Live preview" not in rt.result_label.text()
