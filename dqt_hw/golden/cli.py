"""``dqt-hw golden``: write golden sets for a design, write the canonical set, or verify a
set against the model (and, with a design, say which cases fit it)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..schema import int_in


def _builtin_help() -> str:
    from .writer import BUILTINS

    return "; ".join(f"{k}: {b.about}" for k, b in BUILTINS.items())


def register(sub):
    from ..design.cli import add_design_args

    p = sub.add_parser("golden", help="write or verify golden-vector sets")
    gsub = p.add_subparsers(dest="golden_command", metavar="ACTION", required=True)
    w = gsub.add_parser(
        "write", help="write golden sets for a design (golden/README.md)",
        description="Write one golden case per width pair for a tile design: a layer of a "
                    "network, a built-in layer or seeded random codes; every pair uses the "
                    "master (n/n) constants switched by shifts. The set is refused when a case "
                    "does not fit the design or is degenerate.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_design_args(w)
    w.add_argument("--out", type=Path, required=True, help="the set directory to write")
    src = w.add_mutually_exclusive_group(required=True)
    src.add_argument("--builtin", metavar="NAME",
                     help=f"a built-in layer ({_builtin_help()})")
    src.add_argument("--net", metavar="NET",
                     help="a network: builder name (resnet18_cifar10, resnet50_imagenet, "
                          "resnet8_digits) or a JSON network file; with --layer (its shape, "
                          "seeded data)")
    src.add_argument("--random", action="store_true",
                     help="seeded uniform random codes of a dense layer (--shape MxKxN)")
    w.add_argument("--layer", help="the conv/fc layer of --net (e.g. layer1.0.conv1)")
    w.add_argument("--trained", action="store_true",
                   help="--net is a trained or imported network file (resnet8_digits: the "
                        "shipped one): its own weights and constants, and the layer's real "
                        "input codes on the network's first --inputs test images (or of "
                        "--data), instead of seeded data")
    w.add_argument("--inputs", type=int_in(1, 64), default=None,
                   help="--trained: test images whose layer inputs make the case, 1 to 64 "
                        "(default 1)")
    w.add_argument("--data", type=Path, default=None,
                   help="--trained: the inputs whose layer codes make the case, a .npy "
                        "(N, C, H, W) or an .npz with 'x' (default: the network's own data "
                        "set, provenance.data; required for an imported network)")
    w.add_argument("--shape", default="16x64x16",
                   help="--random: M inputs x K taps x N outputs (default 16x64x16)")
    w.add_argument("--seed", type=int_in(0, (1 << 63) - 1), default=None,
                   help="seed of the data (default: the built-in's, else 0)")
    w.add_argument("--pairs", default=None,
                   help="width pairs B_AxB_W, comma separated (default: n x n, n x n/2, "
                        "3n/4 x 3n/4, n/2 x n/2 among the design's widths)")
    w.add_argument("--planes", action="store_true",
                   help="each case also holds the bit-plane form of its activation and weight "
                        "codes (x_planes / a_planes, w_planes: 64-bit words, one a hex line, "
                        "the most significant plane first; docs/arithmetic.md section 2.3)")
    w.set_defaults(func=_write)
    c = gsub.add_parser("canonical", help="write the canonical set (as checked in under golden/)")
    c.add_argument("dir", type=Path, help="directory to write the cases into")
    c.set_defaults(func=_canonical)
    v = gsub.add_parser("verify", help="validate a set (manifests, checksums), recompute it, "
                                       "and with a design say which cases fit it")
    v.add_argument("dir", type=Path, help="a set directory, or one case directory")
    add_design_args(v)
    v.set_defaults(func=_verify)


def source_from_args(args):
    """The data source of ``golden write``'s (or ``demo``'s) arguments."""
    from .writer import builtin_source, layer_source, random_source, trained_source

    trained = getattr(args, "trained", False)
    if trained and not getattr(args, "net", None):
        raise ValueError("--trained takes a network file: --net FILE --layer NAME")
    if getattr(args, "inputs", None) is not None and not trained:
        raise ValueError("--inputs counts the test images of --trained; give --trained too")
    if getattr(args, "data", None) is not None and not trained:
        raise ValueError("--data gives the inputs of --trained; give --trained too")
    if trained and args.seed is not None:
        raise ValueError("--trained uses the network's own data: --seed does not apply")
    if getattr(args, "builtin", None):
        return builtin_source(args.builtin, seed=args.seed)
    if getattr(args, "net", None):
        if not args.layer:
            raise ValueError("--net needs --layer (a conv or fc layer of the network)")
        if trained:
            return trained_source(args.net, args.layer, inputs=args.inputs or 1,
                                  data=getattr(args, "data", None))
        return layer_source(args.net, args.layer, seed=args.seed or 0)
    return random_source(args.shape, seed=args.seed or 0)


def _write(args) -> int:
    from ..design.cli import design_from_args
    from .fit import summary
    from .writer import parse_pairs, write_design_set

    d = design_from_args(args, component="tile")
    if args.layer and not args.net:
        raise ValueError("--layer names a layer of --net")
    src = source_from_args(args)
    pairs = parse_pairs(args.pairs) if args.pairs is not None else None
    path, cases = write_design_set(d, args.out, src, pairs, planes=args.planes)
    print(f"golden set for design {d.name} ({d.rows}x{d.cols}, n={d.n}, "
          f"{'signed' if d.signed else 'unsigned'}, W={d.acc_width} {d.overflow}, "
          f"{d.view_rounding} views, kbits={d.kbits}): {path}")
    for c in cases:
        print(f"  {summary(c.case())}")
    print(f"{len(cases)} cases written; run them with `dqt-hw sim --design ... --golden {path}`")
    return 0


def _canonical(args) -> int:
    from .cases import write_canonical

    for path in write_canonical(args.dir):
        print(f"wrote {path}")
    return 0


def _verify(args) -> int:
    from ..design import Design
    from ..design.cli import design_from_args, flag_params
    from .cases import verify_case
    from .fit import fits
    from .io import read_case, read_set, read_set_manifest

    d = args.dir
    single = (d / "manifest.json").exists()
    cases = [read_case(d)] if single else read_set(d)
    if not cases:
        raise ValueError(f"{d}: no golden cases found")
    design, whence = None, ""
    if args.design is not None or flag_params(args):
        design = design_from_args(args)
        whence = "given"
    elif not single:
        sm = read_set_manifest(d)
        if sm and sm.get("design"):
            design, whence = Design.from_mapping(sm["design"], source=f"{d}/set.json"), "set.json"
    if design is not None:
        print(f"design {design.name} ({whence}): {design.to_dict()}")
    failed = fit_count = 0
    for case in cases:
        bad = verify_case(case)
        status = "ok" if not bad else f"MISMATCH in {', '.join(bad)}"
        failed += bool(bad)
        line = f"{case.manifest['case']:40s} {case.kind:12s} {status}"
        if design is not None:
            why = fits(design, case)
            fit_count += not why
            line += "; fits" if not why else f"; does not fit: {'; '.join(why)}"
        print(line)
    print(f"{len(cases) - failed} of {len(cases)} cases verified bit-exact")
    if design is not None:
        print(f"{fit_count} of {len(cases)} cases fit design {design.name}")
    return 1 if failed else 0
