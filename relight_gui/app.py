"""Entry point: `relight-gui [--demo] [--screenshot OUT.png]` and `python -m relight_gui`."""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import sys
from pathlib import Path

from core.base.resources import demo_pair, icon_paths


class HeldProblems(logging.Filter):
    """For the console in a screenshot run: warnings and errors wait until the run ends. The run then
    reports its failure in one line, and `release` writes the held records that do not repeat it (the
    failed operation, its error dialog and the run itself each log the same message to the log file)."""

    def __init__(self, handler: logging.Handler):
        super().__init__()
        self.handler, self.held, self.releasing = handler, [], False
        handler.addFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.releasing or record.levelno < logging.WARNING:
            return True
        self.held.append(record)
        return False

    def release(self, repeated: str | None = None) -> None:
        self.releasing = True
        try:
            for record in self.held:
                if not (repeated and repeated in record.getMessage()):
                    self.handler.handle(record)
        finally:
            self.held, self.releasing = [], False


def setup_logging(hold_problems: bool = False) -> tuple[Path | None, HeldProblems | None]:
    """The log file, and the console when there is one; with `hold_problems` (a screenshot run) the
    console's warnings wait for the end of the run (HeldProblems)."""
    from core.base.logs import add_file_handler

    path = add_file_handler()
    root = logging.getLogger()
    held = None
    if path is not None and (getattr(sys, "frozen", False) or sys.stderr is None):
        # a windowed frozen app has no console: send prints and tracebacks to the log file
        stream = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
        sys.stdout = sys.stderr = stream
    else:
        console = logging.StreamHandler(sys.stderr)
        root.addHandler(console)
        held = HeldProblems(console) if hold_problems else None

    def excepthook(exc_type, exc, tb):
        logging.getLogger("relight.gui").critical("uncaught exception", exc_info=(exc_type, exc, tb))

    sys.excepthook = excepthook
    return path, held


def app_icon():
    from PySide6.QtGui import QIcon

    icon = QIcon()
    for p in icon_paths():
        icon.addFile(str(p))
    return icon


def main(argv: list[str] | None = None) -> int:
    multiprocessing.freeze_support()
    os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")  # never let pyqtgraph pick another binding
    from core.startup import configure_process

    configure_process()  # before OpenCV loads
    parser = argparse.ArgumentParser(prog="relight-gui", description="Relight Studio: depth-guided image relighting")
    parser.add_argument("--demo", action="store_true", help="open with the bundled demo pair loaded")
    parser.add_argument(
        "--screenshot",
        metavar="OUT.png",
        help="relight the demo (or the FILES given), save a screenshot of the window, exit",
    )
    parser.add_argument("--settings", help="use this .ini file for settings instead of the user's")
    parser.add_argument("--light", help="open the light compass at this direction (N, NE, … or degrees)")
    parser.add_argument("--temperature", type=float, help="with --light: colour temperature in kelvin (default 6500)")
    from core.base.vocab import ENGINES
    from core.render.light import LIGHT_SETTINGS

    parser.add_argument("--engine", choices=ENGINES, help="with --light: the compass's engine (default s3net)")
    for name, (lo, hi, meaning) in LIGHT_SETTINGS.items():
        parser.add_argument(f"--{name}", type=float, help=f"with --engine normals: {meaning} ({lo:g}..{hi:g})")
    parser.add_argument("files", nargs="*", help="images and depth maps to open (paired as when dropped)")
    args = parser.parse_args(argv)
    if args.temperature is not None and not args.light:  # as `relight infer`: never ignored in silence
        parser.error("--temperature is the colour of the --light; give --light too")

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Relight Studio")
    app.setOrganizationName("RelightStudio")
    app.setWindowIcon(app_icon())
    log_path, held = setup_logging(hold_problems=bool(args.screenshot))
    logging.getLogger("relight.gui").info("Relight Studio starting; log at %s", log_path)

    from .main_window import MainWindow
    from .settings import Settings

    settings_file = args.settings or os.environ.get("RELIGHT_SETTINGS")
    settings = Settings(QSettings(settings_file, QSettings.Format.IniFormat) if settings_file else None)
    if args.screenshot:
        settings.set("device", settings.get("device"))
    win = MainWindow(settings)
    win.show()
    if args.demo or (args.screenshot and not args.files):
        from core.inputs.input import InputFiles

        rt, demo = win.relight_tab, demo_pair()
        rt.load_into(rt.source_card, InputFiles(demo.source, demo.source_depth))
        rt.load_into(rt.guide_card, InputFiles(demo.guide, demo.guide_depth))
    elif args.files:
        rt = win.relight_tab
        rt.handle_drop(rt.source_card, [Path(f) for f in args.files])
    if args.light:
        from core.base.errors import RelightError
        from core.render.light import Light

        try:
            kelvin = 6500 if args.temperature is None else args.temperature
            light = Light.parse(args.light, kelvin, **{n: getattr(args, n) for n in LIGHT_SETTINGS})
        except RelightError as exc:
            parser.error(str(exc))
        rt = win.relight_tab
        rt.session.update(light=light, engine=args.engine or rt.compass.engine)  # the compass shows them
    if args.screenshot:
        return run_screenshot(app, win, Path(args.screenshot), held)
    return app.exec()


