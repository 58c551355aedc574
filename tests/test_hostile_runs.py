"""Run folders and frame caches as a crash, a copy or an attacker leaves them: a resumed copy writes only
into itself, every damaged file gives one line naming the file and the field (exit 2), caches are refused
and rebuilt, and `cache clear` deletes only what it provably made."""

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from conftest import cli, one_error_line
from core.train.synthetic import synthesize
from core.train.training import TrainConfig, train


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    synthesize(root / "d", scenes=2, size=64, seed=0)
    return root / "d"


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    """A finished two-step run (config.json, metrics.jsonl, state.pt, last.safetensors)."""
    out = tmp_path_factory.mktemp("run") / "a"
    train(
        TrainConfig(
            data=str(data),
            out=str(out),
            preset="s3net-lite",
            steps=2,
            batch=2,
            resize=64,
            device="cpu",
            num_workers=0,
            log_every=1,
            ckpt_every=1,
            val_every=100,
        )
    )
    return out


COMMON = ["--device", "cpu", "--workers", "0"]


def test_resuming_a_copied_run_writes_only_into_the_copy(run, tmp_path, capsys):
    a = tmp_path / "a"
    shutil.copytree(run, a)
    (a / ".state.pt.abc.tmp").write_bytes(b"a write in progress")  # the original's own business
    b = tmp_path / "b"
    shutil.copytree(a, b)
    (b / ".state.pt.abc.tmp").unlink()
    before = {p.name: p.read_bytes() for p in a.iterdir() if p.is_file()}
    code, err = cli(capsys, "train", "--out", b, "--resume", "--steps", "3", *COMMON)
    assert code == 0, err
    assert {p.name: p.read_bytes() for p in a.iterdir() if p.is_file()} == before
    assert torch.load(b / "state.pt", weights_only=True)["step"] == 3
    assert json.loads((b / "config.json").read_text())["out"] == str(b)
    steps = [json.loads(ln)["step"] for ln in (b / "metrics.jsonl").read_text().splitlines()]
    assert steps[-1] == 3


def test_one_table_of_settings_covers_every_field():
    from dataclasses import fields

    from core.train.training import SETTINGS

    assert set(SETTINGS) == {f.name for f in fields(TrainConfig)}
    TrainConfig().validate()  # the defaults pass their own table


def _config_case(run, tmp_path, text: bytes) -> Path:
    b = tmp_path / "b"
    b.mkdir()
    (b / "config.json").write_bytes(text)
    return b


def _with(run, **changes) -> bytes:
    raw = json.loads((run / "config.json").read_text())
    raw.update(changes)
    return json.dumps(raw).encode()


@pytest.mark.parametrize(
    "make,needles",
    [
        (lambda run: b"[1, 2, 3]", ["must hold a mapping of settings, not a list"]),
        (lambda run: b'{"batch": 3,', ["is not valid JSON"]),
        (lambda run: b'{"data": "\xff\xfe"}', ["is not UTF-8 text"]),
        (lambda run: b"[" * 100000 + b"]" * 100000, ["nested too deeply"]),
        (lambda run: _with(run, batch="3"), ["batch must be a whole number, not the text '3'"]),
        (lambda run: _with(run, batch=1.5), ["batch must be a whole number, not 1.5"]),
        (lambda run: _with(run, betas=5), ["betas must be two numbers, not 5"]),
        (lambda run: _with(run, seed=1e30), ["seed must be a whole number"]),
        (lambda run: _with(run, seed=-1), ["seed must be at least 0"]),
        (lambda run: _with(run, resize=100000), ["resize must be at most 8192"]),
        (lambda run: _with(run, lr=float("nan")), ["lr must be a finite number"]),
        (
            lambda run: _with(run).replace(b'"steps": 2', b'"steps": Infinity'),
            ["steps must be a whole number, not inf"],
        ),
        (lambda run: _with(run, data={"a": [1, 2, 3, 4, 5, 6]}), ["data must be text, not dict"]),
        (lambda run: _with(run, data="a\0b"), ["data is not a usable name"]),
        (lambda run: _with(run, preset="s3net-huge"), ["unknown preset 's3net-huge'"]),
        (lambda run: _with(run, **{f"extra{i}": 1 for i in range(40)}), ["unknown config keys", "and 35 more"]),
    ],
)
def test_damaged_run_config_is_one_line_naming_the_field(run, tmp_path, capsys, make, needles):
    b = _config_case(run, tmp_path, make(run))
    code, err = cli(capsys, "train", "--out", b, "--resume", *COMMON)
    one_error_line(code, err, "config.json", *needles)
    assert len(err) < 400


@pytest.mark.parametrize(
    "text,needle",
    [
        ("data: !!python/object/apply:os.system ['echo owned']\n", "python/object/apply"),
        ("data: &x [*x]\n", "data must be text, not list"),
        (
            'data: [&a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"], '  # a billion laughs, in one field
            + ", ".join(f"&{c} [{', '.join(['*' + p] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi"))
            + "]\n",
            "data must be text, not list",
        ),
    ],
)
def test_yaml_config_with_tags_or_anchor_bombs_is_one_line(tmp_path, capsys, text, needle):
    (tmp_path / "c.yaml").write_text(text)
    code, err = cli(capsys, "train", "--config", tmp_path / "c.yaml", "--out", tmp_path / "r", *COMMON)
    one_error_line(code, err, "c.yaml", needle)
    assert len(err) < 400 and not (tmp_path / "r").exists()


