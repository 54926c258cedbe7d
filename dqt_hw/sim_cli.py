"""``dqt-hw sim``: run golden sets on a design's generated tile (cocotb on Verilator).

    dqt-hw sim --design my_tile.toml --golden out/golden

generates the design's Verilog, checks that every case of the set fits the design (a
case that does not fit is an error listing the reasons), and runs each case through the
bulk path (every job) and the per-cycle path (the first ``--blocks`` jobs, random idle
cycles and back-pressure); a verdict per case, a summary, exit status 1 on any mismatch.
The benches (``sim/``) are part of the repository checkout, not of the installed package.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path


def register(sub):
    from .design.cli import add_design_args

    p = sub.add_parser("sim", help="run golden sets on a design's tile (cocotb on Verilator)",
                       description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_design_args(p)
    p.add_argument("--golden", type=Path, required=True, metavar="DIR",
                   help="a golden set directory (or one case directory)")
    p.add_argument("--blocks", type=int, default=4,
                   help="jobs of each case through the per-cycle path (0: bulk path only)")
    p.add_argument("--seed", type=int, default=2026, help="seed of the random stimulus")
    p.set_defaults(func=run)


def import_sim():
    """The ``sim`` package of the repository checkout (beside ``dqt_hw``); a clear error
    when it is not there (an installed wheel has no benches)."""
    root = Path(__file__).resolve().parents[1]
    if (root / "sim" / "golden.py").is_file() and str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        return importlib.import_module("sim.golden")
    except ModuleNotFoundError as e:
        if e.name in ("sim", "sim.golden"):
            raise ImportError(f"the cocotb benches (the top-level package sim/) are not "
                             f"importable: they come with the repository checkout, not with "
                             f"the installed dqt_hw (looked beside it in {root})") from None
        raise


def run(args) -> int:
    from .design.cli import design_from_args

    design = design_from_args(args, component="tile")
    if args.blocks < 0:
        raise ValueError(f"--blocks must be >= 0, not {args.blocks}")
    golden = import_sim()
    rerun = " ".join(["dqt-hw", "sim", *sys.argv[sys.argv.index("sim") + 1:]]) \
        if "sim" in sys.argv else None
    return golden.run_set(design, args.golden, blocks=args.blocks, seed=args.seed, rerun=rerun)
