"""A thread-safe cancel flag shared between a face (GUI/CLI) and long work in core."""

from __future__ import annotations

import threading

from .errors import Cancelled


class CancelToken:
    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise Cancelled if cancel() was called; call between stages of long work."""
        if self._event.is_set():
            raise Cancelled()
