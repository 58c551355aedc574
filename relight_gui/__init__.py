"""Relight Studio desktop application (PySide6): a thin face over `core`."""
