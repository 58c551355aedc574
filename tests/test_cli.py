import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import one_error_line
from core.cli import main
from core.storage.io import read_image, write_depth_npy

ROOT = Path(__file__).resolve().parent.parent


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def infer_args(p, out, ckpt=None):
    args = [
        "infer",
        "--source",
        p["source"],
        "--source-depth",
        p["source_depth"],
        "--guide",
        p["guide"],
        "--guide-depth",
        p["guide_depth"],
        "--output",
        out,
        "--device",
        "cpu",
    ]
    return args + (["--checkpoint", ckpt] if ckpt else [])


def test_infer_end_to_end_16_bit(capsys, small_pair, lite_checkpoint, tmp_path):
    out = tmp_path / "relit.png"
    code, _, err = run_cli(capsys, *infer_args(small_pair, out, lite_checkpoint))
    assert code == 0, err
    raw = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert raw.shape == (70, 90, 3) and raw.dtype == np.uint16
    assert "lite.safetensors" in err and "detail-preserving" in err
    code, _, err = run_cli(capsys, *infer_args(small_pair, out, lite_checkpoint), "--mode", "full")
    assert code == 0 and "full resolution" in err


def test_infer_uses_bundled_model_and_says_so(capsys, small_pair, tmp_path):
    out = tmp_path / "relit.tif"
    code, _, err = run_cli(capsys, *infer_args(small_pair, out), "--bit-depth", "8")
    assert code == 0, err
    assert "s3net-lite-synthetic.safetensors" in err
    assert read_image(out).shape == (70, 90, 3)


def test_a_jpeg_output_is_8_bit_by_default_and_16_bit_asked_for_it_is_refused_before_the_work(
    capsys, small_pair, lite_checkpoint, tmp_path, monkeypatch
):
    """`--output relit.jpg` failed with 'JPG cannot hold 16-bit images' (no file named) after the whole
    relight; folder mode already wrote 8-bit JPEGs."""
    import core.orchestration

    out = tmp_path / "relit.jpg"
    code, _, err = run_cli(capsys, *infer_args(small_pair, out, lite_checkpoint))
    assert code == 0 and cv2.imread(str(out), cv2.IMREAD_UNCHANGED).dtype == np.uint8, err
    ran = []
    monkeypatch.setattr(core.orchestration, "relight", lambda *a, **k: ran.append(1))
    out.unlink()
    code, _, err = run_cli(capsys, *infer_args(small_pair, out, lite_checkpoint), "--bit-depth", "16")
    one_error_line(code, err, "relit.jpg", "8-bit images only", "--bit-depth 8")
    assert not ran and not out.exists()


def test_a_temperature_without_a_light_is_refused_not_ignored(capsys, small_pair, lite_checkpoint, tmp_path):
    out = tmp_path / "relit.png"
    code, _, err = run_cli(capsys, *infer_args(small_pair, out, lite_checkpoint), "--temperature", "3000")
    one_error_line(code, err, "--temperature", "give --light too")
    assert not out.exists()


def test_the_command_line_run_twice_in_one_process_writes_each_log_line_once(capsys, tmp_path, monkeypatch):
    """Every main() added a file handler: after 59 in-process runs each line was in the log 59 times."""
    import logging

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        for _ in range(2):
            assert main(["models", "list"]) in (0, 2)
        logging.getLogger("relight").warning("a line said once")
        log = tmp_path / "RelightStudio" / "Relight Studio" / "relight-studio.log"
        for h in root.handlers:
            h.flush()
        assert log.read_text().count("a line said once") == 1
    finally:
        for h in [h for h in root.handlers if h not in before]:
            root.removeHandler(h)
            h.close()


