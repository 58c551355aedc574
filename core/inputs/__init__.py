"""The one input type (image + depth + where each came from), the pairing rules and the dataset
folder layouts."""

from core.inputs.input import Input, InputFiles, PairFiles, load_input, load_pair
from core.storage.io import DepthMap

__all__ = ["DepthMap", "Input", "InputFiles", "PairFiles", "load_input", "load_pair"]
