"""Persistent user settings (QSettings): device, precision, checkpoint, colour map, folders, recent files."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QSettings

from core.base.defaults import DEFAULTS as CORE
from core.base.errors import RelightError
from core.session import EngineSettings, OutputSettings

# the engine and output defaults come from core's one table, so the app and `relight infer` agree
DEFAULTS = {
    "device": CORE.device,
    "precision": CORE.precision.value,  # bf16 on a CPU with native bf16, fp32 otherwise
    "fast": CORE.fast,
    "checkpoint": "",  # empty: the bundled model
    "colormap": "turbo",
    "output_dir": str(Path.home()),
    "input_dir": str(Path.home()),
    "mode": CORE.mode.value,
    "exposure": "auto",  # detail output: auto (kept under the compass, the guide's with a guide photo), keep, network
    "exposure_ev": CORE.exposure_ev,  # stops up (+) or down (-)
    "depth_model": "",  # empty: $RELIGHT_DEPTH_MODEL or the app's data folder
    "auto_depth": True,  # estimate a missing depth map as soon as a photo is opened (model installed)
    "finetune_data": "",
    "finetune_out": "",  # the run folder of the last run started
    "finetune_steps": 500,
    "finetune_frame_cache": False,
    "batch_input": "",
    "batch_output": "",
}

# the exposure setting's choices and what the detail output does with each: None follows the target
KEEP_EXPOSURE = {"auto": None, "keep": True, "network": False}


class Settings:
    def __init__(self, qsettings: QSettings | None = None):
        self.q = qsettings or QSettings("RelightStudio", "Relight Studio")

    def get(self, key: str):
        default = DEFAULTS[key]
        value = self.q.value(key, default)
        if isinstance(default, bool):
            return value in (True, "true", "1", 1)
        return type(default)(value) if value is not None else default

    def set(self, key: str, value) -> None:
        self.q.setValue(key, value)

    def recent(self) -> list[tuple[str, str]]:
        try:
            return [tuple(x) for x in json.loads(self.q.value("recent", "[]"))][:10]
        except (ValueError, TypeError):
            return []

    def add_recent(self, image: str, depth: str) -> None:
        items = [x for x in self.recent() if x != (image, depth)]
        self.q.setValue("recent", json.dumps([[image, depth]] + [list(x) for x in items][:9]))

    def output_settings(self) -> OutputSettings:
        """The output mode and exposure last chosen."""
        keep = KEEP_EXPOSURE.get(self.get("exposure"))
        try:
            return OutputSettings(self.get("mode"), keep, self.get("exposure_ev"))
        except RelightError:  # a mode this version does not know
            return OutputSettings(CORE.mode, keep, self.get("exposure_ev"))

    def save_output(self, output: OutputSettings) -> None:
        exposure = next(k for k, v in KEEP_EXPOSURE.items() if v is output.keep_exposure)
        self.set("mode", output.mode.value)
        self.set("exposure", exposure)
        self.set("exposure_ev", float(output.exposure))

    def engine_settings(self) -> EngineSettings:
        """How the engines run: device, precision, the fast path and the depth model (the model itself
        is the one the Settings tab loaded)."""
        return EngineSettings(
            device=self.get("device"),
            precision=self.get("precision"),
            fast=self.get("fast"),
            depth_model=self.get("depth_model") or None,
        )
