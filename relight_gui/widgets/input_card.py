"""Source / Guide input card: the image and its depth map side by side, open and drop targets."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QMimeData, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QMenu, QPushButton, QToolButton, QVBoxLayout

from core.io import DepthMap

from ..imaging import to_qimage
from .depth_view import DepthPanel, ImagePanel


class InputCard(QFrame):
    filesDropped = Signal(list)  # list[Path]
    openRequested = Signal()
    recentChosen = Signal(str, str)  # image path, depth path

    def __init__(self, title: str, parent=None):
        super().__init__(parent)
        self.title = title
        self.setObjectName(f"card_{title.lower()}")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAcceptDrops(True)
        self.image: np.ndarray | None = None
        self.depth: DepthMap | None = None
        self.image_path: Path | None = None
        self.depth_path: Path | None = None
        self.warnings: list[str] = []

        head = QHBoxLayout()
        self.title_label = QLabel(f"<b>{title}</b>")
        head.addWidget(self.title_label)
        head.addStretch(1)
        self.open_button = QPushButton("Open…")
        self.open_button.setToolTip(f"Open the {title.lower()} image and its depth map (select both)")
        self.open_button.clicked.connect(self.openRequested)
        self.recent_button = QToolButton()
        self.recent_button.setText("Recent")
        self.recent_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.recent_menu = QMenu(self)
        self.recent_button.setMenu(self.recent_menu)
        head.addWidget(self.open_button)
        head.addWidget(self.recent_button)

        self.image_panel = ImagePanel(f"Drop the {title.lower()} image and its depth here\n(or a folder)")
        self.depth_panel = DepthPanel()
        panels = QHBoxLayout()
        panels.addWidget(self.image_panel, 1)
        panels.addWidget(self.depth_panel, 1)
        self.info = QLabel(" ")
        self.info.setWordWrap(True)
        self.hover = QLabel(" ")
        self.warning_label = QLabel("")
        self.warning_label.setStyleSheet("color: #d9822b;")
        self.warning_label.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.addLayout(head)
        lay.addLayout(panels, 1)
        lay.addWidget(self.info)
        lay.addWidget(self.hover)
        lay.addWidget(self.warning_label)
        self.depth_panel.hovered.connect(self._show_value)
        self.image_panel.hovered.connect(self._show_value)

    # ---- data -----------------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self.image is not None and self.depth is not None

    def set_data(self, image: np.ndarray, depth: DepthMap, image_path: Path, depth_path: Path, warnings: list[str]) -> None:
        self.image, self.depth = image, depth
        self.image_path, self.depth_path = Path(image_path), Path(depth_path)
        self.warnings = warnings
        self.image_panel.set_qimage(to_qimage(image))
        self.depth_panel.set_depth(depth.data)
        lo, hi = self.depth_panel.range
        self.info.setText(f"{self.image_path.name} · {image.shape[1]}×{image.shape[0]}<br>"
                          f"{self.depth_path.name} · depth {lo:.3g} – {hi:.3g} ({depth.scaling})")
        self.warning_label.setText("⚠ " + "; ".join(warnings) if warnings else "")

    def clear(self) -> None:
        self.image = self.depth = self.image_path = self.depth_path = None
        self.image_panel.set_qimage(None)
        self.depth_panel.set_depth(None)
        self.info.setText(" ")
        self.warning_label.setText("")

    def state(self):
        return (self.image, self.depth, self.image_path, self.depth_path, self.warnings)

    def restore(self, state) -> None:
        if state[0] is None:
            self.clear()
        else:
            self.set_data(*state)

    def set_colormap(self, cmap: str) -> None:
        self.depth_panel.set_colormap(cmap)

    def set_recent(self, entries: list[tuple[str, str]]) -> None:
        self.recent_menu.clear()
        for img, dep in entries:
            act = self.recent_menu.addAction(f"{Path(img).name}  +  {Path(dep).name}")
            act.setToolTip(f"{img}\n{dep}")
            act.triggered.connect(lambda _=False, i=img, d=dep: self.recentChosen.emit(i, d))
        self.recent_button.setEnabled(bool(entries))

    def _show_value(self, x: int, y: int) -> None:
        v = self.depth_panel.value_at(x, y)
        self.hover.setText(f"({x}, {y}) depth {v:.4f}" if v is not None else " ")

    # ---- drag and drop --------------------------------------------------------------------
    def handle_mime(self, mime: QMimeData) -> bool:
        paths = [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()]
        if not paths:
            return False
        self.filesDropped.emit(paths)
        return True

    def dragEnterEvent(self, ev):
        if ev.mimeData().hasUrls():
            ev.acceptProposedAction()

    def dropEvent(self, ev):
        if self.handle_mime(ev.mimeData()):
            ev.acceptProposedAction()
