"""Training: datasets, the frame cache, synthetic data, losses, metrics, the training loop and evaluation."""
