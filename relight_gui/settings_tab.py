"""Settings tab: device, precision, active checkpoint and its model card, colour map, output folder."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLineEdit, QPushButton,
                               QTextBrowser, QVBoxLayout, QWidget)

from core.checkpoint import BUNDLED_MODEL

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

    def __init__(self, settings: Settings, parent=None):
        super().__init__(parent)
        self.settings = settings
        form = QFormLayout()
        self.device = QComboBox()
        for key, label in device_choices():
            self.device.addItem(label, key)
        self.device.setCurrentIndex(max(0, self.device.findData(settings.get("device"))))
        self.precision = QComboBox()
        self.precision.addItems(["fp32", "bf16", "fp16"])
        self.precision.setCurrentText(settings.get("precision"))
        self.fast = QCheckBox("Fast CUDA path (folded BatchNorm, fp16, CUDA graphs; about 2.6x faster on an H100)")
        self.fast.setChecked(settings.get("fast"))
        if not torch.cuda.is_available():
            self.fast.setEnabled(False)
            self.fast.setToolTip("Needs a CUDA GPU")
        self.checkpoint = QLineEdit(settings.get("checkpoint"))
        self.checkpoint.setPlaceholderText(f"bundled: {BUNDLED_MODEL.name}")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self.browse_checkpoint)
        bundled = QPushButton("Use bundled")
        bundled.clicked.connect(lambda: (self.checkpoint.setText(""), self.apply()))
        row = QHBoxLayout()
        row.addWidget(self.checkpoint, 1)
        row.addWidget(browse)
        row.addWidget(bundled)
        self.colormap = QComboBox()
        self.colormap.addItems(list(COLORMAPS))
        self.colormap.setCurrentText(settings.get("colormap"))
        self.colormap.currentTextChanged.connect(self._colormap)
        self.output_dir = QLineEdit(settings.get("output_dir"))
        self.output_dir.editingFinished.connect(lambda: settings.set("output_dir", self.output_dir.text()))
        form.addRow("Device", self.device)
        form.addRow("Precision", self.precision)
        form.addRow("", self.fast)
        form.addRow("Checkpoint", row)
        form.addRow("Depth colour map", self.colormap)
        form.addRow("Output folder", self.output_dir)
        apply = QPushButton("Apply and reload the model")
        apply.clicked.connect(self.apply)
        self.card = QTextBrowser()
        self.card.setOpenExternalLinks(False)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(apply)
        lay.addWidget(self.card, 1)

    def browse_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a checkpoint", str(Path.home()),
                                              "S3Net checkpoints (*.safetensors *.pkl *.pth *.pt);;All files (*)")
        if path:
            self.checkpoint.setText(path)
            self.apply()

    def apply(self) -> None:
        self.settings.set("device", self.device.currentData())
        self.settings.set("precision", self.precision.currentText())
        self.settings.set("fast", self.fast.isChecked())
        self.settings.set("checkpoint", self.checkpoint.text().strip())
        self.modelSettingsChanged.emit()

    def _colormap(self, name: str) -> None:
        self.settings.set("colormap", name)
        self.colormapChanged.emit(name)

    def show_model_card(self, relighter) -> None:
        """The model card: the bundled card file for the bundled model, else the checkpoint's metadata."""
        info = relighter.info
        lines = [f"<h3>{info.name}</h3>", f"<p>preset <b>{info.preset}</b> · {info.format} format · on {relighter.device} "
                 f"({relighter.precision_label})</p>"]
        card = info.path.with_suffix(".md") if info.path else None
        if card and card.is_file():
            self.card.setMarkdown("\n".join([f"**{info.name}** — preset {info.preset}, on {relighter.device} ({relighter.precision_label})", "",
                                             card.read_text()]))
            return
        for key in ("training", "metrics"):
            if key in info.metadata:
                lines.append(f"<h4>{key}</h4><pre>{json.dumps(info.metadata[key], indent=1)[:4000]}</pre>")
        if info.format == "official":
            lines.append("<p>Official S3Net release weights (NTIRE 2021 track 2).</p>")
        self.card.setHtml("".join(lines))
