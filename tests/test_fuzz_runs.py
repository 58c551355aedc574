"""Random damage to a run folder and to a frame cache, each case in its own child process with bounded
time and memory: `relight train --resume`, `relight cache list|clear` and opening the cache end with
exit 0, or exit 2 and exactly one line on stderr; never a traceback, a crash or a hang; and nothing the
damage planted (files this program never writes) is deleted."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.inputs.layouts import scan_vidit
from core.train.frame_cache import build_frame_cache
from core.train.synthetic import synthesize
from core.train.training import TrainConfig, train

ROOT = Path(__file__).resolve().parent.parent

# One process imports everything once, then forks a child per case (an import costs more than a case).
FUZZ_SERVER = r"""
import json, os, random, resource, shutil, signal, sys, time, traceback
sys.path.insert(0, sys.argv[1])
from pathlib import Path
import torch
from core.cli import main
from core.train.frame_cache import build_frame_cache
from core.inputs.layouts import scan_vidit
from core.base.errors import RelightError

work, seed, n_run, n_cache = Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
run, cache_root, data = work / "run", work / "cache", work / "data"
variants = sorted((work / "states").iterdir())
rng = random.Random(seed)
POOL = ["3", 1.5, -1, 0, 1e30, float("inf"), float("nan"), None, True, [], {}, [1, 2, 3], "x" * 5000, 2 ** 70, "",
        "a\x00b", "a\nb", {"a": [1, {"b": None}]}, 100000, -64, "float64", "uint8", [64, -64], [[None]]]

def jtext(value):
    try:
        return json.dumps(value)
    except ValueError:
        return "1"

def mutate_bytes(path):
    data = bytearray(path.read_bytes())
    if not data or rng.random() < 0.2:
        path.write_bytes(bytes(data[: rng.randrange(len(data) + 1)]))
        return
    for _ in range(rng.randint(1, 6)):
        pos = rng.randrange(len(data))
        op = rng.random()
        if op < 0.6:
            data[pos] = rng.randrange(256)
        elif op < 0.8:
            del data[pos:pos + rng.randint(1, 32)]
        else:
            data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    path.write_bytes(bytes(data))

def mutate_json(path, keys=None):
    try:
        raw = json.loads(path.read_text())
    except Exception:
        raw = {}
    if not isinstance(raw, dict):
        raw = {}
    key = rng.choice(keys or sorted(raw) or ["x"])
    raw[key] = rng.choice(POOL)
    path.write_text("{" + ", ".join(f"{json.dumps(k)}: {jtext(v)}" for k, v in raw.items()) + "}")

def whole_file(path):
    path.write_bytes(rng.choice([b"[]", b"\xff\xfe\x00", b"[" * 100000, b"{}", b"", b"null", b'{"step": 1e999}\n',
                                 b"[" * 50000 + b"]" * 50000]))

def plant(folder, precious):
    p = folder / rng.choice(["notes.txt", "frames.u8.bak", "index.json.old"])
    p.write_text("mine")
    precious.append(p)

def run_case(case, precious):
    for f in run.iterdir():
        if f.is_file():
            (os.link if f.suffix in (".pt", ".safetensors") else shutil.copy)(f, case / f.name)  # replaced, never edited
    for _ in range(rng.randint(1, 2)):
        op = rng.random()
        target = case / rng.choice(["config.json", "config.json", "metrics.jsonl", "state.pt", "last.safetensors"])
        if target.exists() and target.stat().st_nlink > 1:  # a hard link: give the mutant its own copy
            data = target.read_bytes(); target.unlink(); target.write_bytes(data)
        if op < 0.35 and target.name == "config.json":
            mutate_json(target)
        elif op < 0.55:
            mutate_bytes(target)
        elif op < 0.7:
            whole_file(target)
        elif op < 0.8:
            shutil.copy(rng.choice(variants), case / "state.pt")  # negative, fractional or missing step
        elif op < 0.9:
            target.unlink(missing_ok=True)
        else:
            plant(case, precious)
    return ["train", "--out", str(case), "--resume", "--steps", "2", "--max-minutes", "0.001", "--device", "cpu",
            "--workers", "0"]

