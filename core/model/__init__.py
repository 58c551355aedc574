from .s3net import PRESETS, S3Net, S3NetConfig, adds_colour_path, count_parameters, create_model, with_colour_path

__all__ = [
    "PRESETS",
    "S3Net",
    "S3NetConfig",
    "adds_colour_path",
    "count_parameters",
    "create_model",
    "with_colour_path",
]
