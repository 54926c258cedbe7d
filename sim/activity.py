"""Switching activity of the generated tile on real layer data (``dqt-hw power``).

The tile (``sim.runner.generated``) inside the bare bulk wrapper (sim/bulk.py,
``hdl_clock=False``: stimulus in HDL memories loaded with ``$readmemh``, the clock toggled
by a C++ loop) is Verilated with ``--trace-saif`` (a build of its own, cached under
``sim_build/build/saif-<module>-<digest>`` keyed by the Verilog and the flags, apart from
the waveform build) and driven by :data:`HARNESS_SAIF_CPP`, which opens the SAIF dump when
``start`` rises (the ``$readmemh`` load and reset are not counted) and dumps every clock
edge. Each run's output rows are checked against the expected codes (``sim.bulk.check_out``)
before its toggles are used: the activity is that of a run that computed the right answer.

Stimulus (:func:`resnet18_jobs`, :func:`shipped_jobs`):

- a layer of ResNet-18 CIFAR-10 (default ``layer2.0.conv1``) with seeded realistic data
  (``dqt_hw.golden.writer.layer_source``: ReLU-like activations, He-initialized weights),
  one golden case per width pair (the master constants switched by shifts);
- a layer of the shipped trained network (default ``layer1.0.conv2``) on its own test
  images (``dqt_hw.net.tiles``: the layer's input codes from the integer executor), at
  each fixed pair (the layer forced, every other layer at the controller's widths) and at
  the controller's own per-input widths (``dynamic``).

The toggles go to :mod:`dqt_hw.cost.activity` (SAIF reading, signal groups, energy).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from . import bulk, runner

__all__ = ["HARNESS_SAIF_CPP", "build_saif", "run_saif", "resnet18_jobs", "shipped_jobs",
           "measure", "random_jobs_nn"]

HARNESS_SAIF_CPP = r"""// SAIF toggle dump of the bare bulk wrapper (clock from this loop, no --timing)
#include <cstdio>
#include <memory>
#include "verilated.h"
#include "verilated_saif_c.h"
#include "VTOP.h"
int main(int argc, char** argv) {
    auto ctx = std::make_unique<VerilatedContext>();
    ctx->commandArgs(argc, argv);
    ctx->traceEverOn(true);
    auto top = std::make_unique<VTOP>(ctx.get());
    top->clk = 0;
    top->start = 0;
    top->eval();  // the initial blocks: $readmemh of the stimulus, not traced
    auto tfp = std::make_unique<VerilatedSaifC>();
    top->trace(tfp.get(), 99);
    tfp->open("dump.saif");
    top->start = 1;
    unsigned long long cycles = 0;
    tfp->dump(ctx->time());
    while (!top->done && !ctx->gotFinish()) {
        ctx->timeInc(5);
        top->clk = 1;
        top->eval();
        tfp->dump(ctx->time());
        ctx->timeInc(5);
        top->clk = 0;
        top->eval();
        tfp->dump(ctx->time());
        ++cycles;
    }
    tfp->close();
    std::printf("done=%d cycles=%llu\n", (int)top->done, cycles);
    top->final();
    return top->done ? 0 : 1;
}
"""

BUILD_ARGS = ["--trace-saif", "--x-assign", "fast", "--x-initial", "fast", "-Wno-fatal"]


def build_saif(design: runner.RtlFiles, wrapper: Path, top: str) -> Path:
    """The Verilated executable of the SAIF harness around ``wrapper`` (built once per
    Verilog text and flags, then cached)."""
    return runner.build_cpp(design, wrapper, top, harness=HARNESS_SAIF_CPP, args=BUILD_ARGS,
                            kind="saif")


# ----------------------------------------------------------------------------- stimulus

RESNET18_LAYER = "layer2.0.conv1"
SHIPPED_LAYER = "layer1.0.conv2"
PAIRS = ((8, 8), (6, 6), (4, 4), (2, 2))
POOL = 32
"""Test inputs of the shipped network among which the controller's switching inputs are
chosen (the first ones of its test set)."""


def _limit(jobs, max_macs, R, C):
    """The first jobs of ``jobs`` ([(TileJob, rows)]) up to ``max_macs`` tile MAC slots
    (R C K per job; at least one job)."""
    out, macs = [], 0
    for job, rows in jobs:
        if out and macs + R * C * job.k > max_macs:
            break
        out.append((job, rows))
        macs += R * C * job.k
    return out


def resnet18_jobs(design, pair, *, layer: str = RESNET18_LAYER, seed: int = 2026,
                  max_macs: int = 4096):
    """[(TileJob, expected rows)] of ``layer`` of ResNet-18 CIFAR-10 with seeded realistic
    data at ``pair`` (b_a, b_w), the first blocks up to ``max_macs`` tile MAC slots."""
    from dqt_hw.golden.writer import design_cases, layer_source

    from .golden import case_jobs

    src = layer_source("resnet18_cifar10", layer, seed=seed)
    (case,) = design_cases(design, src, [tuple(pair)])
    R, C = design.rows, design.cols
    K = src.shape.C * src.shape.k * src.shape.k
    limit = max(1, max_macs // (R * C * K))
    return _limit(case_jobs(design, case.case(), limit=limit), max_macs, R, C)


def _shipped(net_path=None):
    from dqt_hw.net import network as nw
    from dqt_hw.net.executor import input_codes
    from dqt_hw.train import data as data_mod

    net = nw.load(net_path or nw.default_path())
    ds = data_mod.load(net.provenance.get("data", "digits"))
    return net, input_codes(net, ds.x_test)


def shipped_jobs(design, pair, *, layer: str = SHIPPED_LAYER, inputs: int = 2,
                 max_macs: int = 4096, net_path=None):
    """[(TileJob, expected rows)] of ``layer`` of the shipped trained network on its first
    test inputs (chosen as in sim/tb/tb_net.py, among the first :data:`POOL`): ``pair`` (b_a, b_w) forced at the layer
    (the other layers at the controller's widths), or ``"dynamic"``: the controller's own
    widths, inputs ordered so that consecutive ones differ where the controller allows.
    Blocks of each input in turn, up to ``max_macs`` tile MAC slots in all; also returns
    the (b_a, b_w) of each input."""
    from dqt_hw.hw.reference import TileJob
    from dqt_hw.net.tiles import dynamic_widths, layer_io, layer_jobs, switching_inputs

    net, codes = _shipped(net_path)
    codes = codes[:max(POOL, inputs)]
    names, widths = dynamic_widths(net, codes)
    li = names.index(layer)
    if pair == "dynamic":
        idx = switching_inputs(widths[:, li], inputs)
    else:
        idx = list(range(inputs))
        widths = widths.copy()
        widths[:, li] = np.array(net.check_width(layer, tuple(pair)), np.int64)
    c, w = codes[idx], widths[idx]
    xin, out = layer_io(net, layer, c, w)
    R, C = design.rows, design.cols
    per_input = max(1, max_macs // max(1, len(idx)))
    jobs, pairs = [], []
    for i in range(len(idx)):
        b_a, b_w = (int(v) for v in w[i, li])
        pairs.append((b_a, b_w))
        blocks = layer_jobs(net, layer, xin[i:i + 1], out[i:i + 1], b_a, b_w, rows=R, cols=C,
                            kbits=design.kbits, ebits=design.ebits, sbits=design.sbits)
        jobs += _limit([(TileJob(b.a.tolist(), b.w.tolist(), b.b_a, b.b_w, b.b_out,
                                 b.rounding, b.lanes), b.out.tolist()) for b in blocks],
                       per_input, R, C)
    return jobs, pairs


# ----------------------------------------------------------------------------- runs


def _expected(jobs, C):
    rows = []
    for job, out in jobs:
        for i, row in enumerate(out):
            rows.append((tuple(list(row) + [0] * (C - job.ncols)), i, int(i == job.m - 1)))
    return rows


def run_saif(exe: Path, directory: Path, sidecar: dict, jobs) -> dict:
    """Run ``jobs`` ([(TileJob, expected rows)]) through the SAIF harness in ``directory``;
    checks every output row, returns {"saif": path, "cycles", "rows", "macs" (tile MAC
    slots R C K), "useful_macs" (m ncols K)}."""
    hw = sidecar["parameters"]
    R, C = hw["rows"], hw["cols"]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "dump.saif").unlink(missing_ok=True)
    bulk.write_stimulus(directory, sidecar, [j for j, _ in jobs], None)
    out = subprocess.run([str(exe)], cwd=directory, check=True, capture_output=True,
                         text=True).stdout
    rows = bulk.check_out(directory, sidecar, _expected(jobs, C))
    cycles = int(out.split("cycles=")[1].split()[0])
    return {"saif": directory / "dump.saif", "cycles": cycles, "rows": rows,
            "jobs": len(jobs), "macs": sum(R * C * j.k for j, _ in jobs),
            "useful_macs": sum(j.m * j.ncols * j.k for j, _ in jobs)}


def random_jobs_nn(design, *, seed: int, max_macs: int, k: int = 64):
    """Uniformly random master codes at n x n (the calibration run of
    ``dqt_hw.cost.activity.calibrate``), with their expected rows from the tile model."""
    import dataclasses

    from . import models

    R, C, n = design.rows, design.cols, design.n
    hw = dict(rows=R, cols=C, n=n, signed=design.signed, kbits=design.kbits,
              acc_width=design.acc_width, widths=[n], sbits=design.sbits)
    count = max(1, max_macs // (R * C * k))
    jobs = [dataclasses.replace(j, b_a=n, b_w=n, b_out=n)
            for j in bulk.random_jobs(hw, np.random.default_rng(seed), count, k=k)]
    tm = models.TileModel(n, design.signed, design.acc_width, design.overflow,
                          design.view_rounding, design.kbits)
    return [(j, [list(r) for r in tm(j)]) for j in jobs]


def measure(design, *, sources=("resnet18", "shipped"), pairs=PAIRS, dynamic: bool = True,
            max_macs: int = 4096, inputs: int = 2, seed: int = 2026, tech="horowitz45",
            workdir: Path | None = None, say=print, plain: bool = True) -> dict:
    """Toggles and energy of ``design`` (a tile :class:`dqt_hw.design.Design`) on each
    source at each pair (and the controller's mix on the shipped network): a calibration
    run on random n x n codes, then one SAIF run per (source, pair). Returns a JSON-able
    report: the per-toggle energies (pJ and fF), and per run the counts, the toggles and
    activity energy per class (of the whole tile, and of its PE array alone:
    ``array_toggles``, ``array_energy_pj``) and the per-operation model's energy. With
    ``plain``, each n x n run's jobs also go through the plain MAC array of the same shape
    (``sim.plain_activity``), its toggles classed and priced with the same per-toggle
    energies (``plain_runs``)."""
    from dqt_hw.cost import activity as act

    d = runner.generated(design)
    sc = d.sidecar
    top = f"{sc['module']}_bare"
    _, wrapper = bulk.bulk_design(d, sc, hdl_clock=False)
    say(f"power: building the SAIF model of {sc['module']} (cached after the first run)")
    exe = build_saif(d, wrapper, top)
    tile_path = ("TOP", top, "dut")
    base = Path(workdir or runner.SIM_BUILD / "run" / "power")
    R, C, n = design.rows, design.cols, design.n

    def one(label, jobs):
        r = run_saif(exe, base / label, sc, jobs)
        nets = act.read_saif(r["saif"])
        tog = act.classify(nets, tile_path=tile_path, n=n)
        r["array_toggles"] = act.classify(nets, tile_path=tile_path + ("array",), n=n)
        counts = act.Counts(r["macs"], sum(j.k for j, _ in jobs), r["rows"])
        return r, tog, counts

    _, cal_tog, cal_counts = one("calibration", random_jobs_nn(
        design, seed=seed, max_macs=max(max_macs, 4 * R * C * 64)))
    e_t = act.calibrate(cal_tog, design, cal_counts, tech)
    volt = act.load_tech(tech).data.get("voltage_v")  # None: no capacitances reported
    runs, plain_runs = [], []
    if plain:
        from . import plain_activity

        pd = plain_activity.plain_design(design)
        say(f"power: building the SAIF model of the plain array {pd.name}")
        p_files, p_exe, p_top = plain_activity.build(pd, harness=HARNESS_SAIF_CPP,
                                                     args=BUILD_ARGS)
    plan = []
    for src in sources:
        for p in pairs:
            plan.append((src, tuple(p)))
        if src == "shipped" and dynamic:
            plan.append((src, "dynamic"))
    for src, p in plan:
        tag = "dynamic" if p == "dynamic" else f"{p[0]}x{p[1]}"
        label = f"{src}-{tag}"
        if src == "resnet18":
            jobs = resnet18_jobs(design, p, seed=seed, max_macs=max_macs)
            layer, per_input = RESNET18_LAYER, [p]
        elif src == "shipped":
            jobs, per_input = shipped_jobs(design, p, inputs=inputs, max_macs=max_macs)
            layer = SHIPPED_LAYER
        else:
            raise ValueError(f"source must be 'resnet18' or 'shipped', not {src!r}")
        r, tog, counts = one(label, jobs)
        energy = act.activity_energy(tog, e_t)
        model = dict.fromkeys(act.CLASSES[:-1], 0.0)
        for job, _ in jobs:
            c1 = act.Counts(R * C * job.k, job.k, job.m)
            for k, v in act.op_energy_pj(design, c1, tech, b_a=job.b_a, b_w=job.b_w).items():
                model[k] += v
        model["total"] = sum(model.values())
        runs.append({"label": label, "source": src, "layer": layer, "pair": tag,
                     "input_pairs": [list(q) for q in per_input], "jobs": r["jobs"],
                     "cycles": r["cycles"], "rows_checked": r["rows"], "macs": r["macs"],
                     "toggles": tog, "energy_pj": energy, "op_model_pj": model,
                     "toggles_per_mac": {k: v / r["macs"] for k, v in tog.items()},
                     "array_toggles": r["array_toggles"],
                     "array_energy_pj": act.activity_energy(r["array_toggles"], e_t)})
        say(f"  {label:<18} {r['macs']:>7} MACs, {r['rows']} rows equal the model; "
            f"mult {tog['multiplier'] / r['macs']:.2f} acc {tog['accumulator'] / r['macs']:.2f}"
            f" toggles/MAC; {energy['total'] / r['macs']:.4f} pJ/MAC "
            f"(op model {model['total'] / r['macs']:.4f})")
        if plain and tag == f"{n}x{n}":  # the plain array on the very same jobs
            pr = plain_activity.run_plain(p_exe, base / f"{label}-plain", p_files.sidecar,
                                          [j for j, _ in jobs])
            ptog = act.class_toggles(pr["saif"], tile_path=("TOP", p_top, "dut"), n=n)
            pe = act.activity_energy(ptog, e_t)
            plain_runs.append({"label": f"{label}-plain", "source": src, "layer": layer,
                               "design": pd.name, "cycles": pr["cycles"],
                               "rows_checked": pr["rows"], "macs": pr["macs"],
                               "toggles": ptog, "energy_pj": pe,
                               "toggles_per_mac": {k: v / pr["macs"] for k, v in ptog.items()}})
            dqt = runs[-1]["array_energy_pj"]["total"] / r["macs"]
            say(f"  {label + '-plain':<18} {pr['macs']:>7} MACs, {pr['rows']} rows exact; "
                f"{pe['total'] / pr['macs']:.4f} pJ/MAC against the DQT array's {dqt:.4f} "
                f"({100 * (dqt * pr['macs'] / pe['total'] - 1):+.1f} %)")
    return {"design": design.name, "tile": dict(rows=R, cols=C, n=n, acc_width=design.acc_width,
                                                view_rounding=design.view_rounding),
            "tech": act.load_tech(tech).name, "voltage_v": volt,
            "toggle_pj": e_t, "capacitance_ff": {k: act.capacitance_ff(v, volt) if volt
                                                 else None for k, v in e_t.items()},
            "calibration": {"macs": cal_counts.macs, "toggles": cal_tog},
            "runs": runs, "plain_runs": plain_runs}

