"""``dqt-hw rtl``: generate Verilog + JSON sidecar for a hardware configuration.

Examples::

    dqt-hw rtl --component tile --rows 8 --cols 8 --acc-width 24 --overflow saturate -o out/
    dqt-hw rtl my_tile.toml -o out/            # a TOML table (see docs/hardware.md)
    dqt-hw rtl my_tile.toml --signed -o out/   # flags override the file
    dqt-hw rtl --reference rtl/                # the checked-in reference configurations

Every configuration is built (and so validated) before any file is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import COMPONENTS, REFERENCE_CONFIGS, HWConfig, config_from_mapping

__all__ = ["register", "load_configs", "run_rtl", "write_configs"]

# flag -> (parameter name, type)
_FLAGS = (
    ("--rows", "rows", int, "R, rows of the PE array"),
    ("--cols", "cols", int, "C, columns of the PE array"),
    ("-n", "n", int, "master width n"),
    ("--acc-width", "acc_width", int, "accumulator width W"),
    ("--overflow", "overflow", str, "wrap or saturate"),
    ("--view-rounding", "view_rounding", str, "nested view rounding: floor or half_up"),
    ("--rounding", "rounding", str, "rounding of the view / rescale unit"),
    ("--depth-bits", "depth_bits", int, "K field width (tiles of up to 2^depth_bits steps)"),
    ("--kbits", "kbits", int, "width of the requantizer constants K"),
    ("--ebits", "ebits", int, "width of the requantizer left shifts E"),
    ("--sbits", "sbits", int, "width of the right shift S"),
    ("--sum-width", "sum_width", int, "side-sum width (requant component)"),
    ("--mult-bits", "mult_bits", int, "multiplier width (rescale component)"),
    ("--max-pack", "max_pack", int, "elements per step at narrow widths (scalable_pe, array, tile: 1, 2, 4)"),
)


def _widths(text: str):
    try:
        return tuple(int(t) for t in text.replace(" ", "").split(",") if t)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"widths must be comma-separated integers, not {text!r}"
        ) from None


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "rtl",
        help="generate Verilog and a JSON sidecar for a hardware configuration",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", nargs="?", type=Path,
                   help="TOML file: one table (component = ..., name = ..., parameters) or "
                        "an array of [[rtl]] tables")
    p.add_argument("--component", choices=tuple(COMPONENTS), help="generator to run")
    p.add_argument("--name", help="Verilog module name (also the file stem)")
    for flag, dest, typ, hlp in _FLAGS:
        p.add_argument(flag, dest=dest, type=typ, default=None, help=hlp)
    p.add_argument("--signed", dest="signed", action="store_true", default=None,
                   help="two's-complement codes")
    p.add_argument("--unsigned", dest="signed", action="store_false",
                   help="unsigned codes (the default)")
    p.add_argument("--widths", type=_widths, default=None,
                   help="supported widths, comma separated (default: all)")
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="output directory (default: out/rtl)")
    p.add_argument("--reference", type=Path, metavar="DIR", default=None,
                   help="write the reference configurations (those under rtl/) into DIR")
    p.set_defaults(func=run_rtl)


def _flag_params(args) -> dict:
    params = {}
    for _, dest, _, _ in _FLAGS:
        v = getattr(args, dest, None)
        if v is not None:
            params[dest] = v
    if getattr(args, "signed", None) is not None:
        params["signed"] = args.signed
    if getattr(args, "widths", None) is not None:
        params["widths"] = args.widths
    return params


def load_configs(args) -> list[HWConfig]:
    """The configurations named by the parsed arguments (file, then flags on top)."""
    flags = _flag_params(args)
    if args.reference is not None:
        if args.config is not None or args.component or args.name or flags:
            raise ValueError("--reference takes no configuration file and no parameter flags")
        return list(REFERENCE_CONFIGS)
    tables = []
    if args.config is not None:
        import tomllib

        with open(args.config, "rb") as f:
            doc = tomllib.load(f)
        tables = doc["rtl"] if isinstance(doc.get("rtl"), list) else [doc]
        if not tables:
            raise ValueError(f"{args.config}: no configuration in the file")
        if len(tables) > 1 and (flags or args.component or args.name):
            raise ValueError(f"{args.config}: flags apply to a file with one configuration, "
                             f"not {len(tables)}")
    else:
        tables = [{}]
    configs = []
    for table in tables:
        table = dict(table)
        if args.component:
            table["component"] = args.component
        if args.name:
            table["name"] = args.name
        if "component" not in table:
            raise ValueError("name a component: --component or `component = ...` in the TOML "
                             f"file, one of {tuple(COMPONENTS)}")
        params = dict(table.pop("params", {}) or {})
        params.update({k: v for k, v in table.items() if k not in ("component", "name")})
        params.update(flags)
        configs.append(config_from_mapping(
            {"component": table["component"], "name": table.get("name"), "params": params}))
    names = [c.name for c in configs]
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise ValueError(f"module names must be distinct, not repeated: {dups}")
    return configs


def write_configs(configs, outdir: Path) -> list[Path]:
    """Generate every configuration first (any refusal raises before a file is written),
    then write the Verilog, the sidecars and the lint waiver file into ``outdir``."""
    from .lint import WAIVERS
    from .verilog import render

    files = {}
    for c in configs:
        files.update(render(c))
    files["verilator.vlt"] = WAIVERS
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        path = outdir / name
        path.write_text(text)
        written.append(path)
    return written


def run_rtl(args) -> int:
    configs = load_configs(args)
    outdir = args.reference if args.reference is not None else (args.output or Path("out/rtl"))
    written = write_configs(configs, outdir)
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    parser = argparse.ArgumentParser(prog="dqt-hw")
    register(parser.add_subparsers(dest="command"))
    a = parser.parse_args(sys.argv[1:])
    sys.exit(a.func(a))
