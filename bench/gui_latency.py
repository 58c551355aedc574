"""How responsive the GUI's event loop stays while training and relighting run in workers.

A 10 ms QTimer records how late each tick fires; the worst and 99th-percentile delays are
printed for (a) a Fine-tune run and (b) a relight of the bundled demo.

    QT_QPA_PLATFORM=offscreen python bench/gui_latency.py --data DIR [--size 256] [--steps 30]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", help="training data (default: a synthetic set rendered now)")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=4)
    args = ap.parse_args()

    from PySide6.QtCore import QElapsedTimer, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    from relight_gui.main_window import MainWindow
    from relight_gui.settings import Settings

    tmp = Path(tempfile.mkdtemp())
    data = args.data
    if not data:
        from core.train.synthetic import synthesize

        data = str(synthesize(tmp / "data", 6, args.size, 0, 2))
    s = Settings(QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat))
    s.set("device", "cpu")
    win = MainWindow(s)
    win.show()
    ticks: list[float] = []
    stamps: list[float] = []
    clock = QElapsedTimer()
    clock.start()
    last = [clock.nsecsElapsed()]

    def tick():
        now = clock.nsecsElapsed()
        ticks.append((now - last[0]) / 1e6 - 10.0)
        stamps.append(now / 1e9)
        last[0] = now

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    results = {}

    def measure(label, start_fn, done_signal_getter):
        ticks.clear()
        stamps.clear()
        last[0] = clock.nsecsElapsed()
        begin = last[0] / 1e9
        timer.start()
        t0 = time.perf_counter()
        worker = start_fn()
        while not worker.done:
            app.processEvents()
            time.sleep(0.001)
        timer.stop()
        d = np.array(ticks[1:]) if len(ticks) > 1 else np.zeros(1)
        worst = sorted(zip(ticks, stamps, strict=True), reverse=True)[:3]
        results[label] = (time.perf_counter() - t0, float(np.percentile(d, 99)), float(d.max()), len(d))
        print(f"{label}: worst delays " + ", ".join(f"{w:.0f} ms at {t - begin:.1f} s" for w, t in worst))

    while win.model.relighter is None:
        app.processEvents()
        time.sleep(0.01)
    ft = win.finetune_tab
    ft.data.setText(data)
    ft.base.setCurrentText("Scratch")
    ft.preset.setCurrentText("s3net-lite")
    ft.batch.setValue(args.batch)
    ft.steps.setValue(args.steps)
    ft.val_every.setValue(max(1, args.steps // 3))
    ft.ckpt_every.setValue(max(1, args.steps // 2))
    ft.out.setText(str(tmp / "run"))
    measure(f"fine-tune s3net-lite, {args.steps} steps of {args.batch}x{args.size}^2 (CPU)", ft.start, None)

    rt = win.relight_tab
    from core.base.resources import demo_pair
    from core.inputs.input import InputFiles

    demo = demo_pair()
    rt.load_into(rt.source_card, InputFiles(demo.source, demo.source_depth))
    rt.load_into(rt.guide_card, InputFiles(demo.guide, demo.guide_depth))
    while not rt.relight_button.isEnabled():
        app.processEvents()
        time.sleep(0.01)
    measure("relight the demo (bundled s3net-lite, CPU)", rt.relight, None)
    print("| work in a worker | duration s | timer delay p99 ms | worst delay ms | ticks |")
    print("| --- | --- | --- | --- | --- |")
    for k, (dur, p99, worst, n) in results.items():
        print(f"| {k} | {dur:.1f} | {p99:.1f} | {worst:.1f} | {n} |")
    win.close()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
