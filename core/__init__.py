"""Relight Studio core library: S3Net depth-guided image relighting (no Qt in here)."""

__version__ = "0.3.0"
