"""``dqt-hw cost`` and ``dqt-hw synth``."""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

from ..design.cli import add_design_args, design_from_args
from ..files import atomic_path, atomic_write_text, begin_outputs
from ..schema import int_in


def register(subparsers):
    p = subparsers.add_parser(
        "cost", help="cost report of a tile configuration on a network",
        description="Per-layer BitOPs, cycles (SCALE-Sim fields), energy by part, the "
                    "precision-switch cost and the tile area; writes CSV/JSON and PNG plots.")
    p.add_argument("--net", default="resnet18_cifar10",
                   help="resnet18_cifar10, resnet50_imagenet, or a JSON network file")
    p.add_argument("--widths", default="8x8",
                   help="static width mix: 'b_a x b_w' (e.g. 4x4, 4x8) or a JSON file "
                        "{\"*\": \"4x4\", \"conv1\": \"8x8\"}")
    p.add_argument("--per-input", default=None,
                   help="per-input widths (.csv input,layer,b_a,b_w / .npy (inputs, layers, 2))")
    add_design_args(p, widths_flag="--supported", component=False)
    p.add_argument("--tech", default="horowitz45", help="technology table name or JSON file")
    p.add_argument("--pe", default="fixed", choices=("fixed", "scalable", "bit_serial"),
                   help="PE cycle model: fixed n x n (the tile's MACPE), scalable "
                        "(ScalableMACPE packing, max_pack 4) or bit-serial")
    p.add_argument("--storage", default="master", choices=("master", "packed", "planes"),
                   help="how tensors are stored: once at the master width n (default), packed "
                        "at each view width, or as n bit-planes of which a view reads a "
                        "prefix (docs/arithmetic.md 2.3; words of --plane-word-bits)")
    p.add_argument("--plane-word-bits", type=int_in(1, 4096), default=None,
                   help="--storage planes: bits of a packed plane word (default 64, the "
                        "technology tables' SRAM word)")
    p.add_argument("--out", default="out/cost")
    p.add_argument("--clock-mhz", type=float, default=None,
                   help="clock in MHz: time per inference and inferences/s per layer and "
                        "network beside the cycles (e.g. a recorded Fmax, docs/cost.md)")
    p.add_argument("--clock-from", default=None, metavar="TARGET/NAME",
                   help="the clock is the recorded median Fmax of an FPGA figure "
                        "(dqt_hw/cost/data/fpga_baseline.json), e.g. ecp5/dqt_array4x4")
    p.add_argument("--no-plots", action="store_true")
    p.set_defaults(func=_cost)

    s = subparsers.add_parser(
        "synth", help="synthesize configurations with Yosys (cells, transistors), fit the area model",
        description="Runs Debian's yosys (synth -flatten; dfflegalize; abc -g cmos; stat "
                    "-tech cmos; stat -json) on generated configurations; tiles of more "
                    "than 4 PEs and arrays of more than 16 with the same passes per module, "
                    "summed over the hierarchy (flow 'abc-fast-hier', ABC's fast script; labelled in the output).")
    s.add_argument("configs", nargs="*",
                   help="configuration names (default: the whole fit set, see --list)")
    s.add_argument("--list", action="store_true", help="list the configurations and exit")
    s.add_argument("--all", action="store_true",
                   help="include the large reference tiles (8x8, hierarchical flow: a few "
                        "minutes each)")
    s.add_argument("--out", default="out/synth")
    s.add_argument("--yosys", default=None, help="yosys binary (default: yosys on PATH)")
    s.add_argument("--fit", action="store_true",
                   help="fit the analytic area model and write its coefficients")
    s.add_argument("--coeffs", default=None,
                   help="where --fit writes (default: <out>/area_coeffs.json; with "
                        "--write-baseline: dqt_hw/cost/data/area_coeffs.json)")
    s.add_argument("--write-baseline", action="store_true",
                   help="record the results as dqt_hw/cost/data/synth_baseline.json and "
                        "refit the package's area model (dqt_hw/cost/data/area_coeffs.json)")
    s.add_argument("--record", action="store_true",
                   help="add (or replace) these results in dqt_hw/cost/data/synth_baseline.json "
                        "without refitting the area model")
    s.add_argument("--check", action="store_true",
                   help="fail when a result moved beyond the baseline's tolerance")
    s.add_argument("--reuse", default=None,
                   help="results.json of an earlier run: configurations found there are not resynthesized")
    s.add_argument("--fpga", default=None, choices=("ecp5", "ice40"),
                   help="FPGA figures instead of CMOS: synth_ecp5 / synth_ice40 into nextpnr "
                        "(yowasp-nextpnr-*), LUTs, flip-flops, DSPs, block RAM, I/O and Fmax "
                        "over --seeds placement seeds; --record / --check use "
                        "dqt_hw/cost/data/fpga_baseline.json")
    s.add_argument("--seeds", default="1,2,3",
                   help="placement seeds of --fpga (comma-separated; default 1,2,3)")
    s.add_argument("--device", default=None, choices=("25k", "45k", "85k"),
                   help="--fpga ecp5 part (default 25k; the 8x8 tile of --all needs 85k)")
    s.add_argument("--freq", type=float, default=None,
                   help="--fpga clock constraint in MHz (default: ecp5 100, ice40 50)")
    s.set_defaults(func=_synth)


