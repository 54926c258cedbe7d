"""The trainer's configuration: its defaults (the shipped network's) and their checks.

Plain Python and NumPy, so ``dqt-hw train --help`` and the check of a configuration work
without PyTorch (the optional extra ``train``).
"""

from __future__ import annotations

import numpy as np

from ..design import Design

__all__ = ["DEFAULTS", "MASTER_BITS", "check_config"]

MASTER_BITS = Design().n
"""Master width n of the trained network (the default design's)."""

# the shipped network's configuration (``make train``): joint training, then controller
# fine-tuning on a quarter of the training inputs held out from the joint phase
DEFAULTS = dict(data="digits-contrast", stages=(16, 32, 64), widths=(2, 4, 6, 8), kprime=None,
                epochs=40, batch=64, lr=3e-3, alpha=0.5, beta=1.0, tau0=2.0, tau1=0.3,
                seed=0, threads=1, hidden=64, cost_target=None, ctrl_epochs=20, ctrl_lr=1e-2,
                ctrl_tau0=2.0, ctrl_tau1=0.5, ctrl_beta=0.25, ctrl_holdout=0.25, entropy=0.0)


def check_config(cfg) -> None:
    """Refuse an inconsistent training configuration (``ValueError`` naming the option)."""
    n = MASTER_BITS
    widths = tuple(cfg["widths"])
    if not widths or len(set(widths)) != len(widths) or any(
            not isinstance(b, (int, np.integer)) or not 1 <= b <= n for b in widths):
        raise ValueError(f"widths (K) must be distinct integers in [1, {n}], not {widths}")
    if cfg.get("kprime") is not None:
        kp = tuple(cfg["kprime"])
        if not kp or not set(kp) <= set(widths):
            raise ValueError(f"kprime (K') must be a non-empty subset of the widths K = "
                             f"{widths}, not {kp}")
    for key, lo in (("epochs", 1), ("ctrl_epochs", 0), ("batch", 1), ("threads", 1)):
        if int(cfg[key]) != cfg[key] or cfg[key] < lo:
            raise ValueError(f"{key} must be an integer >= {lo}, not {cfg[key]!r}")
    for key in ("alpha", "beta", "entropy", "ctrl_beta"):
        if cfg[key] is not None and not cfg[key] >= 0:
            raise ValueError(f"{key} must be >= 0, not {cfg[key]!r}")
    h = cfg["ctrl_holdout"]
    if not 0.0 <= h < 1.0:
        raise ValueError(f"ctrl_holdout must be a fraction in [0, 1), not {h!r}")
    for key in ("lr", "ctrl_lr", "tau0", "tau1", "ctrl_tau0", "ctrl_tau1"):
        if not cfg[key] > 0:
            raise ValueError(f"{key} must be > 0, not {cfg[key]!r}")
