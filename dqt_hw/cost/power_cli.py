"""``dqt-hw power``: energy of the generated tile from measured switching activity.

    dqt-hw power --out out/power                  # small: one tile of each run (~2 min)
    dqt-hw power --out out/power --max-macs 65536 --inputs 4     # make power

runs the tile (default: the 4x4 tile of the shipped network's arithmetic, the one of
sim/tb/tb_net.py; or ``--design``) in Verilator with ``--trace-saif`` on a ResNet-18
CIFAR-10 layer (seeded realistic data) and on a layer of the shipped trained network (its
own test images) at each width pair and at the controller's own widths, checks every
output row, counts the toggles of each component class and turns them into energy; the
plain int8 MAC array of the same shape runs the n x n jobs too (``--no-plain`` skips it),
for the DQT-vs-plain overhead of the PE array
(:mod:`dqt_hw.cost.activity`; docs/cost.md, "Energy from switching activity"). Writes
``power.json`` and ``power_vs_width.png`` into ``--out``. The benches (``sim/``) come with
the repository checkout.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SOURCES = ("resnet18", "shipped")


def register(sub):
    from ..design.cli import add_design_args

    p = sub.add_parser("power", help="energy of the tile from measured switching activity "
                                     "(Verilator SAIF toggles on layer data)",
                       description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_design_args(p)
    p.add_argument("--out", type=Path, default=Path("out/power"), metavar="DIR")
    p.add_argument("--pairs", default="8x8,6x6,4x4,2x2",
                   help="width pairs B_AxB_W (comma separated)")
    p.add_argument("--sources", default=",".join(SOURCES),
                   help=f"layer data, comma separated, of {', '.join(SOURCES)}")
    p.add_argument("--no-dynamic", action="store_true",
                   help="skip the controller's own widths on the shipped network")
    p.add_argument("--no-plain", action="store_true",
                   help="skip the plain int8 MAC array on the n x n runs' data")
    p.add_argument("--max-macs", type=int, default=4096,
                   help="tile MAC slots per run (at least one tile of the layer)")
    p.add_argument("--inputs", type=int, default=2,
                   help="test inputs of the shipped network per run")
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--tech", default="horowitz45", help="technology table (name or .json)")
    p.set_defaults(func=run)


def default_design():
    """The 4x4 tile of the shipped network's arithmetic (sim/matrix.py ``NET_TILE``)."""
    from ..design import Design
    from ..sim_cli import import_sim

    import_sim()
    from sim.matrix import NET_TILE

    return Design(component="tile", name="power_tile4x4", **NET_TILE)


def run(args) -> int:
    from ..design.cli import design_from_args, flag_params
    from ..files import atomic_write_text
    from ..golden.writer import parse_pairs
    from ..sim_cli import import_sim

    sources = [s for s in args.sources.replace(" ", "").split(",") if s]
    bad = [s for s in sources if s not in SOURCES]
    if bad or not sources:
        raise ValueError(f"--sources must name some of {', '.join(SOURCES)}, not "
                         f"{args.sources!r}")
    if args.max_macs < 1 or args.inputs < 1:
        raise ValueError(f"--max-macs and --inputs must be >= 1, not {args.max_macs} and "
                         f"{args.inputs}")
    pairs = parse_pairs(args.pairs)
    if args.design is None and not flag_params(args):
        design = default_design()
    else:
        design = design_from_args(args, component="tile")
    import_sim()
    from sim import activity

    rep = activity.measure(design, sources=sources, pairs=pairs,
                           dynamic=not args.no_dynamic, max_macs=args.max_macs,
                           inputs=args.inputs, seed=args.seed, tech=args.tech,
                           plain=not args.no_plain)
    rep["command"] = " ".join(["dqt-hw", *getattr(args, "argv", [])])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "power.json", json.dumps(rep, indent=1) + "\n")
    plot_power(rep, out / "power_vs_width.png")
    print(summary(rep))
    print(f"wrote {out / 'power.json'} and {out / 'power_vs_width.png'}")
    return 0