# ----------------------------------------------------------------------------- cost


def _write_csv(path, rows):
    if not rows:
        return
    keys = list(rows[0])
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


def _cost(args) -> int:
    from .area import load_area_model
    from .bitops import static_bitops
    from .plots import plot_area_vs_widths, plot_bitops_vs_mix, plot_energy_breakdown
    from .report import cost_report, format_table
    from .tech import load_tech
    from .energy import MemoryConfig
    from .workload import DynamicWidths, WidthMix, load_network

    clock = args.clock_mhz
    if args.clock_from is not None:
        from .fpga import recorded_fmax

        if clock is not None:
            raise ValueError("--clock-mhz and --clock-from: give one clock, not both")
        clock = recorded_fmax(args.clock_from)
    g = load_network(args.net)
    tech = load_tech(args.tech)
    tile = design_from_args(args, component="tile")
    mix = WidthMix.parse(args.widths).check(g)
    dyn = DynamicWidths.load(args.per_input, g, tile=tile) if args.per_input else None
    if args.plane_word_bits is not None and args.storage != "planes":
        raise ValueError("--plane-word-bits sizes the words of --storage planes; give "
                         "--storage planes too")
    mem = MemoryConfig(storage=args.storage) if args.plane_word_bits is None else \
        MemoryConfig(storage=args.storage, plane_word_bits=args.plane_word_bits)
    rep = cost_report(g, tile, mix, tech=tech, memory=mem,
                      dynamic=dyn, pe_mode=args.pe, clock_mhz=clock)
    print(format_table(rep))
    # every input is checked: now the directory, every file atomically, summary.json last
    out = begin_outputs(args.out)
    _write_csv(out / "layers.csv", rep["rows"])
    written = [out / "layers.csv"]
    if not args.no_plots:
        written.append(plot_energy_breakdown(rep, out / "energy_breakdown.png"))
        pts = []
        for b in (2, 3, 4, 5, 6, 8):
            if b <= tile.n:
                _, tot = static_bitops(g, f"{b}x{b}")
                pts.append({"label": f"{b}x{b}", "bitops": tot})
        if mix.describe() not in [p["label"] for p in pts]:
            pts.append({"label": mix.describe(), "bitops": rep["totals"]["bitops"]})
        written.append(plot_bitops_vs_mix(pts, out / "bitops_vs_mix.png", chosen=mix.describe(),
                                          dynamic=rep["totals"].get("dynamic_bitops"),
                                          title=f"{g.name}: BitOPs against width mix"))
        try:
            from ..design.rules import min_acc_width

            am = load_area_model()
            curves = {}
            sets = {"all 1..n": None, "2,4,8": (2, 4, 8), "4,8": (4, 8), "8": (8,)}
            for label, ws in sets.items():
                if ws and max(ws) > tile.n:
                    continue
                pts2 = []
                w0 = min_acc_width(tile.n, widths=ws)  # the narrowest W the hardware takes
                for W in (w0, w0 + 4, w0 + 8, w0 + 12, w0 + 16):
                    pts2.append((W, am.area_um2(tile.replace(acc_width=W, widths=ws))))
                curves[label] = pts2
            written.append(plot_area_vs_widths(
                curves, out / "area_vs_widths.png",
                title=f"{tile.rows}x{tile.cols} tile area against W and the supported widths"))
        except ValueError as e:
            print(f"area plot skipped: {e}", file=sys.stderr)
    written.append(out / "summary.json")
    atomic_write_text(out / "summary.json", json.dumps(
        {**rep["totals"], "files": [str(w) for w in written]}, indent=2,
        default=str) + "\n")
    print(f"\nwrote: {', '.join(str(w) for w in written)}")
    return 0


