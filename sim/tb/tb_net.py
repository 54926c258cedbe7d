"""cocotb bench: a layer of the shipped trained network on the generated tile, on real
activations, with per-input widths switching between consecutive inputs (issue 7,
"through the hardware").

The integer executor (``dqt_hw.net.executor``) runs the network on test images of the
data it was trained on (scikit-learn's digits); :mod:`dqt_hw.net.tiles` takes the layer's
input codes and output codes from prefix runs of the executor at each input's widths and
cuts the conv into im2col GEMM blocks (M <= R pixels, N <= C channels, K streamed) with
the layer's requantization constants at that input's (b_a, b_w) as lane fields
(``dqt_hw.hw.reference.lane_constants``). Every block of every input streams through the
tile back to back (``sim.tb.tb_tile.TB``: drivers, monitors, in-order scoreboard; the
input monitors rebuild each job from what was transferred, widths included), and every
output code must equal the executor's. Between inputs the width registers switch with no
drain (the first block of an input follows the last block of the previous one).

Tests:

- ``test_controller_widths``: the controller's own widths (``widths="dynamic"``). The
  inputs are chosen from the test set so that consecutive inputs differ at the layer
  where the controller makes that possible; the summary records how many switches it
  gave (``controller_switches``: 0 when the controller picks one width for every input).
- ``test_forced_switches``: the layer's (b_a, b_w) forced per input from its candidate
  set (``forced``), the other layers at the controller's widths, so that the width
  registers really switch between consecutive inputs whatever the controller does.

Parameters (``SIM_PARAMS``): ``layer`` (default ``layer2.0.conv1``), ``net`` (a network
file; default the shipped one), ``inputs`` (how many inputs per test), ``forced`` (list of
[b_a, b_w]), ``p_idle``, ``p_stall`` (random idle cycles / back-pressure, default 0).
"""

from __future__ import annotations

import cocotb
import numpy as np

from dqt_hw.hw.reference import TileJob

from .common import write_summary
from .tb_tile import TB

DEFAULT_LAYER = "layer2.0.conv1"


def _load(tb):
    from dqt_hw.net import network as nw
    from dqt_hw.net.executor import input_codes
    from dqt_hw.train import data as data_mod

    path = tb.cfg.get("net") or nw.default_path()
    net = nw.load(path)
    ds = data_mod.load(net.provenance.get("data", "digits"))
    return net, input_codes(net, ds.x_test)


def _check_tile(tb, net):
    a = net.arith
    hw = tb.cfg.hw
    want = dict(n=a.n, signed=False, acc_width=a.acc_bits, overflow=a.overflow,
                view_rounding=a.view_rounding)
    bad = {k: (hw[k], v) for k, v in want.items() if hw[k] != v}
    if bad:
        raise AssertionError(f"the tile does not implement the network's arithmetic "
                             f"(parameter: (tile, network)): {bad}")


def _choose_switching(pairs, count):
    """Indices of ``count`` inputs such that consecutive ones differ in ``pairs`` (N, 2)
    wherever possible: round robin over the distinct pairs, in order of first appearance."""
    groups = {}
    for i, p in enumerate(map(tuple, pairs)):
        groups.setdefault(p, []).append(i)
    order, keys = [], list(groups)
    pos = {k: 0 for k in keys}
    while len(order) < count and any(pos[k] < len(groups[k]) for k in keys):
        for k in keys:
            if pos[k] < len(groups[k]) and len(order) < count:
                order.append(groups[k][pos[k]])
                pos[k] += 1
    return order


async def _run_inputs(tb, net, layer, codes, widths, label):
    """Stream every GEMM block of ``layer`` for each input (in order) and check them."""
    from dqt_hw.net.tiles import layer_io, layer_jobs

    li = net.compute_layers().index(layer)
    xin, out = layer_io(net, layer, codes, widths)
    pairs = [tuple(int(v) for v in widths[i, li]) for i in range(len(codes))]
    await tb.start()
    blocks = rows = 0
    for i in range(len(codes)):
        for b in layer_jobs(net, layer, xin[i:i + 1], out[i:i + 1], *pairs[i], rows=tb.R,
                            cols=tb.C, kbits=tb.kbits, ebits=tb.ebits, sbits=tb.sbits):
            tb.golden.append(b.out.tolist())
            tb.send_job(TileJob(b.a.tolist(), b.w.tolist(), b.b_a, b.b_w, b.b_out, b.rounding,
                                b.lanes))
            blocks += 1
            rows += b.i1 - b.i0
    await tb.run()
    switches = sum(pairs[i] != pairs[i - 1] for i in range(1, len(pairs)))
    n = tb.finish(**{f"{label}_layer": layer, f"{label}_pairs": [list(p) for p in pairs],
                     f"{label}_switches": switches, f"{label}_blocks": blocks,
                     f"{label}_codes": int(out.size)})
    if n != rows:
        raise AssertionError(f"checked {n} output rows of {rows}")
    tb.dut._log.info(f"{label}: {layer}, inputs' (b_a, b_w) {pairs}, {switches} switches, "
                     f"{blocks} tiles, {out.size} output codes equal to the executor")
    return switches


@cocotb.test()
async def test_controller_widths(dut):
    """The controller's per-input widths, inputs chosen so that they switch if it can."""
    from dqt_hw.net.tiles import dynamic_widths

    tb = TB(dut)
    net, codes = _load(tb)
    _check_tile(tb, net)
    layer = tb.cfg.get("layer", DEFAULT_LAYER)
    count = tb.cfg.get("inputs", 3)
    names, widths = dynamic_widths(net, codes)
    li = names.index(layer)
    idx = _choose_switching(widths[:, li], count)
    distinct = len({tuple(p) for p in widths[:, li].tolist()})
    write_summary(controller_distinct_pairs_at_layer=distinct,
                  controller_inputs=[int(i) for i in idx])
    await _run_inputs(tb, net, layer, codes[idx], widths[idx], "controller")


@cocotb.test()
async def test_forced_switches(dut):
    """The layer's widths forced per input from its candidate set (the rest of the network
    at the controller's widths): the width registers switch between every two inputs."""
    from dqt_hw.net.tiles import dynamic_widths

    tb = TB(dut)
    net, codes = _load(tb)
    _check_tile(tb, net)
    layer = tb.cfg.get("layer", DEFAULT_LAYER)
    forced = [tuple(p) for p in tb.cfg.get("forced", [[2, 2], [8, 8], [4, 6], [6, 2]])]
    for p in forced:
        net.check_width(layer, p)
    first = tb.cfg.get("first_input", 3)
    sel = list(range(first, first + len(forced)))
    names, widths = dynamic_widths(net, codes[sel])
    li = names.index(layer)
    widths = widths.copy()
    widths[:, li] = np.array(forced, np.int64)
    switches = await _run_inputs(tb, net, layer, codes[sel], widths, "forced")
    if switches != len(forced) - 1 and all(forced[i] != forced[i - 1]
                                           for i in range(1, len(forced))):
        raise AssertionError("the forced widths did not switch between every two inputs")
