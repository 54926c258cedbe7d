"""``dqt-hw`` sub-commands of the network part: ``net summary``, ``run``, ``train``,
``import``, ``export``."""

from __future__ import annotations

from pathlib import Path

# the options of ``dqt-hw train`` are those of ``python -m dqt_hw.train``: one definition,
# in dqt_hw.train.cli (which imports torch only when training runs)
from ..schema import int_in, positive_int, positive_float
from ..train.cli import add_train_args
from ..train.cli import run as run_training


def register(sub):
    p = sub.add_parser("net", help="network files: summary")
    nsub = p.add_subparsers(dest="net_command", metavar="NET_COMMAND")
    s = nsub.add_parser("summary", help="print a network's layers, shapes, MACs, formats")
    s.add_argument("net", nargs="?", default=None,
                   help="a network file (.json) or a builder name (resnet18_cifar10, "
                        "resnet50_imagenet, resnet8_digits); default: the shipped network")
    s.set_defaults(func=_summary)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])

    r = sub.add_parser("run", help="run a trained network: static widths, dynamic "
                                   "controller, knapsack mixes; results.json and plots")
    r.add_argument("--net", type=Path, default=None,
                   help="network file (default: the shipped dqt_hw/net/data/resnet8_digits)")
    r.add_argument("--data", default=None,
                   help="'digits', 'digits-contrast', 'digits-contrast:MIN', 'cifar10:FOLDER', "
                        "or your own data: X.npy (inputs (N, C, H, W), with --labels) or "
                        "DATA.npz (arrays x, y, optionally x_cal, y_cal) (default: the data "
                        "the network records, provenance.data)")
    r.add_argument("--labels", type=Path, default=None,
                   help="with --data X.npy: the labels, a .npy of N integer class indices")
    r.add_argument("--out", type=Path, default=Path("out/run"), help="output directory")
    r.add_argument("--limit", type=positive_int, default=None,
                   help="use only the first N test inputs (N >= 1)")
    r.add_argument("--calibration", type=int_in(0, 1 << 20), default=400,
                   help="training inputs for the knapsack's layer sensitivities (0: skip)")
    r.add_argument("--batch-size", type=int_in(1, 1 << 16), default=256)
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    r.set_defaults(func=_run)

    i = sub.add_parser("import", help="an ONNX model (QDQ int8, or float with --calibration) "
                                      "as a network file at n = 8 (needs the 'onnx' extra)")
    i.add_argument("model", type=Path, help="the ONNX model (.onnx)")
    i.add_argument("-o", "--out", type=Path, required=True,
                   help="network file to write (.json + .npz beside it)")
    i.add_argument("--calibration", type=Path, default=None,
                   help="calibration inputs, a .npy array (N, C, H, W) of the model's float "
                        "inputs: required for a float model, refused for a QDQ one")
    i.add_argument("--percentile", type=positive_float, default=None,
                   help="a float model's activation range: the (100-P)-th to P-th percentile "
                        "of the calibration values, in (50, 100] (default 99.99; 100: min/max)")
    i.add_argument("--widths", default=None,
                   help="candidate widths of every layer, comma separated (default 1..8)")
    i.add_argument("--name", default=None, help="network name (default: the model's file name)")
    i.set_defaults(func=_import)

    e = sub.add_parser("export", help="a network file as a QONNX model (Quant nodes) for "
                                      "FINN / hls4ml / qonnx (needs the 'onnx' extra)")
    e.add_argument("net", help="the network file (.json), or resnet8_digits (the shipped one)")
    e.add_argument("-o", "--out", type=Path, required=True, help="the QONNX model to write (.onnx)")
    e.add_argument("--mix", default=None,
                   help="a static width mix to describe: 'b_a x b_w' (e.g. 4x4) or a JSON file "
                        "{\"*\": \"4x4\", \"conv1\": \"8x8\"}; each layer's input and weights "
                        "then get a Quant at those widths (default: the master widths n/n only)")
    e.add_argument("--batch", type=int_in(0, 1 << 16), default=1,
                   help="the input's batch size (default 1, as FINN and hls4ml take a model; "
                        "0: a symbolic batch axis)")
    e.set_defaults(func=_export)

    t = sub.add_parser("train", help="DQT quantization-aware training (needs the 'train' "
                                     "extra: torch==2.13.0) and export to a network file")
    add_train_args(t)
    t.set_defaults(func=lambda a: _train(a, t))


def _train(args, parser) -> int:
    """``dqt-hw train``: ``dqt_hw.train.cli.run`` (the same as ``python -m dqt_hw.train``);
    an option the trainer's checks refuse is a usage error (exit status 2)."""
    try:
        return run_training(args)
    except ValueError as e:
        parser.error(str(e))


