"""cocotb bench: a layer of the shipped trained network on the generated tile, on real
activations, with per-input widths switching between consecutive inputs (issue 7,
"through the hardware").

The integer executor (``dqt_hw.net.executor``) runs the network on test images of the
data it records (``provenance.data``: ``digits-contrast`` for the shipped network);
:mod:`dqt_hw.net.tiles` takes the layer's input codes and output codes from prefix runs of
the executor at each input's widths and cuts the conv into im2col GEMM blocks (M <= R
pixels, N <= C channels, K streamed) with the layer's requantization constants at that
input's (b_a, b_w) as lane fields (``dqt_hw.hw.reference.lane_constants``). Every block
of every input streams through the tile back to back (``sim.tb.tb_tile.TB``: drivers,
monitors, in-order scoreboard; the input monitors rebuild each job from what was
transferred, widths included), and every output code must equal the executor's. Between
inputs the width registers switch with no drain (the first block of an input follows the
last block of the previous one).

Tests:

- ``test_controller_widths``: the controller's own widths (``widths="dynamic"``) at
  ``layer`` (default ``layer1.0.conv2``, the layer where the shipped controller switches,
  2/2 or 4/4 per input). The inputs are chosen from the test set so that consecutive inputs
  differ at the layer wherever the controller's choices allow (round robin over its
  distinct (b_a, b_w) there, in test-set order); the summary records how many switches it
  gave (``controller_switches``), and ``controller_min_switches`` (default 0) makes fewer a
  failure, so a network whose controller stops switching at the layer is caught.
- ``test_forced_switches``: the layer's (b_a, b_w) forced per input from its candidate
  set (``forced``), the other layers at the controller's widths, so that the width
  registers switch between consecutive inputs at widths the controller does not pick.
- ``test_other_layers``: the same forced switching at each layer of ``also`` (default
  none), streamed back to back in one run (labels ``also_<layer>``), to keep other layer
  shapes (e.g. a stride-2 conv that changes the channel count) in the regression.

Parameters (``SIM_PARAMS``): ``layer``, ``net`` (a network file; default the shipped
one), ``inputs`` (how many inputs for the controller's widths, default 4),
``controller_min_switches``, ``forced`` (list of [b_a, b_w]), ``first_input`` (the first
of the forced test's consecutive test inputs, default 3), ``also`` (list of layers),
``p_idle``, ``p_stall`` (random idle cycles / back-pressure, default 0).
"""

from __future__ import annotations

import cocotb
import numpy as np

from dqt_hw.hw.reference import TileJob

from .common import write_summary
from .tb_tile import TB

DEFAULT_LAYER = "layer1.0.conv2"
DEFAULT_FORCED = [[2, 2], [8, 8], [4, 6], [6, 2]]


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
    want = dict(n=a.n, signed=False, acc_width=a.acc_width, overflow=a.overflow,
                view_rounding=a.view_rounding)
    bad = {k: (hw[k], v) for k, v in want.items() if hw[k] != v}
    if bad:
        raise AssertionError(f"the tile does not implement the network's arithmetic "
                             f"(parameter: (tile, network)): {bad}")


def _queue(tb, net, layer, codes, widths):
    """Queue every GEMM block of ``layer`` for each input (in order); returns
    ((b_a, b_w) per input, blocks, output rows, output codes)."""
    from dqt_hw.net.tiles import layer_io, layer_jobs

    li = net.compute_layers().index(layer)
    xin, out = layer_io(net, layer, codes, widths)
    pairs = [tuple(int(v) for v in widths[i, li]) for i in range(len(codes))]
    blocks = rows = 0
    for i in range(len(codes)):
        for b in layer_jobs(net, layer, xin[i:i + 1], out[i:i + 1], *pairs[i], rows=tb.R,
                            cols=tb.C, kbits=tb.kbits, ebits=tb.ebits, sbits=tb.sbits):
            tb.golden.append(b.out.tolist())
            tb.send_job(TileJob(b.a.tolist(), b.w.tolist(), b.b_a, b.b_w, b.b_out, b.rounding,
                                b.lanes))
            blocks += 1
            rows += b.i1 - b.i0
    return pairs, blocks, rows, int(out.size)


def _switches(pairs):
    return sum(pairs[i] != pairs[i - 1] for i in range(1, len(pairs)))


