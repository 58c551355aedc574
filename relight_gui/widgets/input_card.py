"""Source / Guide input card: the image and its depth map side by side, open and drop targets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QMenu, QPushButton, QToolButton, QVBoxLayout

from core.base.vocab import DepthOrigin
from core.inputs import DepthMap, Input

from ..imaging import to_qimage
from .depth_view import DepthPanel, ImagePanel


class InputCard(QFrame):
    filesDropped = Signal(list)  # list[Path]
    openRequested = Signal()
    recentChosen = Signal(str, str)  # image path, depth path ("" when none)
    estimateRequested = Signal()
    downloadRequested = Signal()
    saveDepthRequested = Signal()

    def __init__(self, title: str, parent=None):
        super().__init__(parent)
        self.title = title
        self.setObjectName(f"card_{title.lower()}")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAcceptDrops(True)
        self.input: Input | None = None

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
        self.info.setTextFormat(Qt.TextFormat.PlainText)  # file names are shown as text, never as markup
        self.warning_label = QLabel("")
        self.warning_label.setStyleSheet("color: #d9822b;")
        self.warning_label.setWordWrap(True)
        self.warning_label.setTextFormat(Qt.TextFormat.PlainText)
        # a photo without depth: estimate it (or get the model first)
        self.no_depth = QFrame()
        nd_rows = QVBoxLayout(self.no_depth)
        nd_rows.setContentsMargins(0, 0, 0, 0)
        nd = QHBoxLayout()
        # the message wraps on a line of its own: a narrow card shows all of it
        self.no_depth_label = QLabel("No depth map for this image.")
        self.no_depth_label.setObjectName("no_depth_label")
        self.no_depth_label.setWordWrap(True)
        self.estimate_button = QPushButton("Estimate depth")
        self.estimate_button.setObjectName("estimate_depth")
        self.estimate_button.setToolTip("Estimate the depth map with Depth Anything V2 Small (runs on this computer)")
        self.estimate_button.clicked.connect(self.estimateRequested)
        self.download_button = QPushButton("Download model…")
        self.download_button.setToolTip("Download Depth Anything V2 Small (Apache-2.0, about 99 MB)")
        self.download_button.clicked.connect(self.downloadRequested)
        self.save_depth_button = QPushButton("Save depth…")
        self.save_depth_button.setToolTip("Save the estimated depth map (16-bit PNG, .npy or VIDIT .npy)")
        self.save_depth_button.clicked.connect(self.saveDepthRequested)
        self.save_depth_button.hide()
        nd.addWidget(self.estimate_button)
        nd.addWidget(self.download_button)
        nd.addStretch(1)
        nd_rows.addWidget(self.no_depth_label)
        nd_rows.addLayout(nd)
        self.no_depth.hide()
        lay = QVBoxLayout(self)
        lay.addLayout(head)
        lay.addLayout(panels, 1)
        lay.addWidget(self.no_depth)
        lay.addWidget(self.save_depth_button, 0, Qt.AlignmentFlag.AlignRight)
        lay.addWidget(self.info)
        lay.addWidget(self.hover)
        lay.addWidget(self.warning_label)
        self.depth_panel.hovered.connect(self._show_value)
        self.image_panel.hovered.connect(self._show_value)

    # ---- data -----------------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        """An image is loaded (with or without depth)."""
        return self.input is not None

    @property
    def ready(self) -> bool:
        """Image and depth are both there: the card can take part in a relighting."""
        return self.input is not None and self.input.has_depth

    @property
    def image(self) -> np.ndarray | None:
        return self.input.image if self.input else None

    @property
    def depth(self) -> DepthMap | None:
        return self.input.depth if self.input else None

    @property
    def image_path(self) -> Path | None:
        return self.input.files.image if self.input and self.input.files else None

    @property
    def depth_path(self) -> Path | None:
        return self.input.depth.path if self.input and self.input.depth is not None else None

    @property
    def warnings(self) -> list[str]:
        return self.input.warnings() if self.input else []

    def set_input(self, inp: Input) -> None:
        self.input = inp
        self.image_panel.set_qimage(to_qimage(inp.image))
        self._show_depth()

    def show_model_state(self, installed: bool) -> None:
        self.estimate_button.setEnabled(installed)
        self.download_button.setVisible(not installed)
        self.no_depth_label.setText(
            "No depth map for this image."
            if installed
            else "No depth map for this image. Estimating one needs the depth model."
        )
        self._fit_message()

    def _fit_message(self) -> None:
        """Reserve the wrapped message's full height (a layout inside a scroll area sizes the label
        for one line and cuts the rest off)."""
        label = self.no_depth_label
        width = label.width() if label.isVisible() and label.width() > 50 else self.contentsRect().width() - 20
        label.setMinimumHeight(label.heightForWidth(max(width, 50)))

    def resizeEvent(self, ev):
        super().resizeEvent(ev)
        self._fit_message()

    def _show_depth(self) -> None:
        inp = self.input
        self.depth_panel.set_depth(inp.depth.data if inp.depth is not None else None)
        name = inp.name
        line1 = f"{name} · {inp.image.shape[1]}×{inp.image.shape[0]}"
        if inp.depth is None:
            self.info.setText(line1 + "\nno depth map")
        else:
            lo, hi = self.depth_panel.range
            where = inp.depth.path.name if inp.depth.path is not None else inp.depth.origin
            self.info.setText(f"{line1}\n{where} · depth {lo:.3g} – {hi:.3g} ({inp.depth.scaling})")
        self.no_depth.setVisible(inp.depth is None)
        self._fit_message()
        self.save_depth_button.setVisible(inp.depth is not None and inp.depth.kind is DepthOrigin.ESTIMATED)
        w = self.warnings
        self.warning_label.setText("⚠ " + "; ".join(w) if w else "")

    def clear(self) -> None:
        self.input = None
        self.image_panel.set_qimage(None)
        self.depth_panel.set_depth(None)
        self.info.setText(" ")
        self.warning_label.setText("")
        self.no_depth.hide()
        self.save_depth_button.hide()

    def set_colormap(self, cmap: str) -> None:
        self.depth_panel.set_colormap(cmap)

    def set_recent(self, entries: list[tuple[str, str]]) -> None:
        self.recent_menu.clear()
        for img, dep in entries:
            act = self.recent_menu.addAction(f"{Path(img).name}  +  {Path(dep).name}" if dep else Path(img).name)
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
