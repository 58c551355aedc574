"""What this machine's processor does natively (read from the OS, not assumed)."""

from __future__ import annotations

import functools
import sys
from pathlib import Path


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    if sys.platform.startswith("linux"):
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
        except OSError:
            pass
    return frozenset()


def cpu_has_native_bf16() -> bool:
    """AVX-512 BF16 or AMX on x86, BF16 on Arm. With it, bf16 autocast ran s3net-lite 1.9x faster than
    fp32 on 2 cores (docs/PERFORMANCE.md); without it PyTorch emulates bf16, which is slower than fp32."""
    flags = cpu_flags()
    if sys.platform == "darwin":
        return False  # Apple silicon runs the network on MPS; its CPU bf16 path is not faster
    return bool({"avx512_bf16", "amx_bf16", "bf16"} & flags)


def cpu_precision() -> str:
    """The fastest exact-enough CPU precision here: bf16 with native support, else fp32."""
    return "bf16" if cpu_has_native_bf16() else "fp32"
