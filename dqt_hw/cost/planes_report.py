"""Energy per inference under master, packed and bit-plane storage (docs/cost.md, "Bit-plane
storage"): ``make planes-report`` = ``dqt-hw cost-planes --out out/planes``.

- the table: ResNet-18 CIFAR-10, ResNet-50 ImageNet and the shipped network
  (``resnet8_digits``) at 8/8, 6/6, 4/4 and 2/2, and the shipped network under its
  controller's per-input widths (its 359 test inputs), on the default tile, under
  ``master``, ``packed`` and ``planes`` storage (floor views), and ``planes`` on the same
  tile with half_up views (one plane more a read);
- the figure: energy per inference against test accuracy of the shipped network for its
  static widths, its knapsack mixes and its controller (``dqt_hw.net.results.run_results``,
  the accuracies of ``dqt-hw run``), under master and planes storage.

Every file is written atomically, ``summary.json`` last.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..files import SUMMARY, atomic_savefig, atomic_write_text, begin_outputs

__all__ = ["STORAGES", "TABLE_NETS", "TABLE_MIXES", "static_table", "shipped_points",
           "markdown_table", "plot_energy_accuracy", "register"]

TABLE_NETS = ("resnet18_cifar10", "resnet50_imagenet", "resnet8_digits")
TABLE_MIXES = ("8x8", "6x6", "4x4", "2x2")
STORAGES = {  # column: (storage, the tile's view rounding)
    "master": ("master", "floor"),
    "packed": ("packed", "floor"),
    "planes": ("planes", "floor"),
    "planes, half_up views": ("planes", "half_up"),
}
SHIPPED = "resnet8_digits"


def _graph(name: str):
    """The layer graph of ``name``; the shipped network's own file for ``SHIPPED`` (its
    three stages and downsample convs, as trained; the builder of that name is smaller)."""
    from .workload import load_network

    if name == SHIPPED:
        from ..net import network as nw

        return load_network(str(nw.default_path()))
    return load_network(name)


def _tile(rounding: str):
    from ..design import Design

    return Design(view_rounding=rounding)


def _energy_uj(g, mix=None, dynamic=None, *, column: str) -> float:
    from .energy import MemoryConfig, dynamic_energy, network_energy

    storage, rounding = STORAGES[column]
    mem = MemoryConfig(storage=storage)
    if dynamic is not None:
        return dynamic_energy(g, _tile(rounding), dynamic, memory=mem)["mean_pj"] / 1e6
    return network_energy(g, _tile(rounding), mix, memory=mem)[1]["total_pj"] / 1e6


def static_table(nets=TABLE_NETS, mixes=TABLE_MIXES) -> list[dict]:
    """Rows {network, widths, <storage column>: uJ per inference} of the static mixes."""
    from .workload import WidthMix

    rows = []
    for net in nets:
        g = _graph(net)
        for m in mixes:
            mix = WidthMix.parse(m).check(g)
            rows.append({"network": g.name + (" (shipped)" if net == SHIPPED else ""),
                         "widths": m.replace("x", "/"),
                         **{c: _energy_uj(g, mix, column=c) for c in STORAGES}})
    return rows


def shipped_points(*, calibration: int = 400, limit=None, log=print) -> dict:
    """The shipped network's accuracy (``run_results``: static widths, knapsack mixes,
    controller) with the energy per inference of each point under every storage column;
    the controller's energy is the mean over the test inputs of each one's widths."""
    from ..net import network as nw
    from ..net.executor import execute, input_codes
    from ..net.results import run_results
    from ..train import data as data_mod
    from .workload import DynamicWidths, WidthMix

    net = nw.load(nw.default_path())
    ds = data_mod.load(net.provenance["data"])
    xt, yt = ds.x_test[:limit], ds.y_test[:limit]
    res = run_results(net, xt, yt, ds.x_train[:calibration], ds.y_train[:calibration],
                      log=log)
    g = _graph(SHIPPED)
    pts = []
    for s in res["static"]:
        mix = WidthMix.parse(f"{s['width']}x{s['width']}").check(g)
        pts.append({"kind": "static", "label": f"{s['width']}/{s['width']}",
                    "accuracy": s["accuracy"], "mean_bitops": s["mean_bitops"],
                    **{c: _energy_uj(g, mix, column=c) for c in STORAGES}})
    seen = set()
    for k in res["knapsack"]:
        if tuple(k["mix"].items()) in seen:  # a larger budget may pick the same mix
            continue
        seen.add(tuple(k["mix"].items()))
        mix = WidthMix.parse({nm: f"{b}x{b}" for nm, b in k["mix"].items()}).check(g)
        pts.append({"kind": "knapsack", "label": ",".join(str(b) for b in k["mix"].values()),
                    "accuracy": k["accuracy"], "mean_bitops": k["mean_bitops"],
                    **{c: _energy_uj(g, mix, column=c) for c in STORAGES}})
    if res["dynamic"] is not None:
        r = execute(net, input_codes(net, xt), widths="dynamic")
        dyn = DynamicWidths(tuple(r.layers), r.widths)
        pts.append({"kind": "controller", "label": "controller",
                    "accuracy": res["dynamic"]["accuracy"],
                    "mean_bitops": res["dynamic"]["mean_bitops"],
                    **{c: _energy_uj(g, dynamic=dyn, column=c) for c in STORAGES}})
    return {"network": res["network"], "test_inputs": res["test_inputs"], "points": pts}


def markdown_table(rows: list[dict], shipped: dict | None) -> str:
    """The docs/cost.md table: uJ per inference, one column per storage."""
    cols = list(STORAGES)
    out = ["| network | widths | " + " | ".join(cols) + " |",
           "| --- | --- | " + " | ".join("---:" for _ in cols) + " |"]
    for r in rows:
        out.append(f"| {r['network']} | {r['widths']} | "
                   + " | ".join(f"{r[c]:,.2f}" for c in cols) + " |")
    if shipped is not None:
        for p in shipped["points"]:
            if p["kind"] == "controller":
                out.append(f"| {shipped['network']} (shipped) | controller (mean of "
                           f"{shipped['test_inputs']} inputs) | "
                           + " | ".join(f"{p[c]:,.2f}" for c in cols) + " |")
    return "\n".join(out) + "\n"


def plot_energy_accuracy(shipped: dict, path, *, columns=("master", "planes")) -> str:
    """Energy per inference against test accuracy of the shipped network: static widths,
    knapsack mixes and the controller under each storage column."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = shipped["points"]
    fig, ax = plt.subplots(figsize=(6.5, 4.3))
    colours = {"master": "tab:gray", "packed": "tab:orange", "planes": "tab:blue",
               "planes, half_up views": "tab:purple"}
    marks = {"static": ("o-", 6), "knapsack": ("s--", 5), "controller": ("*", 15)}
    names = {"static": "static widths", "knapsack": "knapsack mixes",
             "controller": "controller"}
    for c in columns:
        for kind, (fmt, ms) in marks.items():
            sel = sorted((p for p in pts if p["kind"] == kind), key=lambda p: p[c])
            if not sel:
                continue
            ax.plot([p[c] for p in sel], [100 * p["accuracy"] for p in sel], fmt, ms=ms,
                    color=colours[c], label=f"{names[kind]}, {c} storage")
            if kind == "static" and c == columns[-1]:
                for p in sel:
                    ax.annotate(p["label"], (p[c], 100 * p["accuracy"]), fontsize=7,
                                textcoords="offset points", xytext=(4, -10))
    ax.set_xlabel("energy per inference (uJ), default 8x8 tile, horowitz45")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{shipped['network']}: energy against accuracy, tensors stored at the "
                 f"master width\nor as bit-planes ({shipped['test_inputs']} test inputs)",
                 fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=120)
    plt.close(fig)
    return str(path)


