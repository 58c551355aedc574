"""The product carries its own files: resources are found through core.base.resources in the source tree, the
wheel holds them (bundled model and card, demo pair, icons, .desktop file) beside every module, and an
install of that wheel alone, run from another folder, relights the demo and opens the app."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core import __version__
from core.base import resources
from core.storage.checkpoint import BUNDLED_MODEL, resolve_checkpoint

ROOT = Path(__file__).resolve().parent.parent
# top-level folders a wheel must never be built from: an earlier build's build/lib would leak into it
NOT_COPIED = {".git", ".venv", "build", "dist", "runs", "out", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
EXPECTED_RESOURCES = [
    f"models/{resources.BUNDLED_MODEL_NAME}",
    f"models/{Path(resources.BUNDLED_MODEL_NAME).with_suffix('.md')}",
    *(f"demo/{n}" for n in ("source.png", "source.npy", "guide.png", "guide.npy", "target.png")),
    *(f"icons/relight-studio-{s}.png" for s in resources.ICON_SIZES),
    resources.DESKTOP_FILE_NAME,
]


def test_resources_are_found_in_the_source_tree():
    assert Path(str(resources.resources_root())) == ROOT / "resources"
    demo = resources.demo_pair()
    for p in (
        resources.bundled_model_path(),
        resources.model_card_path(),
        resources.desktop_file_path(),
        *vars(demo).values(),
        *(resources.icon_path(s) for s in resources.ICON_SIZES),
    ):
        assert p.is_file(), p
    assert [p.name for p in resources.icon_paths()] == [f"relight-studio-{s}.png" for s in resources.ICON_SIZES]
    assert BUNDLED_MODEL == resources.bundled_model_path() == resolve_checkpoint(None)
    assert resources.model_card_path().read_text().strip()
    with pytest.raises(ValueError, match="no 17px icon"):
        resources.icon_path(17)


def _ignore(folder: str, names: list[str]) -> list[str]:
    top = Path(folder) == ROOT
    return [n for n in names if (top and n in NOT_COPIED) or n == "__pycache__" or n.endswith(".egg-info")]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    shutil.copytree(ROOT, src, dirs_exist_ok=True, ignore=_ignore)
    out = tmp_path_factory.mktemp("wheel")
    # offline: the build backend is the venv's setuptools (the dev extra), nothing is fetched
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--wheel-dir",
            str(out),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (whl,) = out.glob("*.whl")
    return whl


@pytest.mark.slow
def test_wheel_holds_every_module_and_resource(wheel):
    with zipfile.ZipFile(wheel) as z:
        sizes = {i.filename: i.file_size for i in z.infolist()}
        dist_info = f"relight_studio-{__version__}.dist-info"
        entry_points = z.read(f"{dist_info}/entry_points.txt").decode()
    names = sorted(sizes)
    print(f"{wheel.name}: {wheel.stat().st_size / 2**20:.1f} MiB, {len(names)} files; resources:")
    print("\n".join(f"  {n} {sizes[n]}" for n in names if n.startswith("core/_resources/")))
    for rel in EXPECTED_RESOURCES:
        assert f"core/_resources/{rel}" in sizes, rel
    # every file of resources/ ships, whole (whatever the bundled model is today)
    tree = [p for p in (ROOT / "resources").rglob("*") if p.is_file()]
    for p in tree:
        assert sizes.get(f"core/_resources/{p.relative_to(ROOT / 'resources').as_posix()}") == p.stat().st_size, p
    assert len([n for n in names if n.startswith("core/_resources/")]) == len(tree)
    # every module and data file of the two packages, and nothing from outside them
    for pkg in ("core", "relight_gui"):
        for p in (ROOT / pkg).rglob("*"):
            if p.suffix in (".py", ".json") and "__pycache__" not in p.parts:
                assert p.relative_to(ROOT).as_posix() in sizes, p
    assert {n.split("/")[0] for n in names} == {"core", "relight_gui", dist_info}
    assert "relight = core.cli:main" in entry_points and "relight-gui = relight_gui.app:main" in entry_points


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """`pip install --target` of the wheel alone; its dependencies come from this environment."""
    target = tmp_path_factory.mktemp("site")
    r = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return target


# Runs a script with the install alone: an editable install of the project in this environment (its import
# hook, or a path to a checkout) would otherwise supply whatever the wheel lacks.
ISOLATED = """
import runpy, sys
from pathlib import Path
target = sys.argv[1]
editable = lambda hook: getattr(hook, "__module__", "").startswith("__editable__")
sys.meta_path[:] = [f for f in sys.meta_path if not editable(f)]
sys.path_hooks[:] = [h for h in sys.path_hooks if not editable(h)]
sys.path_importer_cache.clear()
sys.path[:] = [p for p in sys.path if p == target or not (
    "__editable__" in p or (Path(p or ".") / "core" / "__init__.py").is_file())]
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _run_installed(target: Path, cwd: Path, script: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(target), QT_QPA_PLATFORM="offscreen")
    cmd = [sys.executable, "-c", ISOLATED, str(target), str(script), *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_installed_wheel_alone_relights_the_demo_from_another_folder(installed, tmp_path):
    where = tmp_path / "where.py"
    where.write_text(
        "import core, relight_gui.widgets.compass as w, core.base.resources as r\n"
        "d = r.demo_pair()\n"
        "print(core.__file__, w.__file__, r.bundled_model_path())\n"
        "print(d.source, d.source_depth, d.guide, d.guide_depth, d.target)\n"
    )
    r = _run_installed(installed, tmp_path, where)
    assert r.returncode == 0, r.stderr
    code, demo = (line.split() for line in r.stdout.splitlines())
    for p in code:  # the install's own modules and files, not the source tree's
        assert Path(p).is_relative_to(installed) and Path(p).is_file(), p
    for p in demo:
        assert Path(p).is_relative_to(installed / "core" / "_resources") and Path(p).is_file(), p
    out = tmp_path / "relit.png"
    infer = ["infer", "--source", demo[0], "--source-depth", demo[1], "--guide", demo[2], "--guide-depth", demo[3]]
    r = _run_installed(installed, tmp_path, installed / "bin" / "relight", *infer, "--output", str(out))
    assert r.returncode == 0, r.stderr
    assert "s3net-lite-synthetic.safetensors" in r.stderr and out.is_file()
    from core.storage.io import read_image
    from core.train.metrics import psnr

    relit, source, target = read_image(out), read_image(demo[0]), read_image(demo[4])
    assert relit.shape == source.shape
    assert psnr(relit, target) > psnr(source, target) + 3  # it relit (the source alone is far from the answer)


@pytest.mark.slow
@pytest.mark.gui
def test_installed_wheel_alone_opens_the_app_on_the_demo(installed, tmp_path):
    shot = tmp_path / "shot.png"
    args = ["--screenshot", str(shot), "--settings", str(tmp_path / "settings.ini")]
    r = _run_installed(installed, tmp_path, installed / "bin" / "relight-gui", *args)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"relighting {installed / 'core' / '_resources' / 'demo' / 'source.png'}" in r.stderr
    from core.storage.io import read_image

    img = read_image(shot)
    assert img.shape[0] > 400 and img.shape[1] > 600 and float(np.std(img)) > 0.05
