"""What the app needs from core's files and model, without importing storage or the model itself:
the file types it offers and the writers of what it saves, the bundled model, the checkpoint a
setting names, the model sizes training offers, and where the perceptual term's weights are."""

from __future__ import annotations

from pathlib import Path

from core.storage.checkpoint import BUNDLED_MODEL, resolve_checkpoint
from core.storage.io import DEPTH_SUFFIXES, EIGHT_BIT_ONLY, IMAGE_SUFFIXES, OUTPUT_SUFFIXES, write_depth, write_image

__all__ = [
    "DEPTH_SUFFIXES",
    "EIGHT_BIT_ONLY",
    "IMAGE_SUFFIXES",
    "OUTPUT_SUFFIXES",
    "bundled_model_name",
    "is_bundled_model",
    "model_sizes",
    "resolve_checkpoint",
    "vgg19_weights",
    "write_depth",
    "write_image",
]


def bundled_model_name() -> str:
    return BUNDLED_MODEL.name


def is_bundled_model(path: str | Path | None) -> bool:
    return path is not None and Path(path).resolve() == BUNDLED_MODEL.resolve()


def model_sizes() -> tuple[str, ...]:
    """The S3Net presets a training run can start from."""
    from core.model import PRESETS

    return tuple(PRESETS)


def model_size_note(preset: str) -> str:
    """What a preset is, in a sentence."""
    from core.model import PRESET_NOTES

    return PRESET_NOTES.get(preset, "")


def vgg19_weights() -> Path | None:
    """The VGG19 ImageNet weights in the torch hub cache, or None (the perceptual term is then off)."""
    from core.storage.weights import find_vgg19

    return find_vgg19()