@pytest.mark.slow
def test_subprocess_error_is_one_line_exit_2_without_traceback(small_pair, lite_checkpoint, tmp_path):
    out = tmp_path / "never.png"
    args = infer_args(dict(small_pair, guide=tmp_path / "missing.png"), out, lite_checkpoint)
    r = subprocess.run([sys.executable, "-m", "core", *map(str, args)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    assert "missing.png" in r.stderr and "not found" in r.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    "case,expect",
    [
        ("corrupt_image", "not a readable image"),
        ("depth_size", "depth is 30x20"),
        ("nan_depth", "non-finite"),
        ("bad_checkpoint", "does not look like any S3Net preset"),
        ("overwrite_input", "refusing to overwrite"),
        ("evil_pickle", "refusing"),
        ("evil_checkpoint", "holds more than tensors (Trying to load unsupported GLOBAL posix.system"),
        ("image_as_checkpoint", "not a checkpoint: expected .safetensors"),
    ],
)
def test_user_errors_exit_2_and_leave_no_output(capsys, small_pair, lite_checkpoint, tmp_path, case, expect):
    import torch

    p, ckpt, out = dict(small_pair), lite_checkpoint, tmp_path / "o.png"
    if case == "corrupt_image":
        (tmp_path / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00garbage")
        p["source"] = tmp_path / "c.png"
    elif case == "depth_size":
        write_depth_npy(tmp_path / "d.npy", np.zeros((20, 30)))
        p["source_depth"] = tmp_path / "d.npy"
    elif case == "nan_depth":
        np.save(tmp_path / "n.npy", np.full((64, 64), np.nan, np.float32))
        p["guide_depth"] = tmp_path / "n.npy"
    elif case == "bad_checkpoint":
        ckpt = tmp_path / "resnet.pth"
        torch.save({"fc.weight": torch.zeros(2, 2)}, ckpt)
    elif case == "overwrite_input":
        out = p["source"]
    elif case == "evil_pickle":
        import os

        class Evil:
            def __reduce__(self):
                return (os.system, ("true",))

        with open(tmp_path / "e.npy", "wb") as f:
            np.lib.format.write_array(f, np.array({"normalized_depth": Evil()}, dtype=object), allow_pickle=True)
        p["source_depth"] = tmp_path / "e.npy"
    elif case == "evil_checkpoint":
        import os

        class EvilWeights:
            def __reduce__(self):
                return (os.system, (f"touch {tmp_path / 'ran'}",))

        ckpt = tmp_path / "weight.pkl"
        torch.save({"conv.weight": EvilWeights()}, ckpt)
    elif case == "image_as_checkpoint":
        ckpt = p["source"]
    before = Path(p["source"]).read_bytes() if Path(p["source"]).exists() else None
    code, _, err = run_cli(capsys, *infer_args(p, out, ckpt))
    assert code == 2 and expect in err and err.startswith("relight: error:")
    assert "Traceback" not in err and "weights_only" not in err
    assert not (tmp_path / "ran").exists()
    if case == "overwrite_input":
        assert Path(p["source"]).read_bytes() == before
    else:
        assert not out.exists()


@pytest.mark.parametrize("name", ["relit.jpg", "relit.JPEG"])
def test_a_jpeg_output_is_written_8_bit_as_in_folder_mode(capsys, small_pair, lite_checkpoint, tmp_path, name):
    """The default --bit-depth is 16; a JPEG holds 8 bits, so it is written so (as folder mode and the app
    do), not refused after the relight with a message that names no file."""
    out = tmp_path / name
    code, _, err = run_cli(capsys, *infer_args(small_pair, out, lite_checkpoint))
    assert code == 0, err
    raw = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert raw.shape == (70, 90, 3) and raw.dtype == np.uint8


def test_folder_mode_refuses_16_bit_jpegs_asked_for_instead_of_writing_8_bit_ones(capsys, lite_checkpoint, tmp_path):
    """--format jpg --bit-depth 16 wrote 8-bit JPEGs and said nothing, where --output x.jpg --bit-depth 16
    is refused; without --bit-depth, folder mode's JPEGs are 8-bit."""
    from core.train.synthetic import synthesize

    synthesize(tmp_path / "s", scenes=0, size=64, seed=0, pairs=1)
    args = ["infer", "--input-dir", tmp_path / "s" / "pairs", "--output", tmp_path / "out", "--format", "jpg"]
    args += ["--checkpoint", lite_checkpoint, "--device", "cpu"]
    code, _, err = run_cli(capsys, *args, "--bit-depth", "16")
    one_error_line(code, err, str(tmp_path / "out"), "JPG holds 8-bit images only", "--format png or tif")
    assert not (tmp_path / "out").exists()
    code, _, err = run_cli(capsys, *args)
    assert code == 0, err
    assert cv2.imread(str(tmp_path / "out" / "Pair000.jpg"), cv2.IMREAD_UNCHANGED).dtype == np.uint8


def test_folder_mode_skips_and_reports_bad_pairs(capsys, lite_checkpoint, tmp_path):
    from core.train.synthetic import synthesize

    synthesize(tmp_path / "s", scenes=0, size=64, seed=0, pairs=3)
    pairs = tmp_path / "s" / "pairs"
    (pairs / "guide" / "Pair001.npy").write_bytes(b"broken")
    code, _, err = run_cli(
        capsys,
        "infer",
        "--input-dir",
        pairs,
        "--output",
        tmp_path / "out",
        "--checkpoint",
        lite_checkpoint,
        "--device",
        "cpu",
    )
    # the folder is finished, but the run did not relight every pair: exit code 2 and a last line naming them
    assert code == 2, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["Pair000.png", "Pair002.png"]
    assert "skipped Pair001" in err and "Pair001.npy" in err and "relit 2 of 3" in err
    last = err.strip().splitlines()[-1]
    assert last == f"relight: error: {tmp_path / 'out'}: 1 pair skipped: Pair001", err


def test_folder_mode_with_every_pair_relit_exits_0(capsys, lite_checkpoint, tmp_path):
    from core.train.synthetic import synthesize

    synthesize(tmp_path / "s", scenes=0, size=64, seed=0, pairs=2)
    args = ("infer", "--input-dir", tmp_path / "s" / "pairs", "--output", tmp_path / "out")
    code, _, err = run_cli(capsys, *args, "--checkpoint", lite_checkpoint, "--device", "cpu")
    assert code == 0 and "relit 2 of 2" in err and "error" not in err and "skipped" not in err, err


def test_folder_mode_interrupted_says_what_was_written_and_skipped(capsys, lite_checkpoint, tmp_path, monkeypatch):
    """Ctrl-C during a folder run: the pairs found bad so far and how many results are on disk, then
    'relight: interrupted' and exit code 130 (as the app's batch says 'wrote N of M (cancelled)')."""
    from core.engine.inference import Relighter

    rng = np.random.default_rng(0)
    folder = tmp_path / "in"
    folder.mkdir()
    for name, h in (("a0", 48), ("a1", 56), ("c0", 64)):  # sizes apart: one network call each
        cv2.imwrite(str(folder / f"{name}.png"), (rng.random((h, 64, 3)) * 255).astype(np.uint8))
        write_depth_npy(folder / f"{name}.npy", rng.random((h, 64)))
    (folder / "b.png").write_text("not an image")
    write_depth_npy(folder / "b.npy", rng.random((48, 64)))
    real, calls = Relighter.relight_many, []

    def interrupted_at_the_third(self, pairs, **kw):
        calls.append(len(pairs))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, pairs, **kw)

    monkeypatch.setattr(Relighter, "relight_many", interrupted_at_the_third)
    args = ("infer", "--input-dir", folder, "--light", "E", "--output", tmp_path / "out")
    code, _, err = run_cli(capsys, *args, "--checkpoint", lite_checkpoint, "--device", "cpu")
    assert code == 130, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a0.png", "a1.png"]
    lines = [x for x in err.splitlines() if not x.startswith("relight [")]
    assert lines[-3].startswith(f"skipped b: {folder / 'b.png'}: "), err
    assert lines[-2] == f"relit 2 of 4 pairs into {tmp_path / 'out'} (interrupted)", err
    assert lines[-1] == "relight: interrupted", err


def test_folder_mode_progress_counts_pairs(capsys, lite_checkpoint, tmp_path):
    """The bar counts the folder's pairs ("2/2"), not percent points beside them ("100/100 2/2 Pair001")."""
    from core.train.synthetic import synthesize

    synthesize(tmp_path / "s", scenes=0, size=64, seed=0, pairs=2)
    args = ("infer", "--input-dir", tmp_path / "s" / "pairs", "--output", tmp_path / "out")
    code, _, err = run_cli(capsys, *args, "--checkpoint", lite_checkpoint, "--device", "cpu")
    bars = [x for x in err.splitlines() if x.startswith("relight [")]
    assert code == 0 and bars, err
    assert " 2/2 " in bars[-1] and bars[-1].endswith(("s Pair000", "s Pair001")) and "/100" not in bars[-1], bars


def test_batch_report_names_skipped_and_unwritten_pairs(tmp_path):
    from core.engine.batch import BatchReport

    assert BatchReport(tmp_path, written=[tmp_path / "a.png"], total=1).problems() is None
    r = BatchReport(tmp_path, failed=[("c", "bad"), ("b", "disk full"), ("a", "bad")], not_written=["b"], total=4)
    assert r.skipped == ["a", "c"]
    assert r.problems() == "1 result(s) could not be written: b; 2 pairs skipped: a, c"


def test_output_into_a_missing_folder_is_refused_naming_it(capsys, small_pair, lite_checkpoint, tmp_path):
    """A mistyped folder is not created behind the user's back: one error line naming it, before any work."""
    out = tmp_path / "no-such" / "sub" / "relit.png"
    code, _, err = run_cli(capsys, *infer_args(small_pair, out, lite_checkpoint))
    assert code == 2 and "Traceback" not in err, err
    folder = tmp_path / "no-such" / "sub"
    assert err == f"relight: error: {folder}: folder not found (create it first; relit.png is written into it)\n"
    assert not (tmp_path / "no-such").exists()
    # relight depth: the same for its one output file
    code, _, err = run_cli(capsys, "depth", small_pair["source"], "--output", tmp_path / "no-such" / "d.png")
    assert code == 2 and f"{tmp_path / 'no-such'}: folder not found" in err and not (tmp_path / "no-such").exists()


def test_output_under_a_file_names_the_file(capsys, small_pair, lite_checkpoint, tmp_path):
    (tmp_path / "notes").write_text("a file")
    for out in (tmp_path / "notes" / "relit.png", tmp_path / "notes" / "sub" / "relit.png"):
        code, _, err = run_cli(capsys, *infer_args(small_pair, out, lite_checkpoint))
        assert code == 2 and "Traceback" not in err and "File exists" not in err, err
        assert err == f"relight: error: {tmp_path / 'notes'}: is a file, not a folder ({out} would go inside it)\n"
    assert (tmp_path / "notes").read_text() == "a file"


def test_folder_mode_output_folder_is_made_but_not_its_parents(capsys, lite_checkpoint, tmp_path):
    from core.train.synthetic import synthesize

    synthesize(tmp_path / "s", scenes=0, size=64, seed=0, pairs=1)
    (tmp_path / "notes").write_text("a file")

    def folder_mode(out):
        args = ("infer", "--input-dir", tmp_path / "s" / "pairs", "--output", out)
        return run_cli(capsys, *args, "--checkpoint", lite_checkpoint, "--device", "cpu")

    code, _, err = folder_mode(tmp_path / "a" / "b" / "out")
    assert code == 2 and err.startswith(f"relight: error: {tmp_path / 'a' / 'b'}: folder not found"), err
    assert not (tmp_path / "a").exists()
    code, _, err = folder_mode(tmp_path / "notes")
    assert code == 2 and err == f"relight: error: {tmp_path / 'notes'}: is a file, not a folder\n", err
    code, _, err = folder_mode(tmp_path / "notes" / "out")
    assert code == 2 and f"{tmp_path / 'notes'}: is a file, not a folder" in err and "File exists" not in err, err
    code, _, err = folder_mode(tmp_path / "out")  # the output folder itself is made
    assert code == 0 and (tmp_path / "out" / "Pair000.png").is_file(), err


def test_an_output_path_the_system_refuses_is_one_error_line(capsys, small_pair, lite_checkpoint, tmp_path):
    """A name longer than the file system takes is said as the output's problem, not a traceback."""
    long = tmp_path / ("a" * 300)
    for out in (long / "relit.png", long / "sub" / "relit.png"):
        code, _, err = run_cli(capsys, *infer_args(small_pair, out, lite_checkpoint))
        assert code == 2 and "Traceback" not in err and err.startswith("relight: error: "), err
        assert "File name too long" in err and err.count("\n") == 1, err
    from core.train.synthetic import synthesize

    synthesize(tmp_path / "s", scenes=0, size=64, seed=0, pairs=1)
    args = ("infer", "--input-dir", tmp_path / "s" / "pairs", "--output", long / "out", "--checkpoint", lite_checkpoint)
    code, _, err = run_cli(capsys, *args, "--device", "cpu")
    assert code == 2 and "File name too long" in err and err.count("\n") == 1, err


def test_a_folder_named_like_the_output_file_is_refused_before_any_work(capsys, small_pair, lite_checkpoint, tmp_path):
    (tmp_path / "relit.png").mkdir()
    code, _, err = run_cli(capsys, *infer_args(small_pair, tmp_path / "relit.png", lite_checkpoint))
    assert code == 2 and "model:" not in err, err  # refused before the model is loaded
    assert err == f"relight: error: {tmp_path / 'relit.png'}: is a folder; give the output file's name\n", err
    assert (tmp_path / "relit.png").is_dir()


def test_writing_under_a_file_says_which_file_is_in_the_way(tmp_path):
    from core.base.errors import WriteError
    from core.storage.io import write_depth, write_image

    (tmp_path / "notes").write_text("a file")
    for write, name in (
        (lambda p: write_image(p, np.zeros((4, 4, 3)), 8), "x.png"),
        (lambda p: write_depth(p, np.zeros((4, 4)), "vidit"), "x.npy"),
    ):
        for path in (tmp_path / "notes" / name, tmp_path / "notes" / "sub" / name):
            with pytest.raises(WriteError, match="is a file, not a folder") as info:
                write(path)
            assert str(tmp_path / "notes") in str(info.value).split(": ", 1)[1]


def test_info_reports_devices_and_weights(capsys):
    code, out, _ = run_cli(capsys, "info")
    assert code == 0
    import torch

    assert "torch " in out and "bundled model:" in out and "VGG19" in out
    assert ("cuda:0 " in out) == torch.cuda.is_available() and (
        "cuda not available" in out
    ) != torch.cuda.is_available()


@pytest.mark.slow
def test_synth_and_eval_commands(capsys, lite_checkpoint, tmp_path):
    code, _, err = run_cli(capsys, "synth", "--out", tmp_path / "d", "--scenes", "2", "--size", "64", "--pairs", "2")
    assert code == 0 and len(list((tmp_path / "d").glob("Image*_*.png"))) == 80
    code, out, err = run_cli(
        capsys,
        "eval",
        "--data",
        tmp_path / "d" / "pairs",
        "--checkpoint",
        lite_checkpoint,
        "--device",
        "cpu",
        "--json",
        tmp_path / "e.json",
        "--csv",
        tmp_path / "e.csv",
    )
    assert code == 0, err
    data = json.loads((tmp_path / "e.json").read_text())
    for k in ("model full", "model gain-map", "model detail", "source", "color_transfer"):
        assert set(data[k]) >= {"psnr", "ssim", "detail"} and data[k]["pairs"] == 2
    assert data["source"]["detail"] > 0
    assert "color_transfer" in out and (tmp_path / "e.csv").read_text().startswith("name,method,psnr,ssim,detail")
    code, _, err = run_cli(
        capsys, "eval", "--data", tmp_path / "d", "--pairs", "3", "--checkpoint", lite_checkpoint, "--device", "cpu"
    )
    assert code == 0, err
    code, _, err = run_cli(capsys, "synth", "--out", tmp_path / "x", "--scenes", "1", "--size", "50")
    assert code == 2 and "multiple of 32" in err


@pytest.mark.parametrize(
    "flag,name,expect",
    [
        ("--sheet", "photos/cat.png", "photos/cat.png: refusing to overwrite an input file"),
        ("--json", "photos/./cat.npy", "photos/cat.npy: refusing to overwrite an input file"),
        ("--sheet", "no-such/sheet.png", "no-such: folder not found"),
        ("--json", "photos/cat.png/e.json", "cat.png: is a file, not a folder"),
        ("--json", "photos", "photos: is a folder"),
        ("--sheet", "sheet.bmp", "sheet.bmp: --sheet must end in one of"),
    ],
)
def test_eval_report_files_are_checked_before_any_work(
    capsys, lite_checkpoint, tmp_path, monkeypatch, flag, name, expect
):
    """eval --sheet/--json/--csv never write over a photo or depth map being evaluated, never make a
    mistyped folder, and a path that cannot be used is one line before the model is loaded (it was
    written over the photo, or a traceback after the whole evaluation)."""
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    from core.storage.io import write_image

    write_image(photos / "cat.png", rng.random((48, 64, 3)), 8)
    np.save(photos / "cat.npy", rng.random((48, 64)).astype(np.float32))
    before = {p.name: p.read_bytes() for p in photos.iterdir()}
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "eval", "--photos", "photos", flag, name, "--checkpoint", lite_checkpoint)
    assert code == 2 and err.count("\n") == 1 and expect in err and "Traceback" not in err, err
    assert "checkpoint" not in err  # refused before the model was read
    assert {p.name: p.read_bytes() for p in photos.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]


