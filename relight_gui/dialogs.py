"""Error dialogs. Window-modal but non-blocking, so background work keeps running."""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

log = logging.getLogger("relight.gui")


def show_error(parent: QWidget, title: str, message: str) -> QMessageBox:
    log.warning("%s: %s", title, message)
    box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, parent)
    box.setObjectName("errorDialog")
    box.setTextFormat(Qt.TextFormat.PlainText)  # messages hold file names: never render them as markup
    box.finished.connect(box.deleteLater)
    box.open()
    return box
