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

from .errors import RelightError, name_list

# Pickles are rebuilt from stand-ins: numpy's own constructors never see the file's bytes. A dtype
# becomes a plain numeric dtype named by its string (dtype flags, fields and object types from the
# file are ignored or refused); an array is built with np.frombuffer after its size is checked. The
# only object array allowed is the 0-d wrapper np.save puts around a dict (VIDIT's depth files).
MAX_ARRAY_BYTES = 1 << 30  # 1 GiB: far above a 16k x 16k float32 depth map
_NUMERIC_KINDS = "biuf"


class _DTypeStub:
    def __init__(self, name, align=False, copy=True):
        if not isinstance(name, str) or len(name) > 8:
            raise pickle.UnpicklingError("dtype names must be short strings")
        self.name, self.order = name, "|"

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">", "|", "="):
            self.order = state[1]  # byte order; every other field (flags, names) is ignored

    def numeric(self) -> np.dtype:
        try:
            dt = np.dtype(self.name)
        except TypeError:
            raise pickle.UnpicklingError(f"unknown dtype {self.name!r}") from None
        if dt.kind not in _NUMERIC_KINDS or dt.fields is not None or dt.subdtype is not None:
            raise pickle.UnpicklingError(f"refusing dtype {self.name!r}: only plain numeric arrays are allowed")
        return dt.newbyteorder(self.order) if self.order in "<>" else dt


class _ArrayStub:
    def __init__(self, cls=None, shape=(0,), typecode=b"b"):
        self.value = None

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) == 5):
            raise pickle.UnpicklingError("malformed array state")
        _version, shape, dtype, fortran, data = state
        if not (isinstance(shape, tuple) and all(isinstance(n, int) and 0 <= n for n in shape) and len(shape) <= 4):
            raise pickle.UnpicklingError(f"bad array shape {shape!r}")
        if not isinstance(dtype, _DTypeStub):
            raise pickle.UnpicklingError("array without a dtype")
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if dtype.name.startswith("O"):
            # np.save's 0-d wrapper around one Python object (a VIDIT dict)
            if shape != () or not isinstance(data, list) or len(data) != 1:
                raise pickle.UnpicklingError("object arrays are not allowed (only a 0-d wrapper around a dict)")
            self.value = data[0]
            return
        dt = dtype.numeric()
        if count * dt.itemsize > MAX_ARRAY_BYTES:
            raise pickle.UnpicklingError(f"array of shape {shape} is larger than {MAX_ARRAY_BYTES >> 20} MB")
        if not isinstance(data, (bytes, bytearray)) or len(data) != count * dt.itemsize:
            raise pickle.UnpicklingError(f"array data does not match shape {shape} and dtype {dt}")
        arr = np.frombuffer(bytes(data), dtype=dt).reshape(shape, order="F" if fortran else "C")
        self.value = np.ascontiguousarray(arr).astype(dt.newbyteorder("="), copy=False)


def _scalar(dtype, data=b""):
    if not isinstance(dtype, _DTypeStub):
        raise pickle.UnpicklingError("scalar without a dtype")
    dt = dtype.numeric()
    if not isinstance(data, (bytes, bytearray)) or len(data) != dt.itemsize:
        raise pickle.UnpicklingError("malformed numpy scalar")
    return np.frombuffer(bytes(data), dtype=dt)[0]


