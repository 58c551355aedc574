"""Image and depth panels for the input cards: fit-to-panel display, a depth colour bar,
min/max, and the depth value under the cursor."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QWidget

from ..imaging import colorbar, colorize_depth, depth_range, to_qimage


class ImagePanel(QWidget):
    """Shows one image scaled to fit, keeping its aspect ratio."""

    hovered = Signal(int, int)  # image pixel under the cursor (-1, -1 when outside)

    def __init__(self, placeholder: str, parent=None):
        super().__init__(parent)
        self.placeholder = placeholder
        self.qimage: QImage | None = None
        self.setMinimumSize(100, 90)  # two side by side fit the inputs panel of a small window
        self.setMouseTracking(True)

    def set_qimage(self, img: QImage | None) -> None:
        self.qimage = img
        self.update()

    def target_rect(self) -> QRectF:
        r = QRectF(self.rect()).adjusted(2, 2, -2, -2)
        if self.qimage is None:
            return r
        s = min(r.width() / self.qimage.width(), r.height() / self.qimage.height())
        w, h = self.qimage.width() * s, self.qimage.height() * s
        return QRectF(r.left() + (r.width() - w) / 2, r.top() + (r.height() - h) / 2, w, h)

    def paintEvent(self, _ev):
        p = QPainter(self)
        p.fillRect(self.rect(), self.palette().color(self.backgroundRole()).darker(110))
        if self.qimage is None:
            p.setPen(self.palette().color(self.foregroundRole()))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
            return
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        p.drawImage(self.target_rect(), self.qimage)

    def mouseMoveEvent(self, ev):
        if self.qimage is None:
            return
        t = self.target_rect()
        pos: QPointF = ev.position()
        if not t.contains(pos):
            self.hovered.emit(-1, -1)
            return
        x = int((pos.x() - t.left()) / t.width() * self.qimage.width())
        y = int((pos.y() - t.top()) / t.height() * self.qimage.height())
        self.hovered.emit(min(x, self.qimage.width() - 1), min(y, self.qimage.height() - 1))

    def leaveEvent(self, _ev):
        self.hovered.emit(-1, -1)


class DepthPanel(ImagePanel):
    """A depth map under a colour map, with a colour bar and its min/max."""

    def __init__(self, parent=None):
        super().__init__("depth map", parent)
        self.depth: np.ndarray | None = None
        self.cmap = "turbo"
        self.range = (0.0, 1.0)
        self._bar: QImage | None = None

    def set_depth(self, depth: np.ndarray | None, cmap: str | None = None) -> None:
        self.depth = depth
        if cmap:
            self.cmap = cmap
        if depth is None:
            self.set_qimage(None)
            return
        self.range = depth_range(depth)
        self._bar = to_qimage(colorbar(self.cmap))
        self.set_qimage(to_qimage(colorize_depth(depth, self.cmap)))

    def set_colormap(self, cmap: str) -> None:
        self.set_depth(self.depth, cmap)

    def target_rect(self) -> QRectF:
        r = super().target_rect()
        if self.qimage is None:
            return r
        # leave room on the right for the colour bar and its labels
        full = QRectF(self.rect()).adjusted(2, 2, -58, -2)
        s = min(full.width() / self.qimage.width(), full.height() / self.qimage.height())
        w, h = self.qimage.width() * s, self.qimage.height() * s
        return QRectF(full.left() + (full.width() - w) / 2, full.top() + (full.height() - h) / 2, w, h)

    def paintEvent(self, ev):
        super().paintEvent(ev)
        if self.qimage is None or self._bar is None:
            return
        p = QPainter(self)
        t = self.target_rect()
        bar = QRectF(self.width() - 52, t.top(), 12, t.height())
        p.drawImage(bar, self._bar)
        p.setPen(self.palette().color(self.foregroundRole()))
        lo, hi = self.range
        p.drawText(QRectF(bar.right() + 3, bar.top() - 2, 40, 16), Qt.AlignmentFlag.AlignLeft, f"{hi:.3g}")
        p.drawText(QRectF(bar.right() + 3, bar.bottom() - 14, 40, 16), Qt.AlignmentFlag.AlignLeft, f"{lo:.3g}")
        p.setPen(QColor(0, 0, 0, 0))

    def value_at(self, x: int, y: int) -> float | None:
        if self.depth is None or x < 0 or y < 0:
            return None
        return float(self.depth[y, x])
