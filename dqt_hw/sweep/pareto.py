"""Pareto front of a sweep and the plot that marks the chosen point."""

from __future__ import annotations

from ..files import atomic_savefig

__all__ = ["pareto_front", "choose_point", "plot_pareto"]


def pareto_front(rows, x: str, y: str) -> list[dict]:
    """The valid rows not dominated in (x, y), both minimized, sorted by x."""
    pts = sorted((r for r in rows if r.get("valid", True)), key=lambda r: (r[x], r[y]))
    front, best_y = [], float("inf")
    for r in pts:
        if r[y] < best_y:
            front.append(r)
            best_y = r[y]
    return front


def choose_point(rows, *, max_overflow_rate: float = 0.0, objective: str = "energy_pj"):
    """The point of least ``objective`` whose measured overflow rate is at most
    ``max_overflow_rate`` (ties: least area); None if no point qualifies."""
    ok = [r for r in rows if r.get("valid", True) and r["overflow_rate"] <= max_overflow_rate]
    if not ok:
        return None
    return min(ok, key=lambda r: (r[objective], r["area_um2"]))


def plot_pareto(rows, path, *, x="overflow_rate", y="energy_pj", chosen=None, title=""):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r.get("valid", True)]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    scale = 1e6 if y.endswith("_pj") else 1.0
    ylab = y.replace("_pj", " (uJ per inference)") if scale != 1 else y
    xdiv = 1e9 if x == "bitops" else 1
    stores = sorted({r.get("storage", "master") for r in rows})
    if len(stores) > 1:  # the storage axis: one colour per way of storing tensors
        for s, c in zip(stores, ("0.6", "tab:green", "tab:purple")):
            sel = [r for r in rows if r.get("storage", "master") == s]
            ax.scatter([r[x] / xdiv for r in sel], [r[y] / scale for r in sel], s=14, color=c,
                       label=f"sweep points, {s} storage")
    else:
        ax.scatter([r[x] / xdiv for r in rows], [r[y] / scale for r in rows], s=14,
                   color="0.6", label="sweep points")
    front = pareto_front(rows, x, y)
    fx = [r[x] / (1e9 if x == "bitops" else 1) for r in front]
    ax.plot(fx, [r[y] / scale for r in front], "-o", ms=4, color="tab:blue", label="Pareto front")
    if chosen is not None:
        cx = chosen[x] / (1e9 if x == "bitops" else 1)
        ax.scatter([cx], [chosen[y] / scale], s=140, marker="*", color="tab:red", zorder=5,
                   label=f"chosen: {chosen.get('mix')} W={chosen.get('acc_width')} "
                         f"{chosen.get('overflow')} {chosen.get('rows')}x{chosen.get('cols')}"
                         + (f" {chosen['storage']}" if len(stores) > 1 else ""))
    ax.set_xlabel({"overflow_rate": "measured overflow rate (outputs hit)",
                   "bitops": "G BitOPs per inference"}.get(x, x))
    ax.set_ylabel(ylab)
    ax.set_title(title or f"{y} against {x}", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=120)
    plt.close(fig)
    return str(path)
