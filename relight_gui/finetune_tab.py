"""Fine-tune tab: dataset, base weights and hyperparameters; start/stop/resume core training with
live loss and validation curves, speed, ETA, the latest validation preview and a log."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from core.base.errors import RelightError
from core.base.vocab import PRECISIONS
from core.inputs.layouts import detect_layout, scan_ntire, scan_vidit
from core.services import model_size_note, model_sizes, vgg19_weights
from core.train.training import Callbacks, TrainConfig, train

from .dialogs import show_error
from .imaging import to_qimage
from .model_state import ModelState
from .settings import Settings
from .workers import Operation

CURVE_COLOURS = {"total": "#e6e6e6", "charbonnier": "#4c9be8", "wssim": "#f0a030", "perceptual": "#6cc070"}


def scan_dataset(folder: str) -> str:
    """A human summary of what a dataset folder holds (runs in a worker)."""
    layout = detect_layout(folder)
    if layout == "vidit":
        return scan_vidit(folder).summary()
    recs = scan_ntire(folder)
    with_gt = sum(r.target is not None for r in recs)
    text = f"NTIRE pair layout: {len(recs)} pairs, {with_gt} with ground truth"
    return text + ("" if with_gt else " — training needs a target/ folder with ground truth")


class SynthDialog(QDialog):
    def __init__(self, parent=None, folder: str = ""):
        super().__init__(parent)
        self.setWindowTitle("Generate a synthetic dataset")
        self.folder = QLineEdit(folder or str(Path.home() / "relight-synthetic"))
        self.scenes = QSpinBox()
        self.scenes.setRange(2, 100000)
        self.scenes.setValue(50)
        self.size = QSpinBox()
        self.size.setRange(64, 2048)
        self.size.setSingleStep(32)
        self.size.setValue(256)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.pairs = QSpinBox()
        self.pairs.setRange(0, 10000)
        self.pairs.setValue(8)
        form = QFormLayout(self)
        form.addRow("Folder", self.folder)
        form.addRow("Scenes (40 images each)", self.scenes)
        form.addRow("Image size", self.size)
        form.addRow("Seed", self.seed)
        form.addRow("Validation pairs", self.pairs)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)


class _TrainBridge(QObject):
    """Carries core training callbacks (worker thread) to the GUI thread as queued signals."""

    step = Signal(object)
    validation = Signal(object)
    message = Signal(str)
    checkpoint = Signal(str)


def run_progress(folder: str | Path) -> tuple[int, int] | None:
    """(last logged step, the run's total steps) of the run in `folder`, or None when it holds none.
    Read from config.json and metrics.jsonl, so no model state is loaded to decide what Resume offers."""
    folder = Path(folder)
    if not (folder / "state.pt").is_file():
        return None
    try:
        total = int(json.loads((folder / "config.json").read_text()).get("steps") or 0)
    except (OSError, ValueError, TypeError, AttributeError):
        total = 0
    steps = [r["step"] for r in read_metrics(folder) if "step" in r]
    return (max(steps) if steps else 0), total


def read_metrics(folder: str | Path, limit: int = 64 << 20) -> list[dict]:
    """The records of a run's metrics.jsonl (losses per step, validation), skipping damaged lines."""
    path = Path(folder) / "metrics.jsonl"
    try:
        if not path.is_file() or path.stat().st_size > limit:
            return []
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    out = []
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("step"), int):
            out.append(rec)
    return out


def next_free_folder(folder: Path) -> Path:
    """folder, folder-2, folder-3, … : the first that holds no run."""
    base, n = folder, 1
    while (folder / "state.pt").exists():
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    return folder


