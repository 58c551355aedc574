"""Progress reporting for long work, and a small text progress bar for the command line.

All long work in core reports through one type: ``progress(fraction, message)`` with fraction in
[0, 1], and stops when its ``CancelToken`` is cancelled. Training's richer callbacks build on it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

Progress = Callable[[float, str], None]


def no_progress(fraction: float, message: str) -> None:
    """The default Progress: report nothing."""


class ProgressBar:
    def __init__(self, total: int, label: str = "", stream=None, width: int = 28):
        self.total, self.label, self.width = max(total, 1), label, width
        self.stream = stream or sys.stderr
        self.start = time.perf_counter()
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last = -1.0

    def update(self, done: float, note: str = "") -> None:
        frac = min(max(done / self.total, 0.0), 1.0)
        now = time.perf_counter()
        if not self.tty and frac < 1.0 and now - self._last < 2.0:
            return
        self._last = now
        elapsed = now - self.start
        eta = elapsed / frac * (1 - frac) if frac > 0 else 0.0
        bar = "#" * int(frac * self.width)
        line = f"{self.label} [{bar:<{self.width}}] {frac * 100:5.1f}% {done:.0f}/{self.total} {elapsed:5.0f}s<{eta:4.0f}s {note}"
        self.stream.write(("\r" + line[:150] + "\033[K") if self.tty else line + "\n")
        self.stream.flush()

    def __call__(self, fraction: float, note: str = "") -> None:
        """Use the bar as a Progress callback."""
        self.update(fraction * self.total, note)

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
