"""Settings tab: device, precision, active checkpoint and its model card, colour map, output folder."""

from __future__ import annotations

from pathlib import Path

import torch
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from core.base.errors import RelightError
from core.base.hardware import cpu_has_native_bf16
from core.base.resources import model_card_path
from core.base.vocab import PRECISIONS, CheckpointFormat
from core.depth.estimation import DEPTH_MODEL_ENV, default_model_dir, find_depth_model, inspect_depth_model
from core.services import bundled_model_name, is_bundled_model

from .dialogs import show_error
from .imaging import COLORMAPS
from .settings import Settings


def device_choices() -> list[tuple[str, str]]:
    out = [("auto", "Automatic"), ("cpu", "CPU")]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            out.append((f"cuda:{i}", f"GPU {i}: {torch.cuda.get_device_name(i)}"))
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append(("mps", "Apple GPU (MPS)"))
    return out


class SettingsTab(QWidget):
    modelSettingsChanged = Signal()
    colormapChanged = Signal(str)
    depthModelChanged = Signal()

    def __init__(self, settings: Settings, parent=None):
        super().__init__(parent)
        self.settings = settings
        form = QFormLayout()
        self.device = QComboBox()
        for key, label in device_choices():
            self.device.addItem(label, key)
        self.device.setCurrentIndex(max(0, self.device.findData(settings.get("device"))))
        self.precision = QComboBox()
        native_bf16 = cpu_has_native_bf16()
        self.precision.addItem(
            f"auto ({'bf16' if native_bf16 else 'fp32'} here: bf16 on a CPU with native bf16, fp32 otherwise)", "auto"
        )
        for p in PRECISIONS:  # a precision slower on this machine is not offered as a speed-up
            note = {
                "bf16": "" if native_bf16 else " (CPU: slower here, no native bf16)",
                "fp16": " (CUDA only)" if not torch.cuda.is_available() else "",
            }.get(p, "")
            self.precision.addItem(p + note, p)
        self.precision.setCurrentIndex(max(0, self.precision.findData(settings.get("precision"))))
        self.fast = QCheckBox("Fast CUDA path (folded BatchNorm, fp16, CUDA graphs, compiled in the background)")
        self.fast.setToolTip("The speed-up depends on the GPU and the model: docs/PERFORMANCE.md has measurements")
        self.fast.setChecked(settings.get("fast"))
        if not torch.cuda.is_available():  # shown unticked and disabled: it cannot apply here
            self.fast.setChecked(False)
            self.fast.setEnabled(False)
            self.fast.setToolTip("Needs a CUDA GPU")
        self.checkpoint = QLineEdit(settings.get("checkpoint"))
        self.checkpoint.setPlaceholderText(f"bundled: {bundled_model_name()}")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self.browse_checkpoint)
        bundled = QPushButton("Use bundled")
        bundled.clicked.connect(lambda: self.use_checkpoint(""))
        row = QHBoxLayout()
        row.addWidget(self.checkpoint, 1)
        row.addWidget(browse)
        row.addWidget(bundled)
        self.colormap = QComboBox()
        self.colormap.addItems(list(COLORMAPS))
        self.colormap.setCurrentText(settings.get("colormap"))
        self.colormap.currentTextChanged.connect(self._colormap)
        self.depth_model = QLineEdit(settings.get("depth_model"))
        self.depth_model.setObjectName("depth_model")
        self.depth_model.setPlaceholderText(f"${DEPTH_MODEL_ENV} or {default_model_dir()}")
        self.depth_model.setToolTip(
            "Folder of Depth Anything V2 Small (save_pretrained layout), used to estimate "
            "depth maps for photos that have none"
        )
        self.depth_model.editingFinished.connect(lambda: self._depth_model_changed(ask=True))
        browse_depth = QPushButton("Browse…")
        browse_depth.clicked.connect(self.browse_depth_model)
        self.depth_status = QLabel()
        self.depth_status.setTextFormat(Qt.TextFormat.PlainText)
        drow = QHBoxLayout()
        drow.addWidget(self.depth_model, 1)
        drow.addWidget(browse_depth)
        self.auto_depth = QCheckBox("Estimate a missing depth map as soon as a photo is opened")
        self.auto_depth.setChecked(settings.get("auto_depth"))
        self.auto_depth.toggled.connect(lambda on: settings.set("auto_depth", on))
        self.output_dir = QLineEdit(settings.get("output_dir"))
        self.output_dir.editingFinished.connect(lambda: settings.set("output_dir", self.output_dir.text()))
        # device, precision and the fast path apply at once: the model reloads in the background
        self.device.currentIndexChanged.connect(lambda _i: self.apply())
        self.precision.currentIndexChanged.connect(lambda _i: self.apply())
        self.fast.toggled.connect(lambda _b: self.apply())
        form.addRow("Device", self.device)
        form.addRow("Precision", self.precision)
        form.addRow("", self.fast)
        form.addRow("Checkpoint", row)
        form.addRow("Depth colour map", self.colormap)
        form.addRow("Output folder", self.output_dir)
        form.addRow("Depth model", drow)
        form.addRow("", self.depth_status)
        form.addRow("", self.auto_depth)
        self._depth_model_changed()
        apply = QPushButton("Reload the model")
        apply.clicked.connect(self.apply)
        self.card = QTextBrowser()
        self.card.setOpenExternalLinks(False)
        # a small window scrolls the settings instead of growing past the screen
        inner = QWidget()
        lay = QVBoxLayout(inner)
        lay.addLayout(form)
        lay.addWidget(apply)
        lay.addWidget(self.card, 1)
        self.card.setMinimumHeight(120)
        scroll = QScrollArea()
        scroll.setWidget(inner)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

    def browse_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Choose a checkpoint",
            str(Path.home()),
            "S3Net checkpoints (*.safetensors *.pkl *.pth *.pt);;All files (*)",
        )
        if path:
            self.checkpoint.setText(path)
            self.apply()

    def showEvent(self, ev):
        # the output folder follows where results were last saved
        self.output_dir.setText(self.settings.get("output_dir"))
        super().showEvent(ev)

    def browse_depth_model(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Choose the depth model folder", str(Path.home()))
        if path:
            self.set_depth_model(path)

    def set_depth_model(self, path: str) -> bool:
        """Use the depth model in `path` (checked first); False when it was refused."""
        self.depth_model.setText(path)
        return self._depth_model_changed(ask=True, force=True)

    def _depth_model_changed(self, ask: bool = False, force: bool = False) -> bool:
        """A folder typed or chosen is checked fully at once (every file readable, the configuration
        a Depth Anything one): a damaged one is refused with a dialog and the previous setting kept.
        Otherwise the setting is saved and the status names the model by what its config says."""
        text = self.depth_model.text().strip()
        previous = self.settings.get("depth_model")
        if text and ask and (force or text != previous):
            try:
                inspect_depth_model(text)
            except RelightError as exc:
                show_error(self, "Not a usable depth model", f"{exc}\n\nThe depth model setting was not changed.")
                self.depth_model.setText(previous)
                return False
        self.settings.set("depth_model", text)
        try:
            found = find_depth_model(text or None)
            title = inspect_depth_model(found) if found else None
        except RelightError as exc:
            self.depth_status.setText(f"⚠ {exc}")
            self.depthModelChanged.emit()
            return False
        self.depth_status.setText(
            f"Depth model: {title}, in {found}"
            if found
            else "No depth model installed: use Download model… on a card without depth, or choose a folder here."
        )
        self.depthModelChanged.emit()
        return found is not None

    def use_checkpoint(self, path: str) -> None:
        """Load the checkpoint at `path` ("" for the bundled model) and keep it as the setting."""
        self.checkpoint.setText(path)
        self.apply()

    def apply(self) -> None:
        self.settings.set("device", self.device.currentData())
        self.settings.set("precision", self.precision.currentData())
        self.settings.set("fast", self.fast.isChecked())
        self.settings.set("checkpoint", self.checkpoint.text().strip())
        self.modelSettingsChanged.emit()

    def _colormap(self, name: str) -> None:
        self.settings.set("colormap", name)
        self.colormapChanged.emit(name)

    def show_model_card(self, relighter) -> None:
        """The bundled model's card (our own Markdown); for any other checkpoint its metadata, shown as
        plain text: text from a downloaded file is never rendered as markup (no links, no images)."""
        info = relighter.info
        head = f"{info.name} — preset {info.preset}, {info.format} format, on {relighter.device} ({relighter.precision_label})"
        card = model_card_path(info.path) if info.path else None
        if card and card.is_file() and is_bundled_model(info.path):
            self.card.setMarkdown(f"**{head}**\n\n" + card.read_text())
            return
        lines = [head, ""]
        if info.format is CheckpointFormat.OFFICIAL:
            lines.append("Official S3Net release weights (NTIRE 2021 track 2).")

        def walk(value, indent: str) -> None:
            for k, v in value.items():
                if isinstance(v, dict):
                    lines.append(f"{indent}{k}:")
                    walk(v, indent + "    ")
                else:
                    lines.append(f"{indent}{k}: {str(v)[:300]}")

        for key in ("training", "metrics"):
            if isinstance(info.metadata.get(key), dict):
                lines.append(f"{key}:")
                walk(info.metadata[key], "    ")
        self.card.setPlainText("\n".join(lines[:400]))
