"""Loading pickled files from the internet without letting them run code.

VIDIT depth maps are pickled dicts saved by ``np.save``; the official S3Net weights are a
pickled ``torch.save`` file. Both are read with unpicklers that only build a short allow-list
of types (numpy arrays and scalars, dicts, lists, plain Python scalars; for torch files,
torch's own ``weights_only`` unpickler) and refuse everything else.
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from .errors import RelightError

# (module, name) pairs numpy pickles need to rebuild arrays, dtypes and scalars.
_NUMPY_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
}
_BUILTINS_ALLOWED = {"dict", "list", "tuple", "set", "frozenset", "int", "float", "complex", "bool", "str", "bytes", "slice"}
_DTYPE_CLASS_PREFIX = ("numpy.dtypes",)


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _NUMPY_ALLOWED:
            return super().find_class(module, name)
        if module == "builtins" and name in _BUILTINS_ALLOWED:
            return super().find_class(module, name)
        if module in _DTYPE_CLASS_PREFIX and name.endswith("DType"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only arrays, dicts and plain values are allowed")


def safe_unpickle(data: bytes):
    return _RestrictedUnpickler(io.BytesIO(data)).load()


def load_npy(path: str | Path):
    """Read a .npy file: a plain array, or a pickled object array (e.g. a VIDIT dict) through the safe unpickler."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = reader(f)
            if not dtype.hasobject:
                f.seek(0)
                return np.load(f, allow_pickle=False)
            payload = f.read()
    except FileNotFoundError:
        raise RelightError("file not found", path) from None
    except (ValueError, OSError, EOFError) as exc:
        raise RelightError(f"not a readable .npy file ({exc})", path) from None
    try:
        obj = safe_unpickle(payload)
    except pickle.UnpicklingError as exc:
        raise RelightError(f"unsafe or corrupt pickle in depth file: {exc}", path) from None
    except Exception as exc:  # corrupt pickles raise many kinds of errors
        raise RelightError(f"corrupt pickled .npy file ({type(exc).__name__}: {exc})", path) from None
    if isinstance(obj, np.ndarray) and obj.dtype == object and obj.shape == ():
        obj = obj.item()
    return obj


def load_torch_file(path: str | Path) -> dict:
    """torch.load with weights_only=True; errors become RelightError naming the file."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise RelightError("file not found", path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise RelightError(f"refused to load: the file holds more than tensors ({str(exc).splitlines()[0]})", path) from None
    except Exception as exc:  # a corrupt file can fail in many ways inside torch's reader
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise RelightError(f"not a readable PyTorch file ({first})", path) from None
    if not isinstance(obj, dict):
        raise RelightError(f"expected a dict of tensors, found {type(obj).__name__}", path)
    return obj
