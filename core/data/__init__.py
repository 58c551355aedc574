"""Datasets (VIDIT, NTIRE pairs), paired augmentation, and the synthetic VIDIT-style renderer."""