async def _run_segments(tb, net, segments):
    """Stream the blocks of every (label, layer, codes, widths) segment back to back (no
    drain between inputs or segments) and check every output code against the executor."""
    await tb.start()
    info, rows = {}, 0
    for label, layer, codes, widths in segments:
        pairs, blocks, r, ncodes = _queue(tb, net, layer, codes, widths)
        rows += r
        info[label] = (layer, pairs, _switches(pairs), blocks, ncodes)
    await tb.run()
    kw = {}
    for label, (layer, pairs, sw, blocks, ncodes) in info.items():
        kw.update({f"{label}_layer": layer, f"{label}_pairs": [list(p) for p in pairs],
                   f"{label}_switches": sw, f"{label}_blocks": blocks,
                   f"{label}_codes": ncodes})
    n = tb.finish(**kw)
    if n != rows:
        raise AssertionError(f"checked {n} output rows of {rows}")
    for label, (layer, pairs, sw, blocks, ncodes) in info.items():
        tb.dut._log.info(f"{label}: {layer}, inputs' (b_a, b_w) {pairs}, {sw} switches, "
                         f"{blocks} tiles, {ncodes} output codes equal to the executor")
    return {label: v[2] for label, v in info.items()}


def _forced_widths(tb, net, codes, layer, forced):
    """Test inputs ``first_input`` .. at the controller's widths, ``layer`` forced."""
    from dqt_hw.net.tiles import dynamic_widths

    for p in forced:
        net.check_width(layer, p)
    first = tb.cfg.get("first_input", 3)
    sel = list(range(first, first + len(forced)))
    names, widths = dynamic_widths(net, codes[sel])
    widths = widths.copy()
    widths[:, names.index(layer)] = np.array(forced, np.int64)
    return codes[sel], widths


def _check_forced(forced, switches):
    if switches != len(forced) - 1 and all(forced[i] != forced[i - 1]
                                           for i in range(1, len(forced))):
        raise AssertionError("the forced widths did not switch between every two inputs")


@cocotb.test()
async def test_controller_widths(dut):
    """The controller's per-input widths, inputs chosen so that they switch if it can."""
    from dqt_hw.net.tiles import dynamic_widths, switching_inputs

    tb = TB(dut)
    net, codes = _load(tb)
    _check_tile(tb, net)
    layer = tb.cfg.get("layer", DEFAULT_LAYER)
    count = tb.cfg.get("inputs", 4)
    names, widths = dynamic_widths(net, codes)
    li = names.index(layer)
    idx = switching_inputs(widths[:, li], count)
    distinct = len({tuple(p) for p in widths[:, li].tolist()})
    write_summary(controller_distinct_pairs_at_layer=distinct,
                  controller_inputs=[int(i) for i in idx])
    sw = await _run_segments(tb, net, [("controller", layer, codes[idx], widths[idx])])
    sw = sw["controller"]
    need = tb.cfg.get("controller_min_switches", 0)
    if sw < need:
        raise AssertionError(f"the controller's widths at {layer} switched {sw} times between "
                             f"the {len(idx)} chosen inputs, fewer than {need} "
                             f"({distinct} distinct (b_a, b_w) there on the test set)")


@cocotb.test()
async def test_forced_switches(dut):
    """The layer's widths forced per input from its candidate set (the rest of the network
    at the controller's widths): the width registers switch between every two inputs."""
    tb = TB(dut)
    net, codes = _load(tb)
    _check_tile(tb, net)
    layer = tb.cfg.get("layer", DEFAULT_LAYER)
    forced = [tuple(p) for p in tb.cfg.get("forced", DEFAULT_FORCED)]
    c, w = _forced_widths(tb, net, codes, layer, forced)
    sw = await _run_segments(tb, net, [("forced", layer, c, w)])
    _check_forced(forced, sw["forced"])


@cocotb.test()
async def test_other_layers(dut):
    """The forced switching at each layer of ``also``, one stream (nothing if none)."""
    from .common import Config

    also = list(Config().get("also", []))
    if not also:
        return
    tb = TB(dut)
    net, codes = _load(tb)
    _check_tile(tb, net)
    forced = [tuple(p) for p in tb.cfg.get("forced", DEFAULT_FORCED)]
    segs = [(f"also_{layer}", layer, *_forced_widths(tb, net, codes, layer, forced))
            for layer in also]
    sw = await _run_segments(tb, net, segs)
    for label in sw:
        _check_forced(forced, sw[label])
