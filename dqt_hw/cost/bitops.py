"""BitOPs: sum over the conv/fc layers of MACs x b_a x b_w.

``static_bitops`` for one width mix (a pair per layer); ``dynamic_bitops`` for per-input
widths (the controller's choices), giving the mean and spread over inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .workload import DynamicWidths, WidthMix, load_network

__all__ = ["static_bitops", "dynamic_bitops", "DynamicBitops"]


def static_bitops(network, mix) -> tuple[list[dict], int]:
    """(rows, total): per layer ``name, macs, b_a, b_w, bitops``; total bitops."""
    g = load_network(network)
    mix = WidthMix.parse(mix).check(g)
    rows = []
    for r in g.layer_table():
        b_a, b_w = mix.pair(r["name"])
        rows.append({"name": r["name"], "macs": r["macs"], "b_a": b_a, "b_w": b_w,
                     "bitops": r["macs"] * b_a * b_w})
    return rows, sum(r["bitops"] for r in rows)


@dataclass(frozen=True)
class DynamicBitops:
    per_input: np.ndarray  # (inputs,) bitops of each input
    per_layer_mean: np.ndarray  # (layers,) mean bitops of each layer over inputs
    layers: tuple

    @property
    def mean(self) -> float:
        return float(self.per_input.mean())

    @property
    def std(self) -> float:
        return float(self.per_input.std())

    @property
    def min(self) -> int:
        return int(self.per_input.min())

    @property
    def max(self) -> int:
        return int(self.per_input.max())

    def summary(self) -> dict:
        return {"inputs": int(self.per_input.size), "bitops_mean": self.mean,
                "bitops_std": self.std, "bitops_min": self.min, "bitops_max": self.max}


def dynamic_bitops(network, widths: DynamicWidths) -> DynamicBitops:
    """BitOPs of each input under per-input widths, and their mean and spread."""
    g = load_network(network)
    table = g.layer_table()
    names = tuple(r["name"] for r in table)
    if tuple(widths.layers) != names:
        raise ValueError(
            f"per-input widths are for layers {widths.layers[:3]}..., not the "
            f"{len(names)} conv/fc layers of {g.name}")
    macs = np.array([r["macs"] for r in table], dtype=np.int64)
    w = np.asarray(widths.widths, dtype=np.int64)
    per = macs[None, :] * w[:, :, 0] * w[:, :, 1]
    return DynamicBitops(per.sum(axis=1), per.mean(axis=0), names)
