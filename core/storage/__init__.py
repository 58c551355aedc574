"""Files: image and depth reading and writing, safe loading, decode limits, checkpoints and pretrained
backbone weights."""
