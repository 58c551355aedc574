"""Getting optional models, only when the user asks: `relight models download` (and the app's button),
`relight models install PATH` (a folder or an archive brought from another machine), `relight models list`.

The one table below pins what is accepted: the hub repository's revision and every file's size and
SHA-256. A download asks for exactly that revision and checks each file against the table (never
against what the hub says today); an install checks a folder or archive against the same table.
Files go into a new hidden folder beside the destination and only then replace it; the program marks
the folders it makes (MARKER) and never deletes or replaces a folder without that mark.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from core.base.cancel import CancelToken
from core.base.errors import RelightError
from core.base.progress import Progress
from core.base.vocab import DEPTH_MODEL_NAME, DEPTH_MODEL_TITLE
from core.storage.safe_load import check_zip_directory, open_regular, read_regular


@dataclass(frozen=True)
class PinnedFile:
    size: int
    sha256: str


@dataclass(frozen=True)
class RemoteModel:
    name: str
    title: str
    repo: str  # Hugging Face hub repository
    revision: str  # a commit of that repository: its files never change
    files: dict[str, PinnedFile] = field(hash=False)
    licence: str

    @property
    def max_bytes(self) -> int:
        return sum(f.size for f in self.files.values())


# depth-anything/Depth-Anything-V2-Small-hf at commit 5426e4f0f365 (the sizes add up to 99,175,385 bytes).
DEPTH_ANYTHING_V2_SMALL = RemoteModel(
    DEPTH_MODEL_NAME,
    DEPTH_MODEL_TITLE,
    "depth-anything/Depth-Anything-V2-Small-hf",
    "5426e4f0f36572d16453bbda7a8389317b1bef99",
    {
        "config.json": PinnedFile(950, "c56698d3643dde1f83ea2212759e6b31a22b8f827246a36dd007ee8a22b3ff75"),
        "preprocessor_config.json": PinnedFile(775, "d41175c0d889477ca8fc67191e540faef14baf6275157b3fdecf78469e6bbf84"),
        "model.safetensors": PinnedFile(99_173_660, "3152477ce0d8d6978d76b995120de97cb5b928701fd0f817769f59e249a16b70"),
    },
    "Apache-2.0",
)
MODELS = {m.name: m for m in (DEPTH_ANYTHING_V2_SMALL,)}

HUB = "https://huggingface.co"
MARKER = ".relight-model.json"  # written into every model folder this program makes
MAX_ARCHIVE_ENTRIES = 64
CHUNK = 1 << 20


def _open(url: str) -> BinaryIO:
    req = urllib.request.Request(url, headers={"User-Agent": "relight-studio"})
    return urllib.request.urlopen(req, timeout=30)  # noqa: S310 (https only, fixed host)


def _model(name: str) -> RemoteModel:
    if name not in MODELS:
        raise RelightError(f"unknown model '{name}' (available: {', '.join(MODELS)})")
    return MODELS[name]


def _default_dest() -> Path:
    from core.depth.estimation import default_model_dir

    return default_model_dir()


# --- folders this program made -------------------------------------------------------------------


def made_by_us(folder: Path) -> bool:
    """A real folder (not a link) holding this program's marker file."""
    try:
        if not stat.S_ISDIR(os.lstat(folder).st_mode):
            return False
        marker = json.loads(read_regular(folder / MARKER, 4096).decode("utf-8"))
    except (OSError, RelightError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(marker, dict) and marker.get("made_by") == "relight-studio"


def _write_marker(folder: Path, model: RemoteModel, source: str) -> None:
    text = json.dumps(
        {
            "made_by": "relight-studio",
            "model": model.name,
            "repo": model.repo,
            "revision": model.revision,
            "source": source,
        },
        indent=1,
    )
    (folder / MARKER).write_text(text + "\n")


def _check_replaceable(dest: Path) -> None:
    """Refuse, before any work, a destination that holds something this program did not make."""
    if not os.path.lexists(dest):
        return
    if os.path.islink(dest):
        raise RelightError("is a link; refusing to replace it (give the folder itself, or another --dest)", dest)
    if dest.is_dir() and not any(dest.iterdir()):
        return
    if not made_by_us(dest):
        raise RelightError(
            f"already holds files that are not a model installed by relight (no {MARKER}); "
            "refusing to replace it: choose another --dest, or empty it yourself",
            dest,
        )


def _new_partial(dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    # a fresh name of our own beside the destination: a rename into place never crosses file systems
    return Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))


