"""Reading and writing images and depth maps; every problem a user can cause becomes a RelightError.

Images load as float32 RGB in [0, 1], shape (H, W, 3): 8-bit codes / 255, 16-bit / 65535,
gray replicated to three channels, alpha dropped (as the official release does).

Depth maps load as float32 (H, W). Scaling to the network's range (VIDIT ``normalized_depth``):
- VIDIT ``.npy`` (pickled dict): ``normalized_depth`` used as stored.
- plain ``.npy`` / ``.npz`` arrays, float TIFF, EXR: used as stored when the values lie in
  [0, 1]; otherwise (metric depth, disparity in pixels) min-max normalised to [0, 1].
- 8-/16-bit grayscale PNG or TIFF: code / 255 or code / 65535.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core.base.errors import RelightError, WriteError, name_list
from core.base.vocab import DepthOrigin
from core.storage.limits import MAX_IMAGE_PIXELS
from core.storage.safe_load import check_regular, load_npy, load_npz_member, npz_member_header, open_regular

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")
DEPTH_SUFFIXES = (".npy", ".npz", ".png", ".tif", ".tiff", ".exr")
OUTPUT_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg") + ((".webp",) if cv2.haveImageWriter(".webp") else ())
EIGHT_BIT_ONLY = (".jpg", ".jpeg", ".webp")
MIN_SIDE = 32


@dataclass
class DepthMap:
    data: np.ndarray  # float32 (H, W)
    path: Path | None = None
    scaling: str = "as stored"  # how the file's values were brought to the network's range
    origin: str = "file"  # "file", "estimated (<model>)" or "rendered (<what>)": said to the user
    kind: DepthOrigin = DepthOrigin.FILE  # the same, to compare

    @property
    def shape(self) -> tuple[int, int]:
        return self.data.shape  # type: ignore[return-value]


def _check_exists(path: Path) -> None:
    if not path.exists():
        # exists() is False for a link that leads nowhere: say so rather than "not found"
        raise RelightError(
            "is a link to nothing (a missing target or a loop)" if path.is_symlink() else "file not found", path
        )


def _read_raw(path: Path) -> np.ndarray:
    """cv2.imdecode of a regular file's bytes (non-ASCII paths work; a FIFO or device is refused
    before it is opened); failures are RelightError."""
    _check_exists(path)
    with open_regular(path) as f:
        try:
            raw = f.read()
        except OSError as exc:
            raise RelightError(f"cannot be read ({exc.strerror})", path) from None
    if not raw:
        raise RelightError("file is empty", path)
    _check_header_size(path, raw)
    _check_png_chunks(path, raw)
    buf = np.frombuffer(raw, dtype=np.uint8)
    try:
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:  # e.g. a PFM/PAM/HDR header beyond OpenCV's own pixel limit, or no memory
        if "CV_IO_MAX_IMAGE_PIXELS" in str(exc):
            raise RelightError(
                f"image is larger than the {MAX_IMAGE_PIXELS / 1e6:.0f} MP this program reads", path
            ) from None
        if "memory" in str(exc).lower():
            raise RelightError("not enough memory to decode the image", path) from None
        raise RelightError("not a readable image (corrupt or unsupported format)", path) from None
    if img is None:
        raise RelightError("not a readable image (corrupt or unsupported format)", path)
    return img


def _decoding(read):
    """`read(path)` with running out of memory while decoding said as the file's problem."""
    import functools

    @functools.wraps(read)
    def wrapper(path, *args, **kwargs):
        try:
            return read(path, *args, **kwargs)
        except MemoryError:
            raise RelightError("not enough memory to read it", path) from None

    return wrapper


_PILLOW_MODULES = r"PIL\."


def _quiet_pillow() -> None:
    """A damaged file's problem is said once, by the reader's error: not also by Pillow's warnings
    ("Corrupt EXIF data" on a cut-off TIFF) on stderr. One filter on Pillow's modules (Pillow reads only
    headers here), added when it is not there: warnings.catch_warnings around each read swapped the
    process's filters from the reading threads, and could leave every warning of the process off."""
    if not any(f[0] == "ignore" and f[3] is not None and f[3].pattern == _PILLOW_MODULES for f in warnings.filters):
        warnings.filterwarnings("ignore", module=_PILLOW_MODULES)


