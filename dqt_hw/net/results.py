"""What an architect and a researcher want from a trained DQT network (``dqt-hw run``):

- accuracy against mean BitOPs per input for every static width, for the dynamic
  controller, and for the best static per-layer mix at the same BitOPs (a multiple-choice
  knapsack over layers);
- the histogram of the controller's chosen widths per layer;
- the precision-switch operations actually performed per input (width-register switches
  between consecutive inputs, and nested-view shifts).

Everything is computed with the integer executor; BitOPs of a layer are MACs * b_a * b_w.

The knapsack: each layer l and candidate width b costs c_lb = MACs_l * b * b BitOPs; its
value is minus the increase of the mean cross-entropy on a calibration set (part of the
training data, never the test data) when layer l alone runs at b/b and every other layer at
n/n. Values are taken as additive and the mix maximizing the total value within a BitOPs
budget is found by dynamic programming over a budget grid; each mix is then evaluated on
the test set like any other static mix.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..files import SUMMARY, atomic_savefig, atomic_write_text, begin_outputs
from .executor import execute, input_codes
from .network import Network


def _xent(logits, y):
    z = logits - logits.max(axis=1, keepdims=True)
    lp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-lp[np.arange(len(y)), y].mean())


def layer_sensitivity(net: Network, x, y, *, batch_size=512):
    """{layer: {b: mean cross-entropy increase}} with one layer at b/b, others n/n."""
    n = net.arith.n
    base = _xent(execute(net, x, widths=n, batch_size=batch_size).logits, y)
    sens = {}
    for nm in net.compute_layers():
        sens[nm] = {}
        for b in net.layers[nm].widths:
            if b == n:
                sens[nm][b] = 0.0
                continue
            mix = {k: n for k in net.compute_layers()}
            mix[nm] = b
            sens[nm][b] = _xent(execute(net, x, widths=mix, batch_size=batch_size).logits,
                                y) - base
    return sens


def knapsack(net: Network, sens: dict, budget_bitops: float, *, max_cells: int = 4_000_000
             ) -> dict:
    """The per-layer width mix (name -> b) of least total sensitivity whose BitOPs per
    input are within ``budget_bitops`` (multiple-choice knapsack by dynamic programming
    over cost in units of the gcd of all options' BitOPs, so exact; when that grid would
    exceed ``max_cells``, a coarser unit with costs rounded up, so the budget still holds)."""
    import math

    table = {r["name"]: r for r in net.graph.layer_table()}
    names = net.compute_layers()
    costs = {nm: {b: table[nm]["macs"] * b * b for b in net.layers[nm].widths} for nm in names}
    unit = 0
    for d in costs.values():
        for c in d.values():
            unit = math.gcd(unit, c)
    top = sum(max(d.values()) for d in costs.values())
    if top // unit > max_cells:
        unit = -(-top // max_cells)
    cap = int(budget_bitops // unit)
    INF = float("inf")
    best = np.full(cap + 1, INF)
    best[0] = 0.0
    choice = []
    for nm in names:
        opts = [(-(-costs[nm][b] // unit), sens[nm][b], b) for b in net.layers[nm].widths]
        nxt = np.full(cap + 1, INF)
        arg = np.zeros(cap + 1, np.int64)
        for i, (c, v, b) in enumerate(opts):
            if c > cap:
                continue
            cand = np.full(cap + 1, INF)
            cand[c:] = best[:cap + 1 - c] + v
            better = cand < nxt
            nxt[better] = cand[better]
            arg[better] = i
        choice.append((opts, arg))
        best = nxt
    if not np.isfinite(best).any():
        raise ValueError(f"no width mix fits a budget of {budget_bitops:.4g} BitOPs")
    j = int(np.argmin(best))
    mix = {}
    for nm, (opts, arg) in zip(reversed(names), reversed(choice)):
        c, v, b = opts[arg[j]]
        mix[nm] = b
        j -= c
    return {nm: mix[nm] for nm in names}


def run_results(net: Network, x_test, y_test, x_cal=None, y_cal=None, *, out=None,
                batch_size=512, progress=False, log=print) -> dict:
    """Static widths, the network's own mix (an imported model's per-layer widths,
    ``provenance.mix``, where it has one), dynamic controller and knapsack mixes on
    (x_test, y_test) (real inputs in [0, 1]); writes results.json and PNG plots under
    ``out`` when given, each file atomically and ``summary.json`` (listing them) last
    (``dqt_hw.files``)."""
    xq = input_codes(net, x_test)
    widths = sorted(set.intersection(*(set(net.layers[nm].widths)
                                       for nm in net.compute_layers())))
    res = {"network": net.name, "test_inputs": int(len(y_test)), "static": [],
           "own_mix": None, "knapsack": [], "dynamic": None}
    for b in widths:
        r = execute(net, xq, widths=b, batch_size=batch_size, progress=progress,
                    desc=f"static {b}")
        res["static"].append({"width": b, "accuracy": r.accuracy(y_test),
                              "mean_bitops": float(r.bitops.mean())})
        log(f"static {b}/{b}: accuracy {r.accuracy(y_test):.4f}, "
            f"{r.bitops.mean() / 1e6:.3f} M BitOPs per input")
    budgets = [s["mean_bitops"] for s in res["static"]]
    own = net.provenance.get("mix")
    if own:
        # the widths the imported model was quantized at (QONNX Quant nodes per layer):
        # the mix its authors ran, beside the uniform ones and a knapsack at its budget
        wm = net.width_mix(own)  # each a candidate width pair of its layer, or an error
        r = execute(net, xq, widths=wm, batch_size=batch_size, progress=progress,
                    desc="own mix")
        res["own_mix"] = {"mix": {nm: [int(a), int(b)]
                                  for nm, (a, b) in zip(net.compute_layers(), wm)},
                          "accuracy": r.accuracy(y_test),
                          "mean_bitops": float(r.bitops.mean())}
        pairs = sorted({f"{a}x{b}" for a, b in res["own_mix"]["mix"].values()})
        log(f"the model's own mix ({', '.join(pairs)}; provenance.mix): accuracy "
            f"{r.accuracy(y_test):.4f}, {r.bitops.mean() / 1e6:.3f} M BitOPs per input")
        budgets.append(res["own_mix"]["mean_bitops"])
    if net.controller is not None:
        r = execute(net, xq, widths="dynamic", batch_size=batch_size, progress=progress,
                    desc="dynamic")
        names = r.layers
        hist = {nm: {int(b): int((r.widths[:, i, 0] == b).sum()) for b in net.layers[nm].widths}
                for i, nm in enumerate(names)}
        sw, sh = r.switches(), r.shifts(net)
        mixes = {tuple(w[:, 0]) for w in r.widths}
        res["dynamic"] = {
            "accuracy": r.accuracy(y_test), "mean_bitops": float(r.bitops.mean()),
            "controller_bitops": int(r.controller_bitops), "width_histogram": hist,
            "distinct_mixes": len(mixes),
            "switches_per_input": {"mean": float(sw.mean()), "max": int(sw.max()),
                                   "per_input": sw.tolist()},
            "shifts_per_input": {"mean": float(sh.mean()), "max": int(sh.max()),
                                 "per_input": sh.tolist()},
            "dequant_requant_float_mults_per_input": float(2 * sh.mean()),
        }
        log(f"dynamic: accuracy {r.accuracy(y_test):.4f}, {r.bitops.mean() / 1e6:.3f} M BitOPs "
            f"per input (+{r.controller_bitops / 1e6:.3f} M controller), {len(mixes)} "
            f"distinct width mixes, {sw.mean():.2f} layer switches and {sh.mean():,.0f} "
            f"shifts per input")
        budgets.append(float(r.bitops.mean()))
    if x_cal is not None:
        sens = layer_sensitivity(net, input_codes(net, x_cal), np.asarray(y_cal),
                                 batch_size=batch_size)
        res["sensitivity"] = {nm: {str(b): v for b, v in d.items()} for nm, d in sens.items()}
        for budget in sorted(set(budgets)):
            mix = knapsack(net, sens, budget)
            r = execute(net, xq, widths=mix, batch_size=batch_size)
            res["knapsack"].append({"budget_bitops": budget, "mix": mix,
                                    "accuracy": r.accuracy(y_test),
                                    "mean_bitops": float(r.bitops.mean())})
            log(f"knapsack mix within {budget / 1e6:.3f} M BitOPs: accuracy "
                f"{r.accuracy(y_test):.4f} at {r.bitops.mean() / 1e6:.3f} M "
                f"({','.join(str(mix[k]) for k in mix)})")
    if out is not None:
        out = begin_outputs(out)  # removes summary.json: written last, when all is done
        atomic_write_text(out / "results.json", json.dumps(res, indent=1) + "\n")
        res["plots"] = plot_results(res, out)
        files = [str(out / "results.json"), *res["plots"], str(out / SUMMARY)]
        atomic_write_text(out / SUMMARY, json.dumps({"network": res["network"],
                                                     "files": files}, indent=1) + "\n")
    return res


def plot_results(res: dict, out: Path) -> list:
    """accuracy_vs_bitops.png, width_histogram.png, switches.png under ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    fig, ax = plt.subplots(figsize=(6, 4))
    st = res["static"]
    ax.plot([s["mean_bitops"] / 1e6 for s in st], [100 * s["accuracy"] for s in st], "o-",
            label="static uniform widths")
    for s in st:
        ax.annotate(f"{s['width']}/{s['width']}", (s["mean_bitops"] / 1e6, 100 * s["accuracy"]),
                    textcoords="offset points", xytext=(4, -10), fontsize=8)
    if res["knapsack"]:
        ks = sorted(res["knapsack"], key=lambda k: k["mean_bitops"])
        ax.plot([k["mean_bitops"] / 1e6 for k in ks], [100 * k["accuracy"] for k in ks], "s--",
                label="best static per-layer mix (knapsack)")
    if res.get("own_mix"):
        m = res["own_mix"]
        ax.plot([m["mean_bitops"] / 1e6], [100 * m["accuracy"]], "D", markersize=9,
                label="the model's own mix (provenance.mix)")
    if res["dynamic"]:
        d = res["dynamic"]
        ax.plot([d["mean_bitops"] / 1e6], [100 * d["accuracy"]], "*", markersize=14,
                label="dynamic (controller)")
    ax.set_xlabel("mean BitOPs per input (M)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{res['network']}: accuracy vs BitOPs ({res['test_inputs']} test inputs)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    p = out / "accuracy_vs_bitops.png"
    atomic_savefig(fig, p, dpi=120)
    plt.close(fig)
    files.append(str(p))
    if res["dynamic"]:
        d = res["dynamic"]
        hist = d["width_histogram"]
        names = list(hist)
        ws = sorted({int(b) for h in hist.values() for b in h})
        fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(names)), 4))
        bottom = np.zeros(len(names))
        for b in ws:
            v = np.array([hist[nm].get(b, 0) for nm in names], float)
            ax.bar(range(len(names)), v, bottom=bottom, label=f"{b} bits")
            bottom += v
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("inputs")
        ax.set_title("controller's chosen width per layer")
        ax.legend(fontsize=8)
        fig.tight_layout()
        p = out / "width_histogram.png"
        atomic_savefig(fig, p, dpi=120)
        plt.close(fig)
        files.append(str(p))
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.5))
        sw = d["switches_per_input"]["per_input"]
        sh = d["shifts_per_input"]["per_input"]
        a1.hist(sw, bins=range(0, max(sw) + 2), align="left")
        a1.set_xlabel("layers switching width vs the previous input")
        a1.set_ylabel("inputs")
        a2.hist(np.asarray(sh) / 1e3, bins=20)
        a2.set_xlabel("nested-view shifts per input (k)")
        fig.suptitle("precision-switch operations per input")
        fig.tight_layout()
        p = out / "switches.png"
        atomic_savefig(fig, p, dpi=120)
        plt.close(fig)
        files.append(str(p))
    return files