def path_of(inp) -> object:
    """The file a loaded input was read from, else its name."""
    return inp.files.image if inp.files else inp.name


def run_screenshot(app, win, out: Path, held: HeldProblems | None = None) -> int:
    """Relight the demo as soon as the model and both inputs are ready, save the window, exit.
    A photo without a depth map gets one estimated, as a user would click Estimate on its card.
    Exit code 0: saved; 2: a problem the app reported (a bad file, no depth model), said in one line
    on stderr; 1: a crash or a time-out."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QMessageBox

    from .relight_tab import depth_model_installed
    from .workers import UNEXPECTED

    rt = win.relight_tab
    state = {"started": False, "code": 1}

    def estimate_missing_depth() -> None:
        roles = ("source",) if rt.session.uses_light else ("source", "guide")
        for card in map(rt.card_for, roles):
            if card.input is not None and not card.input.has_depth:
                if not depth_model_installed(rt.settings):
                    fail(f"the {card.title.lower()} has no depth map and no depth model is installed")
                    return
                rt.estimate_depth(card)  # nothing happens while its estimate is already running

    def error_shown() -> None:
        boxes = [b for b in win.findChildren(QMessageBox) if b.isVisible()]
        if boxes:
            fail(f"{boxes[0].windowTitle()}: {boxes[0].text()}", detail=boxes[0].text())

    def poll():
        error_shown()
        if state.get("failed"):
            return
        if not state["started"]:
            estimate_missing_depth()
        if not state["started"] and rt.relight_button.isEnabled():
            state["started"] = True
            session = rt.session
            guide = session.light.describe() if session.uses_light else path_of(session.guide)
            logging.getLogger("relight.gui").info(
                "screenshot run: relighting %s with the guide %s", path_of(session.source), guide
            )
            rt.relight()

    def finish(_res=None):
        def shoot():
            win.grab().save(str(out))
            state["code"] = 0
            app.quit()

        QTimer.singleShot(300, shoot)

    def fail(msg="", detail: str | None = None, code: int = 2):
        """The run's one report of a failure; `detail`: the app's own message within `msg`, which the
        held console records repeating it are not written again for."""
        if state["code"] != 1 or state.get("failed"):
            return
        state["failed"] = True
        state["code"] = 1 if UNEXPECTED in msg else code
        timer.stop()
        logging.getLogger("relight.gui").error("screenshot run failed: %s", msg)
        if held is not None:
            held.release(detail or msg)
        print(f"relight-gui: screenshot run failed: {msg}", file=sys.stderr)
        app.quit()

    rt.resultReady.connect(finish)
    win.model.failed.connect(lambda msg: fail(msg, detail=msg))
    timer = QTimer(win)
    timer.timeout.connect(poll)
    timer.start(100)
    QTimer.singleShot(300_000, lambda: fail("timed out", code=1))
    app.exec()
    win.close()  # joins any background thread before the interpreter exits
    if held is not None:
        held.release()  # a run that succeeded: its warnings, at the end
    return state["code"]


if __name__ == "__main__":
    sys.exit(main())