def summary(rep: dict) -> str:
    """A table: per run, toggles per MAC of the multiplier and accumulator and energy per
    MAC (activity and per-operation model)."""
    cap = rep["capacitance_ff"]
    lines = [f"per-toggle energy (pJ) / effective capacitance (fF) at {rep['voltage_v']} V: "
             + ", ".join(f"{k} {v:.4f}/" + (f"{cap[k]:.1f}" if cap[k] is not None else "-")
                         for k, v in rep["toggle_pj"].items()),
             f"{'run':<18} {'MACs':>7} {'mult tg/MAC':>11} {'acc tg/MAC':>10} "
             f"{'mult pJ/MAC':>11} {'acc pJ/MAC':>10} {'pJ/MAC':>8} {'model pJ/MAC':>12}"]
    for r in rep["runs"]:
        m, e, t = r["macs"], r["energy_pj"], r["toggles_per_mac"]
        lines.append(f"{r['label']:<18} {m:>7} {t['multiplier']:>11.2f} "
                     f"{t['accumulator']:>10.2f} {e['multiplier'] / m:>11.4f} "
                     f"{e['accumulator'] / m:>10.4f} {e['total'] / m:>8.4f} "
                     f"{r['op_model_pj']['total'] / m:>12.4f}")
    if rep.get("plain_runs"):
        lines.append("PE array alone (pJ/MAC; DQT: PEs, views, side sums, array registers) "
                     "against the plain MAC array on the same data:")
        for p in rep["plain_runs"]:
            plain = p["energy_pj"]["total"] / p["macs"]
            for r in rep["runs"]:
                if r["source"] == p["source"]:
                    dqt = r["array_energy_pj"]["total"] / r["macs"]
                    lines.append(f"  {r['label']:<18} DQT array {dqt:.4f}  plain array "
                                 f"(n x n) {plain:.4f}  {100 * (dqt / plain - 1):+6.1f} %")
    return "\n".join(lines)


def _mean_width(r):
    ps = r["input_pairs"]
    return sum((a + b) / 2 for a, b in ps) / len(ps)


def plot_power(rep: dict, path) -> str:
    """Energy per MAC against the width (mean of b_a and b_w; the controller's mix at its
    mean width), multiplier, accumulator and total from activity, total from the
    per-operation model; one line per source."""
    from ..files import atomic_savefig
    from .plots import _plt

    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    styles = {"resnet18": "o-", "shipped": "s--"}
    for src in sorted({r["source"] for r in rep["runs"]}):
        fixed = sorted((r for r in rep["runs"] if r["source"] == src and r["pair"] != "dynamic"),
                       key=_mean_width)
        x = [_mean_width(r) for r in fixed]
        st = styles.get(src, "^-")
        for key, ax in (("multiplier", axes[0]), ("accumulator", axes[0]), ("total", axes[1])):
            ax.plot(x, [r["energy_pj"][key] / r["macs"] for r in fixed], st,
                    label=f"{src} {key} (activity)")
        axes[1].plot(x, [r["op_model_pj"]["total"] / r["macs"] for r in fixed], st,
                     alpha=0.4, label=f"{src} total (per-op model)")
        for r in rep["runs"]:
            if r["source"] == src and r["pair"] == "dynamic":
                axes[1].plot([_mean_width(r)], [r["energy_pj"]["total"] / r["macs"]], "r*",
                             markersize=12, label=f"{src} controller's mix (activity)")
    for ax, t in ((axes[0], "multiplier and accumulator"), (axes[1], "tile total")):
        ax.set_xlabel("width b (mean of b_a, b_w)")
        ax.set_ylabel("energy per MAC slot (pJ)")
        ax.set_title(f"{t}: {rep['design']}, {rep['tech']}", fontsize=9)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=120)
    plt.close(fig)
    return str(path)
