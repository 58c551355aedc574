"""Depth-model folders from elsewhere: checked against Depth Anything V2 Small before anything is built,
loaded from local files only (no socket, whatever the config says), installed and downloaded against
pinned checksums, and never replacing a folder this program did not make."""

import hashlib
import io
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from core.base.errors import RelightError
from core.cli import main
from core.storage.io import write_depth_npy, write_image

ROOT = Path(__file__).resolve().parent.parent
FILES = ("config.json", "preprocessor_config.json", "model.safetensors")


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.err


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _edit_json(path: Path, fn) -> None:
    raw = json.loads(path.read_text())
    fn(raw)
    path.write_text(json.dumps(raw))


# Each case runs in a process forked from one that imported torch and transformers once: its address
# space is capped a little above what those imports took, an alarm ends it after `timeout` seconds,
# and any socket it opens ends it with code 99.
ZYGOTE = r"""
import json, os, resource, signal, socket, sys, time, traceback
sys.path.insert(0, sys.argv[1])
import torch
torch.set_num_threads(1)
from core.cli import main
from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config  # lazy imports, before forking
cases, limit, timeout = json.load(open(sys.argv[2])), int(sys.argv[3]), int(sys.argv[4])
vm = [int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize:")][0]
results = []
for case in cases:
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        rc = 1
        try:
            fd = os.open(case["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(fd, 2)
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
            resource.setrlimit(resource.RLIMIT_AS, (vm + limit, resource.RLIM_INFINITY))
            signal.alarm(timeout)
            def no_network(*a, **k):
                os.write(2, b"SOCKET\n")
                os._exit(99)
            socket.socket.connect = socket.socket.connect_ex = no_network
            socket.create_connection = socket.getaddrinfo = no_network
            rc = main(case["argv"])
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 1
        except BaseException:
            traceback.print_exc()
            rc = 1
        sys.stderr.flush()
        os._exit(rc)
    _, status = os.waitpid(pid, 0)
    results.append({"rc": os.waitstatus_to_exitcode(status), "seconds": time.perf_counter() - t0})
print(json.dumps(results))
"""


