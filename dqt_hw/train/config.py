"""The trainer's configuration: its defaults (the shipped network's) and their checks.

Plain Python and NumPy, so ``dqt-hw train --help`` and the check of a configuration work
without PyTorch (the optional extra ``train``).
"""

from __future__ import annotations

import math

import numpy as np

from ..design import Design

__all__ = ["DEFAULTS", "INT_LIMITS", "MASTER_BITS", "MAX_CHANNELS", "MAX_STAGES",
           "check_config"]

MASTER_BITS = Design().n
"""Master width n of the trained network (the default design's)."""

# the shipped network's configuration (``make train``): joint training, then controller
# fine-tuning on a quarter of the training inputs held out from the joint phase
DEFAULTS = dict(data="digits-contrast", stages=(16, 32, 64), widths=(2, 4, 6, 8), kprime=None,
                epochs=40, batch=64, lr=3e-3, alpha=0.5, beta=1.0, tau0=2.0, tau1=0.3,
                seed=0, threads=1, hidden=64, cost_target=None, ctrl_epochs=20, ctrl_lr=1e-2,
                ctrl_tau0=2.0, ctrl_tau1=0.5, ctrl_beta=0.25, ctrl_holdout=0.25, entropy=0.0,
                init=None)


MAX_STAGES = 8
"""Most ResNet stages."""

MAX_CHANNELS = 1024
"""Most channels of one stage (a conv of C channels holds 9 C^2 weights)."""

INT_LIMITS = {"epochs": (1, 100_000), "ctrl_epochs": (0, 100_000), "batch": (1, 1 << 16),
              "threads": (1, 1024), "seed": (0, 2**32 - 1), "hidden": (1, 4096)}
"""[lo, hi] of every integer option (the CLI's types read them too)."""


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(
        v, (bool, np.bool_)) and math.isfinite(v)


def check_config(cfg) -> None:
    """Refuse an inconsistent training configuration (``ValueError`` naming the option):
    every count an integer in its range, every weight, rate and temperature finite."""
    n = MASTER_BITS
    widths = tuple(cfg["widths"])
    if not widths or len(set(widths)) != len(widths) or any(
            not _is_int(b) or not 1 <= b <= n for b in widths):
        raise ValueError(f"widths (K) must be distinct integers in [1, {n}], not {widths}")
    if cfg.get("kprime") is not None:
        kp = tuple(cfg["kprime"])
        if not kp or not set(kp) <= set(widths):
            raise ValueError(f"kprime (K') must be a non-empty subset of the widths K = "
                             f"{widths}, not {kp}")
    stages = tuple(cfg["stages"])
    if not 1 <= len(stages) <= MAX_STAGES or any(
            not _is_int(c) or not 1 <= c <= MAX_CHANNELS for c in stages):
        raise ValueError(f"stages must be 1 to {MAX_STAGES} channel counts in "
                         f"[1, {MAX_CHANNELS}], not {stages}")
    for key, (lo, hi) in INT_LIMITS.items():
        if key in cfg and (not _is_int(cfg[key]) or not lo <= cfg[key] <= hi):
            raise ValueError(f"{key} must be an integer in [{lo}, {hi}], not {cfg[key]!r}")
    for key in ("alpha", "beta", "entropy", "ctrl_beta"):
        if cfg[key] is not None and not (_is_number(cfg[key]) and cfg[key] >= 0):
            raise ValueError(f"{key} must be >= 0, not {cfg[key]!r}")
    t = cfg["cost_target"]
    if t is not None and not (_is_number(t) and 0.0 <= t <= 1.0):
        raise ValueError(f"cost_target must be a fraction in [0, 1] of the BitOPs at n/n, "
                         f"not {t!r}")
    h = cfg["ctrl_holdout"]
    if not (_is_number(h) and 0.0 <= h < 1.0):
        raise ValueError(f"ctrl_holdout must be a fraction in [0, 1), not {h!r}")
    for key in ("lr", "ctrl_lr", "tau0", "tau1", "ctrl_tau0", "ctrl_tau1"):
        if not (_is_number(cfg[key]) and cfg[key] > 0):
            raise ValueError(f"{key} must be > 0, not {cfg[key]!r}")