def _pillow_size(source) -> tuple[int, int] | None:
    """(width, height) from an image's header, without decoding it; None when Pillow cannot tell."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None  # our own limits, with our own messages
    _quiet_pillow()
    try:
        with Image.open(source) as im:
            return im.size
    except Exception:  # not a format Pillow knows (e.g. EXR): OpenCV's pixel limit still applies
        return None


_PFM = re.compile(rb"P[Ff]\s+(\d+)\s+(\d+)\s")
_PAM_WIDTH, _PAM_HEIGHT = re.compile(rb"\bWIDTH\s+(\d+)"), re.compile(rb"\bHEIGHT\s+(\d+)")
_HDR = re.compile(rb"\n([-+][YX])\s+(\d+)\s+([-+][YX])\s+(\d+)")


def _other_header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of the formats OpenCV decodes and Pillow cannot size (PFM, PAM, Radiance HDR),
    from their text headers: our pixel limit holds whatever the process's OpenCV was told."""
    head = data[:4096]
    if m := _PFM.match(head):
        return int(m[1]), int(m[2])
    if head.startswith(b"P7"):
        w, h = _PAM_WIDTH.search(head), _PAM_HEIGHT.search(head)
        return (int(w[1]), int(h[1])) if w and h else None
    if head.startswith(b"#?") and (m := _HDR.search(head)):
        sizes = {m[1][1:]: int(m[2]), m[3][1:]: int(m[4])}
        return sizes.get(b"X", 0), sizes.get(b"Y", 0)
    return None


def _check_header_size(path: Path, data: bytes) -> None:
    """Refuse decompression bombs from the image header (Pillow reads it without decoding)."""
    import io as _io

    size = _pillow_size(_io.BytesIO(data))  # shares the bytes, no copy
    if size is None:
        other = _other_header_size(data)
        if other is not None and other[0] * other[1] > MAX_IMAGE_PIXELS:
            raise RelightError(
                f"image is larger than the {MAX_IMAGE_PIXELS / 1e6:.0f} MP this program reads ({other[0]}x{other[1]})",
                path,
            )
        return
    w, h = size
    if w * h > MAX_IMAGE_PIXELS:
        raise RelightError(
            f"image is {w}x{h} ({w * h / 1e6:.0f} MP), more than the {MAX_IMAGE_PIXELS / 1e6:.0f} MP "
            "this program reads",
            path,
        )


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _check_png_chunks(path: Path, data: bytes) -> None:
    """A PNG cut short (a partial download or copy) or with a critical chunk that fails its checksum is
    refused here, naming the problem: libpng would refuse it too, but first prints its own "libpng
    error: …" line on stderr, which no log level of OpenCV's silences. Bytes after IEND are ignored."""
    if not data.startswith(_PNG_SIGNATURE):
        return
    import struct
    import zlib

    pos, view = len(_PNG_SIGNATURE), memoryview(data)
    if data[pos : pos + 8] != b"\x00\x00\x00\x0dIHDR":  # no header: nothing to say it was cut off
        raise RelightError("not a readable image (corrupt or unsupported format)", path)
    while True:
        if pos + 12 > len(data):
            raise RelightError("image file is cut off (truncated PNG)", path)
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 8 + length
        if end + 4 > len(data):
            raise RelightError("image file is cut off (truncated PNG)", path)
        critical = not kind[0] & 0x20  # an upper-case first letter: IHDR, PLTE, IDAT, IEND
        if critical and zlib.crc32(view[pos + 4 : end]) != struct.unpack_from(">I", data, end)[0]:
            name = kind.decode("latin-1") if kind.isalpha() else "a"
            raise RelightError(f"image file is damaged (the PNG's {name} chunk fails its checksum)", path)
        if kind == b"IEND":
            return
        pos = end + 4


def image_header(path: str | Path) -> tuple[int, int] | None:
    """An image file's (width, height) from its header, nothing decoded; None when its format hides it."""
    path = Path(path)
    with open_regular(path) as f:
        return _pillow_size(f)


def depth_header(path: str | Path) -> tuple[int, int] | None:
    """A depth file's (width, height) from its header (.npy, .npz, PNG, TIFF), nothing decoded; None when
    only decoding would tell (a VIDIT pickle: its size is bounded by the file's)."""
    path = Path(path)
    suffix = path.suffix.lower()
    shape = None
    if suffix == ".npz":
        shape = npz_member_header(path)[1]
    elif suffix == ".npy":
        try:
            with open_regular(path) as f:
                version = np.lib.format.read_magic(f)
                reader = (
                    np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                )
                shape, _, dtype = reader(f)
            if dtype.hasobject:
                return None
        except RelightError:
            raise
        except Exception:  # the reader gives the precise message
            return None
    else:
        return image_header(path)
    if len(shape) == 3 and shape[0] == 1:
        shape = shape[1:]
    return (int(shape[1]), int(shape[0])) if len(shape) >= 2 else None


