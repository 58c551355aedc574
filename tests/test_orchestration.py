"""The one orchestration: depth completed and checked, the guide photo or the compass's guide, the
engine run, the same result as the engine driven by hand; the faces go through it."""

import numpy as np
import pytest

from core.base.errors import RelightError
from core.engine.guides import CompassGuides, compass_guide
from core.engine.inference import Relighter
from core.inputs.input import InputFiles, load_input
from core.orchestration import Engines, check_depth_shape, complete_inputs, relight, run
from core.render.light import Light
from core.session import EngineSettings, OutputSettings, Session
from core.storage.checkpoint import load_checkpoint
from core.storage.io import DepthMap, write_depth_npy, write_image


@pytest.fixture(scope="module")
def lite(lite_checkpoint):
    model, info = load_checkpoint(lite_checkpoint)
    return Relighter(model, info, device="cpu", precision="fp32")


class WrongSize:
    name = "wrong size"

    def estimate(self, image):
        return DepthMap(np.full((10, 10), 0.3, np.float32), origin="estimated (wrong size)")


class Filler:
    """A depth filler whose estimator returns a map of the wrong size."""

    def __call__(self, inp, role, again=False):
        from dataclasses import replace

        from core.inputs.input import estimated_depth

        return replace(inp, depth=estimated_depth(inp, WrongSize().estimate))


def test_an_estimated_depth_of_the_wrong_size_is_an_error_naming_the_file(tmp_path, monkeypatch):
    photo = write_image(tmp_path / "holiday.png", np.random.default_rng(0).random((40, 56, 3)), 8)
    engines = Engines()
    monkeypatch.setattr(engines, "depth_filler", lambda settings: Filler())
    session = Session(source=InputFiles(photo), light=Light(0, 6500))
    with pytest.raises(RelightError, match=r"holiday\.png.*returned 10x10 for this 56x40 image"):
        complete_inputs(session, engines)


def test_a_depth_map_of_another_size_is_refused_naming_the_file(tmp_path):
    inp = load_input(InputFiles(write_image(tmp_path / "a.png", np.zeros((40, 56, 3)), 8)))
    inp.depth = DepthMap(np.zeros((40, 50), np.float32))
    with pytest.raises(RelightError, match=r"a\.png.*depth is 50x40 but its image is 56x40"):
        check_depth_shape(inp)
    # the live preview makes the same check before preparing a source
    with pytest.raises(RelightError, match="depth is 50x40"):
        Engines().preview(Session(source=inp, light=Light(0, 6500)))


def test_guide_photo_or_compass_and_the_same_result_as_the_engine_by_hand(tmp_path, lite):
    rng = np.random.default_rng(1)
    files = {}
    for role, (h, w) in (("src", (48, 64)), ("gui", (40, 40))):
        files[role] = InputFiles(
            write_image(tmp_path / f"{role}.png", rng.random((h, w, 3)), 16),
            write_depth_npy(tmp_path / f"{role}.npy", rng.random((h, w)) * 0.4 + 0.1),
        )
    src, gui = load_input(files["src"]), load_input(files["gui"])
    engines = Engines(lite, CompassGuides())
    # a guide photo
    session = Session(source=files["src"], guide=files["gui"], output=OutputSettings(mode="detail"))
    relit = relight(session, engines)
    by_hand = lite.relight(src.image, gui.image, src.depth, gui.depth, mode="detail", compose=session.compose())
    np.testing.assert_array_equal(relit.result.image, by_hand.image)
    assert relit.guide.files == files["gui"] and not session.compose().keep_exposure
    # the compass: the guide rendered at the network's working shape, the photo's exposure kept
    light = Light(135, 3500)
    session.light = light
    relit = relight(session, engines)
    guide = compass_guide(light, src.image.shape[:2], lite.working_pixels, CompassGuides())
    by_hand = lite.relight(src.image, guide.image, src.depth, guide.depth, mode="detail", compose=session.compose())
    np.testing.assert_array_equal(relit.result.image, by_hand.image)
    assert relit.guide.image_origin.startswith("rendered") and session.compose().light_kelvin == 3500
    # run() keeps the result on the session, fresh
    session.set_result(None)
    session.source = files["src"]
    out = run(session, engines)
    assert session.result is out.result and not session.stale


def test_the_library_call_is_the_orchestration(tmp_path, lite_checkpoint, small_pair):
    from core.api import relight as api_relight

    p = small_pair
    session = Session(
        source=InputFiles(p["source"], p["source_depth"]),
        guide=InputFiles(p["guide"], p["guide_depth"]),
        settings=EngineSettings(device="cpu", precision="fp32", checkpoint=lite_checkpoint),
    )
    ours = relight(session).result
    lib = api_relight(
        (p["source"], p["source_depth"]),
        (p["guide"], p["guide_depth"]),
        checkpoint=lite_checkpoint,
        device="cpu",
        precision="fp32",
    )
    np.testing.assert_array_equal(ours.image, lib.image)
    assert lib.precision == "fp32"


def test_sessions_refuse_what_cannot_be_relit():
    with pytest.raises(RelightError, match="no source"):
        complete_inputs(Session(light=Light(0, 6500)), Engines())
    with pytest.raises(RelightError, match="give either a guide or a light"):
        complete_inputs(Session(source=InputFiles("x.png")), Engines())
