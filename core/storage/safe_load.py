"""Loading pickled files from the internet without letting them run code.

VIDIT depth maps are pickled dicts saved by ``np.save``; the official S3Net weights are a
pickled ``torch.save`` file. Both are read with unpicklers that only build a short allow-list
of types (numpy arrays and scalars, dicts, lists, plain Python scalars; for torch files,
torch's own ``weights_only`` unpickler) and refuse everything else.
"""

from __future__ import annotations

import builtins
import io
import os
import pickle
import stat
from pathlib import Path
from typing import BinaryIO

import numpy as np

from core.base.errors import RelightError, name_list

# Pickles are rebuilt from stand-ins: numpy's own constructors never see the file's bytes. A dtype
# becomes a plain numeric dtype named by its string (dtype flags, fields and object types from the
# file are ignored or refused); an array is built with np.frombuffer after its size is checked. The
# only object array allowed is the 0-d wrapper np.save puts around a dict (VIDIT's depth files).
MAX_ARRAY_BYTES = 1 << 30  # 1 GiB: far above a 16k x 16k float32 depth map
# A pickle's opcodes, its containers' entries and its arrays' bytes are bounded for the whole file:
# shared references (memo) would otherwise let a few hundred bytes stand for gigabytes.
MAX_PICKLE_OPS = 1 << 20
MAX_PICKLE_ELEMENTS = 1 << 20
MAX_ZIP_ENTRIES = 64  # an .npz holds a few named arrays
_NUMERIC_KINDS = "biuf"


def _file_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "is a folder, not a file"
    if stat.S_ISFIFO(mode):
        return "is a FIFO (named pipe), not a regular file"
    if stat.S_ISSOCK(mode):
        return "is a socket, not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device, not a regular file"
    return "is not a regular file"


def check_regular(path: str | Path) -> os.stat_result:
    """stat() a path that is about to be read: only regular files pass (reading a FIFO or a device
    would block forever or never end)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        if os.path.islink(path):  # a link that leads nowhere: a missing target or a loop
            raise RelightError("is a link to nothing (a missing target or a loop)", path) from None
        if isinstance(exc, FileNotFoundError):
            raise RelightError("file not found", path) from None
        raise RelightError(f"cannot be read ({exc.strerror or exc})", path) from None
    if not stat.S_ISREG(st.st_mode):
        raise RelightError(_file_kind(st.st_mode), path)
    return st


def open_regular(path: str | Path) -> BinaryIO:
    """Open a regular file for reading. O_NONBLOCK keeps the open itself from waiting on a FIFO that
    replaced the file after the check; fstat then checks what was actually opened."""
    check_regular(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise RelightError(f"cannot be read ({exc.strerror or exc})", path) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise RelightError(_file_kind(mode), path)
    return os.fdopen(fd, "rb")


def read_regular(path: str | Path, limit: int | None = None) -> bytes:
    """A regular file's bytes; with `limit`, refused when it is larger (checked before reading)."""
    with open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        if limit is not None and size > limit:
            raise RelightError(f"file is {size / 2**20:.1f} MB, more than the {limit / 2**20:.1f} MB expected", path)
        data = f.read(limit + 1 if limit is not None else -1)
    if limit is not None and len(data) > limit:  # grew while being read
        raise RelightError(f"file is larger than the {limit / 2**20:.1f} MB expected", path)
    return data


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
    def __init__(self, owner: _RestrictedUnpickler):
        self.owner, self.value = owner, None

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) == 5):
            raise pickle.UnpicklingError("malformed array state")
        _version, shape, dtype, fortran, data = state
        if not (isinstance(shape, tuple) and all(isinstance(n, int) and n >= 0 for n in shape) and len(shape) <= 4):
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
        # one bytes object may back many arrays through the memo: every array is a copy, so all count
        self.owner.array_bytes += count * dt.itemsize
        if self.owner.array_bytes > MAX_ARRAY_BYTES:
            raise pickle.UnpicklingError(f"the arrays add up to more than {MAX_ARRAY_BYTES >> 20} MB")
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


_PLAIN_KEYS = (str, bytes, int, float, bool, type(None))  # hashing these costs their own size, nothing more


