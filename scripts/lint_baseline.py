"""Rewrite the recorded lint baseline in pyproject.toml from what ruff and mypy find today.

The baseline names, per file, the ruff rules it still breaks and whether it is not yet formatted, and per
core module, the mypy error codes it still produces. CI (scripts/lint.sh) fails on anything outside it, so
new code is held to the full rule set while old findings are fixed file by file. Run it after fixing
findings (the baseline shrinks) and never to hide a new one:

    .venv/bin/python scripts/lint_baseline.py [--check | --clear]

--check exits 1 when the baseline is not the current one (e.g. it still names fixed findings).
--clear empties it, so that `ruff format .` and `ruff check --fix .` reach every file; then run the script
again to record what is left.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
BEGIN = "# ---- lint baseline: written by `python scripts/lint_baseline.py`; fix findings, then rerun it ----\n"
END = "# ---- end of lint baseline ----\n"
BIN = Path(sys.executable).parent
# the settings without the baseline, for both tools (ruff and mypy resolve its paths from the working directory)
BARE_CONFIG = ROOT / ".ruff_cache" / "lint-baseline" / "pyproject.toml"
MYPY_ERROR = re.compile(r"^(?P<path>[^:]+\.py):\d+: error: .*\[(?P<code>[a-z-]+)\]$")


def _split(text: str) -> tuple[str, str, str]:
    head, sep, rest = text.partition(BEGIN)
    if not sep or END not in rest:
        raise SystemExit(f"{PYPROJECT}: the lint baseline markers are missing")
    _, _, tail = rest.partition(END)
    return head, rest.partition(END)[0], tail


def _ruff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "ruff"), *args, "--config", str(BARE_CONFIG), "."], cwd=ROOT, capture_output=True, text=True
    )


def ruff_findings() -> dict[str, set[str]]:
    out = _ruff("check", "--output-format", "json", "--exit-zero")
    found: dict[str, set[str]] = defaultdict(set)
    for item in json.loads(out.stdout or "[]"):
        found[Path(item["filename"]).resolve().relative_to(ROOT).as_posix()].add(item["code"] or "E999")
    return found


def unformatted() -> list[str]:
    out = _ruff("format", "--check", "--output-format", "concise")
    # "path:line:col: unformatted: File would be reformatted"
    return sorted({line.split(":", 1)[0] for line in out.stdout.splitlines() if ": unformatted: " in line})


def mypy_findings() -> dict[str, set[str]]:
    out = subprocess.run(
        [str(BIN / "mypy"), "--config-file", str(BARE_CONFIG), "--no-error-summary", "core"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    found: dict[str, set[str]] = defaultdict(set)
    for line in out.stdout.splitlines():
        m = MYPY_ERROR.match(line)
        if m:
            module = m["path"].removesuffix(".py").removesuffix("/__init__").replace("/", ".")
            found[module].add(m["code"])
    if out.returncode not in (0, 1) or (out.returncode == 1 and not found):
        raise SystemExit(f"mypy failed:\n{out.stdout}{out.stderr}")
    return found


def render(ruff: dict[str, set[str]], fmt: list[str], mypy: dict[str, set[str]]) -> str:
    lines = []
    if ruff:
        lines.append("[tool.ruff.lint.extend-per-file-ignores]")
        lines += [f'"{f}" = {json.dumps(sorted(codes))}' for f, codes in sorted(ruff.items())]
        lines.append("")
    lines.append("[tool.ruff.format]")
    lines.append("exclude = [" + "".join(f'\n    "{f}",' for f in fmt) + ("\n]" if fmt else "]"))
    by_codes: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for module, codes in mypy.items():
        by_codes[tuple(sorted(codes))].append(module)
    for codes, modules in sorted(by_codes.items(), key=lambda kv: sorted(kv[1])):
        lines += [
            "",
            "[[tool.mypy.overrides]]",
            f"module = {json.dumps(sorted(modules))}",
            f"disable_error_code = {json.dumps(list(codes))}",
        ]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="only say whether the recorded baseline is current")
    mode.add_argument("--clear", action="store_true", help="empty the baseline (before formatting everything)")
    args = ap.parse_args()
    text = PYPROJECT.read_text()
    head, old, tail = _split(text)
    if args.clear:
        PYPROJECT.write_text(head + BEGIN + END + tail)
        print(f"lint baseline in {PYPROJECT.name} emptied")
        return 0
    BARE_CONFIG.parent.mkdir(parents=True, exist_ok=True)
    BARE_CONFIG.write_text(head + BEGIN + END + tail)
    new = render(ruff_findings(), unformatted(), mypy_findings())
    if args.check:
        if new != old:
            print("the lint baseline in pyproject.toml is not current: run python scripts/lint_baseline.py")
            return 1
        return 0
    PYPROJECT.write_text(head + BEGIN + new + END + tail)
    print(f"lint baseline written to {PYPROJECT.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
