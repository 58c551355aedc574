import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# the per-user data folder (log file, compile cache, installed depth model) is a fresh one for the tests
# and the processes they start: they neither write into the user's nor see what is installed there
os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="relight-tests-data-")
atexit.register(shutil.rmtree, os.environ["XDG_DATA_HOME"], True)
os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(min(2, os.cpu_count() or 1))


def pytest_collection_modifyitems(config, items):
    """gui marks every test of a test_gui*.py module and any test using qtbot, so a new GUI test
    needs no marker of its own; gpu tests skip without CUDA."""
    no_cuda = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if item.path.name.startswith("test_gui") or "qtbot" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.gui)
        if item.get_closest_marker("gpu") and not torch.cuda.is_available():
            item.add_marker(no_cuda)


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter and BatchNorm statistic non-trivial values (so BN is not an identity)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) * 0.5 + 0.75)
            elif name.endswith("running_mean"):
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
            elif t.ndim == 1:
                scale_like = "bn" in name or any(k in name for k in ("downsample.2", "conv1.1", "conv1.4"))
                t.copy_(torch.randn(t.shape, generator=g) * 0.1 + (1.0 if scale_like else 0.0))
            else:
                fan_in = t[0].numel()
                t.copy_(torch.randn(t.shape, generator=g) * (1.0 / fan_in) ** 0.5)
    return model


@pytest.fixture(scope="session")
def lite_checkpoint(tmp_path_factory):
    from core.model import create_model
    from core.storage.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = randomize(create_model("s3net-lite"), 1)
    path = tmp_path_factory.mktemp("ckpt") / "lite.safetensors"
    save_checkpoint(path, model, "s3net-lite", extra={"trained": True})
    return path


@pytest.fixture
def small_pair(tmp_path):
    """Source 70x90 (16-bit PNG) + VIDIT depth, guide 64x64 (8-bit) + plain-array depth."""
    from core.storage.io import write_depth_npy, write_image

    rng = np.random.default_rng(0)
    files = {
        "source": write_image(tmp_path / "src.png", rng.random((70, 90, 3)), 16),
        "source_depth": write_depth_npy(tmp_path / "src.npy", rng.random((70, 90))),
        "guide": write_image(tmp_path / "guide.png", rng.random((64, 64, 3)), 8),
        "guide_depth": tmp_path / "guide_depth.npy",
    }
    np.save(files["guide_depth"], rng.random((64, 64)).astype(np.float32))
    return files


@pytest.fixture(scope="session")
def tiny_depth_model(tmp_path_factory):
    """A tiny randomly initialised Depth Anything (real architecture, real loading code) in
    save_pretrained layout, with a preprocessor_config.json like the released model's."""
    import json

    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

    folder = tmp_path_factory.mktemp("depth-model")
    backbone = Dinov2Config(
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=64,
        patch_size=14,
        image_size=56,
        out_indices=[1, 2, 3, 4],
        apply_layernorm=True,
        reshape_hidden_states=False,
    )
    cfg = DepthAnythingConfig(
        backbone_config=backbone,
        reassemble_hidden_size=32,
        neck_hidden_sizes=[8, 16, 32, 32],
        fusion_hidden_size=16,
        head_hidden_size=8,
        patch_size=14,
    )
    torch.manual_seed(0)
    DepthAnythingForDepthEstimation(cfg).eval().save_pretrained(folder, safe_serialization=True)
    (folder / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "do_resize": True,
                "size": {"height": 56, "width": 56},
                "keep_aspect_ratio": True,
                "ensure_multiple_of": 14,
                "image_mean": [0.485, 0.456, 0.406],
                "image_std": [0.229, 0.224, 0.225],
                "image_processor_type": "DPTImageProcessor",
            }
        )
    )
    return folder


def cli(capsys, *args):
    """Run the command line in-process: (exit code, what it wrote to stderr)."""
    from core.cli import main

    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def one_error_line(code, err, *needles):
    """A user error: exit 2 and exactly one line naming the problem, never a traceback."""
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("relight: error: ") and "Traceback" not in err, err
    for n in needles:
        assert n in err, (n, err)
