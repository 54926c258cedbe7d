"""A layer of the shipped network as the tile's GEMM jobs (dqt_hw.net.tiles), checked
without a simulator: every block through the plain-Python tile model
(dqt_hw.hw.reference.tile_reference) equals the integer executor's output codes. The same
jobs run on the generated tile in cocotb (sim/tb/tb_net.py, node net-layer1.0.conv2-tile4x4
of sim/matrix.py's QUICK list). The inputs are test inputs of the data the network records
(``provenance.data``: digits-contrast)."""

from __future__ import annotations

import numpy as np
import pytest

from dqt_hw.hw.reference import TileJob, lane_constants, tile_reference
from dqt_hw.net import network as nw
from dqt_hw.net.executor import execute, input_codes
from dqt_hw.net.tiles import (dynamic_widths, layer_io, layer_jobs, prefix_network,
                              switching_inputs)


def _test_codes(net):
    from dqt_hw.train import data as data_mod

    return input_codes(net, data_mod.load(net.provenance["data"]).x_test)


@pytest.fixture(scope="module")
def shipped():
    net = nw.load(nw.default_path())
    return net, _test_codes(net)[:3]


def _check_blocks(net, layer, codes, widths, tile):
    """Every GEMM block of ``layer`` for each input at its own widths, through the plain-
    Python tile model, equals the executor's output codes; every output is covered."""
    li = net.compute_layers().index(layer)
    xin, out = layer_io(net, layer, codes, widths)
    R, C = tile
    for i in range(len(codes)):
        seen = np.zeros(out[i].shape, bool).transpose(1, 2, 0).reshape(-1, out.shape[1])
        for b in layer_jobs(net, layer, xin[i:i + 1], out[i:i + 1], *widths[i, li], rows=R,
                            cols=C):
            assert b.a.shape[0] <= R and b.w.shape[1] <= C
            job = TileJob(b.a.tolist(), b.w.tolist(), b.b_a, b.b_w, b.b_out, b.rounding,
                          b.lanes)
            got = tile_reference(job, n=8, signed=False, acc_width=net.arith.acc_width,
                                 overflow=net.arith.overflow,
                                 view_rounding=net.arith.view_rounding)
            assert np.array_equal(np.array(got), b.out), (i, b.i0, b.j0)
            seen[b.i0:b.i1, b.j0:b.j1] = True
        assert seen.all()


def test_prefix_network_output_is_the_node(shipped):
    net, codes = shipped
    p = prefix_network(net, "fc")
    assert np.array_equal(execute(p, codes, widths=4).codes, execute(net, codes, widths=4).codes)
    with pytest.raises(ValueError, match="nope"):
        prefix_network(net, "nope")


@pytest.mark.parametrize("layer, tile", [("layer1.0.conv2", (4, 4)), ("layer2.0.conv1", (4, 4)),
                                         ("layer3.0.downsample", (2, 3)),
                                         ("layer1.0.conv1", (3, 5))])
def test_layer_blocks_equal_executor(shipped, layer, tile):
    net, codes = shipped
    names, widths = dynamic_widths(net, codes)
    li = names.index(layer)
    widths = widths.copy()
    widths[:, li] = [(2, 2), (8, 4), (6, 8)]  # switching between consecutive inputs
    _check_blocks(net, layer, codes, widths, tile)


def test_controller_switches_at_the_simulated_layer():
    """What the cocotb node's ``test_controller_widths`` streams: 4 test inputs chosen by
    ``switching_inputs`` from the controller's own widths at layer1.0.conv2 (where the
    shipped controller picks 2/2 or 4/4 per input) switch 3 times, and their blocks equal
    the executor on the 4x4 tile."""
    net = nw.load(nw.default_path())
    codes = _test_codes(net)
    names, widths = dynamic_widths(net, codes)
    li = names.index("layer1.0.conv2")
    assert {tuple(p) for p in widths[:, li].tolist()} == {(2, 2), (4, 4)}
    idx = switching_inputs(widths[:, li], 4)
    pairs = [tuple(p) for p in widths[idx, li].tolist()]
    assert pairs == [(2, 2), (4, 4), (2, 2), (4, 4)], (idx, pairs)
    _check_blocks(net, "layer1.0.conv2", codes[idx], widths[idx], (4, 4))
    assert switching_inputs([(2, 2)] * 3, 2) == [0, 1]
    assert switching_inputs([(2, 2), (2, 2), (4, 4)], 3) == [0, 2, 1]


def test_every_layer_constant_fits_the_default_lanes(shipped):
    """The shipped network's constants at every candidate width pair fit the default
    tile's lane fields (kbits 32, ebits 5, sbits 6)."""
    net, _ = shipped
    for nm in net.compute_layers():
        ws = net.layers[nm].widths
        for b_a in ws:
            for b_w in ws:
                for ch in net.requant(nm, b_a, b_w).constants:
                    lane_constants(ch, kbits=32, ebits=5, sbits=6)
