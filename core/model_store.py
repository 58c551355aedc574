"""Downloading optional models, only when the user asks (`relight models download`, the app's button).

A download streams each file into a hidden folder beside the destination, checks every file's size
(and the weights' SHA-256, which the Hugging Face hub publishes for large files), and only then
renames the folder into place: an interrupted or cancelled download leaves nothing that looks usable.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

from .cancel import CancelToken
from .errors import RelightError
from .progress import Progress


@dataclass(frozen=True)
class RemoteModel:
    name: str
    title: str
    repo: str  # Hugging Face hub repository
    revision: str
    files: tuple[str, ...]
    licence: str
    max_bytes: int  # refuse anything larger: a size check before and during the download


DEPTH_ANYTHING_V2_SMALL = RemoteModel(
    "depth-anything-v2-small", "Depth Anything V2 Small", "depth-anything/Depth-Anything-V2-Small-hf", "main",
    ("config.json", "preprocessor_config.json", "model.safetensors"), "Apache-2.0", 200 * 2**20)
MODELS = {m.name: m for m in (DEPTH_ANYTHING_V2_SMALL,)}

HUB = "https://huggingface.co"


def _open(url: str) -> BinaryIO:
    req = urllib.request.Request(url, headers={"User-Agent": "relight-studio"})
    return urllib.request.urlopen(req, timeout=30)  # noqa: S310 (https only, fixed host)


def _file_list(model: RemoteModel, opener: Callable[[str], BinaryIO]) -> dict[str, dict]:
    """{file: {"size": int, "sha256": str | None}} from the hub's API."""
    url = f"{HUB}/api/models/{model.repo}/revision/{model.revision}?blobs=true"
    with opener(url) as resp:
        raw = resp.read(4 << 20)
    try:
        info = json.loads(raw)
        siblings = {s["rfilename"]: s for s in info["siblings"]}
    except (ValueError, KeyError, TypeError):
        raise RelightError(f"unexpected answer from {HUB} about {model.repo}") from None
    out = {}
    for name in model.files:
        s = siblings.get(name)
        if s is None:
            raise RelightError(f"{model.repo} has no file {name}")
        lfs = s.get("lfs") or {}
        out[name] = {"size": int(lfs.get("size", s.get("size", 0)) or 0), "sha256": lfs.get("sha256")}
    return out


def download_model(name: str, dest: str | Path | None = None, progress: Progress | None = None,
                   cancel: CancelToken | None = None, opener: Callable[[str], BinaryIO] = _open) -> Path:
    """Download model `name` into `dest` (default: the app's data folder) and return the folder."""
    from .depth_estimation import default_model_dir

    if name not in MODELS:
        raise RelightError(f"unknown model '{name}' (available: {', '.join(MODELS)})")
    model = MODELS[name]
    dest = Path(dest) if dest else default_model_dir()
    notify = progress or (lambda f, m: None)
    notify(0.0, f"asking {HUB} for {model.title}")
    try:
        files = _file_list(model, opener)
    except OSError as exc:
        raise RelightError(f"cannot reach {HUB} ({getattr(exc, 'reason', exc)})") from None
    total = sum(f["size"] for f in files.values())
    if total > model.max_bytes:
        raise RelightError(f"{model.title} would be {total / 2**20:.0f} MB, more than the expected "
                           f"{model.max_bytes / 2**20:.0f} MB; refusing")
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.parent / f".{dest.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    done = 0
    try:
        for fname, meta in files.items():
            url = f"{HUB}/{model.repo}/resolve/{model.revision}/{fname}"
            digest, size = hashlib.sha256(), 0
            with opener(url) as resp, open(partial / fname, "wb") as f:
                while True:
                    if cancel is not None:
                        cancel.check()
                    chunk = resp.read(1 << 20)
                    if not chunk:
                        break
                    size += len(chunk)
                    done += len(chunk)
                    if size > max(meta["size"], 1) or done > model.max_bytes:
                        raise RelightError(f"{fname} is larger than announced; download refused")
                    digest.update(chunk)
                    f.write(chunk)
                    notify(done / max(total, 1), f"{fname}: {size / 2**20:.1f} of {meta['size'] / 2**20:.1f} MB")
            if meta["size"] and size != meta["size"]:
                raise RelightError(f"{fname}: got {size} bytes, expected {meta['size']} (interrupted?)")
            if meta["sha256"] and digest.hexdigest() != meta["sha256"]:
                raise RelightError(f"{fname}: checksum mismatch; the download is corrupt")
        old = dest.parent / f".{dest.name}.old"
        shutil.rmtree(old, ignore_errors=True)
        if dest.exists():
            os.replace(dest, old)
        os.replace(partial, dest)
        shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        raise RelightError(f"download failed ({getattr(exc, 'reason', None) or exc})", dest) from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    notify(1.0, f"{model.title} is in {dest}")
    return dest
