"""The light compass: a dial for the light's direction and a colour-temperature slider.

The dial is seen from above with the camera at the bottom: N (up) points away from the camera,
E (right) is the camera's right, as in the synthetic scenes and VIDIT. Dragging snaps to VIDIT's
eight directions unless Shift is held; arrow keys turn it by 1 degree (45 with Shift).
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import QComboBox, QFormLayout, QHBoxLayout, QLabel, QSizePolicy, QSlider, QVBoxLayout, QWidget

from core.base.vocab import COMPASS_DIRECTIONS, ENGINE_LABELS, ENGINES, VIDIT_DIRECTIONS
from core.render.color import kelvin_to_linear_rgb
from core.render.light import LIGHT_SETTINGS, Light

from ..imaging import to_qimage

SNAP_DEG = 45.0
HANDLE_RADIUS = 9  # px
KELVIN_MIN, KELVIN_MAX = 2000, 10000
# the normals engine's sliders: setting -> (label, slider steps per unit, how the value reads)
NORMALS_SLIDERS = {
    "elevation": ("Elevation", 1, lambda v: f"{v:.0f}°"),
    "intensity": ("Intensity", 100, lambda v: f"{v:.2f}"),
    "ambient": ("Ambient", 100, lambda v: f"{v * 100:.0f} %"),
    "softness": ("Softness", 100, lambda v: f"{v * 100:.0f} %"),
    "flatten": ("Flatten", 100, lambda v: f"{v * 100:.0f} %"),
}


def kelvin_srgb(kelvin: float) -> QColor:
    """The black body's colour for display: linear RGB normalised to its largest channel, sRGB-encoded."""
    rgb = kelvin_to_linear_rgb(kelvin)
    rgb = rgb / max(float(rgb.max()), 1e-6)
    srgb = np.where(rgb <= 0.0031308, 12.92 * rgb, 1.055 * np.power(rgb, 1 / 2.4) - 0.055)
    r, g, b = (int(round(255 * float(np.clip(c, 0, 1)))) for c in srgb)
    return QColor(r, g, b)