def _copy_run(run, dest: Path) -> Path:
    shutil.copytree(run, dest)
    return dest


def test_odd_metrics_lines_do_not_stop_a_resume(run, tmp_path, capsys):
    b = _copy_run(run, tmp_path / "b")
    good = (b / "metrics.jsonl").read_bytes()
    odd = [b'{"step": 1e999, "total": 1}', b'{"step": "\xff\xfe"}', b"[" * 50000 + b"]" * 50000, b'{"step": 1, "tot']
    (b / "metrics.jsonl").write_bytes(good + b"\n".join(odd) + b"\n" + b'{"step": 7, "total": 1.0}\n')
    code, err = cli(capsys, "train", "--out", b, "--resume", "--steps", "3", *COMMON)
    assert code == 0 and "4 line(s) are not metrics records" in err, err
    lines = (b / "metrics.jsonl").read_bytes().splitlines()
    for line in odd:
        assert line in lines  # not this program's to delete
    steps = [json.loads(ln)["step"] for ln in lines if ln.startswith(b'{"step": ') and b"total" in ln and ln not in odd]
    assert steps[-1] == 3 and 7 not in steps  # the record past the state's step was dropped


def test_negative_or_odd_step_in_the_state_is_one_line(run, tmp_path, capsys):
    b = _copy_run(run, tmp_path / "b")
    st = torch.load(b / "state.pt", weights_only=True)
    for step in (-3, 2.5, True):
        torch.save({**st, "step": step}, b / "state.pt")
        code, err = cli(capsys, "train", "--out", b, "--resume", *COMMON)
        one_error_line(code, err, "state.pt", f"step is {step}")


# -- frame caches ---------------------------------------------------------------------------------------


def _fresh_cache(data, root):
    from core.inputs.layouts import scan_vidit
    from core.train.frame_cache import build_frame_cache

    return build_frame_cache(scan_vidit(data), root)


def _index(cache) -> dict:
    return json.loads((cache.folder / "index.json").read_text())


@pytest.mark.parametrize(
    "damage",
    [
        lambda c: (c.folder / "depth.f32").write_bytes((c.folder / "depth.f32").read_bytes()[:-100]),
        lambda c: (c.folder / "index.json").write_text(json.dumps({**_index(c), "dtype": "float64"})),
        lambda c: (c.folder / "index.json").write_text("[]"),
        lambda c: (c.folder / "index.json").write_text('{"version": 1, "dtype": '),
        lambda c: (c.folder / "index.json").write_bytes(b"\xff" * 10),
        lambda c: (c.folder / "index.json").write_text(json.dumps({**_index(c), "shape": [-64, -64]})),
        lambda c: (c.folder / "index.json").write_text(
            json.dumps({k: v for k, v in _index(c).items() if k != "depth"})
        ),
        lambda c: (c.folder / "index.json").write_text(json.dumps({**_index(c), "frames": [["x", 1, "N"]] * 120})),
        lambda c: (c.folder / "frames.u8").unlink(),
        lambda c: ((c.folder / "depth.f32").unlink(), os.mkfifo(c.folder / "depth.f32")),
    ],
)
def test_a_damaged_frame_cache_is_refused_in_one_line_and_rebuilt(data, tmp_path, caplog, damage):
    import logging

    import numpy as np

    from core.storage.io import read_depth

    cache = _fresh_cache(data, tmp_path / "c")
    damage(cache)
    with caplog.at_level(logging.WARNING, logger="relight"):
        again = _fresh_cache(data, tmp_path / "c")
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "frame cache" in warnings[0] and "\n" not in warnings[0], warnings
    assert again.folder == cache.folder
    reference = _fresh_cache(data, tmp_path / "ref")
    for key in reference.frame_rows:
        assert np.array_equal(again.frame(*key), reference.frame(*key))
    for scene, depth_file in ((s, data / f"{s}.npy") for s in reference.depth_rows):
        np.testing.assert_array_equal(again.depth(scene), read_depth(depth_file).data)
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == sorted(
        [cache.folder.name, cache.folder.name + ".lock"]
    )


