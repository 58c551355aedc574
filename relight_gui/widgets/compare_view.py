"""Before/after compare view: split with a draggable divider, side by side, hold-to-flip toggle,
and difference; one shared zoom (wheel, at the cursor) and pan for every pane."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QWidget

from ..imaging import difference, to_qimage

# the ways to compare a result with its input, and their button labels (a view concept: not in core)
COMPARE_MODES = {"split": "Split", "side": "Side by side", "toggle": "Toggle", "difference": "Difference"}
MODES = tuple(COMPARE_MODES)


class CompareView(QWidget):
    modeChanged = Signal(str)  # the compare mode, however it was chosen (a button, the View menu)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumSize(200, 100)  # small windows keep the toolbars; the picture scales
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.before: np.ndarray | None = None
        self.after: np.ndarray | None = None
        self._qb: QImage | None = None
        self._qa: QImage | None = None
        self._qd: QImage | None = None
        self.mode = "split"
        self.divider = 0.5  # fraction of the pane width
        self.scale = 1.0
        self.offset = QPointF(0, 0)  # image coordinates of the pane's top-left corner
        self.flipped = False  # toggle mode: showing "before"
        self.labels = ("before", "after")
        self.gain = 4.0  # difference mode amplification
        self.placeholder = "Drop a source, then a guide photo or set the light compass, then Relight."
        self._drag: str | None = None
        self._last = QPointF()
        self._fitted = True

    # ---- content --------------------------------------------------------------------------
    def set_images(
        self, before: np.ndarray | None, after: np.ndarray | None, labels=("before", "after"), keep_view=False
    ):
        first = self.before is None or before is None or self.before.shape[:2] != before.shape[:2]
        self.before, self.after, self.labels = before, after, labels
        self._qb = to_qimage(before) if before is not None else None
        self._qa = to_qimage(after) if after is not None else None
        self._qd = to_qimage(difference(before, after, self.gain)) if before is not None and after is not None else None
        if (first and not keep_view) or self._fitted:
            self.fit()
        self.update()

    def set_hint(self, text: str) -> None:
        """The next step, shown on the empty view or over a lone source."""
        if text != self.placeholder:
            self.placeholder = text
            self.update()

    def set_difference_gain(self, gain: float) -> None:
        self.gain = gain
        if self.before is not None and self.after is not None:
            self._qd = to_qimage(difference(self.before, self.after, gain))
            self.update()

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(mode)
        self.mode = mode
        if self._fitted:
            self.fit()
        else:  # e.g. 1:1 then Side by side: the narrower panes stay centred on the image
            self._clamp()
        self.update()
        self.modeChanged.emit(mode)

    # ---- geometry -------------------------------------------------------------------------
    def panes(self) -> list[QRectF]:
        r = QRectF(self.rect())
        if self.mode == "side" and self._qa is not None:  # a lone image fills the view
            half = r.width() / 2
            return [QRectF(0, 0, half - 1, r.height()), QRectF(half + 1, 0, half - 1, r.height())]
        return [r]

    def image_size(self) -> tuple[int, int]:
        img = self.after if self.after is not None else self.before
        return (img.shape[1], img.shape[0]) if img is not None else (1, 1)

    def fit(self) -> None:
        w, h = self.image_size()
        pane = self.panes()[0]
        self.scale = max(1e-3, min(pane.width() / w, pane.height() / h))
        self.offset = QPointF((w - pane.width() / self.scale) / 2, (h - pane.height() / self.scale) / 2)
        self._fitted = True
        self.update()

    def _clamp(self) -> None:
        """Keep the view on the image: an axis smaller than the pane is centred, a larger one cannot be
        panned past its edges."""
        if self.before is None and self.after is None:
            return
        w, h = self.image_size()
        pane = self.panes()[0]
        vis_w, vis_h = pane.width() / self.scale, pane.height() / self.scale
        x = (w - vis_w) / 2 if vis_w >= w else float(np.clip(self.offset.x(), 0, w - vis_w))
        y = (h - vis_h) / 2 if vis_h >= h else float(np.clip(self.offset.y(), 0, h - vis_h))
        self.offset = QPointF(x, y)

    def actual_size(self) -> None:
        self.zoom_at(1.0 / self.scale, QPointF(self.panes()[0].center()))

    def zoom_at(self, factor: float, pos: QPointF) -> None:
        """Zoom by `factor` keeping the image point under `pos` (widget coords) fixed."""
        pane = next((p for p in self.panes() if p.contains(pos)), self.panes()[0])
        local = pos - pane.topLeft()
        img_pt = self.offset + local / self.scale
        self.scale = float(np.clip(self.scale * factor, 0.02, 64.0))
        self.offset = img_pt - local / self.scale
        self._clamp()
        self._fitted = False
        self.update()

    def pane_to_image(self, pane_index: int, pos: QPointF) -> QPointF:
        return self.offset + (pos - self.panes()[pane_index].topLeft()) / self.scale

    # ---- painting -------------------------------------------------------------------------
    def _draw(self, p: QPainter, img: QImage, pane: QRectF, clip: QRectF | None = None):
        p.save()
        p.setClipRect(clip or pane)
        p.translate(pane.topLeft())
        p.scale(self.scale, self.scale)
        p.translate(-self.offset)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.scale < 2)
        p.drawImage(QPointF(0, 0), img)
        p.restore()

    def paintEvent(self, _ev):
        p = QPainter(self)
        p.fillRect(self.rect(), self.palette().color(self.backgroundRole()).darker(115))
        if self._qa is None and self._qb is None:
            p.setPen(self.palette().color(self.foregroundRole()))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
            return
        before = self._qb or self._qa
        after = self._qa or self._qb
        panes = self.panes()
        captions = []
        if self._qa is None:  # one image (the source before any result): no comparison, the hint over it
            pane = panes[0]
            self._draw(p, before, pane)
            captions = [(pane, self.labels[0])] if self.labels[0] else []
            if self.placeholder:
                fm = p.fontMetrics()
                box = fm.boundingRect(
                    pane.adjusted(40, 0, -40, 0).toRect(),
                    int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap),
                    self.placeholder,
                )
                box = QRectF(box).adjusted(-12, -8, 12, 8)
                box.moveCenter(QPointF(pane.center().x(), pane.bottom() - box.height() / 2 - 24))
                p.fillRect(box, QColor(0, 0, 0, 170))
                p.setPen(QColor(255, 255, 255))
                p.drawText(box, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
        elif self.mode == "side":
            self._draw(p, before, panes[0])
            self._draw(p, after, panes[1])
            captions = [(panes[0], self.labels[0]), (panes[1], self.labels[1])]
        elif self.mode == "toggle":
            show_before = self.flipped
            self._draw(p, before if show_before else after, panes[0])
            captions = [(panes[0], (self.labels[0] if show_before else self.labels[1]) + "  (hold Space to flip)")]
        elif self.mode == "difference":
            self._draw(p, self._qd or after, panes[0])
            captions = [(panes[0], f"|{self.labels[1]} - {self.labels[0]}| ×{self.gain:g}")]
        else:
            pane = panes[0]
            x = pane.left() + self.divider * pane.width()
            self._draw(p, after, pane)
            self._draw(p, before, pane, QRectF(pane.left(), pane.top(), x - pane.left(), pane.height()))
            p.setPen(QPen(QColor(255, 255, 255, 220), 2))
            p.drawLine(QPointF(x, pane.top()), QPointF(x, pane.bottom()))
            p.setBrush(QColor(255, 255, 255, 220))
            p.drawEllipse(QPointF(x, pane.center().y()), 7, 7)
            captions = [
                (QRectF(pane.left(), pane.top(), x - pane.left(), 30), self.labels[0]),
                (QRectF(x, pane.top(), pane.right() - x, 30), self.labels[1]),
            ]
        p.setPen(QColor(255, 255, 255))
        for rect, text in captions:
            if rect.width() > 40:
                r = QRectF(rect.left() + 8, rect.top() + 6, min(rect.width() - 16, 8 * len(text) + 12), 20)
                p.fillRect(r, QColor(0, 0, 0, 150))
                p.drawText(r, Qt.AlignmentFlag.AlignCenter, text)
        p.drawText(
            self.rect().adjusted(0, 0, -8, -6),
            Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignBottom,
            f"{self.scale * 100:.0f}%",
        )

    # ---- interaction ----------------------------------------------------------------------
    def resizeEvent(self, ev):
        if self._fitted:
            self.fit()
        else:
            self._clamp()
        super().resizeEvent(ev)

    def wheelEvent(self, ev):
        steps = ev.angleDelta().y() / 120.0
        if steps:
            self.zoom_at(1.25**steps, ev.position())

    def _near_divider(self, pos: QPointF) -> bool:
        pane = self.panes()[0]
        return self.mode == "split" and abs(pos.x() - (pane.left() + self.divider * pane.width())) < 10

    def mousePressEvent(self, ev):
        self._last = ev.position()
        self._drag = "divider" if self._near_divider(ev.position()) else "pan"
        if self._drag == "divider":
            self.set_divider_at(ev.position().x())

    def mouseMoveEvent(self, ev):
        pos = ev.position()
        if self._drag == "divider":
            self.set_divider_at(pos.x())
        elif self._drag == "pan":
            self.offset -= (pos - self._last) / self.scale
            self._clamp()
            self._fitted = False
            self.update()
        else:
            self.setCursor(Qt.CursorShape.SplitHCursor if self._near_divider(pos) else Qt.CursorShape.OpenHandCursor)
        self._last = pos

    def mouseReleaseEvent(self, _ev):
        self._drag = None

    def mouseDoubleClickEvent(self, _ev):
        self.fit()

    def set_divider_at(self, x: float) -> None:
        pane = self.panes()[0]
        self.divider = float(np.clip((x - pane.left()) / max(pane.width(), 1), 0.0, 1.0))
        self.update()

    def keyPressEvent(self, ev):
        if ev.key() == Qt.Key.Key_Space and not ev.isAutoRepeat():
            self.flipped = True
            self.update()
        else:
            super().keyPressEvent(ev)

    def keyReleaseEvent(self, ev):
        if ev.key() == Qt.Key.Key_Space and not ev.isAutoRepeat():
            self.flipped = False
            self.update()
        else:
            super().keyReleaseEvent(ev)