# ----------------------------------------------------------------------------- command


COMMAND = "dqt-hw cost-planes --out out/planes --figure docs/img/energy_vs_accuracy_planes.png"


def register(subparsers):
    p = subparsers.add_parser(
        "cost-planes", help="energy per inference under master, packed and bit-plane storage",
        description="The table of docs/cost.md (ResNet-18 CIFAR-10, ResNet-50, the shipped "
                    "network at 8/8..2/2 and its controller, under master, packed and "
                    "planes storage) and the energy-against-accuracy plot of the shipped "
                    "network (static widths, knapsack mixes, controller).")
    p.add_argument("--out", type=Path, default=Path("out/planes"))
    p.add_argument("--figure", type=Path, default=None,
                   help="also write the plot here (docs/img/energy_vs_accuracy_planes.png)")
    p.add_argument("--no-shipped", action="store_true",
                   help="only the static table (no run of the shipped network)")
    p.set_defaults(func=_main)


def _main(args) -> int:
    rows = static_table()
    shipped = None if args.no_shipped else shipped_points(log=lambda *a: None)
    out = begin_outputs(args.out)
    text = markdown_table(rows, shipped)
    files = [out / "energy_table.md", out / "energy.json"]
    atomic_write_text(files[0], text)
    atomic_write_text(files[1], json.dumps({"command": COMMAND, "static": rows,
                                            "shipped": shipped}, indent=1) + "\n")
    if shipped is not None:
        files.append(Path(plot_energy_accuracy(shipped, out / "energy_vs_accuracy.png")))
        if args.figure is not None:
            files.append(Path(plot_energy_accuracy(shipped, args.figure)))
        print(f"{'point':28s} {'accuracy':>8s} " + " ".join(f"{c:>22s}" for c in STORAGES))
        for p in shipped["points"]:
            print(f"{p['kind'] + ' ' + p['label']:28.28s} {100 * p['accuracy']:>7.2f}% "
                  + " ".join(f"{p[c]:>19.3f} uJ" for c in STORAGES))
    print(text)
    files.append(out / SUMMARY)
    atomic_write_text(out / SUMMARY, json.dumps({"files": [str(f) for f in files]},
                                                indent=1) + "\n")
    print("wrote: " + ", ".join(str(f) for f in files))
    return 0
