"""The layering rules. Read from the source: each room of core imports only the rooms below it (so
the rooms have no cycles), and the app imports no storage or model module. Checked by importing in
a fresh interpreter: core never imports the GUI (relight_gui, PySide6, pyqtgraph), core.model knows
no files, the session knows no Qt and no engine, training and depth estimation do not import the
inference engine."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# room -> the rooms it may import (besides itself); a module at the top of core (session,
# orchestration, api, services, cli*, startup) may import any room
ROOMS = {
    "base": set(),
    "model": {"base"},
    "render": {"base"},
    "storage": {"base", "model"},
    "inputs": {"base", "storage"},
    "depth": {"base", "storage", "inputs"},
    "engine": {"base", "model", "render", "storage", "inputs"},
    "train": {"base", "model", "render", "storage", "inputs", "engine"},
}

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
    "core.services",
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
    engine = {m for m in loaded if m.startswith("core.engine.")}
    assert engine <= {"core.engine.compose"}, engine  # the output settings' type, no engine
    assert "core.orchestration" not in loaded and "core.depth" not in loaded


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


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at its top, in functions and under TYPE_CHECKING."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            package = ".".join(path.relative_to(ROOT).parts[: len(path.relative_to(ROOT).parts) - node.level])
            module = ".".join(filter(None, [package if node.level else "", node.module or ""]))
            names |= {f"{module}.{a.name}" for a in node.names} if module == "core" else {module}
    return names


def _room(module: str) -> str | None:
    """The room of core.<room>.<module>; None for the top of core."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ROOMS else None


def test_every_room_is_a_folder_of_core():
    folders = {p.name for p in (ROOT / "core").iterdir() if (p / "__init__.py").is_file()}
    assert folders == set(ROOMS), sorted(folders ^ set(ROOMS))


def test_each_room_imports_only_the_rooms_below_it():
    upward = []
    for path in sorted((ROOT / "core").rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        room = _room(module)
        if room is None:
            continue
        for name in _imports(path):
            if name.split(".")[0] != "core" or name == "core.__version__":
                continue
            target = _room(name)
            if target != room and target not in ROOMS[room]:
                upward.append(f"{module} -> {name}")
    assert not upward, upward


def test_the_rooms_have_no_cycle():
    done: set[str] = set()
    while len(done) < len(ROOMS):
        ready = {r for r, below in ROOMS.items() if r not in done and below <= done}
        assert ready, sorted(set(ROOMS) - done)
        done |= ready


def test_the_app_imports_no_storage_or_model_module():
    """relight_gui goes through the session, the orchestration and core.services; files and the
    network are core's."""
    direct = []
    for path in sorted((ROOT / "relight_gui").rglob("*.py")):
        for name in _imports(path):
            if name.startswith(("core.storage", "core.model")) or name in ("core.storage", "core.model"):
                direct.append(f"{path.relative_to(ROOT)} -> {name}")
    assert not direct, direct
