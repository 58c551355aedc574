"""Live preview of the normals engine in the app: the light compass's dial turned continuously
(a new azimuth every 5 ms, as a fast mouse drag gives) and the previews that reach the compare view
counted per second. Each preview shades and marches shadows at a small size and shows the photo at
display size (720 px); the newest request wins, so a slow preview drops requests, never lags behind.

    QT_QPA_PLATFORM=offscreen PYTHONPATH=. python3 bench/normals_gui.py [--seconds 5] [--size 1024]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--size", type=int, default=1024)
    args = ap.parse_args()
    import torch
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    from normals import scene

    from core.inputs.input import InputFiles
    from core.storage.io import write_depth, write_image
    from relight_gui.main_window import MainWindow
    from relight_gui.settings import Settings

    tmp = Path(tempfile.mkdtemp())
    image, depth = scene(args.size)
    write_image(tmp / "photo.png", image, 8)
    write_depth(tmp / "photo_depth.png", depth, "png16")
    s = Settings(QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat))
    s.set("device", "cpu")
    win = MainWindow(s)
    win.show()
    rt = win.relight_tab

    def spin(cond, limit=60.0):
        t = time.time()
        while not cond() and time.time() - t < limit:
            app.processEvents()
            time.sleep(0.002)

    rt.load_into(rt.source_card, InputFiles(tmp / "photo.png", tmp / "photo_depth.png"))
    spin(lambda: rt.source_card.ready)
    rt.guide_tabs.setCurrentIndex(1)
    rt.compass.set_engine("normals")
    spin(lambda: rt.result is not None and rt.worker is None)
    shown = []
    gui_ms = []
    ready = rt._preview_ready

    def timed_ready(payload):  # the GUI thread's share of a preview: showing it
        t = time.perf_counter()
        ready(payload)
        gui_ms.append((time.perf_counter() - t) * 1000)

    rt.preview.succeeded.disconnect()
    rt.preview.succeeded.connect(timed_ready)
    rt.preview.succeeded.connect(lambda p: shown.append(time.perf_counter()))
    dial = rt.compass.dial
    t0 = time.perf_counter()
    az, requests = 0.0, 0
    while time.perf_counter() - t0 < args.seconds:
        az = (az + 1.0) % 360
        dial.set_azimuth(az)
        dial.moved.emit(az)  # what a drag emits
        requests += 1
        end = time.perf_counter() + 0.005
        while time.perf_counter() < end:
            app.processEvents()
    spin(lambda: rt.preview.idle(), 10)
    dt = time.perf_counter() - t0
    n = len([t for t in shown if t - t0 <= dt])
    print(
        f"normals engine live preview in the app: {n / dt:.1f} previews/s shown ({n} in {dt:.1f} s, {requests} "
        f"dial moves), display {rt._session().dw}x{rt._session().dh}, {rt._session().describe()}, "
        f"CPU {torch.get_num_threads()} threads; showing one took {sorted(gui_ms)[len(gui_ms) // 2]:.1f} ms (median) "
        f"on the GUI thread"
    )
    win.close()
    spin(lambda: rt.preview.idle(), 10)
    sys.stdout.flush()
    os._exit(0)  # PySide objects left to the interpreter's final garbage collection can abort it


if __name__ == "__main__":
    main()
