import subprocess
import sys

import numpy as np
import pytest
import torch

from core.base.cancel import CancelToken
from core.base.errors import Cancelled, RelightError
from core.engine.gainmap import carry_to_full_resolution
from core.engine.inference import Relighter, pack_inputs, pad_to_multiple
from core.storage.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def relighter(lite_checkpoint):
    return Relighter.from_checkpoint(lite_checkpoint, device="cpu")


def _inputs(h, w, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.random((h, w, 3), dtype=np.float32),
        rng.random((h, w, 3), dtype=np.float32),
        rng.random((h, w), dtype=np.float32),
        rng.random((h, w), dtype=np.float32),
    )


def test_padding_equals_running_on_reflect_padded_input(relighter):
    src, gui, sd, gd = _inputs(70, 90)
    res = relighter.relight(src, gui, sd, gd, mode="full")
    assert res.mode == "full" and res.image.shape == (70, 90, 3)
    # by hand: reflect-pad to 96x96, run the bare network, crop, clamp
    x = torch.from_numpy(np.concatenate([src.transpose(2, 0, 1), gui.transpose(2, 0, 1), sd[None], gd[None]]))[None]
    xp = torch.nn.functional.pad(x, (0, 6, 0, 26), mode="reflect")
    assert xp.shape[-2:] == (96, 96)
    with torch.inference_mode():
        y = relighter.model.forward_packed(xp)[..., :70, :90].clamp(0, 1)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(res.image, y, atol=1e-6)
    assert res.image.flags["C_CONTIGUOUS"]  # the writers and the composition read it without a copy
    assert pad_to_multiple(x)[0].shape[-2:] == (96, 96)


def test_inputs_are_packed_channel_by_channel_as_float32():
    rng = np.random.default_rng(3)
    items = [
        [rng.random((5, 7, 3)), rng.random((5, 7, 3), dtype=np.float32), rng.random((5, 7)), rng.random((5, 7))]
        for _ in range(2)
    ]
    out = pack_inputs(items, np.full((2, 8, 5, 7), np.nan, np.float32))
    for k, (src, gui, sd, gd) in enumerate(items):
        want = np.concatenate([src.transpose(2, 0, 1), gui.transpose(2, 0, 1), sd[None], gd[None]]).astype(np.float32)
        np.testing.assert_array_equal(out[k], want)


def test_guide_of_other_size_is_resized(relighter):
    src, _, sd, _ = _inputs(64, 96)
    _, gui, _, gd = _inputs(128, 128, 3)
    assert relighter.relight(src, gui, sd, gd).image.shape == (64, 96, 3)


def test_depth_size_mismatch_is_refused(relighter):
    src, gui, sd, gd = _inputs(64, 64)
    with pytest.raises(RelightError, match="source depth is 32x32"):
        relighter.relight(src, gui, np.zeros((32, 32), np.float32), gd)


@pytest.mark.slow
def test_large_image_path_keeps_full_resolution(lite_checkpoint):
    r = Relighter.from_checkpoint(lite_checkpoint, device="cpu", max_pixels=64 * 96)
    src, gui, sd, gd = _inputs(200, 300)
    msgs = []
    res = r.relight(src, gui, sd, gd, mode="full", progress=lambda f, m: msgs.append((f, m)))
    # over the budget, full resolution falls back to the detail-preserving output
    assert res.mode == "detail" and res.image.shape == (200, 300, 3)
    assert res.working_size[0] * res.working_size[1] <= 64 * 96
    assert "detail-preserving" in res.describe()
    fr = [f for f, _ in msgs]
    assert fr == sorted(fr) and fr[-1] == 1.0
    gm = r.relight(src, gui, sd, gd, mode="gain-map")
    assert gm.mode == "gain-map" and gm.working_size[0] * gm.working_size[1] <= 64 * 96 and "gain map" in gm.describe()


def test_gain_map_reproduces_a_smooth_relighting():
    # A relighting that is a smooth gain (brighter on the right) is carried to full resolution
    # nearly exactly, while the source's fine texture is kept.
    rng = np.random.default_rng(0)
    h, w = 240, 320
    tex = 0.3 + 0.4 * rng.random((h, w, 1), dtype=np.float32)
    src = np.repeat(tex, 3, axis=2)
    gain = np.linspace(0.5, 1.5, w, dtype=np.float32)[None, :, None] * np.array([1.0, 0.9, 0.7], np.float32)
    truth = np.clip(src * gain, 0, 1)
    import cv2

    src_w = cv2.resize(src, (80, 60), interpolation=cv2.INTER_AREA)
    relit_w = cv2.resize(truth, (80, 60), interpolation=cv2.INTER_AREA)
    out = carry_to_full_resolution(src, src_w, relit_w)
    assert out.shape == src.shape
    assert np.abs(out - truth).mean() < 0.01
    naive = cv2.resize(relit_w, (w, h), interpolation=cv2.INTER_LINEAR)
    assert np.abs(out - truth).mean() < 0.5 * np.abs(naive - truth).mean()


def test_cancel_stops_within_the_forward_pass(relighter):
    token = CancelToken()
    seen = []

    def progress(f, m):
        seen.append(m)
        if "stage 2/" in m:
            token.cancel()

    with pytest.raises(Cancelled):
        relighter.relight(*_inputs(64, 64), progress=progress, cancel=token)
    assert not any("stage 4/" in m for m in seen)


def test_precisions_run_on_cpu(lite_checkpoint):
    base = Relighter.from_checkpoint(lite_checkpoint, device="cpu").relight(*_inputs(64, 64)).image
    bf = Relighter.from_checkpoint(lite_checkpoint, device="cpu", precision="bf16").relight(*_inputs(64, 64)).image
    assert bf.shape == base.shape and np.abs(bf - base).mean() < 0.05


