"""Relight a folder from the app: the command line's folder mode (core.engine.batch) behind a dialog, with
N/M progress as files are written, photos without depth estimated as in a single relight, per-pair
errors listed and skipped, cancel after the current pair, and "Open output folder" at the end."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
)

from core.base.errors import RelightError
from core.base.vocab import Engine
from core.engine.batch import check_output_folder, folder_jobs
from core.inputs import Input
from core.orchestration import Engines, relight_folder
from core.render.light import Light
from core.session import Session

from .dialogs import show_error
from .model_state import ModelState
from .session_view import SessionView
from .settings import Settings
from .workers import Operation

FORMATS = {"PNG 16-bit": (".png", 16), "PNG 8-bit": (".png", 8), "TIFF 16-bit": (".tif", 16), "JPEG 8-bit": (".jpg", 8)}


class BatchDialog(QDialog):
    """Relight a folder as the session says (engine, output, and its light or guide photo when
    chosen), with its engines. `compass`: the compass's light and engine now, offered when the session
    uses a guide photo (the compass is not on view then). The dialog stays open beside the window, so
    what it offers follows the session: the light it names is the light it relights with."""

    def __init__(
        self,
        session: Session,
        engines: Engines,
        settings: Settings,
        model: ModelState,
        compass: Callable[[], tuple[Light, Engine]],
        parent=None,
    ):
        super().__init__(parent)
        self.session, self.engines, self.settings, self.model = session, engines, settings, model
        self._compass = compass
        self.setWindowTitle("Relight a folder")
        self.setMinimumWidth(640)
        self.worker: Operation | None = None
        self.input = QLineEdit(settings.get("batch_input"))
        self.input.setPlaceholderText("NTIRE layout (input/ + guide/) or a folder of source images")
        self.output = QLineEdit(settings.get("batch_output") or str(Path(settings.get("output_dir")) / "relit"))
        self.guides = QButtonGroup(self)
        self.from_folder = QRadioButton("Each source's guide from the folder (guide/)")
        self.one_photo = QRadioButton("The guide photo on the Guide card, for every source")
        self.compass = QRadioButton()
        for i, b in enumerate((self.from_folder, self.one_photo, self.compass)):
            self.guides.addButton(b, i)
        (self.compass if session.uses_light else self.from_folder).setChecked(True)
        self.show_guides()
        SessionView(session, self).changed.connect(lambda name: self.show_guides())
        self.format = QComboBox()
        self.format.addItems(list(FORMATS))
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setFormat("")
        self.errors = QListWidget()
        self.errors.setObjectName("batch_errors")
        self.errors.setMinimumHeight(80)
        self.errors.setWordWrap(True)
        self.status = QLabel(" ")
        self.start_button = QPushButton("Start")
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        self.open_button = QPushButton("Open output folder")
        self.open_button.setEnabled(False)
        self.open_button.clicked.connect(self.open_output)
        close = QPushButton("Close")
        close.clicked.connect(self.close)

        def browse(edit: QLineEdit, title: str):
            def pick():
                path = QFileDialog.getExistingDirectory(self, title, edit.text() or str(Path.home()))
                if path:
                    edit.setText(path)

            return pick

        form = QFormLayout()
        for label, edit, title in (
            ("Input folder", self.input, "Folder to relight"),
            ("Output folder", self.output, "Output folder"),
        ):
            row = QHBoxLayout()
            row.addWidget(edit, 1)
            b = QPushButton("Browse…")
            b.clicked.connect(browse(edit, title))
            row.addWidget(b)
            form.addRow(label, row)
        form.addRow("Guide", self.from_folder)
        form.addRow("", self.one_photo)
        form.addRow("", self.compass)
        form.addRow("Format", self.format)
        buttons = QHBoxLayout()
        for b in (self.start_button, self.cancel_button, self.open_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(close)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)
        lay.addWidget(QLabel("Skipped pairs:"))
        lay.addWidget(self.errors, 1)
        lay.addLayout(buttons)

    def compass_target(self) -> tuple[Light, Engine]:
        """The light and engine of the compass choice: the session's, else the compass's."""
        if self.session.uses_light:
            return self.session.light, self.session.engine
        light, engine = self._compass()
        return light, Engine(engine)

    def show_guides(self) -> None:
        """The compass choice names the light a Start uses now; the guide photo is offered while the
        Guide card holds one with its depth (both change while the dialog is open). While a batch runs
        they name what it relights with, and follow the session again when it ends."""
        if self.worker is not None:
            return
        light, engine = self.compass_target()
        normals = " (normals engine)" if engine is Engine.NORMALS else ""
        self.compass.setText(f"The light compass{normals}: {light.describe()}")
        guide = self.session.guide
        self.one_photo.setEnabled(isinstance(guide, Input) and guide.has_depth)
        if self.one_photo.isChecked() and not self.one_photo.isEnabled():
            self.from_folder.setChecked(True)

    def start(self) -> Operation | None:
        if self.worker is not None:
            return None
        folder, out = self.input.text().strip(), self.output.text().strip()
        # an empty field is not the working folder ("." was read, or written into)
        if not folder or not out:
            which = "the folder to relight (Input folder)" if not folder else "where the results go (Output folder)"
            show_error(self, "Cannot relight the folder", f"Choose {which}.")
            return None
        # a copy of the session, with this dialog's choice of guide: each job's own (no light, no
        # guide), the guide photo for every source, or the compass's light
        choice = self.guides.checkedId()
        session, engines = self.session.snapshot(), self.engines
        light, engine = self.compass_target()
        session.update(
            light=light if choice == 2 else None,
            guide=session.guide if choice == 1 else None,
            engine=engine if choice == 2 else Engine.S3NET,
        )
        normals = session.engine is Engine.NORMALS
        if normals:  # a light added from each source's depth
            try:
                engine = engines.normals(session.settings)
            except RelightError as exc:
                show_error(self, "Cannot relight the folder", str(exc))
                return None
        else:
            engine = self.model.relighter if self.model.ready and self.model.trained else None
            if engine is None:  # Start must not do nothing, silently
                show_error(self, "Cannot relight the folder", self.model_problem())
                return None
        try:
            jobs = folder_jobs(folder, sources_only=choice != 0)
            check_output_folder(jobs, Path(out))
        except RelightError as exc:
            show_error(self, "Cannot relight the folder", str(exc))
            return None
        suffix, bits = FORMATS[self.format.currentText()]
        self.settings.set("batch_input", folder)
        self.settings.set("batch_output", out)
        self.errors.clear()
        self.open_button.setEnabled(False)
        self.progress.setValue(0)  # a new batch starts empty, not at the last one's N/N
        self.progress.setFormat(f"0/{len(jobs)}")
        # photos without depth get it estimated, as in a single relight, when the depth model is there
        from .relight_tab import depth_model_installed

        estimate = depth_model_installed(self.settings)
        # one pair at a time on the CPU, so Cancel stops after the current pair
        batch_size = 1 if getattr(getattr(engine, "device", None), "type", "cpu") == "cpu" else None

        def work(progress, cancel):
            return relight_folder(
                session,
                jobs,
                out,
                engines,
                estimate_depth=estimate,
                suffix=suffix,
                bit_depth=bits,
                progress=progress,
                cancel=cancel,
                batch_size=batch_size,
            )

        self.worker = Operation(
            self,
            "Relighting the folder",
            work,
            progress=self._progress,
            success=self._done,
            cancelled=lambda: self.status.setText("Cancelled; the pairs relit so far are in the output folder."),
            finished=self._finished,
        )
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        lacking = any(j.source.depth is None or (choice == 0 and j.guide.depth is None) for j in jobs)
        missing = (
            (
                "; photos without a depth map are skipped until the depth model is installed (Download model… "
                "on a card, or Settings → Depth model)"
            )
            if lacking and not estimate
            else ""
        )
        self.status.setText(f"Relighting {len(jobs)} pairs…{missing}")
        return self.worker.run()

    def model_problem(self) -> str:
        """Why S3Net cannot relight the folder now, as the Relight tab's banner says it."""
        if self.model.busy:
            return "The model is still loading; press Start again when it is loaded."
        if self.model.relighter is None:
            return " ".join(filter(None, ("No model is loaded.", self.model.error, "Choose a checkpoint in Settings.")))
        return (
            "This checkpoint holds untrained weights; its output would not be a relighting. "
            "Choose a trained checkpoint in Settings."
        )

    def _progress(self, fraction: float, message: str) -> None:
        count, _, note = message.partition(" ")
        if note.startswith("skipped "):
            self.errors.addItem(note.removeprefix("skipped "))
        self.progress.setValue(int(fraction * 1000))
        self.progress.setFormat(message)

    def _done(self, report) -> None:
        text = f"wrote {len(report.written)} of {report.total}" + (" (cancelled)" if report.cancelled else "")
        if report.cancelled:
            self.progress.setFormat(f"cancelled: {len(report.written)}/{report.total} written")
        skipped = f"; {len(report.failed)} skipped (listed below)" if report.failed else ""
        self.status.setText(f"{text} into {report.out}{skipped}")

    def _finished(self) -> None:
        self.worker = None
        self.show_guides()  # what the session changed to while the batch ran
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.open_button.setEnabled(Path(self.output.text()).is_dir())

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.status.setText("Cancelling after this pair…")

    def open_output(self) -> bool:
        """Show the output folder in the file manager, or say where it is when none can be started."""
        folder = self.output.text().strip()
        if QDesktopServices.openUrl(QUrl.fromLocalFile(folder)):
            return True
        show_error(
            self,
            "Cannot open the folder",
            f"No file manager could be started to show the output folder. The files are in:\n{folder}",
        )
        return False

    def closeEvent(self, ev):
        self.cancel()
        super().closeEvent(ev)
