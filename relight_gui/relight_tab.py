"""Relight tab: source and guide cards, relight with progress and cancel, compare, save."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from core.base.errors import RelightError
from core.base.vocab import KELVIN_RANGE, OUTPUT_MODES, Engine
from core.depth.estimation import default_model_dir, find_depth_model, inspect_depth_model
from core.depth.store import DEPTH_ANYTHING_V2_SMALL, download_model
from core.engine.guides import CompassGuides
from core.engine.normals import NormalsPreview
from core.inputs import Input
from core.inputs.input import InputFiles, load_input
from core.inputs.pairing import find_depth, ntire_pairs, pair_dropped
from core.orchestration import Engines
from core.orchestration import relight as relight_session
from core.services import (
    DEPTH_SUFFIXES,
    EIGHT_BIT_ONLY,
    IMAGE_SUFFIXES,
    OUTPUT_SUFFIXES,
    is_bundled_model,
    write_depth,
    write_image,
)
from core.session import Session

from .dialogs import show_error
from .imaging import to_qimage
from .model_state import ModelState
from .session_view import SessionView
from .settings import KEEP_EXPOSURE, Settings
from .widgets.compare_view import COMPARE_MODES, CompareView
from .widgets.compass import CompassPanel
from .widgets.input_card import InputCard
from .widgets.overflow_row import OverflowRow
from .workers import QUEUED, LatestWins, Operation

SAVE_FILTERS = [
    "PNG 16-bit (*.png)",
    "PNG 8-bit (*.png)",
    "TIFF 16-bit (*.tif *.tiff)",
    "TIFF 8-bit (*.tif *.tiff)",
    "JPEG 8-bit (*.jpg *.jpeg)",
] + (["WebP 8-bit (*.webp)"] if ".webp" in OUTPUT_SUFFIXES else [])
EXPOSURE_CHOICES = {"auto": "auto", "keep": "photo's", "network": "network's"}


def labelled(text: str, combo: QComboBox) -> QWidget:
    """A label and its combo box as one toolbar control (they move into the More menu together)."""
    w = QWidget()
    lay = QHBoxLayout(w)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.setSpacing(4)
    lay.addWidget(QLabel(text))
    lay.addWidget(combo)
    return w


def depth_model_folder(settings: Settings) -> Path | None:
    """The configured depth model's folder when it is there and every file checks out."""
    try:
        folder = find_depth_model(settings.get("depth_model") or None)
        if folder is not None:
            inspect_depth_model(folder)
        return folder
    except RelightError:
        return None


def depth_model_installed(settings: Settings) -> bool:
    return depth_model_folder(settings) is not None


def has_depth(x) -> bool:
    """A loaded input with its depth map (what a relight needs of the source and a guide photo)."""
    return isinstance(x, Input) and x.has_depth


def input_paths(x) -> list[Path]:
    """The files a loaded input was read from: its image and its depth map."""
    if not isinstance(x, Input):
        return []
    depth = x.depth.path if x.depth is not None else None
    return [p for p in (x.files.image if x.files else None, depth) if p]


def model_note(info) -> str:
    """One line under a result made by the bundled model: it learnt from synthetic scenes only; a
    link to its card. Empty for other models (the result line names every model)."""
    if info is None or not is_bundled_model(info.path):
        return ""
    card = QUrl.fromLocalFile(str(info.path.with_suffix(".md"))).toString()
    return (
        f"<a href='{card}'>Bundled model</a>, trained on synthetic scenes only: "
        "for real photos use the official weights or fine-tune."
    )