def test_unknown_device_and_precision_are_user_errors(lite_checkpoint):
    model, _ = load_checkpoint(lite_checkpoint)
    with pytest.raises(RelightError, match="precision"):
        Relighter(model, device="cpu", precision="fp8")
    with pytest.raises(RelightError):
        Relighter(model, device="tpu")


@pytest.mark.gpu
def test_cuda_matches_cpu(lite_checkpoint):
    a = Relighter.from_checkpoint(lite_checkpoint, device="cpu").relight(*_inputs(64, 64)).image
    # cuDNN's default TF32 convolutions keep 10 mantissa bits: compare true fp32 with fp32
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        b = Relighter.from_checkpoint(lite_checkpoint, device="cuda").relight(*_inputs(64, 64)).image
    print("max |CPU - CUDA| (fp32):", np.abs(a - b).max())
    assert np.abs(a - b).max() < 2e-3


@pytest.mark.gpu
def test_pinned_uploads_give_the_same_results(lite_checkpoint):
    r = Relighter.from_checkpoint(lite_checkpoint, device="cuda")
    assert r.pin_memory
    pairs = [_inputs(64, 96), _inputs(64, 96), _inputs(50, 70)]  # a batch of two, then a padded size
    pinned = [res.image for res in r.relight_many(pairs, mode="full")]
    r.pin_memory = False
    pageable = [res.image for res in r.relight_many(pairs, mode="full")]
    for a, b in zip(pinned, pageable):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_4096x3072_pair_on_cpu_stays_within_6_gb(lite_checkpoint, tmp_path):
    code = f"""
import resource, numpy as np, torch
torch.set_num_threads(2)
from core.engine.inference import Relighter
r = Relighter.from_checkpoint({str(lite_checkpoint)!r}, device='cpu')
rng = np.random.default_rng(0)
src = rng.random((3072, 4096, 3), dtype=np.float32); gui = rng.random((3072, 4096, 3), dtype=np.float32)
sd = rng.random((3072, 4096), dtype=np.float32); gd = rng.random((3072, 4096), dtype=np.float32)
res = r.relight(src, gui, sd, gd)
assert res.image.shape == (3072, 4096, 3), res.image.shape
print(res.mode, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    mode, rss_kb = out.stdout.split()
    assert mode == "detail"
    assert int(rss_kb) * 1024 < 6 * 2**30


@pytest.mark.slow
def test_relight_many_batches_same_size_pairs_and_matches_single_runs(relighter):
    pairs = [_inputs(64, 64, 1), _inputs(64, 64, 2), _inputs(64, 96, 3), _inputs(64, 64, 4)]
    seen = []
    calls = []
    real = relighter.run_batch
    relighter.run_batch = lambda arrays, cancel=None, report=None: calls.append(len(arrays)) or real(arrays, cancel)
    try:
        for mode in ("full", "detail"):
            calls.clear()
            seen.clear()
            many = relighter.relight_many(pairs, mode=mode, batch_size=2, progress=lambda f, m: seen.append(f))
            # the first two pairs ran as one batch (in detail mode with their references: the source
            # under its own light), the others one by one
            assert calls == ([2] if mode == "full" else [4, 2, 2])
            assert [r.image.shape for r in many] == [(64, 64, 3), (64, 64, 3), (64, 96, 3), (64, 64, 3)]
            assert [r.mode for r in many] == [mode] * 4
            for r, p in zip(many, pairs):  # batched conv kernels round differently
                np.testing.assert_allclose(r.image, relighter.relight(*p, mode=mode).image, atol=2e-4)
            assert seen[-1] == 1.0 and seen == sorted(seen)
    finally:
        del relighter.run_batch
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        relighter.relight_many(pairs, cancel=token)


def test_cuda_out_of_memory_falls_back_to_a_smaller_working_size(lite_checkpoint, monkeypatch):
    r = Relighter.from_checkpoint(lite_checkpoint, device="cpu")
    real = r.run_network
    sizes = []

    def flaky(src, *args, **kw):
        sizes.append(src.shape[:2])
        if len(sizes) == 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        r.device = torch.device("cpu")  # run the real network on the CPU from here on
        return real(src, *args, **kw)

    monkeypatch.setattr(r, "run_network", flaky)
    real_batch = r.run_batch

    def batch_on_cpu(arrays, cancel=None, report=None):
        sizes.append(arrays[0][0].shape[:2])
        r.device = torch.device("cpu")
        return real_batch(arrays, cancel, report)

    monkeypatch.setattr(r, "run_batch", batch_on_cpu)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    r.device = torch.device("cuda")  # only the fallback logic sees this
    notes = []
    res = r.relight(*_inputs(96, 128), mode="full", progress=lambda f, m: notes.append(m))
    assert res.mode == "detail" and res.image.shape == (96, 128, 3)
    assert sizes[0] == (96, 128) and sizes[1][0] * sizes[1][1] <= 96 * 128 // 2
    assert any("out of GPU memory" in m for m in notes)


def test_the_working_size_is_read_from_the_checkpoint_as_a_number_or_as_digits():
    from core.model import create_model
    from core.storage.checkpoint import CheckpointFormat, CheckpointInfo

    model = create_model("s3net-lite")
    cases = [(384, 384**2), ("384", 384**2), (" 256 ", 256**2), ("big", None), (True, None), (8, None)]
    cases += [("\u00b3\u2078\u2074", None), ("9" * 5000, None), ("٣٨٤", None)]  # digits int() refuses or reads
    for side, pixels in cases:
        info = CheckpointInfo(None, "s3net-lite", CheckpointFormat.NATIVE, {"working_size": side})
        assert Relighter(model, info, device="cpu").working_pixels == pixels, side
