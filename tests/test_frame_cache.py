"""The frame cache gives the loader exactly the samples of the PNG loader, and training reads it."""

import os

import numpy as np
import pytest
import torch

from core.base.errors import RelightError
from core.inputs.layouts import scan_vidit
from core.storage.io import write_image
from core.train.datasets import Augment, CachedVIDITTriplets, VIDITTriplets
from core.train.frame_cache import FrameCache, build_frame_cache, cache_key
from core.train.synthetic import synthesize
from core.train.training import Callbacks, TrainConfig, to_device, train


@pytest.fixture(scope="module")
def vidit(tmp_path_factory):
    root = tmp_path_factory.mktemp("vidit")
    synthesize(root, scenes=3, size=64, seed=2)
    return root


def batch_of(ds, idx):
    samples = [ds[i] for i in idx]
    return {k: torch.stack([s[k] for s in samples]) for k in samples[0]}


@pytest.mark.parametrize("aug", [Augment(), Augment(crop=40, hflip=True)])
def test_cached_samples_equal_the_decoded_ones_bit_for_bit(vidit, tmp_path, aug):
    index = scan_vidit(vidit)
    cache = build_frame_cache(index, tmp_path / "cache")
    assert cache.dtype == np.uint8 and cache.frames_file.stat().st_size == len(cache.frame_rows) * 64 * 64 * 3
    old = VIDITTriplets(index, "train", 0.34, seed=5, augment=aug)
    new = CachedVIDITTriplets(index, cache, "train", 0.34, seed=5, augment=aug)
    for epoch in (0, 1):
        old.set_epoch(epoch)
        new.set_epoch(epoch)
        idx = list(range(len(old)))[:12]
        a = to_device(batch_of(old, idx), "cpu", False)
        b_raw = batch_of(new, idx)
        assert b_raw["source"].dtype == torch.uint8  # a quarter of the bytes through the loader
        if aug.hflip:
            assert 0 < int(b_raw["flip"].sum()) < len(idx)  # some flipped, some not
        b = to_device(b_raw, "cpu", False)
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), k


def test_cache_is_reused_rebuilt_when_the_data_changes_and_checked(vidit, tmp_path):
    index = scan_vidit(vidit)
    c1 = build_frame_cache(index, tmp_path)
    mtime = c1.frames_file.stat().st_mtime_ns
    c2 = build_frame_cache(scan_vidit(vidit), tmp_path)
    assert c2.folder == c1.folder and c2.frames_file.stat().st_mtime_ns == mtime  # opened, not rebuilt
    assert cache_key(index, 32) != cache_key(index, None)
    small = build_frame_cache(index, tmp_path, resize=32)
    assert small.shape == (32, 32) and small.dtype == np.uint16  # resized values are not k/255
    # a damaged frames file is refused with a message naming the folder
    with open(c1.frames_file, "r+b") as f:
        f.truncate(100)
    with pytest.raises(RelightError, match="damaged"):
        FrameCache.open(c1.folder)
    assert not list(tmp_path.glob("*.tmp-*"))


def test_sixteen_bit_and_mixed_sizes(tmp_path, vidit):
    import shutil

    data = tmp_path / "d"
    shutil.copytree(vidit, data)
    first = sorted(data.glob("Image*_*.png"))[0]
    rng = np.random.default_rng(0)
    for p in sorted(data.glob("Image*_*.png")):
        write_image(p, rng.random((64, 64, 3)), 16)
    cache = build_frame_cache(scan_vidit(data), tmp_path / "c16")
    from core.storage.io import read_image

    assert cache.dtype == np.uint16
    frame = np.asarray(cache.frame(*next(iter(cache.frame_rows))), np.float32) / 65535
    np.testing.assert_allclose(frame, read_image(first), atol=1 / 131070)
    write_image(first, rng.random((48, 64, 3)), 16)
    with pytest.raises(RelightError, match="give a resize"):
        build_frame_cache(scan_vidit(data), tmp_path / "c16")
    assert not list((tmp_path / "c16").glob("*.tmp-*"))


@pytest.mark.slow
def test_training_on_the_cache_gives_the_same_losses(vidit, tmp_path):
    def run(name, **kw):
        losses = []
        c = TrainConfig(
            data=str(vidit),
            out=str(tmp_path / name),
            preset="s3net-lite",
            steps=3,
            batch=2,
            num_workers=0,
            device="cpu",
            val_fraction=0.34,
            val_limit=1,
            log_every=1,
            ckpt_every=3,
            val_every=3,
            seed=0,
            crop=48,
            hflip=True,
            **kw,
        )
        train(c, Callbacks(on_step=lambda i: losses.append(i.terms["total"])))
        return losses

    plain = run("plain")
    cached = run("cached", frame_cache=True, cache_dir=str(tmp_path / "cache"))
    assert cached == plain and len(plain) == 3
    assert len(os.listdir(tmp_path / "cache")) == 2  # the cache folder and its lock file


def test_a_cache_that_would_fill_the_disk_is_refused_before_writing(vidit, tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10 << 30, 9 << 30, (1 << 30) + 1000))
    with pytest.raises(RelightError, match=r"needs \d+ MB; 1\.0 GB are free"):
        build_frame_cache(scan_vidit(vidit), tmp_path)
    assert [p.suffix for p in tmp_path.iterdir()] == [".lock"]  # nothing else written


def test_cache_command_lists_and_clears(vidit, tmp_path, capsys):
    from core.cli import main

    build_frame_cache(scan_vidit(vidit), tmp_path)
    assert main(["cache", "--cache-dir", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "120 frames of 64x64" in out and str(vidit) in out and "1 frame cache(s)" in err
    assert main(["cache", "clear", "--cache-dir", str(tmp_path)]) == 0
    assert "removed" in capsys.readouterr()[0] and list(tmp_path.iterdir()) == []


def test_a_cache_being_built_is_not_removed(vidit, tmp_path):
    import fcntl

    from core.train.frame_cache import remove_cache

    cache = build_frame_cache(scan_vidit(vidit), tmp_path)
    with open(tmp_path / f"{cache.folder.name}.lock", "a+") as held:  # as a builder holds it
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(RelightError, match="being built"):
            remove_cache(cache.folder)
    assert (cache.folder / "index.json").is_file()
    remove_cache(cache.folder)
    assert not cache.folder.exists()
