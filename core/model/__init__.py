from .s3net import PRESETS, S3Net, S3NetConfig, count_parameters, create_model

__all__ = ["PRESETS", "S3Net", "S3NetConfig", "count_parameters", "create_model"]
