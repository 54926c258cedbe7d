"""``dqt-hw golden``: write the canonical golden set, or verify a set against the model."""

from __future__ import annotations

from pathlib import Path


def register(sub):
    p = sub.add_parser("golden", help="write or verify golden-vector sets")
    gsub = p.add_subparsers(dest="golden_command", metavar="ACTION", required=True)
    c = gsub.add_parser("canonical", help="write the canonical set (as checked in under golden/)")
    c.add_argument("dir", type=Path, help="directory to write the cases into")
    c.set_defaults(func=_canonical)
    v = gsub.add_parser("verify", help="validate a set (manifests, checksums) and recompute it")
    v.add_argument("dir", type=Path, help="a set directory, or one case directory")
    v.set_defaults(func=_verify)


def _canonical(args) -> int:
    from .cases import write_canonical

    for path in write_canonical(args.dir):
        print(f"wrote {path}")
    return 0


def _verify(args) -> int:
    from .cases import verify_case
    from .io import read_case, read_set

    d = args.dir
    cases = [read_case(d)] if (d / "manifest.json").exists() else read_set(d)
    if not cases:
        raise ValueError(f"{d}: no golden cases found")
    failed = 0
    for case in cases:
        bad = verify_case(case)
        status = "ok" if not bad else f"MISMATCH in {', '.join(bad)}"
        failed += bool(bad)
        print(f"{case.manifest['case']:40s} {case.kind:12s} {status}")
    print(f"{len(cases) - failed} of {len(cases)} cases verified bit-exact")
    return 1 if failed else 0
