"""The one exception type for problems a user can cause (bad file, wrong sizes, bad checkpoint)."""
from __future__ import annotations

from pathlib import Path


class RelightError(Exception):
    """A user-facing error. The message names the file (when there is one) and what is wrong."""

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = Path(path) if path is not None else None
        self.detail = message
        super().__init__(f"{self.path}: {message}" if self.path is not None else message)


class Cancelled(Exception):
    """Raised inside long work when the user asked to stop."""
