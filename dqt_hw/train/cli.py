"""Command-line options of DQT training, the one definition behind both
``python -m dqt_hw.train`` and ``dqt-hw train`` (``dqt_hw.net.cli`` calls
``add_train_args`` / ``run`` here).

Every option's default is ``dqt_hw.train.config.DEFAULTS``, the configuration of the
shipped network; ``check_config`` refuses an inconsistent configuration with a
``ValueError`` before any training starts.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from ..schema import finite_float, int_in
from .config import INT_LIMITS


def _count(key):
    return int_in(*INT_LIMITS[key])


def _ints(s):
    try:
        return tuple(int(v) for v in str(s).split(",") if v.strip())
    except ValueError:
        raise ValueError(f"expected comma-separated integers, not {s!r}") from None


def add_train_args(t):
    from .config import DEFAULTS as D

    t.add_argument("--out", type=Path, default=Path("out/train/resnet8_digits.json"),
                   help="network file to write (.json + .npz)")
    t.add_argument("--init", type=Path, default=None,
                   help="fine-tune this network file (e.g. from dqt-hw import) from its own "
                        "weights and formats instead of training the small ResNet from "
                        "scratch (--stages then does not apply; --data may be your .npz: "
                        "trained on its x_cal/y_cal, tested on x/y)")
    t.add_argument("--data", default=D["data"],
                   help="'digits', 'digits-contrast' (digits with a seeded per-input contrast "
                        "in [1/16, 1]; the shipped network), 'digits-contrast:MIN' or "
                        "'cifar10:FOLDER'")
    t.add_argument("--epochs", type=_count("epochs"), default=D["epochs"],
                   help="epochs of joint training (network and controller)")
    t.add_argument("--seed", type=_count("seed"), default=D["seed"])
    t.add_argument("--stages", default=",".join(map(str, D["stages"])),
                   help="channels per ResNet stage, comma separated")
    t.add_argument("--widths", default=",".join(map(str, D["widths"])),
                   help="candidate widths K, comma separated")
    t.add_argument("--kprime", default=None,
                   help="widths K' of the consistency loss, a subset of K (default: K)")
    t.add_argument("--alpha", type=finite_float, default=D["alpha"], help="weight of J_consistency")
    t.add_argument("--beta", type=finite_float, default=D["beta"], help="weight of J_cost")
    t.add_argument("--cost-target", type=finite_float, default=D["cost_target"],
                   help="J_cost = |mean relative BitOPs of the batch - TARGET| (a fraction of "
                        "the network at n/n, e.g. 0.15) instead of the mean relative BitOPs")
    t.add_argument("--tau0", type=finite_float, default=D["tau0"],
                   help="Gumbel-softmax temperature at the start (annealed to --tau1)")
    t.add_argument("--tau1", type=finite_float, default=D["tau1"])
    t.add_argument("--ctrl-epochs", type=_count("ctrl_epochs"), default=D["ctrl_epochs"],
                   help="epochs of controller fine-tuning after the joint training: the "
                        "network frozen, J = J_task + ctrl-beta J_cost (0: none)")
    t.add_argument("--ctrl-beta", type=finite_float, default=D["ctrl_beta"],
                   help="weight of J_cost while fine-tuning the controller (default: --beta)")
    t.add_argument("--ctrl-holdout", type=finite_float, default=D["ctrl_holdout"],
                   help="fraction of the training inputs held out from the joint training and "
                        "used (alone) for the controller fine-tuning (0: fine-tune on all; "
                        "no effect without --ctrl-epochs)")
    t.add_argument("--ctrl-lr", type=finite_float, default=D["ctrl_lr"],
                   help="Adam learning rate of the controller fine-tuning (cosine decay)")
    t.add_argument("--ctrl-tau0", type=finite_float, default=D["ctrl_tau0"],
                   help="Gumbel-softmax temperature at the start of the fine-tuning")
    t.add_argument("--ctrl-tau1", type=finite_float, default=D["ctrl_tau1"])
    t.add_argument("--entropy", type=finite_float, default=D["entropy"],
                   help="weight of an entropy bonus on the controller's width probabilities "
                        "(subtracted from J; both phases)")
    t.add_argument("--lr", type=finite_float, default=D["lr"])
    t.add_argument("--batch", type=_count("batch"), default=D["batch"])
    t.add_argument("--threads", type=_count("threads"), default=D["threads"])


def config_from_args(args) -> dict:
    """The ``train`` keyword arguments of parsed ``add_train_args`` options."""
    return dict(data=args.data, epochs=args.epochs, seed=args.seed, stages=_ints(args.stages),
                widths=_ints(args.widths),
                kprime=_ints(args.kprime) if args.kprime is not None else None,
                alpha=args.alpha, beta=args.beta, cost_target=args.cost_target,
                tau0=args.tau0, tau1=args.tau1, ctrl_epochs=args.ctrl_epochs,
                ctrl_beta=args.ctrl_beta, ctrl_holdout=args.ctrl_holdout,
                ctrl_lr=args.ctrl_lr, ctrl_tau0=args.ctrl_tau0, ctrl_tau1=args.ctrl_tau1,
                entropy=args.entropy, lr=args.lr, batch=args.batch, threads=args.threads,
                init=args.init)


def run(args, argv=None) -> int:
    """Train and export with the parsed options; ``argv`` (the options as typed) is
    recorded as ``provenance.command`` ("dqt-hw train ...")."""
    from .config import DEFAULTS, check_config

    cfg = config_from_args(args)
    check_config({**DEFAULTS, **cfg})  # before anything else: with or without PyTorch
    try:
        import torch  # noqa: F401
    except ImportError:
        print("dqt-hw train needs PyTorch: pip install 'dqt_hw[train]' (torch==2.13.0, pinned: "
              "an unpinned torch pulls a multi-GB CUDA build)", file=sys.stderr)
        return 1
    from .trainer import train_and_export

    if argv is None:
        argv = sys.argv[2:] if len(sys.argv) > 1 and sys.argv[1] == "train" else sys.argv[1:]
    cmd = "dqt-hw train " + " ".join(shlex.quote(a) for a in argv)
    path, prov, _, _ = train_and_export(args.out, command=cmd.strip(), **cfg)
    for what, key in (("float fake-quant", "float_fake_quant_test_accuracy"),
                      ("integer executor", "integer_test_accuracy")):
        print(f"{what} test accuracy: "
              + ", ".join(f"{k} {v:.4f}" for k, v in prov[key].items()))
    print(f"wrote {path} (+ .npz)")
    return 0
