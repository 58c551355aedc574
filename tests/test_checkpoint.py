import numpy as np
import pytest
import torch

from conftest import randomize
from core.base.errors import RelightError
from core.model import create_model
from core.storage.checkpoint import identify_preset, load_checkpoint, official_state_dict_bytes, save_checkpoint


@pytest.fixture(scope="module")
def official_file(tmp_path_factory):
    """A file in the release's format, torch.save({'state_dict': ...}), with our own weights."""
    model = randomize(create_model("s3net"), 5).eval()
    path = tmp_path_factory.mktemp("official") / "weight.pkl"
    path.write_bytes(official_state_dict_bytes(model))
    return model, path


@pytest.mark.slow
def test_official_format_loads_strictly_and_gives_same_output(official_file):
    model, path = official_file
    loaded, info = load_checkpoint(path)
    assert info.preset == "s3net" and info.format == "official"
    x = torch.rand(1, 8, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(loaded.forward_packed(x), model.forward_packed(x), rtol=0, atol=0)


def test_dataparallel_prefix_is_accepted(tmp_path):
    model = create_model("s3net-lite")
    state = {"module." + k: v for k, v in model.state_dict().items()}
    torch.save({"state_dict": state}, tmp_path / "dp.pth")
    assert load_checkpoint(tmp_path / "dp.pth")[1].preset == "s3net-lite"


def test_native_round_trip_with_metadata_and_fp16(tmp_path):
    model = randomize(create_model("s3net-lite"), 2).eval()
    save_checkpoint(
        tmp_path / "a.safetensors", model, "s3net-lite", extra={"metrics": {"psnr": 21.5}, "training": {"steps": 7}}
    )
    loaded, info = load_checkpoint(tmp_path / "a.safetensors")
    assert info.format == "native" and info.preset == "s3net-lite"
    assert info.metadata["metrics"] == {"psnr": 21.5} and info.metadata["training"]["steps"] == 7
    for k, v in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[k], v, rtol=0, atol=0)
    save_checkpoint(tmp_path / "h.safetensors", model, "s3net-lite", half=True)
    half, _ = load_checkpoint(tmp_path / "h.safetensors")
    assert half.state_dict()["tail.1.weight"].dtype == torch.float32
    x = torch.rand(1, 8, 64, 64)
    with torch.inference_mode():
        a, b = model.forward_packed(x), half.forward_packed(x)
    assert (a - b).abs().mean() < 1e-2  # fp16 rounding only; a wrong mapping gives ~0.5


def test_mismatched_checkpoint_names_keys_and_closest_preset(tmp_path, official_file):
    model, _ = official_file
    state = dict(model.state_dict())
    del state["tail.1.bias"]
    state["extra.weight"] = torch.zeros(3)
    torch.save({"state_dict": state}, tmp_path / "bad.pkl")
    with pytest.raises(RelightError) as e:
        load_checkpoint(tmp_path / "bad.pkl")
    msg = str(e.value)
    assert "bad.pkl" in msg and "tail.1.bias" in msg and "extra.weight" in msg and "'s3net'" in msg
    # shapes that differ are named too
    state = dict(create_model("s3net-lite").state_dict())
    state["tail.1.weight"] = torch.zeros(3, 28, 7, 7)
    preset, why = identify_preset(state)
    assert preset is None and "tail.1.weight" in why and "s3net-lite" in why


def test_unrelated_and_unsafe_files_are_refused(tmp_path):
    torch.save({"fc.weight": torch.zeros(10, 10)}, tmp_path / "other.pth")
    with pytest.raises(RelightError, match="does not look like any S3Net preset"):
        load_checkpoint(tmp_path / "other.pth")
    (tmp_path / "junk.pkl").write_bytes(b"\x80\x04junk")
    with pytest.raises(RelightError, match="junk.pkl"):
        load_checkpoint(tmp_path / "junk.pkl")
    torch.save({"state_dict": {"a": np.float64}}, tmp_path / "code.pkl")  # holds a non-tensor global
    with pytest.raises(RelightError, match="code.pkl"):
        load_checkpoint(tmp_path / "code.pkl")
    with pytest.raises(RelightError, match="not found"):
        load_checkpoint(tmp_path / "nope.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"1234")
    with pytest.raises(RelightError, match="bad.safetensors"):
        load_checkpoint(tmp_path / "bad.safetensors")
