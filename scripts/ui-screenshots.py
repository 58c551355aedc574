"""Screenshots of the app in the states the docs show, taken from a real window (run it under a
display, e.g. `xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/ui-screenshots.py docs/`):

  toolbars-640x400.png … toolbars-1920x1080.png  the Relight tab, relit demo, at four window sizes
  stale-save.png         Save of a result whose source was replaced asks first
  batch-cancelled.png    a folder batch cancelled after the fourth of ten files
  depth-model-offline.png  Download model… without a network: how to bring the model, Choose folder…

Settings, logs and the depth-model folder live in a temporary folder: the user's are not touched."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TMP = Path(tempfile.mkdtemp(prefix="relight-shots-"))
os.environ["XDG_DATA_HOME"] = str(TMP / "data")  # no depth model, logs apart
os.environ.pop("RELIGHT_DEPTH_MODEL", None)

from PySide6.QtCore import QSettings, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication, QMessageBox  # noqa: E402

DEMO = ROOT / "resources" / "demo"


def main(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication(sys.argv[:1])
    from core.inputs.input import InputFiles
    from relight_gui.main_window import MainWindow
    from relight_gui.settings import Settings

    settings = Settings(QSettings(str(TMP / "settings.ini"), QSettings.Format.IniFormat))
    settings.set("device", "cpu")
    settings.set("output_dir", str(TMP))
    win = MainWindow(settings)
    win.move(0, 0)
    win.show()
    rt = win.relight_tab

    def wait(cond, timeout=120.0):
        t = time.time()
        while not cond():
            if time.time() - t > timeout:
                raise TimeoutError
            app.processEvents()
            time.sleep(0.02)

    def settle(seconds=0.3):
        t = time.time()
        while time.time() - t < seconds:
            app.processEvents()
            time.sleep(0.02)

    def shoot(name: str, w=None, h=None) -> None:
        """The screen region of the window (with any dialog or menu open over it)."""
        settle()
        w, h = w or win.frameGeometry().width(), h or win.frameGeometry().height()
        app.primaryScreen().grabWindow(0, win.x(), win.y(), w, h).save(str(out / name))
        print("wrote", out / name)

    wait(lambda: win.model.relighter is not None)
    rt.load_into(rt.source_card, InputFiles(DEMO / "source.png", DEMO / "source.npy"))
    rt.load_into(rt.guide_card, InputFiles(DEMO / "guide.png", DEMO / "guide.npy"))
    wait(lambda: rt.relight_button.isEnabled())
    rt.relight()
    wait(lambda: rt.result is not None and rt.worker is None)

    # 5: the toolbars at four sizes; at the smallest with the More menu open
    for w, h in ((640, 400), (800, 500), (1280, 720), (1920, 1080)):
        win.resize(w, h)
        settle(0.5)
        if (w, h) == (640, 400):
            row = rt.run_row
            QTimer.singleShot(300, lambda: (shoot("toolbars-640x400-more.png", 760, 400), row.menu.close()))
            row.more.showMenu()
        shoot(f"toolbars-{w}x{h}.png", w, h)

    # 1: a new source opened, then Save: the warning names the result's own source
    win.resize(1280, 720)
    photo = TMP / "rocket.png"
    shutil.copy(DEMO / "guide.png", photo)
    shutil.copy(DEMO / "guide.npy", TMP / "rocket.npy")
    rt.load_into(rt.source_card, InputFiles(photo, TMP / "rocket.npy"))
    wait(lambda: rt.source_card.image_path == photo)

    def answer_stale():
        boxes = [b for b in app.topLevelWidgets() if isinstance(b, QMessageBox) and b.isVisible()]
        if not boxes:
            QTimer.singleShot(100, answer_stale)
            return
        shoot("stale-save.png", 1280, 720)
        boxes[0].button(QMessageBox.StandardButton.Cancel).click()

    QTimer.singleShot(300, answer_stale)
    rt.save_dialog()

    # 3: a batch of ten, cancelled after the fourth file
    folder = TMP / "ten"
    folder.mkdir()
    for i in range(10):
        shutil.copy(DEMO / "source.png", folder / f"photo{i:02d}.png")
        shutil.copy(DEMO / "source.npy", folder / f"photo{i:02d}.npy")
    relighter = win.model.relighter
    real = relighter.relight_many

    def paced(pairs, **kw):  # a pace like a large photo's, so Cancel lands between pairs
        time.sleep(0.8)
        return real(pairs, **kw)

    relighter.relight_many = paced
    rt.guide_tabs.setCurrentIndex(1)
    dlg = rt.open_batch()
    dlg.move(win.x() + 300, win.y() + 120)
    dlg.input.setText(str(folder))
    dlg.output.setText(str(TMP / "relit"))
    worker = dlg.start()
    wait(lambda: dlg.progress.format().startswith("4/10"))
    dlg.cancel()
    wait(lambda: worker.done)
    shoot("batch-cancelled.png", 1280, 720)
    relighter.relight_many = real
    dlg.close()
    rt.guide_tabs.setCurrentIndex(0)

    # 7: a photo without depth, no model, no network: Download model… fails and says what to do
    def offline(*a, **k):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    urllib.request.urlopen = offline
    QMessageBox.question = staticmethod(lambda *a, **k: QMessageBox.StandardButton.Yes)
    alone = TMP / "alone"
    alone.mkdir()
    shutil.copy(DEMO / "source.png", alone / "cat.png")
    rt.load_into(rt.source_card, InputFiles(alone / "cat.png"))
    wait(lambda: rt.source_card.image_path == alone / "cat.png")
    rt.download_depth_model()
    wait(lambda: any(isinstance(b, QMessageBox) and b.isVisible() for b in app.topLevelWidgets()))
    for b in app.topLevelWidgets():
        if isinstance(b, QMessageBox) and b.isVisible():
            b.move(win.x() + 420, win.y() + 200)
    shoot("depth-model-offline.png", 1280, 720)
    for b in app.topLevelWidgets():
        if isinstance(b, QMessageBox) and b.isVisible():
            b.done(0)
    win.close()
    shutil.rmtree(TMP, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs"))