def test_an_eval_report_is_never_written_over_a_photo_that_is_a_link(capsys, lite_checkpoint, tmp_path, monkeypatch):
    """photos/cat.png a link to a photo kept elsewhere: it is evaluated, so --sheet photos/cat.png is
    over an input (the sheet replaced the link; its target lies outside the folder)."""
    from core.storage.io import write_image

    (tmp_path / "photos").mkdir()
    (tmp_path / "elsewhere").mkdir()
    write_image(tmp_path / "elsewhere" / "cat.png", np.random.default_rng(0).random((48, 64, 3)), 8)
    (tmp_path / "photos" / "cat.png").symlink_to(tmp_path / "elsewhere" / "cat.png")
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(
        capsys, "eval", "--photos", "photos", "--sheet", "photos/cat.png", "--checkpoint", lite_checkpoint
    )
    one_error_line(code, err, "photos/cat.png", "refusing to overwrite an input file")
    assert (tmp_path / "photos" / "cat.png").is_symlink()


@pytest.mark.parametrize(
    "given,needle",
    [
        (["--photos", "photos", "--csv", "r.csv"], "--csv is written with --data"),
        (["--data", "photos", "--sheet", "s.png"], "--sheet is a contact sheet of --photos"),
        (["--photos", "photos", "--sheet", "r.png", "--json", "./r.png"], "r.png: --sheet and --json name one file"),
    ],
)
def test_an_eval_report_of_the_other_kind_is_refused_not_skipped(
    capsys, lite_checkpoint, tmp_path, monkeypatch, given, needle
):
    """eval --photos wrote no CSV and --data no sheet, and said nothing (exit 0, the file never there); a
    JSON report named as the sheet was written over it."""
    from core.storage.io import write_image

    (tmp_path / "photos").mkdir()
    write_image(tmp_path / "photos" / "cat.png", np.random.default_rng(0).random((48, 64, 3)), 8)
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "eval", *given, "--checkpoint", lite_checkpoint)
    one_error_line(code, err, needle)
    assert "checkpoint" not in err