def _cache_root_with_neighbours(data, tmp_path):
    """A cache root as a user's disk has it: a cache, a leftover build, a live build, a folder of the
    user's with an index.json, and a link to a copy of a cache elsewhere."""
    import fcntl

    root = tmp_path / "cache"
    cache = _fresh_cache(data, root)
    dead = root / "0123456789abcdef0123.tmp-999999"  # its builder was killed (its lock is free)
    dead.mkdir()
    (dead / "frames.u8").write_bytes(b"\0" * 1000)
    live = root / "fedcba9876543210fedc.tmp-12345"  # being built: its builder holds the lock
    live.mkdir()
    (live / "depth.f32").write_bytes(b"\0" * 100)
    held = open(root / "fedcba9876543210fedc.lock", "a+")
    fcntl.flock(held, fcntl.LOCK_EX)
    mine = root / "photos"
    mine.mkdir()
    (mine / "index.json").write_text('{"version": 1}')
    (mine / "holiday.png").write_bytes(b"precious")
    elsewhere = tmp_path / "elsewhere" / cache.folder.name
    shutil.copytree(cache.folder, elsewhere)
    os.symlink(elsewhere, root / "00000000000000000000")  # sorts first: a bad entry must not stop the rest
    return root, cache, dead, live, mine, elsewhere, held


def test_cache_clear_deletes_only_what_it_provably_made(data, tmp_path, capsys):
    root, cache, dead, live, mine, elsewhere, held = _cache_root_with_neighbours(data, tmp_path)
    try:
        code, err = cli(capsys, "cache", "clear", "--cache-dir", root)
    finally:
        held.close()
    assert code == 0, err
    assert not cache.folder.exists() and not dead.exists()
    assert (live / "depth.f32").is_file()  # a live build is never touched
    assert (mine / "holiday.png").read_bytes() == b"precious" and (mine / "index.json").is_file()
    assert (root / "00000000000000000000").is_symlink() and (elsewhere / "index.json").is_file()
    assert "kept fedcba9876543210fedc.tmp-12345" in err and "not frame caches" in err


def test_cache_clear_keeps_going_past_a_bad_entry(data, tmp_path, capsys):
    root, cache, dead, live, mine, elsewhere, held = _cache_root_with_neighbours(data, tmp_path)
    held.close()
    bad = root / "00000000000000000001"  # named like a cache, holding a file this program never writes
    shutil.copytree(cache.folder, bad)
    (bad / "notes.txt").write_text("mine")
    code, err = cli(capsys, "cache", "clear", "--cache-dir", root)
    one_error_line(code, err, "00000000000000000001 (", "did not write (notes.txt)", "1 frame cache(s)")
    assert (bad / "notes.txt").is_file() and (bad / "index.json").is_file()
    assert not cache.folder.exists() and not dead.exists() and not live.exists()  # the lock is free now
    assert (mine / "holiday.png").is_file() and (elsewhere / "frames.u8").is_file()


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_a_config_that_is_no_regular_file_is_refused_not_waited_on(tmp_path, capsys, kind):
    cfg = tmp_path / "c.yaml"
    os.mkfifo(cfg) if kind == "fifo" else cfg.mkdir()
    code, err = cli(capsys, "train", "--config", cfg, "--out", tmp_path / "r", *COMMON)  # hung on a FIFO
    one_error_line(code, err, "c.yaml", "FIFO" if kind == "fifo" else "is a folder")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "name,make,needle",
    [
        ("metrics.jsonl", os.mkfifo, "FIFO"),  # appended to at the first step: the run hung there
        ("state.pt", os.mkfifo, "FIFO"),  # was "nothing to resume"
        ("config.json", os.mkfifo, "FIFO"),
        ("last.safetensors", os.mkdir, "is a folder"),  # a traceback at the first checkpoint
        ("metrics.jsonl", lambda p: os.symlink(p.parent.parent / "outside.txt", p), "is a link"),
    ],
)
def test_a_run_file_that_is_not_a_regular_file_is_one_line_before_training(run, tmp_path, capsys, name, make, needle):
    """A run folder another program wrote: the files the run writes are refused, naming them, when they
    are not regular files of the run's own."""
    b = _copy_run(run, tmp_path / "b")
    (tmp_path / "outside.txt").write_text("not the run's")
    (b / name).unlink()
    make(b / name)
    code, err = cli(capsys, "train", "--out", b, "--resume", "--steps", "3", *COMMON)
    one_error_line(code, err, name, needle)
    assert (tmp_path / "outside.txt").read_text() == "not the run's"


@pytest.mark.parametrize(
    "make,needle",
    [
        (os.mkdir, "is a folder"),  # IsADirectoryError, a traceback
        (os.mkfifo, "FIFO"),  # "File or stream is not seekable", a traceback
        (lambda p: os.symlink(p.parent.parent / "made-outside", p), "is a link"),  # made its target
    ],
)
def test_a_run_lock_that_is_not_a_regular_file_is_one_line(data, tmp_path, capsys, make, needle):
    """RUN/.lock is a file the run makes, as its others: refused naming it when it is not its own."""
    out = tmp_path / "r"
    out.mkdir()
    make(out / ".lock")
    code, err = cli(
        capsys,
        "train",
        "--data",
        data,
        "--out",
        out,
        "--preset",
        "s3net-lite",
        "--steps",
        "1",
        "--batch",
        "2",
        "--resize",
        "64",
        *COMMON,
    )
    one_error_line(code, err, ".lock", needle)
    assert not (tmp_path / "made-outside").exists() and sorted(p.name for p in out.iterdir()) == [".lock"]