def _plain_key(key):
    # a tuple key is hashed through every shared reference it holds: (x, x) thirty times over is 2**30 work
    if not isinstance(key, _PLAIN_KEYS):
        raise pickle.UnpicklingError(f"refusing a {type(key).__name__} as a dict key")
    return key


class _RestrictedUnpickler(pickle._Unpickler):  # the Python unpickler: its opcodes can be counted and checked
    """Builds only stand-ins, plain containers and scalars, within MAX_PICKLE_OPS opcodes,
    MAX_PICKLE_ELEMENTS container entries and MAX_ARRAY_BYTES of array data."""

    def __init__(self, file):
        super().__init__(file)
        self.ops = self.elements = self.array_bytes = 0

    def count(self, n: int) -> None:
        self.elements += n
        if self.elements > MAX_PICKLE_ELEMENTS:
            raise pickle.UnpicklingError(f"more than {MAX_PICKLE_ELEMENTS} elements")

    def _container(self, kind):
        def build(*args):
            if len(args) > 1 or (args and not isinstance(args[0], (list, tuple, dict))):
                raise pickle.UnpicklingError(f"{kind.__name__}() of anything but a list, tuple or dict")
            src = args[0] if args else ()
            self.count(len(src))
            if kind is dict:
                items = src.items() if isinstance(src, dict) else src
                pairs = []
                for item in items:
                    if not (isinstance(item, tuple) and len(item) == 2):
                        raise pickle.UnpicklingError("dict() of something other than pairs")
                    pairs.append((_plain_key(item[0]), item[1]))
                return dict(pairs)
            return kind(src)

        return build

    def _scalar_type(self, kind):
        def build(*args):
            # never from a number of bytes (bytes(10**10)) nor from an object's text (str of a shared structure)
            if kind is bytes and args and not isinstance(args[0], (str, bytes)):
                raise pickle.UnpicklingError("bytes() of anything but text or bytes")
            if any(not isinstance(a, (str, bytes, int, float, bool)) for a in args) or len(args) > 2:
                raise pickle.UnpicklingError(f"{kind.__name__}() of a {type(args[0]).__name__}")
            return kind(*args)

        return build

    def find_class(self, module: str, name: str):
        if (module, name) in _STANDINS:
            found = _STANDINS[(module, name)]
            return (lambda *args: _ArrayStub(self)) if found is _ArrayStub else found
        if module in ("builtins", "__builtin__") and name in _BUILTINS_ALLOWED:
            kind = getattr(builtins, name)
            return self._container(kind) if name in ("dict", "list", "tuple") else self._scalar_type(kind)
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name}: only arrays, dicts and plain values are allowed"
        )

    # container opcodes, checked: keys must be plain, entries are counted, sets are not built at all
    def _setitem(self):
        stack = self.stack
        value, key = stack.pop(), stack.pop()
        self.count(1)
        target = stack[-1]
        if not isinstance(target, dict):
            raise pickle.UnpicklingError("items set on something other than a dict")
        target[_plain_key(key)] = value

    def _setitems(self):
        items = self.pop_mark()
        target = self.stack[-1]
        if not isinstance(target, dict):
            raise pickle.UnpicklingError("items set on something other than a dict")
        self.count(len(items) // 2)
        for i in range(0, len(items) - 1, 2):
            target[_plain_key(items[i])] = items[i + 1]

    def _dict(self):
        items = self.pop_mark()
        self.count(len(items) // 2)
        self.append({_plain_key(items[i]): items[i + 1] for i in range(0, len(items) - 1, 2)})

    def _appends(self):
        items = self.pop_mark()
        self.count(len(items))
        target = self.stack[-1]
        if not isinstance(target, list):
            raise pickle.UnpicklingError("items appended to something other than a list")
        target.extend(items)

    def _no_sets(self):
        raise pickle.UnpicklingError("sets are not allowed")


def _counted(op):
    def run(u: _RestrictedUnpickler):
        u.ops += 1
        if u.ops > MAX_PICKLE_OPS:
            raise pickle.UnpicklingError(f"more than {MAX_PICKLE_OPS} pickle operations")
        op(u)

    return run


_ops = dict(pickle._Unpickler.dispatch)
_ops[pickle.SETITEM[0]] = _RestrictedUnpickler._setitem
_ops[pickle.SETITEMS[0]] = _RestrictedUnpickler._setitems
_ops[pickle.DICT[0]] = _RestrictedUnpickler._dict
_ops[pickle.APPENDS[0]] = _RestrictedUnpickler._appends
for _code in (pickle.EMPTY_SET, pickle.ADDITEMS, pickle.FROZENSET):
    _ops[_code[0]] = _RestrictedUnpickler._no_sets
_RestrictedUnpickler.dispatch = {k: _counted(v) for k, v in _ops.items()}


def _resolve(obj, owner: _RestrictedUnpickler, memo: dict, busy: set, depth: int = 0):
    """Replace stand-ins by what they built; only dicts, lists/tuples, arrays and plain scalars remain.
    Each object is resolved once (memo by identity): shared references stay shared, never expanded."""
    if isinstance(obj, (np.ndarray, np.generic, int, float, bool, str, bytes, type(None))):
        return obj
    key = id(obj)
    if key in memo:
        return memo[key]
    if depth > 32:
        raise pickle.UnpicklingError("nested too deeply")
    if key in busy:
        raise pickle.UnpicklingError("a container holds itself")
    busy.add(key)
    if isinstance(obj, _ArrayStub):
        if obj.value is None:
            raise pickle.UnpicklingError("array without data")
        out = _resolve(obj.value, owner, memo, busy, depth + 1)
    elif isinstance(obj, dict):
        owner.count(len(obj))
        out = {k: _resolve(v, owner, memo, busy, depth + 1) for k, v in obj.items()}  # keys are plain
    elif isinstance(obj, (list, tuple)):
        owner.count(len(obj))
        out = type(obj)(_resolve(v, owner, memo, busy, depth + 1) for v in obj)
    else:
        raise pickle.UnpicklingError(f"refusing a {type(obj).__name__} in the file")
    busy.discard(key)
    memo[key] = out
    return out


def safe_unpickle(data: bytes):
    unpickler = _RestrictedUnpickler(io.BytesIO(data))
    return _resolve(unpickler.load(), unpickler, {}, set())


def check_array_header(shape: tuple, dtype: np.dtype, path: Path) -> int:
    """Refuse non-numeric or oversized arrays from their .npy header; returns their size in bytes."""
    if dtype.kind not in _NUMERIC_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise RelightError(f"holds a {dtype} array; only plain numeric arrays are read", path)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes > MAX_ARRAY_BYTES:
        raise RelightError(f"array of shape {shape} is larger than {MAX_ARRAY_BYTES >> 20} MB", path)
    return nbytes


MAX_ZIP_RATIO = 200  # savez_compressed gets 1.1-5x on real depth maps; a bomb of zeros gets 1000x


def check_zip_directory(f: BinaryIO, path: Path, max_entries: int) -> None:
    """Read the zip's end record before zipfile parses its central directory: at most `max_entries`
    entries and a directory of a sane size (a large archive of tiny entries would fill memory)."""
    size = os.fstat(f.fileno()).st_size
    tail_len = min(size, 22 + 65535)
    f.seek(size - tail_len)
    tail = f.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        raise RelightError("not a readable zip archive (no end record)", path)
    entries = int.from_bytes(tail[at + 10 : at + 12], "little")
    dir_size = int.from_bytes(tail[at + 12 : at + 16], "little")
    if entries > max_entries or dir_size > max_entries * (46 + 1024):
        raise RelightError(f"zip archive with {entries} entries, more than the {max_entries} expected", path)
    f.seek(0)


def _npy_member_header(zf, info, path: Path) -> tuple[tuple, np.dtype, int]:
    """Shape, dtype and data offset of an .npy inside a zip, read from its first bytes only."""
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = reader(f)
        offset = f.tell()
    return shape, dtype, offset


def npz_member_header(
    path: str | Path, prefer: tuple[str, ...] = ("normalized_depth", "depth")
) -> tuple[str, tuple, np.dtype]:
    """(name, shape, dtype) of the depth array of an .npz, checked against its zip entry, nothing decompressed
    beyond the array's header."""
    import zipfile

    path = Path(path)
    try:
        with open_regular(path) as raw:
            check_zip_directory(raw, path, MAX_ZIP_ENTRIES)
            with zipfile.ZipFile(raw) as zf:
                names = [n.removesuffix(".npy") for n in zf.namelist()]
                key = next((k for k in prefer if k in names), names[0] if len(names) == 1 else None)
                if key is None:
                    raise RelightError(
                        f"cannot tell which array is the depth (arrays: {name_list(names)}); name it 'depth'", path
                    )
                info = zf.getinfo(key + ".npy")
                shape, dtype, offset = _npy_member_header(zf, info, path)
                nbytes = check_array_header(shape, dtype, path)
                # the zip entry's own sizes, before any of the data is inflated
                if offset + nbytes > info.file_size:
                    raise RelightError(f"'{key}' is shorter than its header's {shape} {dtype} array", path)
                if info.file_size > offset + nbytes + 4096:
                    raise RelightError(f"'{key}' is {info.file_size} bytes, more than its {shape} {dtype} array", path)
                if info.file_size > 64 << 20 and info.file_size > MAX_ZIP_RATIO * max(info.compress_size, 1):
                    raise RelightError(
                        f"'{key}' inflates {info.file_size // max(info.compress_size, 1)}-fold "
                        f"to {info.file_size >> 20} MB; refusing a zip bomb",
                        path,
                    )
                return key, shape, dtype
    except RelightError:
        raise
    except Exception as exc:  # a corrupt zip can fail in many ways
        raise RelightError(f"not a readable .npz file ({type(exc).__name__}: {exc})", path) from None


def load_npz_member(path: Path, prefer: tuple[str, ...] = ("normalized_depth", "depth")) -> np.ndarray:
    """One array of an .npz file (a preferred name, or the only one), its header and zip entry checked first."""
    import zipfile

    key, shape, dtype = npz_member_header(path, prefer)
    try:
        with open_regular(path) as raw, zipfile.ZipFile(raw) as zf, zf.open(key + ".npy") as f:
            # ZipExtFile stops at the entry's checked size; read_array reads exactly the header's array
            arr = np.lib.format.read_array(f, allow_pickle=False)
        if arr.shape != shape:
            raise RelightError(f"'{key}' changed while being read", path)
        return arr
    except RelightError:
        raise
    except Exception as exc:
        raise RelightError(f"not a readable .npz file ({type(exc).__name__}: {exc})", path) from None


def load_npy(path: str | Path):
    """Read a .npy file: a plain array, or a pickled object array (e.g. a VIDIT dict) through the safe unpickler."""
    path = Path(path)
    try:
        with open_regular(path) as f:
            version = np.lib.format.read_magic(f)
            reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = reader(f)
            if not dtype.hasobject:
                # check the header against the limit and the file's length before numpy allocates
                nbytes = check_array_header(shape, dtype, path)
                if os.fstat(f.fileno()).st_size - f.tell() < nbytes:
                    raise RelightError(f"file is shorter than its header's {shape} {dtype} array (truncated?)", path)
                f.seek(0)
                return np.load(f, allow_pickle=False)
            if os.fstat(f.fileno()).st_size > MAX_ARRAY_BYTES:
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
    with open_regular(path) as f:
        head = f.read(4)
    # torch.save writes a zip archive, or (legacy) a pickle that starts with its protocol marker
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):
        raise RelightError(
            "not a checkpoint: expected .safetensors, or a PyTorch file (.pt, .pth, .pkl) as written by torch.save",
            path,
        )
    try:
        with warnings.catch_warnings():  # torch's note on the pickle protocol is not the user's business
            warnings.simplefilter("ignore", UserWarning)
            with open_regular(path) as f:  # the checked file itself, not whatever the name points to later
                obj = torch.load(f, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise RelightError(
            f"refused to load: the file holds more than tensors ({_unpickler_reason(exc)})", path
        ) from None
    except Exception as exc:  # a corrupt file can fail in many ways inside torch's reader
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise RelightError(f"not a readable PyTorch file ({first})", path) from None
    if not isinstance(obj, dict):
        raise RelightError(f"expected a dict of tensors, found {type(obj).__name__}", path)
    return obj
