"""Run folders and frame caches as a crash, a copy or an attacker leaves them: a resumed copy writes only
into itself, every damaged file gives one line naming the file and the field (exit 2), caches are refused
and rebuilt, and `cache clear` deletes only what it provably made."""
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from core.cli import main
from core.data.synthetic import synthesize
from core.errors import RelightError
from core.training import TrainConfig, train


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    synthesize(root / "d", scenes=2, size=64, seed=0)
    return root / "d"


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    """A finished two-step run (config.json, metrics.jsonl, state.pt, last.safetensors)."""
    out = tmp_path_factory.mktemp("run") / "a"
    train(TrainConfig(data=str(data), out=str(out), preset="s3net-lite", steps=2, batch=2, resize=64, device="cpu",
                      num_workers=0, log_every=1, ckpt_every=1, val_every=100))
    return out


COMMON = ["--device", "cpu", "--workers", "0"]


def cli(capsys, *args):
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def one_error_line(code, err, *needles):
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("relight: error: ") and "Traceback" not in err, err
    for n in needles:
        assert n in err, (n, err)


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
