"""Where Relight Studio keeps its log file, and logging set-up shared by the CLI and the app."""

from __future__ import annotations

import logging
import os
import sys
from logging.handlers import RotatingFileHandler
from pathlib import Path

APP_NAME = "Relight Studio"


def data_dir() -> Path:
    """The per-user data folder (Linux: ~/.local/share/RelightStudio/Relight Studio)."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        # an empty or relative XDG_DATA_HOME is invalid (XDG spec) and would write into the working folder
        xdg = os.environ.get("XDG_DATA_HOME", "")
        base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / "RelightStudio" / APP_NAME


def add_file_handler(name: str = "relight-studio.log") -> Path | None:
    """Also log to a rotating file in data_dir(); returns its path (None if it cannot be written)."""
    root = logging.getLogger()
    try:
        folder = data_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        # a process that runs the command line or the app more than once (a script, the tests) gets one
        # handler per file: each added another, and every line was written once per run so far
        if any(isinstance(h, RotatingFileHandler) and h.baseFilename == os.path.abspath(path) for h in root.handlers):
            return path
        handler = RotatingFileHandler(path, maxBytes=2_000_000, backupCount=2, encoding="utf-8")
    except OSError:
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    return path