def _place(partial: Path, dest: Path) -> None:
    """Rename the finished folder into place; a folder already there goes only if this program made it."""
    _check_replaceable(dest)  # again: the destination may have changed during a long download
    old = None
    if os.path.lexists(dest):
        if made_by_us(dest):
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".old", dir=dest.parent))
            os.replace(dest, old / "model")
        else:
            dest.rmdir()  # empty (checked above); rmdir refuses anything else
    os.replace(partial, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# --- checked copies -------------------------------------------------------------------------------


def _copy_checked(
    read: Callable[[int], bytes],
    out: Path,
    name: str,
    pinned: PinnedFile,
    cancel: CancelToken | None,
    on_bytes: Callable[[int], None] | None = None,
) -> None:
    """Stream into `out`, refusing more bytes than pinned; then the size and the SHA-256 must match."""
    digest, size = hashlib.sha256(), 0
    with open(out, "wb") as f:
        while True:
            if cancel is not None:
                cancel.check()
            chunk = read(CHUNK)
            if not chunk:
                break
            size += len(chunk)
            if size > pinned.size:
                raise RelightError(f"{name} is larger than the pinned {pinned.size} bytes; refused")
            digest.update(chunk)
            f.write(chunk)
            if on_bytes:
                on_bytes(len(chunk))
        f.flush()
        os.fsync(f.fileno())
    if size != pinned.size:
        raise RelightError(f"{name}: {size} bytes, the pinned file has {pinned.size} (cut off?)")
    if digest.hexdigest() != pinned.sha256:
        raise RelightError(
            f"{name}: SHA-256 {digest.hexdigest()[:16]}… does not match the pinned {pinned.sha256[:16]}…; "
            "the file is not the released one"
        )


def _finish(partial: Path, dest: Path, model: RemoteModel, source: str) -> None:
    from core.depth.network import check_model_folder

    check_model_folder(partial)  # the architecture too, before it can be used
    _write_marker(partial, model, source)
    _place(partial, dest)


def download_model(
    name: str,
    dest: str | Path | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    opener: Callable[[str], BinaryIO] | None = None,
) -> Path:
    """Download model `name` at its pinned revision into `dest` (default: the app's data folder)."""
    model = _model(name)
    opener = opener or _open
    dest = Path(dest) if dest else _default_dest()
    _check_replaceable(dest)
    notify = progress or (lambda f, m: None)
    total, done = model.max_bytes, 0
    notify(0.0, f"downloading {model.title} ({total / 2**20:.0f} MB) from {HUB}")
    partial = _new_partial(dest)
    try:
        for fname, pinned in model.files.items():
            url = f"{HUB}/{model.repo}/resolve/{model.revision}/{fname}"

            def advance(n: int, fname=fname) -> None:
                nonlocal done
                done += n
                notify(done / total, f"{fname}: {done / 2**20:.1f} of {total / 2**20:.1f} MB")

            try:
                with opener(url) as resp:
                    _copy_checked(resp.read, partial / fname, fname, pinned, cancel, advance)
            except urllib.error.URLError as exc:  # no connection (offline, no DNS, refused)
                raise RelightError(f"cannot reach {HUB} ({exc.reason})", dest) from None
            except OSError as exc:
                raise RelightError(f"download failed ({getattr(exc, 'reason', None) or exc})", dest) from None
        _finish(partial, dest, model, f"{HUB}/{model.repo}@{model.revision}")
    except OSError as exc:
        raise RelightError(f"cannot install the model ({exc.strerror or exc})", dest) from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    notify(1.0, f"{model.title} is in {dest}")
    return dest


# --- installing from a folder or an archive -------------------------------------------------------


class _Bounded(io.RawIOBase):
    """A decompressed stream that refuses to yield more than `limit` bytes (archive bombs)."""

    def __init__(self, f: BinaryIO, limit: int, path: Path):
        self.f, self.left, self.path = f, limit, path

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        data = self.f.read(min(len(b), CHUNK))
        if len(data) > self.left:
            raise RelightError("archive unpacks to more than the model's files can take; refused", self.path)
        self.left -= len(data)
        b[: len(data)] = data
        return len(data)


def _member_file(name: str, model: RemoteModel, path: Path) -> str | None:
    """Which model file an archive member is (at the top or in one folder), None for others; unsafe names refuse."""
    clean = name.replace("\\", "/")
    parts = PurePosixPath(clean).parts
    if clean.startswith("/") or ".." in parts or any(":" in p for p in parts):
        raise RelightError(f"archive member {name[:80]!r} points outside the archive; refused", path)
    if parts and parts[-1] in model.files and len(parts) <= 2:
        return parts[-1]
    return None


def _install_zip(path: Path, partial: Path, model: RemoteModel, cancel) -> set[str]:
    import zipfile

    got = set()
    with open_regular(path) as raw:
        check_zip_directory(raw, path, MAX_ARCHIVE_ENTRIES)
        with zipfile.ZipFile(raw) as zf:
            for info in zf.infolist():
                fname = _member_file(info.filename, model, path)
                if fname is None or info.is_dir():
                    continue
                if fname in got:
                    raise RelightError(f"archive holds {fname} twice", path)
                if info.file_size != model.files[fname].size:  # from the zip's header, before inflating
                    raise RelightError(
                        f"{fname} in the archive is {info.file_size} bytes, the pinned file has "
                        f"{model.files[fname].size}",
                        path,
                    )
                with zf.open(info) as f:
                    _copy_checked(f.read, partial / fname, fname, model.files[fname], cancel)
                got.add(fname)
    return got


def _install_tar(path: Path, partial: Path, model: RemoteModel, cancel) -> set[str]:
    import bz2
    import gzip
    import lzma
    import tarfile

    got, seen = set(), 0
    with open_regular(path) as raw:
        magic = raw.read(6)
        raw.seek(0)
        if magic[:2] == b"\x1f\x8b":
            stream = gzip.GzipFile(fileobj=raw)
        elif magic[:3] == b"BZh":
            stream = bz2.BZ2File(raw)
        elif magic[:6] == b"\xfd7zXZ\x00":
            stream = lzma.LZMAFile(raw)
        else:
            stream = raw
        bounded = io.BufferedReader(_Bounded(stream, model.max_bytes + (4 << 20), path))
        try:
            with tarfile.open(fileobj=bounded, mode="r|") as tf:  # a stream: members in order, no seeking
                for member in tf:
                    seen += 1
                    if seen > MAX_ARCHIVE_ENTRIES:
                        raise RelightError(f"archive has more than {MAX_ARCHIVE_ENTRIES} entries", path)
                    fname = _member_file(member.name, model, path)
                    if fname is None:
                        continue
                    if not member.isreg():
                        raise RelightError(f"{fname} in the archive is a link or a special file; refused", path)
                    if fname in got:
                        raise RelightError(f"archive holds {fname} twice", path)
                    if member.size != model.files[fname].size:
                        raise RelightError(
                            f"{fname} in the archive is {member.size} bytes, the pinned file has "
                            f"{model.files[fname].size}",
                            path,
                        )
                    f = tf.extractfile(member)
                    _copy_checked(f.read, partial / fname, fname, model.files[fname], cancel)
                    got.add(fname)
        except (tarfile.TarError, EOFError, OSError, lzma.LZMAError, zlib.error) as exc:
            raise RelightError(f"not a readable archive ({type(exc).__name__}: {exc})", path) from None
    return got


def install_model(
    source: str | Path,
    dest: str | Path | None = None,
    name: str = DEPTH_ANYTHING_V2_SMALL.name,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> Path:
    """Install model `name` from a folder or an archive (.zip, .tar, .tar.gz/.tgz, .tar.bz2, .tar.xz)
    brought from another machine: every file is checked against the pinned sizes and SHA-256, the
    architecture is checked, then the folder is renamed into place."""
    model = _model(name)
    source = Path(source)
    dest = Path(dest) if dest else _default_dest()
    notify = progress or (lambda f, m: None)
    if not os.path.lexists(source):
        raise RelightError("not found", source)
    _check_replaceable(dest)
    notify(0.0, f"checking {source}")
    partial = _new_partial(dest)
    try:
        if source.is_dir():
            got = set()
            for fname, pinned in model.files.items():
                if not (source / fname).exists():
                    continue
                with open_regular(source / fname) as f:
                    _copy_checked(f.read, partial / fname, fname, pinned, cancel)
                got.add(fname)
        else:
            with open_regular(source) as f:
                head = f.read(4)
            if os.stat(source).st_size > 2 * model.max_bytes + (1 << 20):
                raise RelightError(f"archive is larger than {model.title} can take", source)
            got = (_install_zip if head[:2] == b"PK" else _install_tar)(source, partial, model, cancel)
        missing = [f for f in model.files if f not in got]
        if missing:
            raise RelightError(f"holds no {', '.join(missing)} of {model.title}", source)
        _finish(partial, dest, model, str(source))
    except RelightError as exc:
        if exc.path is None:
            hint = (
                "; another model folder can be used as it is with --depth-model DIR" if "pinned" in exc.detail else ""
            )
            raise RelightError(exc.detail + hint, source) from None
        raise
    except OSError as exc:
        raise RelightError(f"cannot install the model ({exc.strerror or exc})", dest) from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    notify(1.0, f"{model.title} is in {dest}")
    return dest


# --- what is installed ----------------------------------------------------------------------------


def pinned_match(folder: Path, model: RemoteModel = DEPTH_ANYTHING_V2_SMALL) -> str:
    """Whether a folder's files are the pinned ones: sizes first, then SHA-256."""
    for fname, pinned in model.files.items():
        try:
            with open_regular(folder / fname) as f:
                if os.fstat(f.fileno()).st_size != pinned.size:
                    return f"other files than the pinned revision ({fname} differs)"
                digest = hashlib.sha256()
                for chunk in iter(lambda: f.read(CHUNK), b""):
                    digest.update(chunk)
        except RelightError:
            return f"other files than the pinned revision ({fname} missing)"
        if digest.hexdigest() != pinned.sha256:
            return f"other files than the pinned revision ({fname} differs)"
    return f"the pinned revision {model.revision[:12]}"


def model_locations() -> list[tuple[str, Path | None]]:
    """Where a depth model is looked for, in order (what --depth-model does not override)."""
    from core.depth.estimation import DEPTH_MODEL_ENV

    env = os.environ.get(DEPTH_MODEL_ENV)
    return [(f"${DEPTH_MODEL_ENV}", Path(env) if env else None), ("the app's data folder", _default_dest())]


def describe_folder(folder: Path) -> str:
    """One line: what the folder holds and whether it passes the checks."""
    from core.depth.network import check_model_folder

    if not os.path.lexists(folder):
        return "nothing there"
    try:
        spec = check_model_folder(folder)
    except RelightError as exc:
        return f"not usable: {exc.detail}" if exc.path == folder else f"not usable: {exc}"
    made = "installed by relight" if made_by_us(folder) else "not installed by relight"
    return f"valid ({spec.describe()}; {pinned_match(folder)}; {made})"
