"""Limits on what this program decodes, in a leaf that imports nothing (read before OpenCV loads)."""

MAX_IMAGE_PIXELS = 150_000_000  # 150 MP: larger images are refused before they are decoded
