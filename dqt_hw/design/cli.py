"""Command-line flags of a design, shared by ``dqt-hw rtl``, ``golden write``, ``sim``
and ``cost``: ``--design FILE.toml`` and one flag per parameter (on top of the file).
A flag left out keeps the file's value, or the design's default."""

from __future__ import annotations

import argparse
from pathlib import Path

from .core import COMPONENTS, Design

__all__ = ["FLAGS", "add_design_args", "design_from_args", "flag_params"]

FLAGS = (
    ("--rows", "rows", int, "R, rows of the PE array"),
    ("--cols", "cols", int, "C, columns of the PE array"),
    ("-n", "n", int, "master width n"),
    ("--acc-width", "acc_width", int, "accumulator width W"),
    ("--overflow", "overflow", str, "wrap or saturate"),
    ("--view-rounding", "view_rounding", str, "nested view rounding: floor or half_up"),
    ("--rounding", "rounding", str, "rounding of the rescale unit"),
    ("--depth-bits", "depth_bits", int, "K field width (tiles of up to 2^depth_bits steps)"),
    ("--kbits", "kbits", int, "width of the requantizer constants K"),
    ("--ebits", "ebits", int, "width of the requantizer left shifts E"),
    ("--sbits", "sbits", int, "width of the right shift S"),
    ("--sum-width", "sum_width", int, "side-sum width (requant component)"),
    ("--mult-bits", "mult_bits", int, "multiplier width (rescale component)"),
    ("--max-pack", "max_pack", int,
     "elements per step at narrow widths (scalable_pe, array, tile: 1, 2, 4)"),
    ("--rq-lanes", "rq_lanes", int, "requantizer lanes of a tile, dividing cols (default: "
                                   "cols; fewer take cols / rq_lanes cycles per row)"),
    ("--rq-stages", "rq_stages", int, "register ranks in a tile's requantizer lanes (0..2; "
                                     "each adds a cycle of latency)"),
    ("--queue-depth", "queue_depth", int, "command-queue depth of the AXI shell (axi: 2..16)"),
)
"""(flag, parameter, type, help) of every design parameter with a flag."""


def _width_list(text: str):
    try:
        return tuple(int(t) for t in text.replace(" ", "").split(",") if t)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"widths must be comma-separated integers, not {text!r}") from None


def add_design_args(p, *, widths_flag: str = "--widths", component: bool = True,
                    design_flag: bool = True) -> None:
    """Add ``--design``, ``--component``, ``--name`` and the parameter flags to ``p``
    (``widths_flag`` names the built-widths flag where ``--widths`` means something else)."""
    if design_flag:
        p.add_argument("--design", type=Path, metavar="FILE.toml", default=None,
                       help="the design file (docs/design.md); flags override its values")
    if component:
        p.add_argument("--component", choices=COMPONENTS, default=None,
                       help="generator (default: tile)")
    p.add_argument("--name", default=None, help="Verilog module name (also the file stem)")
    for flag, dest, typ, hlp in FLAGS:
        p.add_argument(flag, dest=dest, type=typ, default=None, help=hlp)
    p.add_argument("--signed", dest="signed", action="store_true", default=None,
                   help="two's-complement codes")
    p.add_argument("--unsigned", dest="signed", action="store_false",
                   help="unsigned codes (the default)")
    p.add_argument(widths_flag, dest="built_widths", type=_width_list, default=None,
                   help="the view widths built, comma separated (default: all)")


def flag_params(args) -> dict:
    """The parameters set by flags (name and component included)."""
    out = {}
    for _, dest, _, _ in FLAGS:
        v = getattr(args, dest, None)
        if v is not None:
            out[dest] = v
    if getattr(args, "signed", None) is not None:
        out["signed"] = args.signed
    if getattr(args, "built_widths", None) is not None:
        out["widths"] = args.built_widths
    for key in ("component", "name"):
        if getattr(args, key, None):
            out[key] = getattr(args, key)
    return out


def design_from_args(args, *, component: str | None = None) -> Design:
    """The design of ``--design`` (or the defaults) with the flags on top; with
    ``component``, the design must be of that component."""
    path = getattr(args, "design", None)
    table = {}
    if path is not None:
        table = Design.from_toml(path).to_dict()
    table.update(flag_params(args))
    d = Design.from_mapping(table, source=str(path) if path else "flags")
    if component is not None and d.component != component:
        raise ValueError(f"{path or 'flags'}: this command takes a {component} design, "
                         f"not a {d.component}")
    return d