class FineTuneTab(QWidget):
    useCheckpoint = Signal(str)

    def __init__(self, model: ModelState, settings: Settings, parent=None):
        super().__init__(parent)
        self.model, self.settings = model, settings
        self.worker: Operation | None = None
        self.last_checkpoint: Path | None = None
        self.history: dict[str, tuple[list, list]] = {}
        self.val_history: tuple[list, list, list] = ([], [], [])
        self._last_plot = 0.0
        self.bridge = _TrainBridge()
        self.bridge.step.connect(self._on_step)
        self.bridge.validation.connect(self._on_validation)
        self.bridge.message.connect(self.log)
        self.bridge.checkpoint.connect(self._on_checkpoint)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.addWidget(self._build_dataset_box())
        ll.addWidget(self._build_hyperparameters_box())
        ll.addWidget(self.perceptual_note)
        ll.addLayout(self._build_run_buttons())
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(5000)
        ll.addWidget(self.log_view, 1)
        # the form scrolls in a small window; the curves keep the rest
        left_scroll = QScrollArea()
        left_scroll.setWidget(left)
        left_scroll.setWidgetResizable(True)
        left_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        left_scroll.setMinimumWidth(220)
        split = QSplitter()
        split.addWidget(left_scroll)
        split.addWidget(self._build_live_view())
        split.setStretchFactor(1, 1)
        # the form starts as wide as it needs (a scroll area's own size hint would clip it), the curves
        # take the rest
        form_width = left.minimumSizeHint().width() + left_scroll.verticalScrollBar().sizeHint().width()
        split.setSizes([form_width, max(form_width, 800)])
        lay = QVBoxLayout(self)
        lay.addWidget(split)
        self.update_buttons()
        model.loaded.connect(lambda _r: self._follow_active_preset())
        self.base.currentIndexChanged.connect(lambda _i: self._follow_active_preset())
        self._follow_active_preset()
        if self.data.text().strip():  # the summary describes the dataset in the field, from the start
            self.scan()

    def _build_dataset_box(self) -> QGroupBox:
        self.data = QLineEdit(self.settings.get("finetune_data"))
        self.data.setPlaceholderText(
            "VIDIT layout (ImageNNN_<temp>_<dir>.png + ImageNNN.npy) or NTIRE pairs (input/, guide/, target/)"
        )
        browse = QPushButton("Browse…")
        browse.clicked.connect(self.browse_data)
        synth = QPushButton("Generate synthetic…")
        synth.clicked.connect(lambda: self.generate_synthetic())
        self.synth_cancel = QPushButton("Cancel rendering")
        self.synth_cancel.setVisible(False)
        self.synth_worker: Operation | None = None
        self.synth_cancel.clicked.connect(lambda: self.synth_worker.cancel() if self.synth_worker else None)
        self.data_summary = QLabel("No dataset chosen.")
        self.data_summary.setWordWrap(True)
        drow = QHBoxLayout()
        drow.addWidget(self.data, 1)
        drow.addWidget(browse)
        drow.addWidget(synth)
        drow.addWidget(self.synth_cancel)
        dbox = QGroupBox("Dataset")
        dl = QVBoxLayout(dbox)
        dl.addLayout(drow)
        dl.addWidget(self.data_summary)
        self.data.editingFinished.connect(self.scan)
        return dbox

    def _build_hyperparameters_box(self) -> QGroupBox:
        """Model and hyperparameters; the defaults are the paper's recipe."""
        d = TrainConfig()
        self.base = QComboBox()
        self.base.addItems(["Active checkpoint", "Official weight.pkl…", "ImageNet encoder", "Scratch"])
        self.base_file = QLineEdit()
        self.base_file.setPlaceholderText("path to the official weight.pkl")
        self.base_file.setEnabled(False)
        self.base.currentIndexChanged.connect(lambda i: self.base_file.setEnabled(i == 1))
        self.preset = QComboBox()
        self.preset.addItems(sorted(model_sizes(), key=lambda n: n != "s3net-lite"))  # the quick one first
        for i in range(self.preset.count()):
            self.preset.setItemData(i, model_size_note(self.preset.itemText(i)), Qt.ItemDataRole.ToolTipRole)
        self.lr = self._dspin(d.lr, 1e-7, 1.0, 6)
        self.beta1 = self._dspin(d.betas[0], 0, 0.9999, 3)
        self.beta2 = self._dspin(d.betas[1], 0, 0.99999, 4)
        self.w_c = self._dspin(d.loss_charbonnier, 0, 100, 2)
        self.w_w = self._dspin(d.loss_wssim, 0, 100, 2)
        self.w_p = self._dspin(d.loss_perceptual, 0, 100, 2)
        self.batch = self._spin(d.batch, 1, 256)
        self.crop = self._spin(0, 0, 4096)
        self.crop.setSpecialValueText("full image")
        self.steps = self._spin(self.settings.get("finetune_steps"), 1, 10_000_000)
        self.precision = QComboBox()
        self.precision.addItems(["auto", *PRECISIONS])
        self.precision.setToolTip("auto: bf16 on a CUDA GPU that computes it natively, fp32 elsewhere")
        self.val_every = self._spin(100, 1, 1_000_000)
        self.ckpt_every = self._spin(100, 1, 1_000_000)
        # the last run started (an interrupted one is what Resume should offer after a relaunch)
        self.out = QLineEdit(self.settings.get("finetune_out") or str(Path.home() / "relight-runs" / "finetune"))
        self.out.textChanged.connect(lambda _t: self.update_buttons())
        self.frame_cache = QCheckBox("decode once")
        self.frame_cache.setChecked(self.settings.get("finetune_frame_cache"))
        self.frame_cache.setToolTip(
            "VIDIT-layout data: decode every image once into a memory-mapped cache in the "
            "app's data folder (3 bytes per pixel per image), so the GPU, not PNG decoding, "
            "sets the pace. Same samples as without it."
        )
        hp = QGroupBox("Model and hyperparameters (defaults follow the paper)")
        g = QGridLayout(hp)
        items = [
            ("Base weights", self.base),
            ("Preset", self.preset),
            ("Learning rate", self.lr),
            ("AdamW β1", self.beta1),
            ("AdamW β2", self.beta2),
            ("Charbonnier ×", self.w_c),
            ("W-SSIM ×", self.w_w),
            ("Perceptual ×", self.w_p),
            ("Batch", self.batch),
            ("Crop", self.crop),
            ("Steps", self.steps),
            ("Precision", self.precision),
            ("Validate every", self.val_every),
            ("Checkpoint every", self.ckpt_every),
            ("Data loading", self.frame_cache),
        ]
        for i, (label, w) in enumerate(items):
            g.addWidget(QLabel(label), i // 2, (i % 2) * 2)
            g.addWidget(w, i // 2, (i % 2) * 2 + 1)
        # paths get whole rows, so a long one stays readable, each with its Browse… button
        self.base_file_browse = QPushButton("Browse…")
        self.base_file_browse.setEnabled(False)
        self.base_file_browse.clicked.connect(self.browse_base_file)
        self.base.currentIndexChanged.connect(lambda i: self.base_file_browse.setEnabled(i == 1))
        out_browse = QPushButton("Browse…")
        out_browse.clicked.connect(self.browse_run_folder)
        for row, (label, edit, button) in enumerate(
            (("weight.pkl", self.base_file, self.base_file_browse), ("Run folder", self.out, out_browse)),
            start=(len(items) + 1) // 2,
        ):
            line = QHBoxLayout()
            line.addWidget(edit, 1)
            line.addWidget(button)
            g.addWidget(QLabel(label), row, 0)
            g.addLayout(line, row, 1, 1, 3)
        vgg = vgg19_weights()
        self.perceptual_note = QLabel(
            ""
            if vgg
            else "⚠ VGG19 ImageNet weights not found (torch hub cache): the perceptual "
            "term will be OFF for this run and recorded in its metadata."
        )
        self.perceptual_note.setStyleSheet("color: #d9822b;")
        self.perceptual_note.setWordWrap(True)
        return hp

    def _build_run_buttons(self) -> QVBoxLayout:
        self.start_button = QPushButton("Start")
        self.start_button.clicked.connect(lambda: self.start(resume=False))
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Finishes the current step and writes a checkpoint")
        self.stop_button.clicked.connect(self.stop)
        self.resume_button = QPushButton("Resume")
        self.resume_button.clicked.connect(lambda: self.start(resume=True))
        self.use_button = QPushButton("Use this checkpoint for relighting")
        self.use_button.clicked.connect(lambda: self.useCheckpoint.emit(str(self.last_checkpoint)))
        # speed and ETA on a line of their own that never asks for width: the panels keep their
        # width when a run starts or stops
        self.speed = QLabel(" ")
        self.speed.setObjectName("speed")
        self.speed.setWordWrap(True)
        self.speed.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        brow = QHBoxLayout()
        for b in (self.start_button, self.stop_button, self.resume_button, self.use_button):
            brow.addWidget(b)
        brow.addStretch(1)
        rows = QVBoxLayout()
        rows.addLayout(brow)
        rows.addWidget(self.speed)
        return rows

    def _build_live_view(self) -> QWidget:
        """Loss curves, validation PSNR/SSIM and the latest validation preview."""
        pg.setConfigOptions(antialias=True)
        self.loss_plot = pg.PlotWidget(title="training loss")
        # one-row legend at the top right (losses fall, so the curves are lowest there), with headroom
        self.loss_plot.addLegend(offset=(-10, 5), colCount=4)
        self.loss_plot.getViewBox().setDefaultPadding(0.12)
        self.loss_plot.setLabel("bottom", "step")
        self.loss_plot.showGrid(x=True, y=True, alpha=0.2)
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.val_plot = pg.PlotWidget(title="validation")
        self.val_plot.setLabel("bottom", "step")
        self.val_plot.setLabel("left", "PSNR (dB)")
        self.val_plot.showGrid(x=True, y=True, alpha=0.2)
        self.val_plot.addLegend(offset=(10, 5), colCount=2)
        self.val_plot.getViewBox().setDefaultPadding(0.12)
        self.psnr_curve = self.val_plot.plot(
            [], [], pen=pg.mkPen("#4c9be8", width=2), symbol="o", symbolSize=5, name="PSNR"
        )
        self.ssim_view = pg.ViewBox()
        self.val_plot.showAxis("right")
        self.val_plot.getAxis("right").setLabel("SSIM")
        self.val_plot.getAxis("right").enableAutoSIPrefix(False)
        self.val_plot.scene().addItem(self.ssim_view)
        self.val_plot.getAxis("right").linkToView(self.ssim_view)
        self.ssim_view.setXLink(self.val_plot)
        self.val_plot.getViewBox().sigResized.connect(
            lambda: self.ssim_view.setGeometry(self.val_plot.getViewBox().sceneBoundingRect())
        )
        self.ssim_curve = pg.PlotDataItem(
            [], [], pen=pg.mkPen("#f0a030", width=2), symbol="t", symbolSize=6, name="SSIM"
        )
        self.ssim_view.addItem(self.ssim_curve)
        self.val_plot.plotItem.legend.addItem(self.ssim_curve, "SSIM")
        self.preview_caption = QLabel("latest validation: source | guide | prediction | target")
        self.preview_caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview = QLabel("")
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setMinimumHeight(60)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.addWidget(self.loss_plot, 3)
        rl.addWidget(self.val_plot, 2)
        rl.addWidget(self.preview_caption)
        rl.addWidget(self.preview, 2)
        return right

    @staticmethod
    def _dspin(value, lo, hi, decimals):
        s = QDoubleSpinBox()
        s.setDecimals(decimals)
        s.setRange(lo, hi)
        s.setValue(value)
        s.setSingleStep(10**-decimals * 10)
        return s

    @staticmethod
    def _spin(value, lo, hi):
        s = QSpinBox()
        s.setRange(lo, hi)
        s.setValue(value)
        return s

    # ---- dataset --------------------------------------------------------------------------
    def browse_base_file(self) -> None:
        start = self.base_file.text() or str(Path.home())
        path, _ = QFileDialog.getOpenFileName(
            self, "The official weight.pkl", start, "Weights (*.pkl *.pth);;All files (*)"
        )
        if path:
            self.base_file.setText(path)

    def browse_run_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of the run", self.out.text() or str(Path.home()))
        if folder:
            self.out.setText(folder)

    def browse_data(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a dataset folder", self.data.text() or str(Path.home()))
        if folder:
            self.data.setText(folder)
            self.scan()

    def scan(self) -> Operation | None:
        folder = self.data.text().strip()
        if not folder:
            return None
        self.data_summary.setText("Scanning…")
        self.settings.set("finetune_data", folder)
        return Operation(
            self,
            "Scanning the dataset",
            lambda p, c: scan_dataset(folder),
            success=self.data_summary.setText,
            failure=lambda m: self.data_summary.setText(f"<span style='color:#d9534f'>{m}</span>"),  # in place
        ).run()

    def generate_synthetic(self, dialog: SynthDialog | None = None) -> Operation | None:
        dlg = dialog or SynthDialog(self, self.data.text())
        if dialog is None and dlg.exec() != QDialog.DialogCode.Accepted:
            return None
        from core.train.synthetic import synthesize

        folder, scenes, size, seed, pairs = (
            dlg.folder.text(),
            dlg.scenes.value(),
            dlg.size.value(),
            dlg.seed.value(),
            dlg.pairs.value(),
        )
        self.data_summary.setText("Rendering…")

        def work(progress, cancel):
            synthesize(folder, scenes, size, seed, pairs, progress=progress, cancel=cancel)
            return folder

        self.synth_worker = Operation(
            self,
            "Rendering the synthetic dataset",
            work,
            progress=lambda f, m: self.data_summary.setText(f"Rendering… {f * 100:.0f}% ({m})"),
            success=lambda f: (self.data.setText(f), self.scan()),
            cancelled=lambda: self.data_summary.setText("Rendering cancelled; the scenes written so far are complete."),
            finished=lambda: self.synth_cancel.setVisible(False),
            error_title="Synthetic dataset",
        )
        self.synth_cancel.setVisible(True)
        return self.synth_worker.run()

    def _follow_active_preset(self) -> None:
        """Starting from the active checkpoint, the preset is that checkpoint's own (the bundled
        model is s3net-lite-colour: another preset would not take its weights)."""
        info = getattr(self.model.relighter, "info", None)
        preset = getattr(info, "preset", None)
        if self.base.currentIndex() == 0 and preset and self.preset.findText(preset) >= 0:
            self.preset.setCurrentText(preset)

    # ---- training -------------------------------------------------------------------------
    def config(self) -> TrainConfig:
        base = self.base.currentIndex()
        if base == 0:
            init = str(self.model.path) if self.model.path else "scratch"
        elif base == 1:
            init = self.base_file.text().strip()
        else:
            init = ["imagenet", "scratch"][base - 2]
        data = self.data.text().strip()
        val_data = str(Path(data) / "pairs") if data and (Path(data) / "pairs" / "input").is_dir() else None
        return TrainConfig(
            data=data,
            out=self.out.text().strip(),
            preset=self.preset.currentText(),
            init=init,
            steps=self.steps.value(),
            batch=self.batch.value(),
            crop=self.crop.value() or None,
            lr=self.lr.value(),
            betas=(self.beta1.value(), self.beta2.value()),
            loss_charbonnier=self.w_c.value(),
            loss_wssim=self.w_w.value(),
            loss_perceptual=self.w_p.value(),
            precision=self.precision.currentText(),
            val_every=self.val_every.value(),
            ckpt_every=self.ckpt_every.value(),
            val_data=val_data,
            device=self.settings.get("device"),
            log_every=1,
            num_workers=0 if self.batch.value() <= 2 else 2,
            frame_cache=self.frame_cache.isChecked(),
        )

    def start(self, resume: bool = False) -> Operation | None:
        if self.worker is not None:
            return None
        cfg = self.config()
        if resume:  # continue the run as it was started (its config.json), on this machine's device
            try:
                cfg, _changes = TrainConfig.for_resume(cfg.out, {"device": cfg.device})
            except RelightError as exc:
                show_error(self, "Cannot resume", str(exc))
                return None
        if not cfg.data:
            show_error(self, "Fine-tune", "Choose a dataset folder first.")
            return None
        if not resume and (Path(cfg.out) / "state.pt").is_file():
            # Start never overwrites a run: the next free folder name, said in the log
            cfg.out = str(next_free_folder(Path(cfg.out)))
            self.out.setText(cfg.out)
        self.settings.set("finetune_out", cfg.out)
        self.settings.set("finetune_data", cfg.data)
        self.settings.set("finetune_steps", cfg.steps)
        self.settings.set("finetune_frame_cache", cfg.frame_cache)
        self.clear_plots()
        if resume:  # the curves start with the steps the run has already made
            self.load_history(cfg.out)
        b = self.bridge
        cb = Callbacks(
            on_step=b.step.emit,
            on_validation=b.validation.emit,
            on_message=b.message.emit,
            on_checkpoint=lambda p: b.checkpoint.emit(str(p)),
        )
        self.worker = Operation(
            self,
            "Training",
            lambda progress, cancel: train(cfg, cb, cancel, resume=resume),
            success=lambda r: self.log(f"finished at step {r.step}" + (" (stopped)" if r.stopped else "")),
            finished=self._finished,
            error_title="Training stopped with an error",
        )
        self.log(("Resuming" if resume else "Starting") + f" in {cfg.out}")
        w = self.worker.run()
        self.update_buttons()
        return w

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.log("stopping after this step…")

    def _finished(self) -> None:
        self.worker = None
        self.speed.setText(" ")  # no stale speed/ETA once the run has ended
        self.update_buttons()

    def update_buttons(self) -> None:
        running = self.worker is not None
        self.start_button.setEnabled(not running)
        progress = run_progress(self.out.text().strip()) if self.out.text().strip() else None
        resumable = progress is not None and (progress[1] == 0 or progress[0] < progress[1])
        self.resume_button.setEnabled(not running and resumable)
        self.resume_button.setToolTip(
            "Continue the run in the Run folder"
            if resumable
            else f"The run in the Run folder has finished ({progress[0]} of {progress[1]} steps)"
            if progress
            else "The Run folder holds no run to continue"
        )
        self.stop_button.setEnabled(running)
        self.use_button.setEnabled(self.last_checkpoint is not None and self.last_checkpoint.is_file())

    def log(self, msg: str) -> None:
        self.log_view.appendPlainText(f"{time.strftime('%H:%M:%S')}  {msg}")

    def clear_plots(self) -> None:
        self.history.clear()
        for c in self.curves.values():
            self.loss_plot.removeItem(c)
        self.curves.clear()
        self.val_history = ([], [], [])
        self.psnr_curve.setData([], [])
        self.ssim_curve.setData([], [])

    def load_history(self, folder: str | Path) -> None:
        """The curves of a run's earlier steps, from its metrics.jsonl."""
        from core.train.training import ValInfo

        for rec in read_metrics(folder):
            if "val_psnr" in rec:
                self._on_validation(
                    ValInfo(rec["step"], rec["val_psnr"], rec.get("val_ssim", float("nan"))), redraw=False
                )
            else:
                terms = {
                    k: v
                    for k, v in rec.items()
                    if k not in ("step", "epoch", "lr", "images_per_s") and isinstance(v, (int, float))
                }
                self._add_step(rec["step"], terms)
        for k, (xs, ys) in self.history.items():
            self.curves[k].setData(xs, ys)
        self.psnr_curve.setData(self.val_history[0], self.val_history[1])
        self.ssim_curve.setData(self.val_history[0], self.val_history[2])

    def _add_step(self, step: int, terms: dict) -> None:
        for k, v in terms.items():
            xs, ys = self.history.setdefault(k, ([], []))
            while xs and xs[-1] >= step:  # a resumed run redoes the steps after its checkpoint
                xs.pop()
                ys.pop()
            xs.append(step)
            ys.append(v)
            if k not in self.curves:
                self.curves[k] = self.loss_plot.plot(
                    [], [], pen=pg.mkPen(CURVE_COLOURS.get(k, "#c080ff"), width=2), name=k
                )

    def _on_step(self, info) -> None:
        self._add_step(info.step, info.terms)
        now = time.perf_counter()
        if now - self._last_plot > 0.1 or info.step == info.total_steps:  # redraw at most 10 times a second
            self._last_plot = now
            for k, (xs, ys) in self.history.items():
                self.curves[k].setData(xs, ys)
        eta = f"{info.eta_s / 60:.1f} min" if info.eta_s > 90 else f"{info.eta_s:.0f} s"
        self.speed.setText(
            f"step {info.step}/{info.total_steps} · {info.images_per_s:.1f} img/s · ETA {eta} · lr {info.lr:.1e}"
        )

    def _on_validation(self, info, redraw: bool = True) -> None:
        s, p, q = self.val_history
        while s and s[-1] >= info.step:  # redone after a resume
            s.pop()
            p.pop()
            q.pop()
        s.append(info.step)
        p.append(info.psnr)
        q.append(info.ssim)
        if redraw:
            self.psnr_curve.setData(s, p)
            self.ssim_curve.setData(s, q)
        if info.preview is not None:
            pix = QPixmap.fromImage(to_qimage(info.preview))
            self.preview.setPixmap(
                pix.scaled(
                    self.preview.width(),
                    self.preview.height(),
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
            )

    def _on_checkpoint(self, path: str) -> None:
        self.last_checkpoint = Path(path)
        self.update_buttons()
