"""PyInstaller entry script for the desktop app."""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from relight_gui.app import main

    sys.exit(main())