def _to_unit_float(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    if img.dtype == np.uint16:
        return img.astype(np.float32) / 65535.0
    if img.dtype in (np.float32, np.float64, np.float16):
        return np.clip(np.nan_to_num(img.astype(np.float32)), 0.0, 1.0)
    info = np.iinfo(img.dtype)
    return img.astype(np.float32) / float(info.max)


def _common_dtype(img: np.ndarray, path: Path) -> np.ndarray:
    """uint8, uint16 or float32 samples (what colour conversion takes): float64 and wider unsigned
    integers become float32 in [0, 1]; signed samples have no meaning as light and are refused."""
    if img.dtype in (np.uint8, np.uint16, np.float32):
        return img
    if img.dtype.kind == "f":
        return np.clip(np.nan_to_num(img.astype(np.float32)), 0.0, 1.0)
    if img.dtype.kind == "u":
        return (img.astype(np.float64) / float(np.iinfo(img.dtype).max)).astype(np.float32)
    raise RelightError(f"has signed {img.dtype} samples; save it as an unsigned 8- or 16-bit or a float image", path)


@_decoding
def read_image(path: str | Path) -> np.ndarray:
    """Image file -> float32 RGB (H, W, 3) in [0, 1]."""
    path = Path(path)
    img = _common_dtype(_read_raw(path), path)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    elif img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    elif img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    else:
        raise RelightError(f"unsupported number of channels ({img.shape[2]})", path)
    out = _to_unit_float(img)
    if min(out.shape[:2]) < MIN_SIDE:
        raise RelightError(
            f"image is {out.shape[1]}x{out.shape[0]}; both sides must be at least {MIN_SIDE} pixels", path
        )
    return np.ascontiguousarray(out)


def _check_fits_float32(arr: np.ndarray, path: Path) -> None:
    """float64 values beyond float32's range would become inf: say so, rather than "non-finite"."""
    if arr.dtype.itemsize > 4 and arr.dtype.kind == "f" and arr.size and np.isfinite(arr).all():
        top = float(np.abs(arr).max())
        if top > float(np.finfo(np.float32).max):
            raise RelightError(f"depth values up to {top:.3g} do not fit in float32", path)


def _float_depth(arr: np.ndarray, path: Path) -> tuple[np.ndarray, str]:
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[2] in (1, 3, 4):
        if arr.shape[2] > 1 and not all(np.array_equal(arr[:, :, 0], arr[:, :, c]) for c in range(1, arr.shape[2])):
            raise RelightError(
                f"depth has {arr.shape[2]} different channels; expected one (a grayscale depth map)", path
            )
        arr = arr[:, :, 0]
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise RelightError(f"depth must be a 2-D array, found shape {arr.shape}", path)
    if arr.size == 0:
        raise RelightError(f"depth array is empty (shape {arr.shape})", path)
    if arr.dtype.kind not in "fiub":
        raise RelightError(f"depth has non-numeric dtype {arr.dtype}", path)
    if arr.dtype.kind == "i" and arr.size and int(arr.min()) < 0:
        raise RelightError(
            f"depth holds negative integers (down to {int(arr.min())}); expected unsigned codes or floats", path
        )
    if arr.dtype.kind in "iub" and arr.dtype != np.bool_:
        code_max = 65535.0 if arr.dtype.itemsize >= 2 else 255.0
        if arr.dtype.itemsize > 2:
            code_max = float(max(arr.max(), 1))
        return (arr.astype(np.float32) / code_max).astype(np.float32), f"integer codes / {code_max:g}"
    _check_fits_float32(arr, path)
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise RelightError(f"depth has {bad} non-finite values (NaN or inf)", path)
    lo, hi = float(arr.min()), float(arr.max())
    if lo >= 0.0 and hi <= 1.0:
        return arr, "as stored"
    span = hi - lo
    if span <= 0:
        return np.zeros_like(arr), f"constant {lo:g} mapped to 0"
    return (arr - lo) / span, f"min-max normalised from [{lo:g}, {hi:g}]"


@_decoding
def read_depth(path: str | Path) -> DepthMap:
    """Depth file -> DepthMap (float32, network range). See the module docstring for scaling."""
    path = Path(path)
    suffix = path.suffix.lower()
    _check_exists(path)
    check_regular(path)
    if suffix == ".npy":
        obj = load_npy(path)
        if isinstance(obj, dict):
            if "normalized_depth" not in obj:
                raise RelightError(
                    f"depth dict has no 'normalized_depth' entry (keys: {name_list(sorted(map(str, obj)))})", path
                )
            value = obj["normalized_depth"]
            if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu":
                raise RelightError(
                    f"normalized_depth is a {type(value).__name__}"
                    + (f" of {value.dtype}" if isinstance(value, np.ndarray) else "")
                    + ", not a numeric array",
                    path,
                )
            _check_fits_float32(value, path)
            arr = value.astype(np.float32)
            if arr.ndim != 2 or arr.size == 0:
                raise RelightError(f"normalized_depth must be a non-empty 2-D array, found shape {arr.shape}", path)
            if not np.isfinite(arr).all():
                raise RelightError("depth has non-finite values (NaN or inf)", path)
            return DepthMap(arr, path, "VIDIT normalized_depth, as stored")
        if not isinstance(obj, np.ndarray):
            raise RelightError(f"expected an array or a VIDIT depth dict, found {type(obj).__name__}", path)
        data, how = _float_depth(obj, path)
        return DepthMap(data, path, how)
    if suffix == ".npz":
        data, how = _float_depth(load_npz_member(path), path)
        return DepthMap(data, path, how)
    if suffix in (".png", ".tif", ".tiff", ".exr", ".jpg", ".jpeg", ".bmp", ".webp"):
        try:
            raw = _read_raw(path)
        except RelightError:
            if suffix == ".exr" and "OpenEXR:                     NO" in cv2.getBuildInformation():
                raise RelightError(
                    "this OpenCV build cannot read EXR; save the depth as .npy or float TIFF", path
                ) from None
            raise
        if raw.ndim == 3 and raw.shape[2] >= 3:
            if not (np.array_equal(raw[:, :, 0], raw[:, :, 1]) and np.array_equal(raw[:, :, 1], raw[:, :, 2])):
                raise RelightError("depth image has colour; expected a single-channel (grayscale) depth map", path)
        data, how = _float_depth(raw, path)
        return DepthMap(data, path, how)
    raise RelightError(f"unsupported depth format '{suffix}' (use {', '.join(DEPTH_SUFFIXES)})", path)


def depth_warnings(depth: DepthMap) -> list[str]:
    """Problems worth telling the user about before a run (the map is still usable)."""
    d = depth.data
    msgs = []
    if not np.isfinite(d).all():
        msgs.append("depth has non-finite values")
    elif float(d.max()) == 0.0 and float(d.min()) == 0.0:
        msgs.append("depth is all zeros")
    elif float(d.max() - d.min()) < 1e-6:
        msgs.append("depth is constant")
    return msgs


def check_pair(image: np.ndarray, depth: DepthMap, image_path: str | Path | None = None) -> None:
    if image.shape[:2] != depth.shape:
        where = depth.path if depth.path is not None else image_path
        raise RelightError(
            f"depth is {depth.shape[1]}x{depth.shape[0]} but its image is {image.shape[1]}x{image.shape[0]}",
            where,
        )


def _exists(path: Path) -> bool:
    try:
        return os.path.lexists(path)
    except (OSError, ValueError):
        return False


def _file_in_the_way(path: Path) -> Path | None:
    """The nearest of `path` and its parents that is there, when it is not a folder (a file in the way)."""
    for p in (path, *path.parents):
        if _exists(p):
            return None if p.is_dir() else p
    return None


def _not_a_folder(p: Path, target: Path) -> RelightError:
    what = "is a file, not a folder" if p.is_file() else "is not a folder"
    inside = "" if p == target else f" ({target} would go inside it)"
    return RelightError(what + inside, p)


def _cannot_use(path: Path, exc: OSError) -> RelightError:
    return RelightError(f"cannot be used for the output ({exc.strerror or exc})", exc.filename or path)


def check_output_file(path: str | Path) -> None:
    """Refuse, naming the folder, an output file whose folder is not there (a mistyped folder is not
    created behind the user's back) or is a file."""
    path = Path(path)
    folder = path.parent
    try:
        blocker = _file_in_the_way(folder)
        if blocker is not None:
            raise _not_a_folder(blocker, path)
        if not folder.is_dir():
            raise RelightError(f"folder not found (create it first; {path.name} is written into it)", folder)
        if path.is_dir() and not path.is_symlink():  # found only when the result is written, after the work
            raise RelightError("is a folder; give the output file's name", path)
    except OSError as exc:  # a name too long, a folder that may not be looked into
        raise _cannot_use(path, exc) from None


def check_output_dir(path: str | Path) -> None:
    """An output folder: there already, or made by the run inside a folder that is there. Refuse, naming
    it, a missing parent folder or a file in the way."""
    path = Path(path)
    try:
        blocker = _file_in_the_way(path)
        if blocker is not None:
            raise _not_a_folder(blocker, path)
        if not path.is_dir() and not path.parent.is_dir():
            raise RelightError(
                f"folder not found (create it first; the output folder {path.name} is made in it)", path.parent
            )
    except OSError as exc:  # a name too long, a folder that may not be looked into
        raise _cannot_use(path, exc) from None


def _write_error(path: Path, exc: OSError) -> WriteError:
    """What went wrong writing `path`, in words: a file where a folder should be is named."""
    blocker = _file_in_the_way(path.parent) if exc.errno in (errno.EEXIST, errno.ENOTDIR) else None
    if blocker is not None:
        return WriteError(f"cannot write the file: {blocker} is a file, not a folder", path, exc.errno)
    return WriteError(f"cannot write the file ({exc.strerror or exc})", path, exc.errno)


def write_result(path: str | Path, data: bytes) -> None:
    """A result file (an image, a depth map, a report) written atomically; a failure is a WriteError
    naming the file and saying what went wrong."""
    path = Path(path)
    try:
        _atomic_write_bytes(path, data)
    except OSError as exc:
        raise _write_error(path, exc) from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates the file 0600 and the mode survives the rename: give it the usual
        # permissions of a new file (0666 minus the umask), as any other program would.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, then rename: no half-written file on a crash."""
    _atomic_write_bytes(Path(path), data)


def encode_image(rgb: np.ndarray, suffix: str, bit_depth: int = 8) -> bytes:
    suffix = suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise RelightError(f"cannot write '{suffix}' images; use {', '.join(OUTPUT_SUFFIXES)}")
    if bit_depth not in (8, 16):
        raise RelightError(f"bit depth must be 8 or 16, not {bit_depth}")
    if bit_depth == 16 and suffix in EIGHT_BIT_ONLY:
        raise RelightError(f"{suffix[1:].upper()} cannot hold 16-bit images; use PNG or TIFF, or --bit-depth 8")
    x = np.clip(np.nan_to_num(np.asarray(rgb, dtype=np.float32)), 0.0, 1.0)
    if bit_depth == 16:
        codes = np.round(x * 65535.0).astype(np.uint16)
    else:
        codes = np.round(x * 255.0).astype(np.uint8)
    if codes.ndim == 3:
        codes = cv2.cvtColor(codes, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(suffix, codes)
    if not ok:
        raise RelightError(f"could not encode the image as {suffix}")
    return buf.tobytes()


def write_image(path: str | Path, rgb: np.ndarray, bit_depth: int = 8) -> Path:
    """Write float RGB in [0, 1] (clamped) as PNG/TIFF (8 or 16 bit) or JPEG, atomically."""
    path = Path(path)
    data = encode_image(rgb, path.suffix, bit_depth)
    write_result(path, data)
    return path


DEPTH_FORMATS = ("png16", "npy", "vidit")


def write_depth(path: str | Path, depth: np.ndarray, fmt: str = "png16") -> Path:
    """Write a depth map in the network's convention, atomically, so that read_depth gives it back:
    png16 = 16-bit grayscale codes (depth x 65535), npy = a plain float32 array, vidit = VIDIT's
    pickled dict with normalized_depth."""
    path = Path(path)
    d = np.asarray(depth, dtype=np.float32)
    if fmt == "png16":
        ok, buf = cv2.imencode(".png", np.round(np.clip(d, 0, 1) * 65535).astype(np.uint16))
        if not ok:
            raise RelightError("could not encode the depth map as PNG", path)
        data = buf.tobytes()
    elif fmt == "npy":
        import io as _io

        b = _io.BytesIO()
        np.save(b, d, allow_pickle=False)
        data = b.getvalue()
    elif fmt == "vidit":
        return write_depth_npy(path, d)
    else:
        raise RelightError(f"unknown depth format '{fmt}' (use {', '.join(DEPTH_FORMATS)})")
    write_result(path, data)
    return path


def write_depth_npy(path: str | Path, depth: np.ndarray, ref_center_dis: float = 0.0) -> Path:
    """Write a VIDIT-style depth file (pickled dict with normalized_depth and ref_center_dis), atomically."""
    import io as _io

    path = Path(path)
    buf = _io.BytesIO()
    obj = {"normalized_depth": np.asarray(depth, dtype=np.float32), "ref_center_dis": np.float32(ref_center_dis)}
    # writing only (VIDIT's own format is a pickled dict); every read goes through safe_load's restricted unpickler
    np.save(buf, np.array(obj, dtype=object), allow_pickle=True)
    write_result(path, buf.getvalue())
    return path
