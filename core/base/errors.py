"""The one exception type for problems a user can cause (bad file, wrong sizes, bad checkpoint)."""

from __future__ import annotations

import re
from pathlib import Path

# C0/C1 controls, DEL, line/paragraph separators and bidirectional overrides: in a file name they could
# forge a second error line or make a message read differently from what it says
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(m: re.Match) -> str:
    c = ord(m.group())
    return {0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}.get(c) or (f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}")


def clean(text: object) -> str:
    """`text` on one line: control characters written as escapes (a name cannot start a new line)."""
    return _CONTROL.sub(_escape, str(text))


def name_list(names, limit: int = 5) -> str:
    """At most `limit` names, then "and N more" (a folder of thousands gives one readable line)."""
    names = [clean(n) for n in names]
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


class RelightError(Exception):
    """A user-facing error. The message names the file (when there is one) and what is wrong."""

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = Path(path) if path is not None else None
        self.detail = message
        super().__init__(clean(f"{self.path}: {message}" if self.path is not None else message))


class WriteError(RelightError):
    """A result could not be written (disk full, no permission); `errno` says which."""

    def __init__(self, message: str, path: str | Path | None = None, errno: int | None = None):
        super().__init__(message, path)
        self.errno = errno


class Cancelled(Exception):
    """Raised inside long work when the user asked to stop."""