def cache_case(case, precious):
    root = case / "cache"
    shutil.copytree(cache_root, root)
    key = next(p for p in root.iterdir() if p.is_dir())
    for _ in range(rng.randint(1, 2)):
        op = rng.random()
        f = key / rng.choice(["index.json", "index.json", "depth.f32", "frames.u8"])
        if not key.exists():
            break
        if op < 0.35 and f.name == "index.json":
            mutate_json(f, ["version", "dtype", "shape", "frames", "depth", "dataset"])
        elif op < 0.55 and f.exists():
            mutate_bytes(f)
        elif op < 0.65:
            whole_file(f)
        elif op < 0.72:
            f.unlink(missing_ok=True)
        elif op < 0.78:
            f.unlink(missing_ok=True); os.mkfifo(f)
        elif op < 0.84:
            outside = case / "outside.bin"; outside.write_text("mine"); precious.append(outside)
            f.unlink(missing_ok=True); os.symlink(outside, f)
        elif op < 0.9:
            plant(key, precious)
        elif op < 0.95:
            mine = root / "photos"; mine.mkdir(exist_ok=True); (mine / "index.json").write_text('{"version": 1}')
            precious.append(mine / "index.json")
        else:
            key.rename(root / (key.name + ".tmp-999999"))
    return rng.choice([["cache", "list", "--cache-dir", str(root)], ["cache", "clear", "--cache-dir", str(root)],
                       ["open", str(root)]])

def open_cache(root):
    try:
        cache = build_frame_cache(scan_vidit(data), root)
        for key in cache.frame_rows:
            cache.frame(*key).sum()
        for scene in cache.depth_rows:
            cache.depth(scene).sum()
    except RelightError as exc:
        print(f"relight: error: {exc}", file=sys.stderr)
        return 2
    return 0

def vm_bytes():
    for line in open("/proc/self/status"):
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024

results = []
for i in range(n_run + n_cache):
    kind = "run" if i < n_run else "cache"
    case = work / f"case{i}"
    case.mkdir()
    precious = []
    argv = run_case(case, precious) if kind == "run" else cache_case(case, precious)
    err = case / "stderr.txt"
    pid = os.fork()
    if pid == 0:
        try:
            fd = os.open(err, os.O_WRONLY | os.O_CREAT); os.dup2(fd, 2); os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
            resource.setrlimit(resource.RLIMIT_AS, (vm_bytes() + (2 << 30),) * 2)
            torch.set_num_threads(1)
            code = open_cache(Path(argv[1])) if argv[0] == "open" else main(argv)
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stderr.flush()
        os._exit(code)
    deadline, status = time.time() + (60 if kind == "run" else 20), None
    while status is None and time.time() < deadline:
        done, st = os.waitpid(pid, os.WNOHANG)
        status = st if done else None
        time.sleep(0.02)
    if status is None:
        os.kill(pid, signal.SIGKILL); os.waitpid(pid, 0)
        code = "hang"
    else:
        code = os.waitstatus_to_exitcode(status)
    results.append({"case": i, "argv": argv[:2], "code": code, "stderr": err.read_text(errors="replace")[-3000:],
                    "lost": [str(p) for p in precious if not p.exists()]})
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def fuzz_work(tmp_path_factory):
    import torch

    work = tmp_path_factory.mktemp("fuzz")
    synthesize(work / "data", scenes=2, size=64, seed=0)
    train(
        TrainConfig(
            data=str(work / "data"),
            out=str(work / "run"),
            preset="s3net-lite",
            steps=2,
            batch=2,
            resize=64,
            device="cpu",
            num_workers=0,
            log_every=1,
            ckpt_every=1,
            val_every=100,
        )
    )
    build_frame_cache(scan_vidit(work / "data"), work / "cache")
    st = torch.load(work / "run" / "state.pt", weights_only=True)
    (work / "states").mkdir()
    for name, step in (("negative", -5), ("fraction", 1.5), ("huge", 10**15)):
        torch.save({**st, "step": step}, work / "states" / f"{name}.pt")
    torch.save({k: v for k, v in st.items() if k != "step"}, work / "states" / "nostep.pt")
    return work


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork, FIFOs and /proc are Linux's")
@pytest.mark.slow  # the fuzzers: CI runs them, the fast core subset leaves them out
def test_fuzz_run_folders_and_frame_caches_in_child_processes(fuzz_work):
    env_home = fuzz_work / "home"  # a mutated config may ask for the default cache folder: keep it here
    r = subprocess.run(
        [sys.executable, "-c", FUZZ_SERVER, str(ROOT), str(fuzz_work), "11", "8", "32"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=fuzz_work,
        env={**__import__("os").environ, "HOME": str(env_home), "XDG_DATA_HOME": str(env_home)},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    results = json.loads(r.stdout.strip().splitlines()[-1])
    assert len(results) == 40
    bad = []
    for res in results:
        lines = res["stderr"].strip().splitlines()
        ok = res["code"] == 0 or (res["code"] == 2 and len(lines) == 1 and lines[0].startswith("relight: error: "))
        if not ok or "Traceback" in res["stderr"] or res["lost"]:
            bad.append(res)
    assert not bad, json.dumps(bad[:3], indent=1)[:6000]
    codes = [res["code"] for res in results]
    assert codes.count(2) >= 5 and codes.count(0) >= 8  # the damage was varied: some refused, some not
