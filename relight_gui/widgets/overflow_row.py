"""A one-line toolbar row that never squeezes its controls: each shown control gets its full width,
and the controls that do not fit move, from the end, into a "More" menu (like a toolbar's
extension button). Buttons become menu entries, combo boxes sub-menus; the menu is built when it
opens, so it always shows the controls' current text, check and enabled states."""

from __future__ import annotations

from PySide6.QtCore import QSize
from PySide6.QtWidgets import QComboBox, QLabel, QMenu, QPushButton, QSizePolicy, QToolButton, QWidget

SPACING = 6


class OverflowRow(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.items: list[QWidget] = []
        self.trailing: list[QWidget] = []  # kept at the right edge (e.g. Fit, 1:1) while they fit
        self.more = QToolButton(self)
        self.more.setText("More ▾")
        self.more.setObjectName("more")
        self.more.setToolTip("The controls that do not fit in this row")
        self.more.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.menu = QMenu(self.more)
        self.menu.aboutToShow.connect(self._fill_menu)
        self.more.setMenu(self.menu)
        self.more.hide()
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)

    def add(self, w: QWidget, trailing: bool = False) -> QWidget:
        w.setParent(self)
        (self.trailing if trailing else self.items).append(w)
        # the layout ignores the row's size hint (it may be narrower than all of it) but never its minimum
        self.setMinimumWidth(self.minimumSizeHint().width())
        self._layout()
        return w

    @property
    def controls(self) -> list[QWidget]:
        return self.items + self.trailing

    def hidden_controls(self) -> list[QWidget]:
        return [w for w in self.controls if w.isHidden()]

    # ---- geometry -------------------------------------------------------------------------
    @staticmethod
    def _width(w: QWidget) -> int:
        return max(w.sizeHint().width(), w.minimumSizeHint().width(), w.minimumWidth())

    def sizeHint(self) -> QSize:
        ws = [self._width(w) for w in self.controls]
        return QSize(sum(ws) + SPACING * max(0, len(ws) - 1) + 24, self._height())

    def minimumSizeHint(self) -> QSize:
        first = self._width(self.controls[0]) if self.controls else 0
        return QSize(first + SPACING + self.more.sizeHint().width(), self._height())

    def _height(self) -> int:
        return max([w.sizeHint().height() for w in self.controls] + [self.more.sizeHint().height()])

    def resizeEvent(self, ev):
        super().resizeEvent(ev)
        self._layout()

    def _layout(self) -> None:
        """Show the leading controls that fit, in order, then the trailing ones at the right edge;
        whatever does not fit goes into the More menu."""
        avail, h = self.width(), self.height() or self._height()
        widths = {w: self._width(w) for w in self.controls}
        total = sum(widths.values()) + SPACING * max(0, len(self.controls) - 1)
        fits_all = total <= avail
        more_w = 0 if fits_all else self.more.sizeHint().width() + SPACING
        shown, used = [], 0
        for w in self.items + self.trailing:
            need = widths[w] + (SPACING if shown else 0)
            if used + need + more_w <= avail or (not shown and w is self.controls[0]):
                shown.append(w)
                used += need
            else:
                break  # keep the order: nothing after the first control that does not fit
        x = 0
        lead = [w for w in self.items if w in shown]
        trail = [w for w in self.trailing if w in shown]
        for w in lead:
            w.setGeometry(x, (h - w.sizeHint().height()) // 2, widths[w], w.sizeHint().height())
            x += widths[w] + SPACING
        # trailing controls sit at the right edge (before the More button when it shows)
        right = avail - more_w
        for w in reversed(trail):
            right -= widths[w]
            w.setGeometry(right, (h - w.sizeHint().height()) // 2, widths[w], w.sizeHint().height())
            right -= SPACING
        for w in self.controls:
            w.setVisible(w in shown)
        self.more.setVisible(not fits_all)
        if not fits_all:
            mw = self.more.sizeHint().width()
            self.more.setGeometry(
                avail - mw, (h - self.more.sizeHint().height()) // 2, mw, self.more.sizeHint().height()
            )

    # ---- the More menu --------------------------------------------------------------------
    def _fill_menu(self) -> None:
        self.menu.clear()
        label = ""
        for w in self.hidden_controls():
            for sub in [w, *w.findChildren(QWidget)]:
                if isinstance(sub, QLabel):
                    label = sub.text().strip(" :")
                elif isinstance(sub, QPushButton):
                    act = self.menu.addAction(sub.text())
                    act.setEnabled(sub.isEnabled())
                    act.setCheckable(sub.isCheckable())
                    act.setChecked(sub.isChecked())
                    act.setToolTip(sub.toolTip())
                    act.triggered.connect(lambda _=False, b=sub: b.click())
                elif isinstance(sub, QComboBox):
                    menu = self.menu.addMenu(label or sub.toolTip().split("\n")[0] or "Choose")
                    menu.setEnabled(sub.isEnabled())
                    for i in range(sub.count()):
                        act = menu.addAction(sub.itemText(i))
                        act.setCheckable(True)
                        act.setChecked(i == sub.currentIndex())
                        act.triggered.connect(lambda _=False, c=sub, k=i: c.setCurrentIndex(k))
                    label = ""
