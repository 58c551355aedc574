"""The relight session (notifications, the stale flag, checked vocabularies) and the one table of
defaults that the library, the command line and the app read."""

import inspect

import numpy as np
import pytest

from core.base.defaults import DEFAULTS, use_fast_path
from core.base.errors import RelightError
from core.base.vocab import Engine, OutputMode, Precision
from core.inputs.input import Input
from core.render.light import Light
from core.session import EngineSettings, OutputSettings, Session
from core.storage.io import DepthMap


def _input(seed=0, h=40, w=48):
    rng = np.random.default_rng(seed)
    return Input(rng.random((h, w, 3), dtype=np.float32), DepthMap(rng.random((h, w), dtype=np.float32)), "array")


def test_changes_are_announced_by_name_and_a_result_goes_stale():
    session = Session()
    heard = []
    session.events.connect(heard.append)
    src = _input()
    session.source = src
    session.light = Light(45, 3500)
    assert heard == ["source", "light"] and session.result is None and not session.stale
    session.source = src  # the same object again: nothing changed
    assert heard == ["source", "light"]
    session.set_result("relit")
    assert session.result == "relit" and not session.stale and heard[-1] == "result"
    heard.clear()
    session.output = OutputSettings(exposure=0.5)
    assert session.stale and heard == ["output", "stale"]
    session.engine = "normals"  # stale once: no second "stale"
    assert heard == ["output", "stale", "engine"] and session.engine is Engine.NORMALS
    session.set_result("again")
    assert not session.stale


def test_a_snapshot_does_not_follow_later_edits_and_listeners_can_leave():
    session = Session(source=_input(0), light=Light(0, 6500))
    copy = session.snapshot()
    heard = []
    listener = session.events.connect(heard.append)
    session.light = Light(90, 2500)
    assert copy.light.azimuth == 0 and session.light.azimuth == 90 and heard == ["light"]
    session.events.disconnect(listener)
    session.light = None
    assert heard == ["light"] and not session.uses_light


def test_a_result_made_from_inputs_that_changed_meanwhile_arrives_stale():
    session = Session(source=_input(0), light=Light(0, 6500))
    running = session.snapshot()  # a relight starts on these inputs
    heard = []
    session.events.connect(heard.append)
    session.set_result("relit", running)  # nothing changed: current
    assert not session.stale and heard == ["result"]
    running = session.snapshot()
    session.light = Light(90, 2500)  # the user moves the light while it runs
    session.set_result("relit again", running)
    assert session.result == "relit again" and session.stale and heard[-2:] == ["result", "stale"]


def test_vocabularies_are_checked_where_they_enter():
    with pytest.raises(RelightError, match="unknown engine 'cycles'"):
        Session(engine="cycles")
    with pytest.raises(RelightError, match=r"unknown mode 'sharp' \(use auto, detail, full, gain-map\)"):
        OutputSettings(mode="sharp")
    with pytest.raises(RelightError, match=r"unknown precision 'fp8' \(use auto, fp32, bf16, fp16\)"):
        EngineSettings(precision="fp8")
    with pytest.raises(AttributeError, match="set_result"):
        Session().result = 1
    assert OutputSettings(mode="gain-map").mode is OutputMode.GAIN_MAP
    assert EngineSettings(precision="bf16").precision is Precision.BF16 == "bf16"


def test_compose_settings_follow_the_target():
    under_light = Session(light=Light(0, 3500)).compose()
    with_guide = Session(guide=_input()).compose()
    assert under_light.keep_exposure and under_light.light_kelvin == 3500
    assert not with_guide.keep_exposure and with_guide.light_kelvin is None
    assert (
        Session(light=Light(0, 3500), output=OutputSettings(keep_exposure=False, exposure=1.0)).compose().exposure_ev
        == 1.0
    )


def test_one_table_of_defaults_for_every_face():
    from core import api, cli
    from core.engine.inference import Relighter

    assert DEFAULTS.precision == "auto" and DEFAULTS.mode == "auto" and DEFAULTS.device == "auto"
    rel = inspect.signature(api.relight).parameters
    assert rel["precision"].default == DEFAULTS.precision and rel["fast"].default == DEFAULTS.fast
    assert rel["mode"].default == DEFAULTS.mode and rel["exposure"].default == DEFAULTS.exposure_ev
    assert EngineSettings().precision == DEFAULTS.precision and EngineSettings().fast == DEFAULTS.fast
    args = cli.build_parser().parse_args(["infer", "--output", "o.png"])
    assert args.precision == DEFAULTS.precision and args.mode == DEFAULTS.mode and args.device == DEFAULTS.device
    assert args.fast is None  # not given: the table decides (use_fast_path)
    assert cli.build_parser().parse_args(["infer", "--output", "o.png", "--no-fast"]).fast is False
    # the fast path: decided by one function, and only where CUDA runs the network
    assert use_fast_path(None, "cuda") is DEFAULTS.fast and use_fast_path(True, "cpu") is False
    assert use_fast_path(False, "cuda") is False
    assert inspect.signature(Relighter.__init__).parameters["accelerate"].default is False  # the bare engine


@pytest.mark.gui
def test_the_apps_settings_start_from_the_same_table(tmp_path):
    from PySide6.QtCore import QSettings

    from relight_gui.settings import Settings

    s = Settings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    assert s.get("precision") == DEFAULTS.precision and s.get("fast") is DEFAULTS.fast
    assert s.get("mode") == DEFAULTS.mode and s.get("device") == DEFAULTS.device
    assert s.get("exposure_ev") == DEFAULTS.exposure_ev


def test_the_ui_makes_no_hard_coded_speed_claims():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    for path in list((root / "relight_gui").rglob("*.py")) + [root / "core" / "cli.py"]:
        text = path.read_text()
        assert "faster" not in text.replace("speed-up depends", ""), path