def run_isolated(tmp_path: Path, argvs: list[list], limit_mb: int = 1024, timeout: int = 20) -> list[dict]:
    cases = [{"argv": [str(a) for a in argv], "stderr": str(tmp_path / f"case{i}.err")} for i, argv in enumerate(argvs)]
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "data"), OMP_NUM_THREADS="1")
    env.pop("RELIGHT_DEPTH_MODEL", None)
    r = subprocess.run(
        [sys.executable, "-c", ZYGOTE, str(ROOT), str(tmp_path / "cases.json"), str(limit_mb << 20), str(timeout)],
        capture_output=True,
        text=True,
        timeout=60 + timeout * len(argvs),
        env=env,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    results = json.loads(r.stdout.strip().splitlines()[-1])
    for res, case in zip(results, cases):
        res["stderr"] = Path(case["stderr"]).read_text(errors="replace")
    return results


@pytest.fixture
def photo(tmp_path):
    return write_image(tmp_path / "photo.png", np.random.default_rng(0).random((48, 64, 3)), 8)


def _weights_file(path: Path, tensors: dict) -> Path:
    from safetensors.torch import save_file

    save_file(tensors, str(path))
    return path


def test_hostile_model_folders_are_refused_before_anything_is_built(tmp_path, tiny_depth_model, photo):
    from safetensors.torch import load_file

    def make(name, edit):
        folder = _copy(tiny_depth_model, tmp_path / name)
        edit(folder)
        return folder

    state = load_file(str(tiny_depth_model / "model.safetensors"))
    wrong = dict(state)
    key = "neck.convs.0.weight"
    wrong[key] = torch.zeros(wrong[key].shape[0], wrong[key].shape[1] + 1, *wrong[key].shape[2:])
    cases = {
        "layers": (
            lambda f: _edit_json(f / "config.json", lambda c: c["backbone_config"].update(num_hidden_layers=10**6)),
            "config.json: backbone_config.num_hidden_layers is 1000000; expected 1 to 12",
        ),
        "size": (
            lambda f: _edit_json(
                f / "preprocessor_config.json", lambda c: c.update(size={"height": 4096, "width": 4096})
            ),
            "preprocessor_config.json: size.height is 4096; expected 14 to 1036",
        ),
        "multiple": (
            lambda f: _edit_json(f / "preprocessor_config.json", lambda c: c.update(ensure_multiple_of=10**9)),
            "preprocessor_config.json: ensure_multiple_of is 1000000000; expected 14",
        ),
        "huge": (
            lambda f: os.truncate(f / "config.json", 300 << 20),  # sparse: 300 MB that take no disk
            "config.json: file is 300.0 MB, more than the 0.1 MB expected",
        ),
        "none": (
            lambda f: _weights_file(f / "model.safetensors", {"something.else": torch.zeros(3)}),
            "model.safetensors: holds none of the weights this architecture needs",
        ),
        "shape": (
            lambda f: _weights_file(f / "model.safetensors", wrong),
            f"model.safetensors: weight {key} has shape",
        ),
        "cut": (
            lambda f: os.truncate(f / "model.safetensors", (f / "model.safetensors").stat().st_size - 100),
            "model.safetensors: file is",
        ),
    }
    folders = {name: make(name, edit) for name, (edit, _) in cases.items()}
    results = run_isolated(
        tmp_path,
        [
            ["depth", photo, "--output", tmp_path / f"{n}.png", "--model", f, "--device", "cpu"]
            for n, f in folders.items()
        ],
    )
    for (name, (_, want)), res in zip(cases.items(), results):
        err = res["stderr"]
        assert res["rc"] == 2 and err.count("\n") == 1 and "Traceback" not in err, (name, res)
        assert want in err and str(folders[name]) in err, (name, err)
        assert res["seconds"] < 15, (name, res)


def _hub_backbone_folder(tiny: Path, dst: Path) -> Path:
    folder = _copy(tiny, dst)
    _edit_json(
        folder / "config.json",
        lambda c: c.update(
            backbone_config={
                "model_type": "timm_backbone",
                "backbone": "hf-hub:timm/vit_small_patch14_dinov2.lvd142m",
                "out_indices": [1, 2, 3, 4],
                "use_pretrained_backbone": False,
            }
        ),
    )
    return folder


@pytest.fixture
def sockets_blocked(monkeypatch):
    """Every way to open a connection raises and is recorded."""
    attempts = []

    def blocked(*a, **k):
        attempts.append(repr(a[:2])[:120])
        raise OSError("network blocked by the test")

    monkeypatch.setattr(socket.socket, "connect", blocked)
    monkeypatch.setattr(socket.socket, "connect_ex", blocked)
    monkeypatch.setattr(socket, "create_connection", blocked)
    monkeypatch.setattr(socket, "getaddrinfo", blocked)
    return attempts


def test_no_socket_on_any_estimation_path(
    capsys, tmp_path, tiny_depth_model, lite_checkpoint, sockets_blocked, monkeypatch
):
    import huggingface_hub  # noqa: F401  (imported first, as in the app: environment flags set later do nothing)

    from core.api import relight
    from core.depth.estimation import estimate_depth, load_estimator
    from core.render.light import Light
    from core.train.synthetic import synthesize

    hub = _hub_backbone_folder(tiny_depth_model, tmp_path / "hub-backbone")
    rng = np.random.default_rng(0)
    src = write_image(tmp_path / "src.png", rng.random((64, 64, 3)), 8)
    gui = write_image(tmp_path / "gui.png", rng.random((64, 64, 3)), 8)
    gdep = write_depth_npy(tmp_path / "gui.npy", rng.random((64, 64)))
    synthesize(tmp_path / "s", scenes=0, size=64, seed=0, pairs=2)
    pairs = tmp_path / "s" / "pairs"
    (pairs / "input" / "Pair001.npy").unlink()
    for folder, ok in ((hub, False), (tiny_depth_model, True)):
        # the command line, one pair
        code, err = run_cli(
            capsys,
            "infer",
            "--source",
            src,
            "--guide",
            gui,
            "--guide-depth",
            gdep,
            "--output",
            tmp_path / "o.png",
            "--checkpoint",
            lite_checkpoint,
            "--device",
            "cpu",
            "--depth-model",
            folder,
        )
        assert sockets_blocked == [] and (code == 0) == ok, (sockets_blocked, err)
        if not ok:
            assert err.count("\n") == 1 and "backbone_config.backbone names 'hf-hub:timm/" in err and str(hub) in err, (
                err
            )
        # the command line, folder mode
        monkeypatch.setenv("RELIGHT_DEPTH_MODEL", str(folder))
        code, err = run_cli(
            capsys,
            "infer",
            "--input-dir",
            pairs,
            "--output",
            tmp_path / f"out-{ok}",
            "--checkpoint",
            lite_checkpoint,
            "--device",
            "cpu",
        )
        assert ("relit 2 of 2" in err) == ok and ("skipped Pair001" in err) != ok, err
        monkeypatch.delenv("RELIGHT_DEPTH_MODEL")
        # the library
        try:
            relight(src, light=Light(azimuth=90), checkpoint=lite_checkpoint, device="cpu", depth_model=folder)
            assert ok
        except RelightError as exc:
            assert not ok and "hf-hub" in str(exc)
        # the app's estimation path: the calls its worker makes
        try:
            load_estimator(folder, "cpu").estimate(rng.random((40, 40, 3), dtype=np.float32))
            estimate_depth(rng.random((40, 40, 3), dtype=np.float32), folder, device="cpu")
            assert ok
        except RelightError as exc:
            assert not ok and "hf-hub" in str(exc)
    assert sockets_blocked == []


@pytest.mark.parametrize(
    "edit,field",
    [
        (
            lambda c: c.update(backbone="hf-hub:timm/vit_small_patch14_dinov2.lvd142m", use_timm_backbone=True),
            "backbone names",
        ),
        (lambda c: c.update(use_pretrained_backbone=True), "use_pretrained_backbone is set"),
        (lambda c: c.update(auto_map={"AutoModel": "evil.Model"}), "auto_map names remote code"),
        (lambda c: c.update(model_type="dpt"), "model_type is 'dpt'"),
    ],
)
def test_configs_that_point_elsewhere_are_refused(tmp_path, tiny_depth_model, edit, field):
    from core.depth.network import check_model_folder

    folder = _copy(tiny_depth_model, tmp_path / "m")
    _edit_json(folder / "config.json", edit)
    with pytest.raises(RelightError, match=field):
        check_model_folder(folder)


def _pin_to(monkeypatch, folder: Path):
    """The pinned table made from the tiny model's files (the released ones are 99 MB)."""
    from core.depth import store as model_store

    files = {
        n: model_store.PinnedFile((folder / n).stat().st_size, hashlib.sha256((folder / n).read_bytes()).hexdigest())
        for n in FILES
    }
    pinned = model_store.RemoteModel(
        "depth-anything-v2-small",
        "Depth Anything V2 Small",
        model_store.DEPTH_ANYTHING_V2_SMALL.repo,
        model_store.DEPTH_ANYTHING_V2_SMALL.revision,
        files,
        "Apache-2.0",
    )
    monkeypatch.setitem(model_store.MODELS, pinned.name, pinned)
    return pinned


class FakeHub:
    """Answers file URLs (and the hub's file-list API) from memory and records what was asked."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.urls = files, []

    def __call__(self, url: str):
        self.urls.append(url)
        if "/api/models/" in url:
            return io.BytesIO(
                json.dumps(
                    {
                        "siblings": [
                            {
                                "rfilename": n,
                                "size": len(d),
                                "lfs": {"size": len(d), "sha256": hashlib.sha256(d).hexdigest()},
                            }
                            for n, d in self.files.items()
                        ]
                    }
                ).encode()
            )
        return io.BytesIO(self.files[url.rsplit("/", 1)[1]])


def test_the_pinned_table_is_the_released_model():
    from core.depth.store import DEPTH_ANYTHING_V2_SMALL as m

    assert len(m.revision) == 40 and int(m.revision, 16) and m.revision != "main"
    assert set(m.files) == set(FILES) and m.max_bytes == 99_175_385
    assert all(len(f.sha256) == 64 and int(f.sha256, 16) for f in m.files.values())


def test_download_asks_for_the_pinned_revision_and_checks_against_the_table(tmp_path, tiny_depth_model, monkeypatch):
    from core.base.cancel import CancelToken
    from core.base.errors import Cancelled
    from core.depth.estimation import is_model_dir
    from core.depth.store import MARKER, download_model, made_by_us

    pinned = _pin_to(monkeypatch, tiny_depth_model)
    files = {n: (tiny_depth_model / n).read_bytes() for n in FILES}
    hub = FakeHub(files)
    dest = tmp_path / "models" / "depth-anything-v2-small"
    seen = []
    assert download_model("depth-anything-v2-small", dest, progress=lambda f, m: seen.append(f), opener=hub) == dest
    assert all(f"/resolve/{pinned.revision}/" in u for u in hub.urls) and len(hub.urls) == 3  # no file list asked
    assert is_model_dir(dest) and made_by_us(dest) and (dest / MARKER).is_file()
    assert (dest / "model.safetensors").read_bytes() == files["model.safetensors"]
    assert seen[-1] == 1.0 and seen == sorted(seen)
    # the hub serving other bytes than pinned (whatever it claims): refused, nothing placed
    other = tmp_path / "other"
    bad = dict(files, **{"model.safetensors": files["model.safetensors"][:-4] + b"\0\0\0\0"})
    with pytest.raises(RelightError, match="does not match the pinned"):
        download_model("depth-anything-v2-small", other, opener=FakeHub(bad))
    with pytest.raises(RelightError, match="larger than the pinned"):
        download_model(
            "depth-anything-v2-small",
            other,
            opener=FakeHub(dict(files, **{"config.json": files["config.json"] + b" "})),
        )
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        download_model("depth-anything-v2-small", other, cancel=token, opener=hub)
    assert not other.exists() and not any(p.name.endswith(".partial") for p in tmp_path.iterdir())
    # a second download replaces the folder it made
    assert download_model("depth-anything-v2-small", dest, opener=hub) == dest and made_by_us(dest)
    assert sorted(p.name for p in dest.parent.iterdir()) == [dest.name]
    (tmp_path / "empty").mkdir()  # an empty folder is fine
    assert download_model("depth-anything-v2-small", tmp_path / "empty", opener=hub) == tmp_path / "empty"
    with pytest.raises(RelightError, match="unknown model"):
        download_model("depth-anything-v2-large", other)


def test_download_never_replaces_a_folder_it_did_not_make(
    capsys, tmp_path, tiny_depth_model, monkeypatch, sockets_blocked
):
    from core.depth import store as model_store
    from core.depth.store import download_model

    hub = FakeHub({n: (tiny_depth_model / n).read_bytes() for n in FILES})
    mine = tmp_path / "photos"
    (mine / "sub").mkdir(parents=True)
    (mine / "holiday.jpg").write_bytes(b"precious")
    (mine / "sub" / "notes.txt").write_text("keep")
    with pytest.raises(RelightError, match="not a model installed by relight"):
        download_model("depth-anything-v2-small", mine, opener=hub)
    # a model folder of the right files, copied by hand (no mark): not replaced either
    by_hand = _copy(tiny_depth_model, tmp_path / "by-hand")
    with pytest.raises(RelightError, match="refusing to replace it"):
        download_model("depth-anything-v2-small", by_hand, opener=hub)
    # the command line says so in one line
    monkeypatch.setattr(model_store, "_open", hub)
    code, err = run_cli(capsys, "models", "download", "depth-anything-v2-small", "--dest", mine)
    assert code == 2 and err.count("\n") == 1 and "refusing to replace it" in err and str(mine) in err, err
    assert (mine / "holiday.jpg").read_bytes() == b"precious" and (mine / "sub" / "notes.txt").read_text() == "keep"
    assert sorted(p.name for p in mine.iterdir()) == ["holiday.jpg", "sub"]
    assert hub.urls == [] and sockets_blocked == []  # refused before downloading anything
    # a link is not followed
    (tmp_path / "link").symlink_to(mine)
    with pytest.raises(RelightError, match="is a link"):
        download_model("depth-anything-v2-small", tmp_path / "link", opener=hub)
    assert sorted(p.name for p in mine.iterdir()) == ["holiday.jpg", "sub"]


def _archive(kind: str, path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    if kind == "zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in members.items():
                zf.writestr(name, data)
        return path
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tf.addfile(info)
    return path


def test_install_from_a_folder_or_an_archive(capsys, tmp_path, tiny_depth_model, monkeypatch):
    from core.depth.estimation import load_estimator
    from core.depth.store import made_by_us

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("RELIGHT_DEPTH_MODEL", raising=False)
    _pin_to(monkeypatch, tiny_depth_model)
    files = {n: (tiny_depth_model / n).read_bytes() for n in FILES}
    sources = {
        "folder": tiny_depth_model,
        "zip": _archive("zip", tmp_path / "m.zip", {f"depth-anything-v2-small/{n}": d for n, d in files.items()}),
        "tgz": _archive("tgz", tmp_path / "m.tar.gz", dict(files, **{"README.md": b"hello"})),
    }
    for kind, src in sources.items():
        dest = tmp_path / f"dest-{kind}"
        code, err = run_cli(capsys, "models", "install", src, "--dest", dest)
        assert code == 0, err
        assert made_by_us(dest) and all((dest / n).read_bytes() == d for n, d in files.items())
        assert sorted(p.name for p in dest.iterdir()) == sorted(FILES + (".relight-model.json",))
        load_estimator(dest, "cpu")  # it loads
    # default destination: the app's data folder; `list` shows where it looked and what it found
    code, err = run_cli(capsys, "models", "install", sources["zip"])
    assert code == 0, err
    code, out = main(["models", "list"]), capsys.readouterr().out
    assert code == 0
    assert "1. $RELIGHT_DEPTH_MODEL: not set" in out
    default = tmp_path / "data" / "RelightStudio" / "Relight Studio" / "models" / "depth-anything-v2-small"
    assert f"2. the app's data folder: {default}: valid (Depth Anything V2, scaled down (4 layers, width 32)" in out, (
        out
    )
    assert "installed by relight" in out and f"in use: {default}" in out, out
    assert "at revision 5426e4f0f36572d16453bbda7a8389317b1bef99" in out


def test_install_refuses_hostile_or_wrong_archives(capsys, tmp_path, tiny_depth_model, monkeypatch):
    _pin_to(monkeypatch, tiny_depth_model)
    files = {n: (tiny_depth_model / n).read_bytes() for n in FILES}
    outside = tmp_path / "evil"
    bomb = io.BytesIO()
    with tarfile.open(fileobj=bomb, mode="w:gz") as tf:  # 300 MB of zeros, streamed, before the model files
        info = tarfile.TarInfo("padding.bin")
        info.size = 300 << 20

        class Zeros(io.RawIOBase):
            left = 300 << 20

            def readable(self):
                return True

            def readinto(self, b):
                n = min(len(b), self.left)
                b[:n] = bytes(n)
                self.left -= n
                return n

        tf.addfile(info, io.BufferedReader(Zeros()))
    (tmp_path / "bomb.tar.gz").write_bytes(bomb.getvalue())
    changed = dict(files, **{"model.safetensors": files["model.safetensors"][:-4] + b"\0\0\0\0"})
    cases = {
        "traversal": (
            _archive("zip", tmp_path / "t.zip", {f"../evil/{n}": d for n, d in files.items()}),
            "points outside",
        ),
        "symlink": (
            _archive(
                "tgz",
                tmp_path / "l.tar.gz",
                {n: d for n, d in files.items() if n != "config.json"},
                {"config.json": "/etc/passwd"},
            ),
            "is a link or a special file",
        ),
        "bomb": (tmp_path / "bomb.tar.gz", "unpacks to more than"),
        "changed": (_archive("zip", tmp_path / "c.zip", changed), "does not match the pinned"),
        "size": (
            _archive("zip", tmp_path / "s.zip", dict(files, **{"config.json": files["config.json"] + b"  "})),
            "config.json in the archive is",
        ),
        "missing": (_archive("zip", tmp_path / "m.zip", {"config.json": files["config.json"]}), "holds no"),
        "not an archive": (write_image(tmp_path / "x.png", np.zeros((40, 40, 3)), 8), "not a readable archive"),
    }
    assert (tmp_path / "bomb.tar.gz").stat().st_size < 1 << 20
    for name, (src, want) in cases.items():
        dest = tmp_path / f"dest-{name}"
        t0 = time.perf_counter()
        code, err = run_cli(capsys, "models", "install", src, "--dest", dest)
        assert code == 2 and err.count("\n") == 1 and want in err and "Traceback" not in err, (name, err)
        assert time.perf_counter() - t0 < 20 and not dest.exists(), name
    assert not outside.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def _mutants(tiny: Path, root: Path, n: int, seed: int) -> list[Path]:
    """Random mutations of a valid folder: config values, removed keys, remote references, damaged or
    cut safetensors, oversized or odd files."""
    rng = random.Random(seed)
    hostile = [0, -1, 1, 3, 13, 10**6, 10**9, 2**63, 1e308, 0.5, float("nan"), "12", None, [], {}, True, [1] * 50]
    out = []
    for i in range(n):
        folder = _copy(tiny, root / f"m{i:02d}")
        kind = rng.choice(
            [
                "config",
                "config",
                "backbone",
                "pre",
                "drop",
                "remote",
                "weights",
                "cut",
                "garbage",
                "header",
                "huge",
                "deep",
                "special",
            ]
        )
        if kind in ("config", "backbone", "pre", "drop"):
            path = folder / ("preprocessor_config.json" if kind == "pre" else "config.json")
            raw = json.loads(path.read_text())
            target = raw["backbone_config"] if kind == "backbone" else raw
            key = rng.choice(sorted(target))
            if kind == "drop":
                del target[key]
            else:
                target[key] = rng.choice(hostile)
            path.write_text(json.dumps(raw))
        elif kind == "remote":
            _edit_json(
                folder / "config.json",
                lambda c: c.update(
                    rng.choice(
                        [
                            {"backbone": "hf-hub:timm/x"},
                            {"use_timm_backbone": True},
                            {"auto_map": {"a": "b.c"}},
                            {"backbone_config": {"model_type": "timm_backbone", "backbone": "hf-hub:timm/x"}},
                        ]
                    )
                ),
            )
        elif kind in ("weights", "cut", "garbage", "header"):
            w = folder / "model.safetensors"
            data = bytearray(w.read_bytes())
            if kind == "weights":
                for _ in range(rng.randint(1, 20)):
                    pos = rng.randrange(8, min(len(data), 8 + int.from_bytes(data[:8], "little")))
                    data[pos] = rng.randrange(256)
            elif kind == "cut":
                del data[rng.randrange(len(data)) :]
            elif kind == "garbage":
                data = bytearray(rng.randbytes(rng.randint(0, 5000)))
            else:
                data[:8] = rng.choice([2**64 - 1, 2**40, 0, len(data)]).to_bytes(8, "little")
            w.write_bytes(bytes(data))
        elif kind == "huge":
            os.truncate(folder / rng.choice(FILES), rng.choice([300 << 20, 70 << 10]))
        elif kind == "deep":
            (folder / rng.choice(["config.json", "preprocessor_config.json"])).write_text("[" * 60000)
        else:
            target = folder / rng.choice(FILES)
            target.unlink()
            if rng.random() < 0.5 and hasattr(os, "mkfifo"):
                os.mkfifo(target)
            else:
                target.mkdir()
        out.append(folder)
    return out


@pytest.mark.slow  # the fuzzers: CI runs them, the fast core subset leaves them out
def test_fuzz_depth_model_folders_in_child_processes(tmp_path, tiny_depth_model, photo):
    """Every mutant ends with exit 0 or exit 2 and exactly one line on stderr: no traceback, no hang
    (20 s each), no memory blow-up (1 GB above the imports), no socket."""
    t0 = time.perf_counter()
    folders = _mutants(tiny_depth_model, tmp_path / "mutants", 36, seed=20)
    results = run_isolated(
        tmp_path,
        [
            ["depth", photo, "--output", tmp_path / f"d{i}.png", "--model", f, "--device", "cpu"]
            for i, f in enumerate(folders)
        ],
    )
    refused = 0
    for folder, res in zip(folders, results):
        err = res["stderr"]
        assert res["rc"] in (0, 2), (folder, res)
        assert err.count("\n") == 1 and "Traceback" not in err and "SOCKET" not in err, (folder, res)
        if res["rc"] == 2:
            refused += 1
            assert err.startswith("relight: error: "), (folder, err)
    assert refused >= 20
    assert time.perf_counter() - t0 < 120
