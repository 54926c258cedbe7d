"""``dqt-hw sweep``: a design-space sweep, and the data-driven accumulator sizing."""

from __future__ import annotations

import json

from ..files import atomic_write_text, begin_outputs
from ..schema import fraction, int_in, positive_int
from .grid import MAX_SPATIAL


def register(subparsers):
    p = subparsers.add_parser(
        "sweep", help="design-space sweep (W, overflow mode, width mix, array size, technology)",
        description="Evaluates every point of a grid (area, energy, cycles, BitOPs, and the "
                    "overflow rate the bit-exact model measures on a layer's real codes), "
                    "resumably, on a local process pool or a Dask cluster; writes CSV + "
                    "Parquet, a Pareto plot marking the chosen point, and the data-driven "
                    "accumulator sizing.")
    p.add_argument("--grid", default=None,
                   help="JSON file {name: [values]} (docs/formats.md; default: the built-in "
                        "grid, see --show-grid)")
    p.add_argument("--show-grid", action="store_true")
    p.add_argument("--out", default="out/sweep")
    p.add_argument("--scheduler", default=None,
                   help="Dask scheduler address tcp://host:port (default: local process pool)")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="local processes (default: CPUs)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--max-overflow-rate", type=fraction, default=0.0,
                   help="the chosen point is the least-energy one measured at or below this rate")
    p.add_argument("--spatial", type=int_in(1, MAX_SPATIAL), default=None,
                   help="crop the measured layer's input to this height/width (faster)")
    p.add_argument("--storage", default=None, metavar="S[,S...]",
                   help="the storage axis: master, packed, planes, comma separated (default: "
                        "the grid's storage key, else master; docs/cost.md)")
    p.add_argument("--no-accsize", action="store_true",
                   help="skip the per-layer data-driven accumulator sizing")
    p.add_argument("--fpga", default=None, choices=("ecp5", "ice40"),
                   help="add FPGA columns (comb cells, flip-flops, DSPs, Fmax, seconds per "
                        "inference at Fmax): each distinct tile placed and routed once "
                        "(Debian yosys + yowasp-nextpnr-*; minutes per tile, docs/cost.md)")
    p.set_defaults(func=_sweep)


def _sweep(args) -> int:
    from ..design import Design
    from .accsize import size_accumulators
    from .pareto import choose_point, plot_pareto
    from .grid import check_grid, check_grid_values, load_grid
    from .points import DEFAULT_GRID, expand_grid
    from .runner import run_sweep

    grid, source = dict(DEFAULT_GRID), "built-in sweep grid"
    if args.grid:
        grid, source = load_grid(args.grid), f"sweep grid {args.grid!r}"
    if args.spatial:
        grid["spatial"] = [args.spatial]
    if args.storage:
        grid["storage"] = [v.strip() for v in args.storage.split(",")]
        grid = check_grid(grid, source=f"{source} with --storage")
    if args.show_grid:
        print(json.dumps(grid, indent=1))
        return 0
    points = expand_grid(grid, source=source)
    check_grid_values(grid, source=source)  # before any point runs or any file is written
    out = begin_outputs(args.out)  # removes summary.json: written last, when all is done
    print(f"sweep: {len(points)} points -> {out}"
          + (f" on {args.scheduler}" if args.scheduler else ""))
    rows = run_sweep(points, out, scheduler=args.scheduler, workers=args.workers,
                     progress=not args.no_progress)
    if args.fpga:
        from ..cost.fpga import FpgaError
        from ..cost.synth import YosysError
        from .fpga_columns import add_fpga_columns
        from .runner import write_table

        try:
            rows = add_fpga_columns(rows, args.fpga)
        except (YosysError, FpgaError) as e:
            raise OSError(str(e)) from None
        write_table(rows, out)
    chosen = choose_point(rows, max_overflow_rate=args.max_overflow_rate)
    plots = [plot_pareto(rows, out / "pareto_energy_overflow.png", x="overflow_rate",
                         y="energy_pj", chosen=chosen,
                         title="energy against the measured overflow rate"),
             plot_pareto(rows, out / "pareto_energy_bitops.png", x="bitops", y="energy_pj",
                         chosen=chosen, title="energy against BitOPs")]
    store = any("storage" in r for r in rows)
    print((f"{'storage':>7s} " if store else "")
          + f"{'mix':>6s} {'W':>3s} {'mode':>8s} {'array':>7s} {'area mm2':>9s} {'energy uJ':>10s} "
          f"{'GBitOPs':>8s} {'Mcycles':>8s} {'ovf rate':>9s} {'need':>5s} {'bound':>5s}")
    for r in rows:
        mark = " <- chosen" if chosen is not None and r["key"] == chosen["key"] else ""
        if r.get("valid", True):
            meas = f"{r['overflow_rate']:>9.4f} {r['bits_needed']:>5d} {r['bound_bits']:>5d}"
        else:
            meas = f"{'n/a':>9s} {'':>5s} {'':>5s}  (W cannot hold one product)"
        print((f"{r.get('storage', 'master'):>7s} " if store else "")
              + f"{r['mix']:>6s} {r['acc_width']:>3d} {r['overflow']:>8s} "
              f"{r['rows']:>3d}x{r['cols']:<3d} {r['area_um2'] / 1e6:>9.4f} "
              f"{r['energy_pj'] / 1e6:>10.1f} {r['bitops'] / 1e9:>8.2f} {r['cycles'] / 1e6:>8.2f} "
              f"{meas}{mark}"
              + (f"  {r['fpga_comb']} comb {r['fpga_fmax_mhz']:.1f} MHz" if args.fpga else ""))
    summary = {"points": len(rows), "chosen": chosen,
               "files": [str(out / "sweep.csv"), str(out / "sweep.parquet"), *plots]}
    if not args.no_accsize:
        nets = sorted({r["network"] for r in rows})
        mixes = sorted({r["mix"] for r in rows})
        sizing = []
        for netname in nets:
            for mix in mixes:
                base = Design(rows=chosen["rows"], cols=chosen["cols"]) if chosen else None
                layers, s = size_accumulators(netname, mix, spatial=args.spatial, design=base)
                sizing.append({"summary": s, "layers": layers})
                print(f"accumulator sizing {s['network']} at {s['width_mix']}: bound W = "
                      f"{s['W_bound']}, data W = {s['W_data']} (max over {len(layers)} layers); "
                      f"{s['rows']}x{s['cols']} tile area {s['area_bound_um2'] / 1e6:.4f} -> "
                      f"{s['area_data_um2'] / 1e6:.4f} mm^2, saves {s['area_saved_pct']:.1f} %")
        atomic_write_text(out / "accsize.json", json.dumps(sizing, indent=1) + "\n")
        summary["files"].append(str(out / "accsize.json"))
    summary["files"].append(str(out / "summary.json"))
    atomic_write_text(out / "summary.json",  # last: every file it lists is whole
                      json.dumps(summary, indent=1, default=str) + "\n")
    print("wrote: " + ", ".join(summary["files"]))
    return 0
