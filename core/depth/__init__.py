"""Depth estimation: the estimators, the fast CUDA path, the depth network and its model store."""