def _codecs_encode(text, encoding="utf-8"):
    """Protocol-2 pickles spell bytes as _codecs.encode(str, 'latin1')."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("only latin1 bytes may be decoded")
    return text.encode("latin1")


_STANDINS = {
    ("numpy.core.multiarray", "_reconstruct"): _ArrayStub,
    ("numpy._core.multiarray", "_reconstruct"): _ArrayStub,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("numpy", "ndarray"): object,  # the class argument of _reconstruct; never called
    ("numpy", "dtype"): _DTypeStub,
    ("_codecs", "encode"): _codecs_encode,
}
_BUILTINS_ALLOWED = {"dict", "list", "tuple", "int", "float", "bool", "str", "bytes"}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _STANDINS:
            return _STANDINS[(module, name)]
        if module in ("builtins", "__builtin__") and name in _BUILTINS_ALLOWED:
            return super().find_class("builtins", name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only arrays, dicts and plain values are allowed")


def _resolve(obj, depth: int = 0):
    """Replace stand-ins by what they built; only dicts, lists/tuples, arrays and plain scalars remain."""
    if depth > 32:
        raise pickle.UnpicklingError("nested too deeply")
    if isinstance(obj, _ArrayStub):
        if obj.value is None:
            raise pickle.UnpicklingError("array without data")
        return _resolve(obj.value, depth + 1)
    if isinstance(obj, dict):
        return {_resolve(k, depth + 1): _resolve(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_resolve(v, depth + 1) for v in obj)
    if isinstance(obj, (np.ndarray, np.generic, int, float, bool, str, bytes, type(None))):
        return obj
    raise pickle.UnpicklingError(f"refusing a {type(obj).__name__} in the file")


def safe_unpickle(data: bytes):
    return _resolve(_RestrictedUnpickler(io.BytesIO(data)).load())


def check_array_header(shape: tuple, dtype: np.dtype, path: Path) -> int:
    """Refuse non-numeric or oversized arrays from their .npy header; returns their size in bytes."""
    if dtype.kind not in _NUMERIC_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise RelightError(f"holds a {dtype} array; only plain numeric arrays are read", path)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes > MAX_ARRAY_BYTES:
        raise RelightError(f"array of shape {shape} is larger than {MAX_ARRAY_BYTES >> 20} MB", path)
    return nbytes


def load_npz_member(path: Path, prefer: tuple[str, ...] = ("normalized_depth", "depth")) -> np.ndarray:
    """One array of an .npz file (a preferred name, or the only one), its header checked first."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            names = [n.removesuffix(".npy") for n in zf.namelist()]
            key = next((k for k in prefer if k in names), names[0] if len(names) == 1 else None)
            if key is None:
                raise RelightError(f"cannot tell which array is the depth (arrays: {name_list(names)}); name it 'depth'", path)
            info = zf.getinfo(key + ".npy")
            with zf.open(info) as f:
                version = np.lib.format.read_magic(f)
                reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, fortran, dtype = reader(f)
            if check_array_header(shape, dtype, path) > info.file_size:
                raise RelightError(f"'{key}' is shorter than its header's {shape} {dtype} array", path)
        with np.load(path, allow_pickle=False) as z:
            return z[key]
    except RelightError:
        raise
    except Exception as exc:  # a corrupt zip can fail in many ways
        raise RelightError(f"not a readable .npz file ({type(exc).__name__}: {exc})", path) from None


def load_npy(path: str | Path):
    """Read a .npy file: a plain array, or a pickled object array (e.g. a VIDIT dict) through the safe unpickler."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = reader(f)
            if not dtype.hasobject:
                # check the header against the limit and the file's length before numpy allocates
                nbytes = check_array_header(shape, dtype, path)
                if path.stat().st_size - f.tell() < nbytes:
                    raise RelightError(f"file is shorter than its header's {shape} {dtype} array (truncated?)", path)
                f.seek(0)
                return np.load(f, allow_pickle=False)
            if path.stat().st_size > MAX_ARRAY_BYTES:
                raise RelightError(f"pickled file is larger than {MAX_ARRAY_BYTES >> 20} MB", path)
            payload = f.read()
    except FileNotFoundError:
        raise RelightError("file not found", path) from None
    except RelightError:
        raise
    except Exception as exc:  # a corrupt header fails in many ways inside numpy (even in its tokenizer)
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise RelightError(f"not a readable .npy file ({type(exc).__name__}: {first})", path) from None
    try:
        obj = safe_unpickle(payload)
    except pickle.UnpicklingError as exc:
        raise RelightError(f"unsafe or corrupt pickle in depth file: {exc}", path) from None
    except Exception as exc:  # corrupt pickles raise many kinds of errors
        raise RelightError(f"corrupt pickled .npy file ({type(exc).__name__}: {exc})", path) from None
    return obj


def _unpickler_reason(exc: Exception) -> str:
    """What the pickle asked for, from torch's weights-only refusal (without its boilerplate)."""
    marker = "WeightsUnpickler error:"
    for ln in (ln.strip() for ln in str(exc).splitlines()):
        if marker in ln:
            ln = ln.split(marker, 1)[1].strip()
        if ln and not ln.startswith(("Weights only load failed", "Please file an issue", "Check the documentation")):
            return ln
    return type(exc).__name__


def load_torch_file(path: str | Path) -> dict:
    """torch.load with weights_only=True; errors become RelightError naming the file."""
    import warnings

    import torch

    path = Path(path)
    if not path.is_file():
        raise RelightError("file not found", path)
    with open(path, "rb") as f:
        head = f.read(4)
    # torch.save writes a zip archive, or (legacy) a pickle that starts with its protocol marker
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):
        raise RelightError("not a checkpoint: expected .safetensors, or a PyTorch file (.pt, .pth, .pkl) "
                           "as written by torch.save", path)
    try:
        with warnings.catch_warnings():  # torch's note on the pickle protocol is not the user's business
            warnings.simplefilter("ignore", UserWarning)
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise RelightError(f"refused to load: the file holds more than tensors ({_unpickler_reason(exc)})", path) from None
    except Exception as exc:  # a corrupt file can fail in many ways inside torch's reader
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise RelightError(f"not a readable PyTorch file ({first})", path) from None
    if not isinstance(obj, dict):
        raise RelightError(f"expected a dict of tensors, found {type(obj).__name__}", path)
    return obj
