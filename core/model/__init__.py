from .s3net import (
    PRESET_NOTES,
    PRESETS,
    S3Net,
    S3NetConfig,
    adds_colour_path,
    count_parameters,
    create_model,
    with_colour_path,
)

__all__ = [
    "PRESETS",
    "PRESET_NOTES",
    "S3Net",
    "S3NetConfig",
    "adds_colour_path",
    "count_parameters",
    "create_model",
    "with_colour_path",
]
