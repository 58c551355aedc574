"""What `auto` runs per checkpoint: the official weights give their own output; ours the detail output."""

import numpy as np
import torch

from conftest import randomize
from core.cli import main
from core.engine.inference import Relighter
from core.model import create_model
from core.storage.checkpoint import official_state_dict_bytes
from core.storage.io import read_depth, read_image
from core.train.metrics import psnr


def test_official_weights_through_infer_defaults_give_the_official_output(tmp_path, small_pair):
    model = randomize(create_model("s3net"), 5).eval()
    ckpt = tmp_path / "weight.pkl"
    ckpt.write_bytes(official_state_dict_bytes(model))
    out = tmp_path / "out.png"
    args = [
        "infer",
        "--source",
        str(small_pair["source"]),
        "--source-depth",
        str(small_pair["source_depth"]),
        "--guide",
        str(small_pair["guide"]),
        "--guide-depth",
        str(small_pair["guide_depth"]),
        "--checkpoint",
        str(ckpt),
        "--output",
        str(out),
        "--device",
        "cpu",
        "--precision",
        "fp32",
    ]
    assert main(args) == 0
    # the reference: the network itself on the same inputs, as the release's demo runs it
    relighter = Relighter(model, device="cpu")
    assert relighter.info is None
    src, gui = read_image(small_pair["source"]), read_image(small_pair["guide"])
    import cv2

    gui = cv2.resize(gui, (src.shape[1], src.shape[0]), interpolation=cv2.INTER_AREA)
    sd = read_depth(small_pair["source_depth"]).data
    gd = cv2.resize(
        read_depth(small_pair["guide_depth"]).data, (src.shape[1], src.shape[0]), interpolation=cv2.INTER_LINEAR
    )
    ref = relighter.run_network(src, gui, sd, gd)
    assert psnr(read_image(out), ref) >= 80.0


def test_auto_follows_the_checkpoint(lite_checkpoint, tmp_path):
    from core.storage.checkpoint import load_checkpoint, save_checkpoint

    r = Relighter.from_checkpoint(lite_checkpoint, device="cpu")
    assert r.default_mode == "detail"
    model, _ = load_checkpoint(lite_checkpoint)
    path = tmp_path / "full.safetensors"
    save_checkpoint(path, model, "s3net-lite", extra={"trained": True, "output_mode": "full"})
    r = Relighter.from_checkpoint(path, device="cpu")
    assert r.default_mode == "full"
    rng = np.random.default_rng(1)
    a = [rng.random((64, 64, 3), dtype=np.float32) for _ in range(2)] + [
        rng.random((64, 64), dtype=np.float32) for _ in range(2)
    ]
    res = r.relight(*a)
    assert res.mode == "full" and "full resolution" in res.describe()
    with torch.inference_mode():
        np.testing.assert_allclose(res.image, r.run_network(*a), atol=1e-6)