class RelightTab(QWidget):
    resultReady = Signal(object)  # RelightResult
    statusMessage = Signal(str)
    modelCardRequested = Signal()
    depthModelChosen = Signal(str)  # a folder picked after a failed download

    def __init__(self, model: ModelState, settings: Settings, parent=None):
        super().__init__(parent)
        self.model, self.settings = model, settings
        self._estimating: set[InputCard] = set()  # cards whose depth estimate is running
        self._model_folder = depth_model_folder(settings)  # the usable depth model, when there is one
        # the relight these widgets show and edit: its inputs, and its result with whether it is stale
        self.session = Session(output=settings.output_settings(), settings=settings.engine_settings())
        # what the result was made from (source file and image, guide, model): its name and its
        # comparison follow these, not the inputs opened since
        self.result_from: dict | None = None
        self.source_changed = False  # ... and the source too: the view shows the new source instead
        self.worker: Operation | None = None
        self.guides = CompassGuides()  # preview guides, rendered in memory
        # the engines and caches this tab owns: shared by its relight, live preview and batch
        self.engines = Engines(guides=self.guides)
        self.preview = LatestWins("Live preview", self)
        self.preview.succeeded.connect(self._preview_ready, QUEUED)
        self.preview.failed.connect(self._preview_failed, QUEUED)
        self._relight_again = False
        self._previews_stale = False  # a full relight started after the pending previews were asked for
        self.guide_image = None  # the guide of the last result (photo or rendered)
        self._panel_wanted: int | None = None  # the inputs panel's width when the window allows it
        self._view = "inputs"  # what the compare view shows: "inputs", "result" or "preview"
        self._batch_dialog = None  # the batch dialog, once opened (shown again, not made anew)

        inputs = self._build_inputs()
        self._build_run_row()
        self._build_view_row()
        self._build_result_labels()
        self._fit_buttons_to_text()
        self._build_layout(inputs)
        self.session_view = SessionView(self.session, self)
        self.session_view.changed.connect(self._session_changed)
        for signal in (model.loading, model.loaded, model.failed):
            signal.connect(lambda *_: self._use_model())
        self._use_model()
        self.refresh_recent()
        self.update_state()

    @property
    def result(self):
        """The session's last result (a RelightResult), or None."""
        return self.session.result

    @property
    def stale(self) -> bool:
        """The inputs changed since the result."""
        return self.session.stale

    def _use_model(self) -> None:
        """The engines relight with the model the Settings tab loaded (none while it loads)."""
        self.engines.use_relighter(self.model.relighter if self.model.ready else None)

    def _build_inputs(self) -> QVBoxLayout:
        """The source card, Swap, and the guide side: a guide photo or the light compass."""
        self.source_card = InputCard("Source")
        self.guide_card = InputCard("Guide")
        self.swap_button = QPushButton("⇅ Swap")
        self.swap_button.setToolTip("Swap source and guide")
        self.swap_button.clicked.connect(self.swap)
        # the guide side: a guide photo, or the light compass (a guide rendered from numbers)
        self.compass = CompassPanel()
        # the whole range the renderer and `relight infer --temperature` accept
        lo, hi = KELVIN_RANGE
        self.compass.slider.setRange(lo // 100, hi // 100)
        # the label as wide as its widest text: the slider's handle stays put when "9900 K" becomes "10000 K"
        label = self.compass.kelvin_label
        label.setFixedWidth(label.fontMetrics().horizontalAdvance(f"{hi} K") + 6)
        label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.guide_tabs = QTabWidget()
        self.guide_tabs.setObjectName("guide_tabs")
        self.guide_tabs.addTab(self.guide_card, "Guide photo")
        self.guide_tabs.addTab(self.compass, "Light compass")
        self.guide_tabs.currentChanged.connect(self._guide_tab_chosen)
        self.compass.changing.connect(self.compass_changing)
        self.compass.changed.connect(self.compass_changed)
        for card in (self.source_card, self.guide_card):
            card.filesDropped.connect(lambda paths, c=card: self.handle_drop(c, paths))
            card.openRequested.connect(lambda c=card: self.open_dialog(c))
            card.recentChosen.connect(lambda i, d, c=card: self.load_into(c, InputFiles(i, d or None)))
            card.estimateRequested.connect(lambda c=card: self.estimate_depth(c))
            card.downloadRequested.connect(self.download_depth_model)
            card.saveDepthRequested.connect(lambda c=card: self.save_depth_dialog(c))
        # the inputs live in a side panel; the picture gets the rest of the window
        cards = QVBoxLayout()
        cards.addWidget(self.source_card, 1)
        cards.addWidget(self.swap_button, 0, Qt.AlignmentFlag.AlignHCenter)
        cards.addWidget(self.guide_tabs, 1)
        return cards

    def _build_run_row(self) -> None:
        """Relight, Cancel, the output mode and exposure, Save, Copy, Batch; the progress bar and banner."""
        output = self.session.output
        self.relight_button = QPushButton("Relight")
        self.relight_button.setObjectName("relightButton")
        self.relight_button.setMinimumWidth(120)
        self.relight_button.setStyleSheet("font-weight: bold;")
        self.relight_button.clicked.connect(self.relight)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.mode_combo = QComboBox()
        self.mode_combo.addItems(list(OUTPUT_MODES))
        self.mode_combo.setCurrentText(output.mode.value)
        self.mode_combo.currentTextChanged.connect(lambda m: self._edit_output(mode=m))
        self.mode_combo.setToolTip(
            "auto = detail: the network's lighting on the source's own detail, at any size\n"
            "full: the network's own image at full resolution (soft)\n"
            "gain-map: a working resolution + guided-filter gain map"
        )
        # detail output: whether the result keeps the source's brightness, and stops up or down
        self.exposure_combo = QComboBox()
        for key, label in EXPOSURE_CHOICES.items():
            self.exposure_combo.addItem(label, key)
        self._show_exposure(output.keep_exposure)
        self.exposure_combo.currentIndexChanged.connect(
            lambda _i: self._edit_output(keep_exposure=KEEP_EXPOSURE[self.exposure_combo.currentData()])
        )
        self.exposure_combo.setToolTip(
            "auto: under the light compass the photo keeps its brightness; with a guide photo\n"
            "the guide's brightness is part of the target\n"
            "keep: always the source's brightness; network: always the network's"
        )
        self.ev_spin = QDoubleSpinBox()
        self.ev_spin.setRange(-4.0, 4.0)
        self.ev_spin.setSingleStep(0.25)
        self.ev_spin.setSuffix(" EV")
        self.ev_spin.setValue(float(output.exposure))
        self.ev_spin.valueChanged.connect(lambda v: self._edit_output(exposure=float(v)))
        self.ev_spin.setToolTip("Brighten (+) or darken (-) the result by this many stops")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        self.progress.setMinimumWidth(60)
        self.banner = QLabel("")
        self.banner.setWordWrap(True)
        self.save_button = QPushButton("Save…")
        self.save_button.clicked.connect(self.save_dialog)
        self.copy_button = QPushButton("Copy")
        self.copy_button.clicked.connect(self.copy_result)
        self.batch_button = QPushButton("Batch…")
        self.batch_button.setToolTip("Relight a whole folder (Ctrl+B)")
        self.batch_button.clicked.connect(self.open_batch)
        # the toolbars keep every control at its full width; what does not fit goes into "More ▾"
        self.run_row = OverflowRow()
        self.run_row.setObjectName("run_row")
        self.run_row.add(self.relight_button)
        self.run_row.add(self.cancel_button)
        self.run_row.add(labelled("Output:", self.mode_combo))
        exposure = labelled("Exposure:", self.exposure_combo)
        exposure.layout().addWidget(self.ev_spin)
        self.run_row.add(exposure)
        for w in (self.save_button, self.copy_button, self.batch_button):
            self.run_row.add(w)

    def _build_view_row(self) -> None:
        """The compare view and its controls: compare mode, difference gain, against what, Fit, 1:1."""
        self.compare = CompareView()
        self.mode_group = QButtonGroup(self)
        self.view_row = OverflowRow()
        self.view_row.setObjectName("view_row")
        for i, (mode, label) in enumerate(COMPARE_MODES.items()):
            b = QPushButton(label)
            b.setCheckable(True)
            b.setChecked(mode == "split")
            b.setObjectName(f"mode_{mode}")
            # the view keeps the keyboard (hold Space in Toggle mode), not the button just clicked
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            self.mode_group.addButton(b, i)
            b.clicked.connect(lambda _=False, m=mode: (self.compare.set_mode(m), self.compare.setFocus()))
            self.view_row.add(b)
        self.gain = QComboBox()
        self.gain.setObjectName("difference_gain")
        self.gain.addItems([f"×{g}" for g in (1, 2, 4, 8, 16)])
        self.gain.setCurrentText("×4")
        self.gain.setToolTip("Difference gain: amplification of |after − before| (in the Difference view)")
        self.gain.currentTextChanged.connect(lambda t: self.compare.set_difference_gain(float(t[1:])))
        self.view_row.add(labelled("Gain", self.gain))
        self.compare.modeChanged.connect(self._follow_compare_mode)
        self._follow_compare_mode(self.compare.mode)
        self.against = QComboBox()
        self.against.setToolTip("Compare the result with the source or with the guide")
        self.against.addItems(["source", "guide"])
        self.against.currentTextChanged.connect(lambda _: self.show_result())
        self.view_row.add(labelled("vs", self.against))
        self.fit_button = QPushButton("Fit")
        self.fit_button.clicked.connect(self.compare.fit)
        self.one_button = QPushButton("1:1")
        self.one_button.clicked.connect(self.compare.actual_size)
        for w in (self.fit_button, self.one_button):
            self.view_row.add(w, trailing=True)

    def _follow_compare_mode(self, mode: str) -> None:
        """The mode's button is the checked one, and the gain is offered only where it acts."""
        self.mode_group.button(list(COMPARE_MODES).index(mode)).setChecked(True)
        self.gain.setEnabled(mode == "difference")

    def _build_result_labels(self) -> None:
        self.result_label = QLabel(" ")
        self.result_label.setWordWrap(True)  # a long model name must not widen the window
        # which model made the result, and a note with a link to its card when it is the bundled one
        self.model_note = QLabel("")
        self.model_note.setObjectName("model_note")
        self.model_note.setWordWrap(True)
        self.model_note.setTextFormat(Qt.TextFormat.RichText)
        self.model_note.linkActivated.connect(lambda _href: self.modelCardRequested.emit())
        self.model_note.setToolTip("Open the model card (Settings tab)")
        self.model_note.hide()

    def _fit_buttons_to_text(self) -> None:
        """Buttons may narrow to their text (the style's 80 px is a preference)."""
        for b in (
            self.cancel_button,
            self.fit_button,
            self.one_button,
            self.save_button,
            self.copy_button,
            self.batch_button,
            *self.mode_group.buttons(),
        ):
            b.setMinimumWidth(b.fontMetrics().horizontalAdvance(b.text()) + 20)

    def _build_layout(self, inputs: QVBoxLayout) -> None:
        """The inputs panel (it scrolls in a small window) beside the toolbars, the view and the labels."""
        top = QWidget()
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addLayout(inputs)
        top.setMinimumWidth(240)
        panel = QScrollArea()  # small windows scroll the inputs instead of squeezing the picture
        panel.setWidget(top)
        panel.setWidgetResizable(True)
        panel.setFrameShape(QScrollArea.Shape.NoFrame)
        panel.setMinimumWidth(250)
        bottom = QWidget()
        bl = QVBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        bl.addWidget(self.run_row)
        bl.addWidget(self.progress)
        bl.addWidget(self.banner)
        bl.addWidget(self.view_row)
        bl.addWidget(self.compare, 1)
        bl.addWidget(self.result_label)
        bl.addWidget(self.model_note)
        # no fixed minimum width here: the toolbars' own minimum holds, so a narrow window never
        # squeezes the buttons over each other (the splitter and the window respect it)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(panel)
        self.splitter.addWidget(bottom)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([380, 900])
        self.splitter.splitterMoved.connect(lambda pos, _i: setattr(self, "_panel_wanted", pos))
        lay = QVBoxLayout(self)
        lay.addWidget(self.splitter)

    def resizeEvent(self, ev):
        super().resizeEvent(ev)
        # in a small window the inputs panel gives way to the picture (at most 45 % of the width);
        # it grows back to the width it had (or was dragged to) when the window grows again
        sizes = self.splitter.sizes()
        total = sum(sizes)
        if not total:
            return
        if self._panel_wanted is None:
            self._panel_wanted = sizes[0]
        cap = max(self.splitter.widget(0).minimumWidth(), int(total * 0.45))
        want = min(self._panel_wanted, cap)
        if sizes[0] != want:
            self.splitter.setSizes([want, total - want])

    # ---- inputs ---------------------------------------------------------------------------
    def open_dialog(self, card: InputCard) -> None:
        exts = " ".join(f"*{s}" for s in sorted(set(IMAGE_SUFFIXES + DEPTH_SUFFIXES)))
        files, _ = QFileDialog.getOpenFileNames(
            self,
            f"Open {card.title.lower()} image and depth",
            self.settings.get("input_dir"),
            f"Images and depth maps ({exts});;All files (*)",
        )
        if files:
            self.handle_drop(card, [Path(f) for f in files])

    def handle_drop(self, card: InputCard, paths: list[Path]) -> None:
        """Pair dropped files/folders by name and load them; refuse with the reason when they cannot be paired."""
        paths = [Path(p) for p in paths]
        if len(paths) == 1 and paths[0].is_dir() and (paths[0] / "input").is_dir() and (paths[0] / "guide").is_dir():
            try:
                pair = ntire_pairs(paths[0])[0]
            except RelightError as exc:
                show_error(self, "Cannot open the folder", str(exc))
                return
            self.load_into(self.source_card, pair.source)
            self.load_into(self.guide_card, pair.guide)
            return
        pairs, problems = pair_dropped(paths)
        if not pairs:
            show_error(self, "Cannot open the dropped files", "Nothing to open:\n\n• " + "\n• ".join(problems))
            return
        if len(pairs) >= 2:
            self.load_into(self.source_card, pairs[0])
            self.load_into(self.guide_card, pairs[1])
        else:
            self.load_into(card, pairs[0])
        if problems:
            self.statusMessage.emit("Some files were not used: " + "; ".join(problems))

    def load_into(self, card: InputCard, files: InputFiles) -> Operation:
        if files.depth is None:
            files = InputFiles(files.image, find_depth(files.image))

        def done(inp):
            setattr(self.session, self.role(card), inp)  # the card shows it (_session_changed)
            card.show_model_state(depth_model_installed(self.settings))
            self.settings.add_recent(str(files.image), str(files.depth or ""))
            self.settings.set("input_dir", str(files.image.parent))  # Open… starts here next time
            self.refresh_recent()
            self.update_state()
            self._estimate_if_waiting(card)

        return Operation(
            self,
            f"Opening {files.image.name}",
            lambda progress, cancel: load_input(files),
            success=done,
            error_title=f"Cannot open the {card.title.lower()}",
        ).run()

    def role(self, card: InputCard) -> str:
        """What the card shows of the session: "source" or "guide"."""
        return "source" if card is self.source_card else "guide"

    def card_for(self, role: str) -> InputCard:
        return self.source_card if role == "source" else self.guide_card

    def _estimate_if_waiting(self, card: InputCard) -> None:
        """Estimating on open (a setting): a loaded photo without depth gets it once a model is there."""
        inp = getattr(self.session, self.role(card))
        if (
            isinstance(inp, Input)
            and not inp.has_depth
            and self.settings.get("auto_depth")
            and depth_model_installed(self.settings)
        ):
            self.estimate_depth(card)

    def estimate_depth(self, card: InputCard) -> Operation | None:
        """Estimate the card's missing depth map in the background (cached per image by the estimator).
        Returns None when there is nothing to do or the card's estimate is already running."""
        role = self.role(card)
        inp = getattr(self.session, role)
        if not isinstance(inp, Input) or card in self._estimating:
            return None
        image = inp.image
        fill = self.engines.depth_filler(self.session.settings)

        def work(progress, cancel):
            progress(0.1, "loading the depth model")
            estimator = fill.load()
            cancel.check()
            progress(0.4, f"estimating depth with {estimator.name}")
            return fill(inp, card.title.lower(), again=True).depth  # checked to be the image's size

        def same_image() -> bool:
            now = getattr(self.session, role)
            return isinstance(now, Input) and now.image is image

        def done(depth):
            if same_image():  # the session still holds that image
                setattr(self.session, role, replace(getattr(self.session, role), depth=depth))
                self.statusMessage.emit(f"{card.title}: depth {depth.origin}")
            self.update_state()

        def finished():
            self._estimating.discard(card)
            card.estimate_button.setEnabled(True)
            self.update_state()
            if getattr(self.session, role) is not None and not same_image():
                self._estimate_if_waiting(card)  # another photo was opened on the card meanwhile

        self._estimating.add(card)
        card.estimate_button.setEnabled(False)
        started = Operation(
            self,
            "Estimating depth",
            work,
            progress=lambda f, m: self.statusMessage.emit(m),
            success=done,
            finished=finished,
            error_title="Cannot estimate the depth",
        ).run()
        self.update_state()  # the hint says the depth is on its way
        return started

    def open_batch(self):
        """The batch dialog: relight a whole folder with the current model, output mode and guide."""
        from .batch_dialog import BatchDialog

        self._use_model()
        # one dialog, shown again: each new one would stay alive and go on following the session
        dialog = self._batch_dialog
        if dialog is None:
            dialog = BatchDialog(
                self.session,
                self.engines,
                self.settings,
                self.model,
                compass=lambda: (self.compass.light, self.compass.engine),
                parent=self,
            )
            dialog.setModal(False)
            self._batch_dialog = dialog
            dialog.destroyed.connect(lambda _obj=None: setattr(self, "_batch_dialog", None))
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
        return dialog

    def running_batch(self):
        """The batch dialog while it relights a folder, else None."""
        dialog = self._batch_dialog
        return dialog if dialog is not None and dialog.worker is not None else None

    def save_depth_dialog(self, card: InputCard) -> None:
        if card.depth is None:
            return
        stem = card.image_path.stem if card.image_path else "depth"
        start = str(Path(self.settings.get("output_dir")) / f"{stem}_depth.png")
        filters = "16-bit PNG (*.png);;NumPy float32 (*.npy);;VIDIT depth dict (*.npy)"
        path, chosen = QFileDialog.getSaveFileName(self, "Save the depth map", start, filters)
        if path:
            fmt = "png16" if chosen.startswith("16-bit") else "vidit" if "VIDIT" in chosen else "npy"
            self.save_depth(card, Path(path), fmt)

    def save_depth(self, card: InputCard, path: Path, fmt: str = "png16") -> Operation | None:
        """Write the card's (estimated) depth map; never over an input."""
        data = card.depth.data
        return self._write_in_background(path, lambda: write_depth(path, data, fmt), "the depth map")

    def _write_in_background(self, path: Path, write, what: str, on_saved=None) -> Operation | None:
        """Run `write` in a worker (encoding a large image takes seconds); refuse a path that is one
        of the inputs. Returns the worker, or None when the name was refused."""
        inputs = [p for x in (self.session.source, self.session.guide) for p in input_paths(x)]

        def same(a: Path, b: Path) -> bool:
            try:
                return a.resolve() == b.resolve()
            except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
                return False

        if any(same(path, p) for p in inputs):
            show_error(self, "Not saved", f"{path.name} is one of the inputs; choose another name.")
            return None
        return Operation(
            self,
            f"Saving {path.name}",
            lambda progress, cancel: write(),
            success=lambda p: (on_saved and on_saved(), self.statusMessage.emit(f"Saved {what} to {p}")),
            error_title="Not saved",
        ).run()

    def refresh_depth_model(self) -> None:
        """The depth model setting changed (or a download finished): the cards' Estimate/Download
        offers follow it, and photos waiting for depth get it when estimating on open is on."""
        self.refresh_engine_settings()
        folder = depth_model_folder(self.settings)
        installed = folder is not None
        # a usable model that was not there before (after none, or after a damaged one): photos
        # waiting for depth get it; re-saving the same folder does not estimate again
        arrived = installed and folder != self._model_folder
        self._model_folder = folder
        for c in (self.source_card, self.guide_card):
            c.show_model_state(installed)
            if c in self._estimating:
                c.estimate_button.setEnabled(False)
            if arrived:
                self._estimate_if_waiting(c)

    def download_depth_model(self) -> Operation | None:
        """Download Depth Anything V2 Small on request, with progress and cancel."""
        from PySide6.QtWidgets import QMessageBox, QProgressDialog

        m = DEPTH_ANYTHING_V2_SMALL
        ok = QMessageBox.question(
            self,
            "Download the depth model",
            f"Download {m.title} ({m.licence}, about 99 MB) from huggingface.co/{m.repo}?\n"
            "It is used to estimate depth maps for photos that have none.",
        )
        if ok != QMessageBox.StandardButton.Yes:
            return None
        dialog = QProgressDialog(f"Downloading {m.title}…", "Cancel", 0, 1000, self)
        dialog.setWindowTitle("Download")
        dialog.setMinimumDuration(0)

        def finished():
            dialog.reset()
            self.refresh_depth_model()

        op = Operation(
            self,
            "Download",
            lambda progress, cancel: download_model(m.name, progress=progress, cancel=cancel),
            progress=lambda f, msg: (dialog.setValue(int(f * 1000)), dialog.setLabelText(msg)),
            success=lambda path: self.statusMessage.emit(f"{m.title} installed in {path}"),
            failure=self.download_failed,  # says how to bring the model from another computer
            finished=finished,
        )
        dialog.canceled.connect(op.cancel)
        return op.run()

    def download_failed(self, msg: str):
        """Say what went wrong and how to bring the model from another computer; offer its folder."""
        from PySide6.QtWidgets import QMessageBox

        m, here = DEPTH_ANYTHING_V2_SMALL, default_model_dir()
        box = QMessageBox(QMessageBox.Icon.Warning, "Download failed", msg, QMessageBox.StandardButton.NoButton, self)
        box.setObjectName("downloadFailed")
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setInformativeText(
            f"To bring {m.title} from a computer that has it (or that can reach huggingface.co/{m.repo}): copy its "
            f"folder — config.json, model.safetensors and preprocessor_config.json — to this computer, then either "
            f"choose that folder here, put it at {here}, or run\n\n    relight models install PATH\n\n"
            "which checks the files' checksums and copies them into place."
        )
        choose = box.addButton("Choose folder…", QMessageBox.ButtonRole.ActionRole)
        box.addButton(QMessageBox.StandardButton.Close)
        choose.clicked.connect(self.choose_depth_model_folder)
        box.finished.connect(box.deleteLater)
        box.open()
        return box

    def choose_depth_model_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Choose the depth model folder", str(Path.home()))
        if path:
            self.depthModelChosen.emit(path)  # the Settings tab checks it and saves it

    def refresh_recent(self) -> None:
        for card in (self.source_card, self.guide_card):
            card.set_recent(self.settings.recent())

    def swap(self) -> None:
        self.session.update(source=self.session.guide, guide=self.session.source)

    # ---- the session: widgets edit it, and follow its changes -----------------------------
    def _edit_output(self, **change) -> None:
        self.session.output = replace(self.session.output, **change)

    def _guide_tab_chosen(self, index: int) -> None:
        """The guide side's tab: a guide photo (no light), or the light compass (its light and engine)."""
        compass = index == 1
        self.session.update(
            light=self.compass.light if compass else None,
            engine=self.compass.engine if compass else Engine.S3NET,
        )
        self.update_state()
        self.compass_changing(self.compass.light)

    def _session_changed(self, name: str) -> None:
        if name in ("source", "guide"):
            self._show_input(name)
        elif name == "light":
            self._show_light()
        elif name == "engine":
            self._show_engine()
        elif name == "output":
            self._show_output()
        if name in Session.INPUTS:
            self._show_inputs_changed(name)
        if name == "stale" or (name in Session.INPUTS and self.stale):
            self._show_stale()
        if name == "result":
            self._show_new_result()
        self.update_state()

    def _show_input(self, role: str) -> None:
        card, value = self.card_for(role), getattr(self.session, role)
        if isinstance(value, InputFiles):  # files named, not read yet: read them, then show them
            self.load_into(card, value)
        elif value is None:
            card.clear()
        elif card.input is not value:
            card.set_input(value)

    def _show_light(self) -> None:
        """A light: the compass shows it on its tab; none: the guide photo's tab."""
        light = self.session.light
        if light is not None:
            outside = light != self.compass.light  # a light set outside the compass
            if outside:
                self.compass.set_light(light)
            # a dragged compass has drawn its guide already; the starting light has not
            if self.session.engine is Engine.S3NET and (outside or not self.compass.shows_guide):
                self.show_compass_guide(light)
        self.guide_tabs.blockSignals(True)
        self.guide_tabs.setCurrentIndex(0 if light is None else 1)
        self.guide_tabs.blockSignals(False)

    def _show_engine(self) -> None:
        if self.session.uses_light:
            self.compass.show_engine(self.session.engine)

    def _show_output(self) -> None:
        output = self.session.output
        for w in (self.mode_combo, self.exposure_combo, self.ev_spin):
            w.blockSignals(True)
        self.mode_combo.setCurrentText(output.mode.value)
        self._show_exposure(output.keep_exposure)
        self.ev_spin.setValue(float(output.exposure))
        for w in (self.mode_combo, self.exposure_combo, self.ev_spin):
            w.blockSignals(False)
        self.settings.save_output(output)  # the next start opens with these

    def _show_exposure(self, keep: bool | None) -> None:
        key = next(k for k, v in KEEP_EXPOSURE.items() if v is keep)
        self.exposure_combo.setCurrentIndex(max(0, self.exposure_combo.findData(key)))

    def _show_inputs_changed(self, name: str) -> None:
        """An input changed. A new source replaces the old pair's result in the view (the result is
        kept: Save still writes it); a live preview on view keeps its place."""
        self.source_changed = self.source_changed or name == "source"
        if self.worker is None:  # the bar's "done" was about the earlier inputs
            self.progress.setValue(0)
            self.progress.setFormat("")
        if name not in ("source", "guide") or (self._view == "preview" and name != "source"):
            return
        if self.result is None or self.source_changed:
            self.show_inputs()

    def _show_stale(self) -> None:
        """The result no longer belongs to the inputs: say so until the next run (a live preview's
        own line stays: it says the full result follows)."""
        if self.result is None or self._view == "preview":
            return
        made = self.result_from or {}
        self.result_label.setText(
            f"Stale: the inputs changed since this result (made from {made.get('source_name', '?')} "
            f"with {made.get('guide', '?')}). Relight to update it. ({self.result.describe()})"
        )
        if self._view == "result":
            self.compare.labels = (self.compare.labels[0], "relit (stale)")
            self.compare.update()

    def refresh_engine_settings(self) -> None:
        """The Settings tab changed how the engines run (device, precision, fast path, depth model)."""
        settings = self.settings.engine_settings()
        if settings != self.session.settings:
            self.session.settings = settings

    def show_inputs(self) -> None:
        """No result for these inputs yet: the view shows the source (or nothing) under the next-step hint."""
        src = self.session.source
        self.compare.set_images(src.image if isinstance(src, Input) else None, None, ("source", ""))
        self._view = "inputs"

    def set_colormap(self, cmap: str) -> None:
        for card in (self.source_card, self.guide_card):
            card.set_colormap(cmap)

    # ---- running --------------------------------------------------------------------------
    def update_state(self) -> None:
        running = self.worker is not None
        session = self.session
        ready = has_depth(session.source) and (session.uses_light or has_depth(session.guide))
        normals = self.normals_active  # the normals engine needs no model
        if self.model.busy and not normals:
            self.banner.setText("Loading the model…")
        elif self.model.relighter is None and not normals:
            self.banner.setText(
                f"<span style='color:#d9534f'><b>No model loaded.</b> {self.model.error or ''} "
                "Choose a checkpoint in Settings (e.g. the official weight.pkl).</span>"
            )
        elif not self.model.trained and not normals:
            self.banner.setText(
                "<span style='color:#d9534f'><b>This checkpoint holds untrained weights</b>; "
                "its output would not be a relighting. Choose a trained checkpoint in Settings.</span>"
            )
        elif not ready:
            roles = ("source",) if session.uses_light else ("source", "guide")
            missing = [r for r in roles if getattr(session, r) is None]
            no_depth = [r for r in roles if getattr(session, r) is not None and not has_depth(getattr(session, r))]
            parts = []
            if missing:
                parts.append(
                    f"Open or drop the {' and the '.join(missing)} (an image, with its depth map if you have one)."
                )
            parts += [self.depth_step(r) for r in no_depth]
            self.banner.setText(" ".join(parts))
        else:
            warn = [
                f"{self.card_for(r).title}: {w}"
                for r in ("source", "guide")
                if isinstance(getattr(session, r), Input)
                for w in getattr(session, r).warnings()
            ]
            idle = "Relighting…" if running else "Ready."
            self.banner.setText(("⚠ " + "; ".join(warn) + ". ") if warn else idle)
        self.compare.set_hint(self.next_step(ready, running))
        can = ready and (normals or (self.model.ready and self.model.trained)) and not running
        self.relight_button.setEnabled(can)
        self.cancel_button.setEnabled(running)
        self.save_button.setEnabled(self.result is not None and not running)
        self.save_button.setToolTip(
            "Save the result (it is stale: the inputs changed since)" if self.stale else "Save the result (Ctrl+S)"
        )
        self.copy_button.setEnabled(self.result is not None)

    def next_step(self, ready: bool, running: bool) -> str:
        """The empty view's hint: what to do next, following the inputs as they load."""
        src, gui = self.session.source, self.session.guide
        if running:
            return "Relighting…"
        if src is None:
            return "Open or drop a source photo (with its depth map if you have one)."
        if not has_depth(src):
            return self.depth_step("source")
        if not ready:
            if gui is not None and not has_depth(gui):
                step = self.depth_step("guide")
                return step if self.guide_card in self._estimating else step + " Or use the Light compass tab."
            return "Next: open or drop a guide photo, or choose a light on the Light compass tab."
        if self.model.busy or self.model.relighter is None:
            return "Loading the model…"
        if self.session.uses_light:
            return "The source and the light are ready: press Relight (Ctrl+R)."
        return "Both inputs are ready: press Relight (Ctrl+R)."

    def depth_step(self, role: str) -> str:
        """What to do about an input without depth, for the banner and the view's hint alike: wait for its
        estimate, estimate it, or get the model first (Estimate depth is disabled without one)."""
        if self.card_for(role) in self._estimating:
            return f"Estimating the {role}'s depth map…"
        if depth_model_installed(self.settings):
            return f"The {role} has no depth map: estimate it on its card (Estimate depth)."
        return f"The {role} has no depth map: open its depth map, or get the depth model on its card (Download model…)."

    def compose_settings(self, light):
        """How the detail output is composed: the light's temperature when the compass gives the
        light, and the exposure controls."""
        return self.session.output.compose(light)

    def relight(self) -> Operation | None:
        if not self.relight_button.isEnabled():
            return None
        self._use_model()
        session, engines = self.session.snapshot(), self.engines  # later edits do not reach this run
        src, light, photo = session.source, session.light, session.guide
        normals = session.engine is Engine.NORMALS
        try:
            if normals:
                engines.normals(session.settings)
        except RelightError as exc:  # e.g. the Settings tab names a device this machine lacks
            show_error(self, "Relighting failed", str(exc))
            return None
        self._previews_stale = True  # a preview finishing after this must not cover the full result
        made_from = {
            "source": src.files.image if src.files else None,
            "source_name": src.name,
            "source_image": src.image,
            "guide": light.describe() if light else photo.name,
            "info": None if normals else self.model.relighter.info,
            "session": session,
        }

        def work(progress, cancel):
            relit = relight_session(session, engines, progress=progress, cancel=cancel)
            # the light added from the depth map is compared with the source
            return relit.result, (relit.guide or relit.source).image

        self.worker = Operation(
            self,
            "Relighting",
            work,
            progress=self._progress,
            success=lambda payload: self._done(payload, made_from),
            cancelled=lambda: self.statusMessage.emit("Relighting cancelled"),
            finished=self._finished,
        )
        self.progress.setValue(0)
        self.progress.setFormat("starting…")
        w = self.worker.run()
        self.update_state()
        return w

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.progress.setFormat("cancelling…")

    def _progress(self, frac: float, msg: str) -> None:
        self.progress.setValue(int(frac * 1000))
        self.progress.setFormat(msg)

    def _done(self, payload, made_from: dict | None = None) -> None:
        res, self.guide_image = payload
        self.result_from = made_from
        # shown by _show_new_result; stale at once if an input changed while it ran
        self.session.set_result(res, (made_from or {}).get("session"))
        self.resultReady.emit(res)

    def _show_new_result(self) -> None:
        res = self.result
        self.source_changed = False
        self.show_result()
        info = (self.result_from or {}).get("info")
        self.result_label.setText(f"Result: {res.describe()}" + (f" · preset {info.preset}" if info else ""))
        note = model_note(info)
        self.model_note.setText(note)
        self.model_note.setVisible(bool(note))

    # ---- the light compass ----------------------------------------------------------------
    @property
    def compass_active(self) -> bool:
        return self.session.uses_light

    @property
    def normals_active(self) -> bool:
        return self.session.uses_light and self.session.engine is Engine.NORMALS

    def live_preview(self):
        """The live preview of the session (core.orchestration), or None."""
        self._use_model()
        try:
            return self.engines.preview(self.session)
        except RelightError:
            return None  # said when the full relight runs

    def compass_changing(self, light) -> None:
        """While the light moves: a preview at a small size; the newest request wins."""
        if not self.compass_active:
            return
        session = self.live_preview()
        if session is None and self.normals_active:
            return  # nothing to light yet
        if session is None:
            self.show_compass_guide(light)
            return

        self._previews_stale = False

        compose = self.compose_settings(light)

        def update():
            guide = session.guide(light)  # None: the normals engine has no guide
            return light, session.update(light, compose), guide.image if guide is not None else None, session

        self.preview.submit(update)

    def compass_changed(self, light) -> None:
        """On release: the session takes the light and engine; the full-resolution relight follows
        (queued behind a running one)."""
        if self.compass_active:
            self.session.update(light=light, engine=self.compass.engine)
        self.update_state()  # the engine may have changed, and with it what a relight needs
        self.compass_changing(light)
        if self.worker is not None:
            self._relight_again = True
        else:
            self.relight()

    def show_compass_guide(self, light) -> None:
        """The compass's picture of the guide for `light` (rendered small, off the GUI thread)."""
        self.preview.submit(lambda: (light, None, self.guides.guide(light, 192, 192).image, None))

    def _preview_ready(self, payload) -> None:
        light, image, guide, session = payload
        self.compass.show_guide(guide)
        if image is not None and session is self.live_preview() and self.worker is None and not self._previews_stale:
            self.compare.set_images(session.display, image, ("source", "preview"), keep_view=True)
            self._view = "preview"
            where = (
                session.describe() if isinstance(session, NormalsPreview) else f"network at {session.pw}×{session.ph}"
            )
            self.result_label.setText(
                f"Live preview ({light.describe()}), {where}; the full-resolution result follows on release"
            )

    def _preview_failed(self, msg: str) -> None:
        self.statusMessage.emit(f"Preview failed: {msg}")

    def _finished(self) -> None:
        self.worker = None
        if self._relight_again:
            self._relight_again = False
            self.update_state()
            self.relight()
        if self.progress.format() == "cancelling…":
            self.progress.setFormat("cancelled")
        self.update_state()

    def show_result(self) -> None:
        if self.result is None or self.source_changed:
            return
        made = self.result_from or {}
        ref = made.get("source_image") if self.against.currentText() == "source" else self.guide_image
        label = self.against.currentText()
        if ref is not None and ref.shape != self.result.image.shape:
            import cv2

            ref = cv2.resize(
                ref, (self.result.image.shape[1], self.result.image.shape[0]), interpolation=cv2.INTER_AREA
            )
        self.compare.set_images(
            ref, self.result.image, (label, "relit (stale)" if self.stale else "relit"), keep_view=True
        )
        self._view = "result"

    # ---- output ---------------------------------------------------------------------------
    def suggested_name(self) -> str:
        """The result's file name: the name of the source it was made from, "_relit" (not the source
        opened since)."""
        source = (self.result_from or {}).get("source")
        return (source.stem if source else "result") + "_relit"

    def confirm_stale_save(self) -> bool:
        """A stale result is saved only when the user says so: it was made from other inputs."""
        from PySide6.QtWidgets import QMessageBox

        made = self.result_from or {}
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "Save an earlier result?",
            f"This result was made from {made.get('source_name', '?')} with {made.get('guide', '?')}, "
            "not from the inputs open now. Save it anyway, or Relight first to save the current inputs' result.",
            QMessageBox.StandardButton.NoButton,
            self,
        )
        box.setObjectName("staleSaveDialog")
        box.setTextFormat(Qt.TextFormat.PlainText)
        save = box.addButton(f"Save it as {self.suggested_name()}…", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return box.clickedButton() is save

    def save_dialog(self) -> None:
        if self.result is None:
            return
        if self.stale and not self.confirm_stale_save():
            return
        start = str(Path(self.settings.get("output_dir")) / f"{self.suggested_name()}.png")
        path, chosen = QFileDialog.getSaveFileName(self, "Save the relit image", start, ";;".join(SAVE_FILTERS))
        if path:  # the dialog itself asks before replacing an existing file
            self.save(Path(path), 8 if "8-bit" in chosen else 16)

    def save(self, path: Path, bit_depth: int = 16) -> Operation | None:
        """Encode and write the result in a worker (a 16-bit PNG of a large image takes seconds).
        A typed extension is honoured (JPEG and WebP are 8-bit); an unknown one becomes .png, and
        the status line says so. Returns the worker, or None when the name was refused."""
        if path.suffix.lower() not in OUTPUT_SUFFIXES:
            self.statusMessage.emit(
                f"'{path.suffix or 'no extension'}' is not an image type this app writes; saving as PNG"
            )
            path = path.with_suffix(".png")
        if path.suffix.lower() in EIGHT_BIT_ONLY:
            bit_depth = 8
        image = self.result.image
        return self._write_in_background(
            path,
            lambda: write_image(path, image, bit_depth),
            f"the {bit_depth}-bit result",
            lambda: self.settings.set("output_dir", str(path.parent)),
        )

    def copy_result(self) -> None:
        if self.result is not None:
            QGuiApplication.clipboard().setImage(to_qimage(self.result.image))
            self.statusMessage.emit("Result copied to the clipboard")