def _import(args) -> int:
    """``dqt-hw import``: ``onnx_import.import_file``; prints the network's summary line."""
    import shlex
    import sys

    from . import onnx_import as oi

    kw = {}
    if args.percentile is not None:
        kw["percentile"] = args.percentile
    if args.widths is not None:
        try:
            kw["widths"] = tuple(int(v) for v in args.widths.split(",") if v.strip())
        except ValueError:
            raise ValueError(f"--widths must be comma-separated integers, not "
                             f"{args.widths!r}") from None
    path, net = oi.import_file(args.model, args.out, calibration=args.calibration,
                               name=args.name, command=shlex.join(["dqt-hw", *getattr(args, "argv", sys.argv[1:])]),
                               **kw)
    print(f"wrote {path} (+ {path.with_suffix('.npz').name}): {net.name}, "
          f"{len(net.compute_layers())} conv/fc layers, {net.graph.total_macs():,} MACs per "
          f"input, {net.provenance['import']}, n = {net.arith.n}, widths "
          f"{','.join(map(str, net.layers[net.compute_layers()[0]].widths))}")
    if "mix" in net.provenance:
        mixes = sorted({f"{a}x{b}" for a, b in net.provenance["mix"].values()})
        print(f"the model's nested views: static mix {', '.join(mixes)} per layer "
              f"(provenance.mix)")
    return 0


def _export(args) -> int:
    """``dqt-hw export``: ``qonnx_export.export_file``."""
    from ..cost.workload import WidthMix
    from . import network as nw
    from .qonnx_export import export_file

    net = nw.load(nw.default_path() if args.net == "resnet8_digits" else args.net)
    mix = None
    if args.mix is not None:
        wm = WidthMix.parse(args.mix, source="--mix").check(net.graph)
        mix = {nm: wm.pair(nm) for nm in net.compute_layers()}
    path = export_file(net, args.out, mix=mix, batch=args.batch)
    ctl = " (its controller is not exported: a QONNX model is static)" if net.controller else ""
    print(f"wrote {path}: QONNX model of {net.name}, {len(net.compute_layers())} conv/fc layers "
          f"at {'mix ' + args.mix if mix else f'{net.arith.n}/{net.arith.n}'}{ctl}")
    return 0


def _load(spec_):
    from . import network as nw
    from .graph import BUILDERS

    if spec_ is None:
        return nw.load(nw.default_path())
    if spec_ in BUILDERS:
        return BUILDERS[spec_]()
    return nw.load(spec_)


def _summary(args) -> int:
    obj = _load(args.net)
    print(obj.summary())
    return 0


def _run(args) -> int:
    import numpy as np

    from ..train import data as data_mod
    from . import network as nw
    from .results import run_results

    path = args.net or nw.default_path()
    net = nw.load(path)
    name = args.data or net.provenance.get("data")
    if name is None:
        raise ValueError(f"{path}: the network records no data set (provenance.data); pass "
                         f"--data DATA.npz (arrays x, y) or --data X.npy --labels Y.npy")
    if not args.data and not name.startswith("digits"):
        # a file names its training data; reading anything but the packaged digits (a
        # folder of CIFAR-10 pickles, say) takes the user's own --data
        raise ValueError(f"{path}: the network was trained on {name!r}; pass --data "
                         f"{name!r} to read it (only the packaged digits are read implicitly)")
    if data_mod.is_file_spec(name):
        ds = data_mod.load_arrays(name, args.labels, shape=tuple(next(iter(net.graph)).shape))
    elif args.labels is not None:
        raise ValueError(f"--labels goes with --data X.npy (your own inputs), not {name!r}")
    else:
        ds = data_mod.load(name)
    xt, yt = ds.x_test, ds.y_test
    if args.limit is not None:
        xt, yt = xt[:args.limit], yt[:args.limit]
    cal = min(args.calibration, len(ds.y_train))
    where = "x_cal" if data_mod.is_file_spec(name) else "the training set"
    print(f"network {net.name} ({path}), data {ds.name}: {len(yt)} test inputs, "
          f"{cal} calibration inputs from {where}" + ("" if cal else " (no knapsack mixes)"))
    from ..model import _simd

    print(f"exact sums by the {_simd.describe()}")
    res = run_results(net, xt, yt, ds.x_train[:cal] if cal else None,
                      ds.y_train[:cal] if cal else None, out=args.out,
                      batch_size=args.batch_size, progress=not args.no_progress)
    print(f"wrote {args.out / 'results.json'} and {', '.join(Path(p).name for p in res['plots'])}")
    del np
    return 0