# ----------------------------------------------------------------------------- synth


def _synth(args) -> int:
    """``dqt-hw synth``; a missing or failing tool is one line (exit status 1)."""
    from .fpga import FpgaError
    from .synth import YosysError

    try:
        return _synth_fpga(args) if args.fpga else _synth_cmos(args)
    except (YosysError, FpgaError) as e:
        raise OSError(str(e)) from None


def _synth_cmos(args) -> int:
    from .area import fit_area
    from .synth import (BASELINE_TOLERANCE, FLOW_SCRIPTS, compare_baseline, fit_configs,
                        fits_area_model, load_baseline, load_results, synthesize)

    configs = fit_configs(include_large=args.all or bool(args.configs))
    names = {(c if isinstance(c, str) else c.name): c for c in configs}
    if args.list:
        for n, c in names.items():
            print(n if isinstance(c, str) else f"{n:28s} {c.component:8s} {c.parameters()}")
        return 0
    chosen = args.configs or list(names)
    unknown = [c for c in chosen if c not in names]
    if unknown:
        raise ValueError(f"unknown synthesis configurations {unknown} (see dqt-hw synth --list)")
    reuse = load_results(args.reuse) if args.reuse else {}
    out = Path(args.out)
    os.makedirs(out, exist_ok=True)
    results = []
    for name in chosen:
        if name in reuse:
            results.append(reuse[name])
            continue
        r = synthesize(names[name], yosys=args.yosys).as_dict()
        results.append(r)
        flow = r.get("flow", "abc")
        label = "" if flow == "abc" else f"  [{flow}: per module, summed over the hierarchy]"
        cp = r.get("critical_path")
        depth = (f", critical path {cp['gate_delays']} gate delays {cp['start']} -> "
                 f"{cp['end']}" if cp else "")
        print(f"{name:28s} {r['cells']:>7d} cells {r['transistors']:>9d} transistors "
              f"({r['seconds']:.1f} s){label}{depth}", flush=True)
        atomic_write_text(out / "results.json",
                          json.dumps({"results": results}, indent=1) + "\n")
    atomic_write_text(out / "results.json", json.dumps({"results": results}, indent=1) + "\n")
    _shift_vs_multiplier(results)
    status = 0
    if args.fit or args.write_baseline:
        doc = fit_area([r for r in results if fits_area_model(r)])
        dest = Path(args.coeffs) if args.coeffs else out / "area_coeffs.json"
        if args.write_baseline:  # the package's model follows its baseline
            dest = Path(__file__).parent / "data" / "area_coeffs.json"
        atomic_write_text(dest, json.dumps(doc, indent=1) + "\n")
        print(f"\narea model fitted ({dest}): coefficients (transistors per bit) "
              + ", ".join(f"{k} {v:.2f}" for k, v in doc["coeffs"].items())
              + f"; {doc['um2_per_transistor']:.4f} um^2 per transistor")
        for p in doc["per_config"]:
            print(f"  {p['name']:28s} measured {p['measured_transistors']:>9d}  model "
                  f"{p['model_transistors']:>11.1f}  error {p['error_pct']:+7.2f} %")
        print(f"  |error| mean {doc['error_pct_mean']} %, max {doc['error_pct_max']} %")
    if args.write_baseline or args.record:
        dest = Path(__file__).parent / "data" / "synth_baseline.json"
        recorded = results
        if args.record and dest.is_file():  # keep the other entries, in their order
            old = json.loads(dest.read_text())["results"]
            new = {r["name"]: r for r in results}
            recorded = [new.pop(r["name"], r) for r in old] + list(new.values())
        atomic_write_text(dest, json.dumps({"tolerance": BASELINE_TOLERANCE,
                                            "flow": FLOW_SCRIPTS["abc"],
                                            "flows": FLOW_SCRIPTS,
                                            "results": recorded}, indent=1) + "\n")
        print(f"baseline written: {dest}")
    if args.check:
        bad = compare_baseline(results, load_baseline())
        for b in bad:
            print(f"AREA REGRESSION: {b}", file=sys.stderr)
        print(f"baseline check: {len(results) - len(bad)} of {len(results)} within "
              f"{100 * BASELINE_TOLERANCE:.0f} %")
        status = 1 if bad else 0
    return status


