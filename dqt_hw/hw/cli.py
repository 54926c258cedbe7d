"""``dqt-hw rtl``: generate Verilog + JSON sidecar for a hardware configuration.

Examples::

    dqt-hw rtl --design my_tile.toml -o out/   # one design file (docs/design.md)
    dqt-hw rtl --rows 8 --cols 8 --acc-width 24 --overflow saturate -o out/
    dqt-hw rtl --design my_tile.toml --signed -o out/   # flags override the file
    dqt-hw rtl many.toml -o out/               # an array of [[rtl]] design tables
    dqt-hw rtl --reference rtl/ --ipxact       # the checked-in reference designs
    dqt-hw rtl --design my_tile.toml --ipxact -o out/   # + NAME.xml (IP-XACT, docs/ip.md)

Every design is built (and so validated) before any file is written, and the output
directory is replaced as a whole: a reader sees it as it was or with every new file (the
Verilog, its sidecar, its IP-XACT component and the waivers together), never a mixture, also after an error or
a kill part-way (docs/formats.md, "Outputs a reader may trust").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..design import Design
from ..design.core import read_toml
from ..design.cli import add_design_args, flag_params
from ..files import atomic_write_text, staged_dir
from ..design.reference import REFERENCE_DESIGNS

__all__ = ["register", "load_designs", "run_rtl", "design_files", "write_designs",
           "atomic_write_text"]

def register(subparsers) -> None:
    p = subparsers.add_parser(
        "rtl",
        help="generate Verilog and a JSON sidecar for a hardware configuration",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", nargs="?", type=Path,
                   help="TOML file: one design table (component = ..., name = ..., "
                        "parameters) or an array of [[rtl]] tables")
    add_design_args(p)
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="output directory (default: out/rtl)")
    p.add_argument("--reference", type=Path, metavar="DIR", default=None,
                   help="write the reference configurations (those under rtl/) into DIR")
    p.add_argument("--ipxact", action="store_true",
                   help="also write each design's IP-XACT (IEEE 1685-2014) component "
                        "NAME.xml (docs/ip.md)")
    p.set_defaults(func=run_rtl)


def load_designs(args) -> list[Design]:
    """The designs named by the parsed arguments (file, then flags on top)."""
    flags = flag_params(args)
    if args.config is not None and args.design is not None:
        raise ValueError("give the design file once: --design FILE or the positional FILE")
    path = args.design if args.design is not None else args.config
    if args.reference is not None:
        if path is not None or flags:
            raise ValueError("--reference takes no design file and no parameter flags")
        return list(REFERENCE_DESIGNS)
    if path is None:
        tables = [{}]
    else:
        doc = read_toml(path)
        tables = doc["rtl"] if isinstance(doc.get("rtl"), list) else [doc]
        if not tables:
            raise ValueError(f"{path}: no design in the file")
        if len(tables) > 1 and flags:
            raise ValueError(f"{path}: flags apply to a file with one design, "
                             f"not {len(tables)}")
    designs = []
    for table in tables:
        table = dict(table)
        if isinstance(table.get("design"), dict) and len(table) == 1:
            table = dict(table["design"])
        table.update(flags)
        designs.append(Design.from_mapping(table, source=str(path or "flags")))
    names = [d.name for d in designs]
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise ValueError(f"module names must be distinct, not repeated: {dups}")
    return designs


def design_files(designs, *, ipxact: bool = False) -> dict[str, str]:
    """{file name: text} of ``designs``: each one's Verilog and sidecar (and with
    ``ipxact`` its IP-XACT component ``<name>.xml``, docs/ip.md), and the lint waivers."""
    import json

    from .lint import WAIVERS
    from .verilog import render

    files = {}
    for d in designs:
        files.update(render(d))
        if ipxact:
            from ..ip.ipxact import component_xml

            files[f"{d.name}.xml"] = component_xml(json.loads(files[f"{d.name}.json"]),
                                                   source=f"design {d.name!r}")
    files["verilator.vlt"] = WAIVERS
    return files


def write_designs(designs, outdir: Path, *, ipxact: bool = False) -> list[Path]:
    """Generate every design first (any refusal raises before a file is written), then
    write the Verilog, the sidecars (with ``ipxact`` the IP-XACT components) and the lint
    waiver file into ``outdir``."""
    files = design_files(designs, ipxact=ipxact)
    with staged_dir(outdir) as stage:  # the old directory's files kept, ours replaced
        for name, text in files.items():
            atomic_write_text(stage / name, text)
    return [outdir / name for name in files]


def run_rtl(args) -> int:
    designs = load_designs(args)
    outdir = args.reference if args.reference is not None else (args.output or Path("out/rtl"))
    written = write_designs(designs, outdir, ipxact=args.ipxact)
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    parser = argparse.ArgumentParser(prog="dqt-hw")
    register(parser.add_subparsers(dest="command"))
    a = parser.parse_args(sys.argv[1:])
    sys.exit(a.func(a))