def test_an_eval_report_that_cannot_be_written_names_the_file(tmp_path):
    from core.base.errors import RelightError
    from core.train.evaluate import EvalReport

    (tmp_path / "f").write_text("a file")
    with pytest.raises(RelightError, match="f/e.json: cannot write the file: .*f is a file, not a folder"):
        EvalReport().write_json(tmp_path / "f" / "e.json")


def test_color_transfer_baseline_matches_guide_statistics():
    from core.train.evaluate import color_transfer

    rng = np.random.default_rng(0)
    src = rng.random((64, 64, 3), dtype=np.float32) * 0.5
    gui = np.clip(rng.random((64, 64, 3), dtype=np.float32) * 0.3 + np.array([0.5, 0.3, 0.1], np.float32), 0, 1)
    out = color_transfer(src, gui)
    lab = lambda a: cv2.cvtColor(a.astype(np.float32), cv2.COLOR_RGB2Lab).reshape(-1, 3)  # noqa: E731
    np.testing.assert_allclose(lab(out).mean(0), lab(gui).mean(0), atol=1.0)


def test_format_without_a_folder_is_refused_not_ignored(capsys, small_pair, lite_checkpoint, tmp_path):
    """--format types folder mode's results; with one --output it was ignored (relit.png written for
    --format jpg)."""
    out = tmp_path / "relit.png"
    code, _, err = run_cli(capsys, *infer_args(small_pair, out, lite_checkpoint), "--format", "jpg")
    one_error_line(code, err, str(out), "--format sets the file type in folder mode")
    assert not out.exists()