def _shift_vs_multiplier(results):
    by = {r["name"]: r for r in results}
    shift = [r for r in results if r["component"] == "view"]
    mult = [r for r in results if r["component"] == "rescale"]
    if not shift or not mult:
        return
    print("\nprecision switch on synthesized hardware (one element, n = 8):")
    for r in shift + mult:
        p = r["params"]
        what = (f"shift  ({p.get('rounding')}, widths {p.get('widths')})" if r["component"] == "view"
                else f"rescale (multiplier {p.get('mult_bits')} x {p.get('n')}, {p.get('rounding')})")
        print(f"  {r['name']:24s} {what:44s} {r['cells']:>6d} cells {r['transistors']:>7d} transistors")
    if "fit_view_n8_floor" in by and "dqt_rescale" in by:
        a, b = by["fit_view_n8_floor"]["transistors"], by["dqt_rescale"]["transistors"]
        print(f"  multiplier-based rescale / floor shift = {b / a:.1f}x transistors")


def _synth_fpga(args) -> int:
    from .fpga import (FMAX_TOLERANCE, FPGA_TOLERANCE, compare_fpga_baseline, fpga_configs,
                       implement, load_fpga_baseline)

    try:
        seeds = tuple(int(x) for x in args.seeds.split(","))
    except ValueError:
        raise ValueError(f"--seeds: {args.seeds!r} is not a comma-separated list of "
                         f"integers") from None
    configs = fpga_configs(args.fpga, include_large=args.all)
    names = {c.name: c for c in configs}
    if args.list:
        for n, c in names.items():
            print(f"{n:28s} {c.component:12s} {c.parameters()}")
        return 0
    chosen = args.configs or list(names)
    unknown = [c for c in chosen if c not in names]
    if unknown:
        raise ValueError(f"unknown {args.fpga} configurations {unknown} (see dqt-hw synth "
                         f"--fpga {args.fpga} --list)")
    out = Path(args.out)
    os.makedirs(out, exist_ok=True)
    results = []
    print(f"{'configuration':20s} {'LUT4':>6s} {'carry':>6s} {'comb':>6s} {'FF':>6s} "
          f"{'DSP':>4s} {'BRAM':>4s} {'I/O':>5s}  Fmax MHz min/median (seeds {args.seeds})",
          flush=True)
    for name in chosen:
        r = implement(names[name], args.fpga, seeds=seeds, yosys=args.yosys,
                      freq_mhz=args.freq, device=args.device)
        results.append(r)
        fm = ", ".join(f"{c} {r['fmax_min_mhz'][c]:.1f}/{r['fmax_median_mhz'][c]:.1f}"
                       for c in r["fmax_median_mhz"])
        print(f"{name:20s} {r['luts']:>6d} {r['carry']:>6d} {r['comb_used']:>6d} "
              f"{r['ffs']:>6d} {r['dsps']:>4d} {r['brams']:>4d} {r['io_bits']:>5d}  {fm} "
              f"(constraint {r['constraint_mhz']:g}; {r['dsp']}; synth "
              f"{r['seconds_synth']:.0f} s, pnr {r['seconds_pnr']:.0f} s)", flush=True)
        for clk, p in r.get("critical_path", {}).items():
            print(f"{'':20s} critical path ({clk}, seed {seeds[0]}): {p['from']} -> {p['to']}, "
                  f"{p['ns']} ns", flush=True)
        atomic_write_text(out / f"fpga_{args.fpga}.json",
                          json.dumps({"results": results}, indent=1) + "\n")
    status = 0
    if args.record:
        dest = Path(__file__).parent / "data" / "fpga_baseline.json"
        old = json.loads(dest.read_text())["results"] if dest.is_file() else []
        new = {(r["target"], r["name"]): r for r in results}
        recorded = [new.pop((r["target"], r["name"]), r) for r in old] + list(new.values())
        atomic_write_text(dest, json.dumps({"tolerance": FPGA_TOLERANCE,
                                            "fmax_tolerance": FMAX_TOLERANCE,
                                            "results": recorded}, indent=1) + "\n")
        print(f"FPGA baseline written: {dest}")
    if args.check:
        bad = compare_fpga_baseline(results, load_fpga_baseline())
        for b in bad:
            print(f"FPGA REGRESSION: {b}", file=sys.stderr)
        print(f"FPGA baseline check: {len(results) - len(bad)} of {len(results)} within "
              f"tolerance")
        status = 1 if bad else 0
    return status
