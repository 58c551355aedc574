"""A thread-safe cancel flag shared between a face (GUI/CLI) and long work in core, and a joinable
handle on the threads core starts by itself."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from core.base.errors import Cancelled


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


class BackgroundThreads:
    """Threads core starts on its own (the fast path's background compile), behind a handle a face
    can cancel (no new thread starts; work that checks `token` stops early) and join before exiting."""

    def __init__(self) -> None:
        self.token = CancelToken()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self, target: Callable[..., object], *args: object, name: str) -> bool:
        """Run `target(*args)` in a daemon thread; False (nothing started) once cancelled."""
        with self._lock:
            if self.token.cancelled:
                return False
            self._threads = [t for t in self._threads if t.is_alive()]
            thread = threading.Thread(target=target, args=args, name=name, daemon=True)
            self._threads.append(thread)
            thread.start()
            return True

    def cancel(self) -> None:
        self.token.cancel()

    @property
    def alive(self) -> int:
        with self._lock:
            return sum(t.is_alive() for t in self._threads)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for every thread started so far; True when none is left running."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return self.alive == 0
