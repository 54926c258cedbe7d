"""PNG plots of the cost models (matplotlib, Agg backend)."""

from __future__ import annotations

import os

from ..files import atomic_savefig

__all__ = ["plot_energy_breakdown", "plot_bitops_vs_mix", "plot_area_vs_widths"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_energy_breakdown(report: dict, path) -> str:
    """Stacked bars: energy per layer by part (compute, views, side sums, requant, SRAM,
    DRAM)."""
    from .energy import ENERGY_PARTS

    plt = _plt()
    rows = report["rows"]
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(rows) + 2), 4.5))
    x = range(len(rows))
    bottom = [0.0] * len(rows)
    for part in ENERGY_PARTS:
        v = [r[f"energy_{part}_pj"] / 1e6 for r in rows]
        ax.bar(x, v, bottom=bottom, label=part)
        bottom = [b + vv for b, vv in zip(bottom, v)]
    ax.set_xticks(list(x))
    ax.set_xticklabels([r["layer"] for r in rows], rotation=75, fontsize=7)
    ax.set_ylabel("energy per inference (uJ)")
    t = report["totals"]
    ax.set_title(f"{t['network']}: energy per layer, {t['tile']['rows']}x{t['tile']['cols']} "
                 f"tile, widths {t['width_mix']} ({t['tech']})", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=120)
    plt.close(fig)
    return str(path)


def plot_bitops_vs_mix(points: list[dict], path, *, chosen: str | None = None,
                       dynamic: dict | None = None, title="") -> str:
    """BitOPs (G) of each width mix (points: label, bitops, energy_pj), the chosen mix
    marked; the per-input mean +- std as an error bar when given."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    labels = [p["label"] for p in points]
    ax.bar(range(len(points)), [p["bitops"] / 1e9 for p in points], color="tab:blue")
    for i, p in enumerate(points):
        if p["label"] == chosen:
            ax.bar([i], [p["bitops"] / 1e9], color="tab:red", label=f"chosen ({chosen})")
    if dynamic:
        ax.errorbar([len(points)], [dynamic["bitops_mean"] / 1e9],
                    yerr=[dynamic["bitops_std"] / 1e9], fmt="o", color="tab:green",
                    label=f"per-input widths ({dynamic['inputs']} inputs)")
        labels = labels + ["dynamic"]
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_xlabel("width mix b_a x b_w")
    ax.set_ylabel("G BitOPs per inference")
    ax.set_title(title or "BitOPs against width mix", fontsize=9)
    if chosen or dynamic:
        ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=120)
    plt.close(fig)
    return str(path)


def plot_area_vs_widths(curves: dict, path, *, title="") -> str:
    """Tile area (mm^2) against the accumulator width W, one line per supported width set
    (curves: {label: [(W, area_um2), ...]})."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for label, pts in curves.items():
        ax.plot([w for w, _ in pts], [a / 1e6 for _, a in pts], marker="o", label=label)
    ax.set_xlabel("accumulator width W (bits)")
    ax.set_ylabel("tile area (mm^2, 45 nm, synthesis-fitted)")
    ax.set_title(title or "Tile area against W and the supported width set", fontsize=9)
    ax.legend(fontsize=8, title="supported widths")
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=120)
    plt.close(fig)
    return str(path)


def ensure_dir(path):
    os.makedirs(path, exist_ok=True)
    return path
