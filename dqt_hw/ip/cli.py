"""``dqt-hw ipxact``: IP-XACT (IEEE 1685-2014) components from JSON sidecars.

Examples::

    dqt-hw ipxact rtl/dqt_tile8x8_w32.json            # rtl/dqt_tile8x8_w32.xml beside it
    dqt-hw ipxact out/rtl/*.json -o out/ipxact --validate
    dqt-hw ipxact --check rtl/*.xml                   # validate existing documents

Each sidecar (``dqt-hw rtl`` writes one beside each Verilog file; docs/hardware.md, "The
JSON sidecar") becomes ``<module>.xml`` (docs/ip.md). Every document is made (and with
``--validate`` checked against the standard's schema, which needs the ``ip`` extra)
before any is written; each is written atomically. ``dqt-hw rtl --ipxact`` writes them
together with the Verilog instead.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..files import atomic_write_text
from ..schema import read_json

__all__ = ["register", "run_ipxact"]

MAX_SIDECAR_BYTES = 1 << 24


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "ipxact",
        help="write IP-XACT (IEEE 1685-2014) components from JSON sidecars",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("files", nargs="+", type=Path, metavar="FILE",
                   help="JSON sidecars (rtl/NAME.json); with --check: IP-XACT documents")
    p.add_argument("-o", "--output", type=Path, default=None, metavar="DIR",
                   help="write NAME.xml into DIR (default: beside each sidecar)")
    p.add_argument("--validate", action="store_true",
                   help="check every document against the IEEE 1685-2014 schema before "
                        "writing (needs the 'ip' extra)")
    p.add_argument("--check", action="store_true",
                   help="validate the given IP-XACT documents; write nothing")
    p.set_defaults(func=run_ipxact)


def run_ipxact(args) -> int:
    from . import xsd
    from .ipxact import component_xml

    if args.check:
        if args.output is not None or args.validate:
            raise ValueError("--check takes IP-XACT files only (no -o, no --validate)")
        n = xsd.check_files(args.files)
        print(f"dqt-hw ipxact: {n} document(s) valid (IEEE 1685-2014)")
        return 0
    docs = {}
    for path in args.files:
        src = f"sidecar {str(path)!r}"
        sidecar = read_json(path, what="sidecar", max_bytes=MAX_SIDECAR_BYTES)
        text = component_xml(sidecar, source=src)
        out = (args.output or path.parent) / f"{sidecar['module']}.xml"
        if out in docs:
            raise ValueError(f"{src}: module {sidecar['module']!r} is written by "
                             f"another sidecar too ({out})")
        if args.validate:
            xsd.validate_xml(text, source=f"the component made from {src}")
        docs[out] = text
    if args.output is not None:
        args.output.mkdir(parents=True, exist_ok=True)
    for out, text in docs.items():
        atomic_write_text(out, text)
        print(out)
    return 0
