"""The layering rules, checked by importing in a fresh interpreter: core never imports the GUI
(relight_gui, PySide6, pyqtgraph), and core.model knows no files (no I/O, no safe loading)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CORE_MODULES = [
    "core.api",
    "core.cli",
    "core.cli_train",
    "core.train.training",
    "core.train.evaluate",
    "core.engine.inference",
    "core.depth.estimation",
    "core.depth.network",
    "core.depth.fast",
    "core.depth.store",
    "core.engine.guides",
    "core.engine.live",
    "core.inputs.input",
    "core.storage.checkpoint",
    "core.storage.io",
    "core.train.datasets",
    "core.train.frame_cache",
    "core.train.synthetic",
    "core.render",
    "core.base.vocab",
    "core.engine.accel",
    "core.base.logs",
    "core.engine.batch",
    "core.base.hardware",
    "core.render.photos",
    "core.engine.compose",
    "core.engine.normals",
    "core.cli_normals",
    "core.session",
    "core.orchestration",
    "core.base.defaults",
    "core.base.device",
    "core.startup",
]


def _modules_after_import(*names: str) -> set[str]:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import importlib\n"
        "for n in sys.argv[2:]: importlib.import_module(n)\n"
        "print('\\n'.join(sorted(sys.modules)))"
    )
    r = subprocess.run([sys.executable, "-c", code, str(ROOT), *names], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return set(r.stdout.split())


def test_core_never_imports_the_gui():
    loaded = _modules_after_import(*CORE_MODULES)
    gui = sorted(m for m in loaded if m.split(".")[0] in ("relight_gui", "PySide6", "pyqtgraph", "shiboken6"))
    assert not gui, gui


def test_the_model_knows_no_files():
    loaded = _modules_after_import("core.model")
    own = sorted(m for m in loaded if m.startswith("core.") and not m.startswith("core.model"))
    assert set(own) <= {"core.base.errors"}, own
    assert not {"cv2", "safetensors", "PIL"} & loaded


def test_every_core_module_is_listed():
    """A new core module joins the check above by being imported by one listed here (or listed)."""
    files = {".".join(p.relative_to(ROOT).with_suffix("").parts) for p in (ROOT / "core").rglob("*.py")}
    files = {f.removesuffix(".__init__") for f in files if not f.endswith("__main__")}
    loaded = _modules_after_import(*CORE_MODULES)
    assert files <= loaded, sorted(files - loaded)


def test_the_session_knows_no_qt_and_no_engine():
    loaded = _modules_after_import("core.session")
    assert not {m for m in loaded if m.split(".")[0] in ("PySide6", "relight_gui", "shiboken6")}
    assert "core.engine.inference" not in loaded and "core.orchestration" not in loaded


def test_training_and_depth_estimation_do_not_import_the_inference_engine():
    """Device choice and padding are a leaf (core.base.device): the engine is not pulled in with them."""
    loaded = _modules_after_import("core.train.training", "core.depth.estimation")
    assert not {"core.engine.inference", "core.engine.accel", "core.orchestration"} & loaded


def test_importing_core_changes_no_environment_variable():
    code = (
        "import os, sys; sys.path.insert(0, sys.argv[1]); before = dict(os.environ)\n"
        "import core.api, core.storage.io, core.engine.accel, core.orchestration, core.depth.estimation\n"
        "changed = set(os.environ.items()) ^ set(before.items())\n"
        "print(sorted(k for k, _ in changed if k != 'LD_LIBRARY_PATH'))"  # OpenCV's own loader sets that one
    )
    r = subprocess.run([sys.executable, "-c", code, str(ROOT)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]", r.stdout
