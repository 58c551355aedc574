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


def test_one_table_of_settings_covers_every_field():
    from dataclasses import fields

    from core.training import SETTINGS

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


@pytest.mark.parametrize("make,needles", [
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
    (lambda run: _with(run).replace(b'"steps": 2', b'"steps": Infinity'), ["steps must be a whole number, not inf"]),
    (lambda run: _with(run, data={"a": [1, 2, 3, 4, 5, 6]}), ["data must be text, not dict"]),
    (lambda run: _with(run, data="a\0b"), ["data is not a usable name"]),
    (lambda run: _with(run, preset="s3net-huge"), ["unknown preset 's3net-huge'"]),
    (lambda run: _with(run, **{f"extra{i}": 1 for i in range(40)}), ["unknown config keys", "and 35 more"]),
])
def test_damaged_run_config_is_one_line_naming_the_field(run, tmp_path, capsys, make, needles):
    b = _config_case(run, tmp_path, make(run))
    code, err = cli(capsys, "train", "--out", b, "--resume", *COMMON)
    one_error_line(code, err, "config.json", *needles)
    assert len(err) < 400


@pytest.mark.parametrize("text,needle", [
    ("data: !!python/object/apply:os.system ['echo owned']\n", "python/object/apply"),
    ("data: &x [*x]\n", "data must be text, not list"),
    ('data: [&a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"], '  # a billion laughs, in one field
     + ", ".join(f"&{c} [{', '.join(['*' + p] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi")) + "]\n",
     "data must be text, not list"),
])
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
    steps = [json.loads(ln)["step"] for ln in lines if ln.startswith(b'{"step": ') and b"total" in ln
             and ln not in odd]
    assert steps[-1] == 3 and 7 not in steps  # the record past the state's step was dropped


def test_negative_or_odd_step_in_the_state_is_one_line(run, tmp_path, capsys):
    b = _copy_run(run, tmp_path / "b")
    st = torch.load(b / "state.pt", weights_only=True)
    for step in (-3, 2.5, True):
        torch.save({**st, "step": step}, b / "state.pt")
        code, err = cli(capsys, "train", "--out", b, "--resume", *COMMON)
        one_error_line(code, err, "state.pt", f"step is {step}")
