"""Main window: Relight, Fine-tune and Settings tabs, menus and shortcuts, status bar, persistence."""

from __future__ import annotations

from PySide6.QtCore import QByteArray
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QLabel, QMainWindow, QTabWidget

from .dialogs import show_error
from .finetune_tab import FineTuneTab
from .gui_gc import GuiThreadGC
from .model_state import ModelState
from .relight_tab import RelightTab
from .settings import Settings
from .settings_tab import SettingsTab
from .widgets.compare_view import MODES
from .workers import stop_workers


class MainWindow(QMainWindow):
    def __init__(self, settings: Settings | None = None):
        super().__init__()
        self.setWindowTitle("Relight Studio")
        self.gc = GuiThreadGC(self)  # before any worker starts
        self.closing = False  # set when closing: no new background work (see Operation.run)
        self.settings = settings or Settings()
        self.model = ModelState(self)
        self.relight_tab = RelightTab(self.model, self.settings)
        self.finetune_tab = FineTuneTab(self.model, self.settings)
        self.settings_tab = SettingsTab(self.settings)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.relight_tab, "Relight")
        self.tabs.addTab(self.finetune_tab, "Fine-tune")
        self.tabs.addTab(self.settings_tab, "Settings")
        self.setCentralWidget(self.tabs)

        self.device_label, self.model_label, self.run_label = QLabel(), QLabel(), QLabel()
        for w in (self.device_label, self.model_label, self.run_label):
            self.statusBar().addPermanentWidget(w)
        self.relight_tab.statusMessage.connect(lambda m: self.statusBar().showMessage(m, 8000))
        self.relight_tab.resultReady.connect(lambda r: self.run_label.setText(f"last run: {r.seconds:.2f} s, {r.mode}"))
        self.settings_tab.modelSettingsChanged.connect(self.reload_model)
        self.settings_tab.colormapChanged.connect(self.relight_tab.set_colormap)
        self.settings_tab.depthModelChanged.connect(self.relight_tab.refresh_depth_model)
        self.finetune_tab.useCheckpoint.connect(self.use_checkpoint)
        self.relight_tab.modelCardRequested.connect(lambda: self.tabs.setCurrentWidget(self.settings_tab))
        self.relight_tab.depthModelChosen.connect(self.settings_tab.set_depth_model)
        self.model.loaded.connect(self._model_loaded)
        self.model.failed.connect(self._model_failed)
        self.model.loading.connect(
            lambda name: (self.model_label.setText(f"model: loading {name}…"), self.relight_tab.update_state())
        )
        self._menus()
        self.resize(1400, 900)
        geo = self.settings.q.value("window/geometry")
        if isinstance(geo, QByteArray):
            self.restoreGeometry(geo)
        st = self.settings.q.value("window/relight_splitter")
        if isinstance(st, QByteArray):
            self.relight_tab.splitter.restoreState(st)
        self.reload_model()

    def _menus(self) -> None:
        def act(menu, text, shortcut, slot):
            a = QAction(text, self)
            if shortcut:
                a.setShortcut(QKeySequence(shortcut))
            a.triggered.connect(slot)
            menu.addAction(a)
            return a

        rt = self.relight_tab
        f = self.menuBar().addMenu("&File")
        act(f, "Open &source…", QKeySequence.StandardKey.Open, lambda: rt.open_dialog(rt.source_card))
        act(f, "Open &guide…", "Ctrl+Shift+O", lambda: rt.open_dialog(rt.guide_card))
        act(f, "&Save result…", QKeySequence.StandardKey.Save, rt.save_dialog)
        act(f, "&Copy result", "Ctrl+Shift+C", rt.copy_result)
        act(f, "Relight a &folder…", "Ctrl+B", rt.open_batch)
        f.addSeparator()
        act(f, "&Quit", QKeySequence.StandardKey.Quit, self.close)
        r = self.menuBar().addMenu("&Run")
        act(r, "&Relight", "Ctrl+R", rt.relight)
        act(r, "&Cancel", "Esc", rt.cancel)
        act(r, "S&wap source and guide", "X", rt.swap)
        v = self.menuBar().addMenu("&View")
        act(v, "Toggle &compare mode", "C", self._cycle_compare)
        act(v, "Zoom to &fit", "Ctrl+0", rt.compare.fit)
        act(v, "&Actual size (100%)", "Ctrl+1", rt.compare.actual_size)

    def _cycle_compare(self) -> None:
        modes = list(MODES)
        nxt = modes[(modes.index(self.relight_tab.compare.mode) + 1) % len(modes)]
        self.relight_tab.compare.set_mode(nxt)  # the tab's buttons follow the view's modeChanged

    def reload_model(self) -> None:
        s = self.settings
        self.relight_tab.refresh_engine_settings()
        self.model.load(s.get("checkpoint") or None, s.get("device"), s.get("precision"), s.get("fast"))

    def use_checkpoint(self, path: str) -> None:
        self.settings_tab.use_checkpoint(path)
        self.tabs.setCurrentWidget(self.relight_tab)

    def _model_loaded(self, relighter) -> None:
        self.device_label.setText(f"device: {relighter.device} ({relighter.precision_label})")
        self.model_label.setText(f"model: {self.model.describe()}")
        self.settings_tab.show_model_card(relighter)
        self.relight_tab.update_state()

    def _model_failed(self, msg: str) -> None:
        self.model_label.setText("model: none")
        self.relight_tab.update_state()
        show_error(self, "Cannot load the checkpoint", msg)

    def ask_quit_during_training(self) -> str:
        """ "stop" (finish the step, write a checkpoint, quit), "keep" (quit when the run ends) or "cancel"."""
        from PySide6.QtWidgets import QMessageBox

        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Quit while training?",
            f"A fine-tuning run is going on in {self.finetune_tab.out.text()}.",
            QMessageBox.StandardButton.NoButton,
            self,
        )
        box.setObjectName("quitDuringTraining")
        box.setInformativeText(
            "Stop it now (it finishes the current step and writes a checkpoint you can resume), "
            "keep training and quit when the run ends, or cancel and keep working."
        )
        stop = box.addButton("Stop and save a checkpoint", QMessageBox.ButtonRole.DestructiveRole)
        keep = box.addButton("Keep training, quit when done", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return {stop: "stop", keep: "keep"}.get(box.clickedButton(), "cancel")

    def ask_quit_during_batch(self) -> bool:
        """True: stop the folder being relit and quit; False: keep working."""
        from PySide6.QtWidgets import QMessageBox

        dialog = self.relight_tab.running_batch()
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Quit while relighting a folder?",
            f"A folder is being relit into {dialog.output.text() if dialog else 'its output folder'}.",
            QMessageBox.StandardButton.NoButton,
            self,
        )
        box.setObjectName("quitDuringBatch")
        box.setInformativeText(
            "Stop it and quit (the results written so far stay, whole; the rest are not written), "
            "or cancel and let it go on."
        )
        stop = box.addButton("Stop and quit", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return box.clickedButton() is stop

    def closeEvent(self, ev):
        if self.relight_tab.running_batch() is not None and not self.closing and not self.ask_quit_during_batch():
            ev.ignore()
            return
        ft = self.finetune_tab
        if ft.worker is not None and not self.closing:
            choice = self.ask_quit_during_training()
            if choice != "stop":
                ev.ignore()
                if choice == "keep" and not getattr(self, "_quit_after_training", False):
                    self._quit_after_training = True
                    ft.worker.finished.connect(self.close)
                    ft.log("Relight Studio quits when this run ends")
                return
            ft.log("stopping: the run finishes this step and writes a checkpoint")
        self.settings.q.setValue("window/geometry", self.saveGeometry())
        self.settings.q.setValue("window/relight_splitter", self.relight_tab.splitter.saveState())
        # stop and join every background thread: a QThread destroyed while running aborts the process
        self.closing = True
        stop_workers(120000)
        self.gc.stop()  # no worker runs now: collect here, then automatically again
        super().closeEvent(ev)
