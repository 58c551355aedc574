"""What a program built on core sets for its own process, once, at its start: the faces (the
`relight` command, the app) call ``configure_process()`` before anything imports OpenCV or torch's
compiler. The library itself never changes the process's environment."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from core.storage.limits import MAX_IMAGE_PIXELS


def inductor_cache_dir() -> Path:
    """torch.compile's cache in the app's data folder: a later launch loads instead of compiling."""
    from core.base.logs import data_dir

    return data_dir() / "inductor-cache"


def configure_process() -> None:
    """OpenCV reads its decoder limit when it is loaded and its EXR switch at the first EXR file;
    torch.compile reads its cache folder when it first compiles. Values the user set are kept."""
    if "cv2" not in sys.modules:  # OpenCV's own guard behind ours (core.storage.io checks headers first)
        os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_IMAGE_PIXELS))
        # decoders' warnings and errors (a truncated PNG, a cut-off TIFF or BMP) would go to stderr beside
        # our own one-line error, which already says the file cannot be read: fatal messages only
        os.environ.setdefault("OPENCV_LOG_LEVEL", "FATAL")
    os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(inductor_cache_dir()))