class CompassDial(QWidget):
    moved = Signal(float)  # azimuth while dragging
    released = Signal(float)  # azimuth when the drag ends (or after a key press)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.azimuth = 90.0
        self.color = QColor(255, 255, 255)
        self.dragging = False
        self.setMinimumSize(150, 150)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setToolTip(
            "Drag to choose where the light comes from (N = away from the camera, E = its right).\n"
            "Snaps to N, NE, E, … unless Shift is held. Arrow keys: 1° (Shift: 45°)."
        )

    def _geometry(self) -> tuple[QPointF, float]:
        side = min(self.width(), self.height())
        return QPointF(self.width() / 2, self.height() / 2), side / 2 - 18

    def azimuth_at(self, pos: QPointF, snap: bool) -> float:
        c, _ = self._geometry()
        az = math.degrees(math.atan2(pos.x() - c.x(), -(pos.y() - c.y()))) % 360.0
        if snap:
            az = (round(az / SNAP_DEG) * SNAP_DEG) % 360.0
        return round(az, 1)

    def set_azimuth(self, az: float) -> None:
        self.azimuth = az % 360.0
        self.update()

    def handle_position(self) -> QPointF:
        """On the dial just inside its rim: the N/E/S/W letters outside the rim stay readable."""
        c, r = self._geometry()
        a = math.radians(self.azimuth)
        rh = r - HANDLE_RADIUS - 2
        return QPointF(c.x() + rh * math.sin(a), c.y() - rh * math.cos(a))

    def paintEvent(self, _ev):
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        c, r = self._geometry()
        p.setPen(QPen(QColor(120, 120, 120), 2))
        p.setBrush(QColor(40, 40, 40))
        p.drawEllipse(c, r, r)
        for i, name in enumerate(COMPASS_DIRECTIONS):
            a = math.radians(22.5 * i)
            major = name in VIDIT_DIRECTIONS
            inner = r - (10 if major else 5)
            p.setPen(QPen(QColor(200, 200, 200) if major else QColor(110, 110, 110), 2 if major else 1))
            p.drawLine(
                QPointF(c.x() + inner * math.sin(a), c.y() - inner * math.cos(a)),
                QPointF(c.x() + r * math.sin(a), c.y() - r * math.cos(a)),
            )
        f = QFont(self.font())
        f.setBold(True)
        p.setFont(f)
        p.setPen(self.palette().color(self.foregroundRole()))  # outside the dial: the window's text colour
        for name, a in (("N", 0), ("E", 90), ("S", 180), ("W", 270)):
            rad = math.radians(a)
            pt = QPointF(c.x() + (r + 10) * math.sin(rad), c.y() - (r + 10) * math.cos(rad))
            p.drawText(QRectF(pt.x() - 10, pt.y() - 9, 20, 18), Qt.AlignmentFlag.AlignCenter, name)
        p.setPen(QColor(150, 150, 150))
        p.drawText(QRectF(c.x() - r, c.y() + r * 0.35, 2 * r, 18), Qt.AlignmentFlag.AlignCenter, "camera ↓")
        h = self.handle_position()
        p.setPen(QPen(self.color, 3))
        p.drawLine(c, h)
        p.setPen(QPen(QColor(20, 20, 20), 2))
        p.setBrush(self.color)
        p.drawEllipse(h, HANDLE_RADIUS, HANDLE_RADIUS)

    def mousePressEvent(self, ev):
        self.dragging = True
        self._drag(ev)

    def mouseMoveEvent(self, ev):
        if self.dragging:
            self._drag(ev)

    def mouseReleaseEvent(self, ev):
        if self.dragging:
            self._drag(ev)
            self.dragging = False
            self.released.emit(self.azimuth)

    def _drag(self, ev):
        snap = not (ev.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        az = self.azimuth_at(ev.position(), snap)
        if az != self.azimuth:
            self.set_azimuth(az)
            self.moved.emit(az)

    def keyPressEvent(self, ev):
        step = SNAP_DEG if ev.modifiers() & Qt.KeyboardModifier.ShiftModifier else 1.0
        if ev.key() in (Qt.Key.Key_Right, Qt.Key.Key_Up):
            self.set_azimuth(self.azimuth + step)
        elif ev.key() in (Qt.Key.Key_Left, Qt.Key.Key_Down):
            self.set_azimuth(self.azimuth - step)
        else:
            return super().keyPressEvent(ev)
        self.moved.emit(self.azimuth)
        self.released.emit(self.azimuth)


class CompassPanel(QWidget):
    """Dial + temperature slider + the rendered guide. `changing` while the user moves a control,
    `changed` when they let go."""

    changing = Signal(object)  # Light
    changed = Signal(object)  # Light

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("compass_panel")
        self.dial = CompassDial()
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(KELVIN_MIN // 100, KELVIN_MAX // 100)  # hundreds of kelvin
        self.slider.setValue(35)
        self.slider.setToolTip("Colour temperature of the light (black body)")
        self.swatch = QLabel()
        self.swatch.setFixedSize(22, 22)
        self.kelvin_label = QLabel()
        self.light_label = QLabel()
        self.light_label.setObjectName("light_label")
        self.guide_view = QLabel("rendered guide")
        self.guide_view.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.guide_view.setMinimumSize(120, 120)
        self.guide_view.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.guide_view.setToolTip("The guide the network sees: the reference scene under this light")
        row = QHBoxLayout()
        row.addWidget(self.dial, 1)
        row.addWidget(self.guide_view, 1)
        trow = QHBoxLayout()
        trow.addWidget(QLabel("Temperature"))
        trow.addWidget(self.slider, 1)
        trow.addWidget(self.swatch)
        trow.addWidget(self.kelvin_label)
        # the engine: S3Net with the rendered guide, or the normals engine with its own sliders
        self.engine_combo = QComboBox()
        self.engine_combo.setObjectName("engine_combo")
        for name in ENGINES:
            self.engine_combo.addItem(ENGINE_LABELS[name], name)
        self.engine_combo.setToolTip(
            "S3Net: the network relights like the rendered guide\n"
            "Normals: a light added from the depth map's surface normals (no model needed)"
        )
        erow = QHBoxLayout()
        erow.addWidget(QLabel("Engine"))
        erow.addWidget(self.engine_combo, 1)
        self.normals_box = QWidget()
        form = QFormLayout(self.normals_box)
        form.setContentsMargins(0, 0, 0, 0)
        self.sliders: dict[str, QSlider] = {}
        self.slider_labels: dict[str, QLabel] = {}
        defaults = Light()
        for name, (label, per_unit, _fmt) in NORMALS_SLIDERS.items():
            lo, hi, meaning = LIGHT_SETTINGS[name]
            sl = QSlider(Qt.Orientation.Horizontal)
            sl.setObjectName(f"{name}_slider")
            sl.setRange(round(lo * per_unit), round(hi * per_unit))
            sl.setValue(round(getattr(defaults, name) * per_unit))
            sl.setToolTip(meaning[:1].upper() + meaning[1:])
            sl.sliderMoved.connect(lambda _v: self._emit(self.changing))
            sl.sliderReleased.connect(lambda: self._emit(self.changed))
            sl.valueChanged.connect(lambda _v, sl=sl: None if sl.isSliderDown() else self._emit(self.changed))
            value = QLabel()
            value.setMinimumWidth(42)
            cell = QHBoxLayout()
            cell.addWidget(sl, 1)
            cell.addWidget(value)
            form.addRow(label, cell)
            self.sliders[name], self.slider_labels[name] = sl, value
        self.engine_combo.currentIndexChanged.connect(lambda _i: (self._show_engine(), self._emit(self.changed)))
        lay = QVBoxLayout(self)
        lay.addLayout(erow)
        lay.addLayout(row, 1)
        lay.addLayout(trow)
        lay.addWidget(self.normals_box)
        lay.addWidget(self.light_label)
        self.light_label.setWordWrap(True)  # the normals engine's settings make a long line
        self._show_engine()
        self.dial.moved.connect(lambda _a: self._emit(self.changing))
        self.dial.released.connect(lambda _a: self._emit(self.changed))
        self.slider.sliderMoved.connect(lambda _v: self._emit(self.changing))
        self.slider.sliderReleased.connect(lambda: self._emit(self.changed))
        self.slider.valueChanged.connect(lambda _v: None if self.slider.isSliderDown() else self._emit(self.changed))
        self._refresh()

    @property
    def light(self) -> Light:
        settings = {n: self.sliders[n].value() / per_unit for n, (_l, per_unit, _f) in NORMALS_SLIDERS.items()}
        return Light(self.dial.azimuth, float(self.slider.value() * 100), **settings)

    @property
    def engine(self) -> str:
        return self.engine_combo.currentData()

    def set_engine(self, engine: str) -> None:
        self.engine_combo.setCurrentIndex(ENGINES.index(engine))

    def show_engine(self, engine: str) -> None:
        """Show `engine` without emitting `changed` (the change came from elsewhere)."""
        self.engine_combo.blockSignals(True)
        self.engine_combo.setCurrentIndex(ENGINES.index(engine))
        self.engine_combo.blockSignals(False)
        self._show_engine()
        self._refresh()

    def set_light(self, light: Light) -> None:
        self.dial.set_azimuth(light.azimuth)
        for sl, value in [(self.slider, int(round(light.kelvin / 100)))] + [
            (self.sliders[n], round(getattr(light, n) * per_unit)) for n, (_l, per_unit, _f) in NORMALS_SLIDERS.items()
        ]:
            sl.blockSignals(True)
            sl.setValue(value)
            sl.blockSignals(False)
        self._refresh()

    def _show_engine(self) -> None:
        normals = self.engine == "normals"
        self.normals_box.setVisible(normals)
        self.guide_view.setVisible(not normals)  # the normals engine has no guide

    @property
    def shows_guide(self) -> bool:
        return not self.guide_view.pixmap().isNull()

    def show_guide(self, image: np.ndarray | None) -> None:
        from PySide6.QtGui import QPixmap

        if image is None:
            self.guide_view.setPixmap(QPixmap())
            return
        pix = QPixmap.fromImage(to_qimage(image))
        self.guide_view.setPixmap(
            pix.scaled(
                self.guide_view.size(), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
            )
        )

    def _refresh(self) -> None:
        light = self.light
        color = kelvin_srgb(light.kelvin)
        self.dial.color = color
        self.dial.update()
        self.swatch.setStyleSheet(f"background: {color.name()}; border: 1px solid #333;")
        self.kelvin_label.setText(f"{light.kelvin:.0f} K")
        text = light.describe()
        if self.engine == "normals":
            text += ", " + light.describe_settings()
        self.light_label.setText(text[:1].upper() + text[1:])
        for name, (_l, _p, fmt) in NORMALS_SLIDERS.items():
            self.slider_labels[name].setText(fmt(getattr(light, name)))

    def _emit(self, signal) -> None:
        self._refresh()
        signal.emit(self.light)
