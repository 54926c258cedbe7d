"""``dqt-hw`` sub-commands of the network part: ``net summary``, ``run``, ``train``."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path


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
                   help="'digits' or 'cifar10:FOLDER' (default: what the network was trained on)")
    r.add_argument("--out", type=Path, default=Path("out/run"), help="output directory")
    r.add_argument("--limit", type=int, default=None, help="use only the first N test inputs")
    r.add_argument("--calibration", type=int, default=400,
                   help="training inputs for the knapsack's layer sensitivities (0: skip)")
    r.add_argument("--batch-size", type=int, default=256)
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    r.set_defaults(func=_run)

    t = sub.add_parser("train", help="DQT quantization-aware training (needs the 'train' "
                                     "extra: torch==2.13.0) and export to a network file")
    add_train_args(t)
    t.set_defaults(func=_train)


def add_train_args(t):
    from ..train.trainer import DEFAULTS as D

    t.add_argument("--out", type=Path, default=Path("out/train/resnet8_digits.json"),
                   help="network file to write (.json + .npz)")
    t.add_argument("--data", default=D["data"], help="'digits' or 'cifar10:FOLDER'")
    t.add_argument("--epochs", type=int, default=D["epochs"])
    t.add_argument("--seed", type=int, default=D["seed"])
    t.add_argument("--stages", default=",".join(map(str, D["stages"])),
                   help="channels per ResNet stage, comma separated")
    t.add_argument("--widths", default=",".join(map(str, D["widths"])),
                   help="candidate widths K (also K' of the consistency loss)")
    t.add_argument("--alpha", type=float, default=D["alpha"], help="weight of J_consistency")
    t.add_argument("--beta", type=float, default=D["beta"], help="weight of J_cost")
    t.add_argument("--cost-target", type=float, default=D["cost_target"],
                   help="J_cost = |mean relative BitOPs of the batch - TARGET| (a fraction of "
                        "the network at n/n, e.g. 0.15) instead of the mean relative BitOPs")
    t.add_argument("--tau0", type=float, default=D["tau0"],
                   help="Gumbel-softmax temperature at the start (annealed to --tau1)")
    t.add_argument("--tau1", type=float, default=D["tau1"])
    t.add_argument("--lr", type=float, default=D["lr"])
    t.add_argument("--batch", type=int, default=D["batch"])
    t.add_argument("--threads", type=int, default=D["threads"])


def _ints(s):
    return tuple(int(v) for v in str(s).split(",") if v)


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
    name = args.data or net.provenance.get("data", "digits")
    ds = data_mod.load(name)
    xt, yt = ds.x_test, ds.y_test
    if args.limit:
        xt, yt = xt[:args.limit], yt[:args.limit]
    cal = max(0, args.calibration)
    print(f"network {net.name} ({path}), data {ds.name}: {len(yt)} test inputs, "
          f"{cal} calibration inputs from the training set")
    res = run_results(net, xt, yt, ds.x_train[:cal] if cal else None,
                      ds.y_train[:cal] if cal else None, out=args.out,
                      batch_size=args.batch_size, progress=not args.no_progress)
    print(f"wrote {args.out / 'results.json'} and {', '.join(Path(p).name for p in res['plots'])}")
    del np
    return 0


def _train(args) -> int:
    try:
        import torch  # noqa: F401
    except ImportError:
        print("dqt-hw train needs PyTorch: pip install 'dqt_hw[train]' (torch==2.13.0, pinned: "
              "an unpinned torch pulls a multi-GB CUDA build)", file=sys.stderr)
        return 1
    from ..train.trainer import train_and_export

    cmd = "dqt-hw train " + " ".join(shlex.quote(a) for a in sys.argv[2:]) \
        if len(sys.argv) > 1 and sys.argv[1] == "train" else None
    path, prov, _, _ = train_and_export(
        args.out, data=args.data, epochs=args.epochs, seed=args.seed, stages=_ints(args.stages),
        widths=_ints(args.widths), alpha=args.alpha, beta=args.beta, lr=args.lr,
        batch=args.batch, threads=args.threads, cost_target=args.cost_target,
        tau0=args.tau0, tau1=args.tau1,
        command=cmd or f"dqt-hw train --out {args.out} --epochs {args.epochs} --seed {args.seed}")
    for what, key in (("float fake-quant", "float_fake_quant_test_accuracy"),
                      ("integer executor", "integer_test_accuracy")):
        print(f"{what} test accuracy: "
              + ", ".join(f"{k} {v:.4f}" for k, v in prov[key].items()))
    print(f"wrote {path} (+ .npz)")
    return 0
