"""Whole-network programs (dqt_hw.net.program): one Numba call per batch gives the codes
and widths of the layer-by-layer executor bit for bit, static and dynamic, however the
batch is cut into chunks and however many threads run them; the naive oracle agrees;
networks a program cannot run fall back to the layer-by-layer path."""

import numpy as np
import pytest

from dqt_hw import settings as dsettings
from dqt_hw.net import executor as ex
from dqt_hw.net import network as nw
from dqt_hw.net import plan, program
from dqt_hw.net.graph import resnet18_cifar, resnet_tiny
from dqt_hw.train.data import load as load_data
from test_fast_paths import num_threads
from test_net_executor import oracle, small_graph

needs_program = pytest.mark.skipif(not program.enabled(),
                                   reason="programs need AVX-512 VNNI (else: layer path)")


def layer_path(monkeypatch, net, x, widths):
    with monkeypatch.context() as m:
        m.setattr(dsettings, "PROGRAM", False)
        assert plan.session(net).program(net, "dynamic") is None
        return ex.execute(net, x, widths=widths, batch_size=len(x))


@pytest.fixture(scope="module")
def shipped():
    net = nw.load(nw.default_path())
    ds = load_data(net.provenance.get("data", "digits"))
    return net, ex.input_codes(net, ds.x_test)


@needs_program
def test_which_networks_compile(monkeypatch, shipped):
    net, _ = shipped
    assert program.compile_program(net, net.width_mix(8), plan.session(net)) is not None
    assert program.compile_program(net, "dynamic", plan.session(net)) is not None
    # max pooling with padding and grouped convs: the layer-by-layer path
    small = nw.random_network(small_graph(), seed=11)
    assert program.compile_program(small, small.width_mix(8), plan.session(small)) is None
    monkeypatch.setattr(dsettings, "PROGRAM", False)
    assert program.compile_program(net, net.width_mix(8), plan.session(net)) is None
    assert plan.session(net).program(net, net.width_mix(4)) is None


@needs_program
@pytest.mark.parametrize("mix", [8, 2, [(8, 8), (4, 6), (2, 8), (6, 2), (4, 4), (8, 4), (6, 8)]])
def test_program_equals_naive_oracle(rng, mix):
    net = nw.random_network(resnet_tiny(), seed=5)
    m = net.width_mix(mix)
    assert plan.session(net).program(net, m) is not None
    x = rng.integers(0, 256, (3, 1, 8, 8))
    x[0] = 255
    np.testing.assert_array_equal(ex.execute(net, x, widths=mix).codes, oracle(net, x, m))


@needs_program
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("chunks", [1, 7, 1000])  # chunks per thread (1000: one image each)
@pytest.mark.parametrize("widths", [8, 4, "dynamic", "mix"])
def test_program_equals_layer_path_on_shipped_network(monkeypatch, shipped, threads, chunks,
                                                      widths):
    net, x = shipped
    x = x[:101]
    if widths == "mix":
        widths = [(8, 8)] + [(2 + 2 * (i % 4), 8 - 2 * (i % 3)) for i in range(9)]
    want = layer_path(monkeypatch, net, x, widths)
    monkeypatch.setattr(dsettings, "CHUNKS_PER_THREAD", chunks)
    with num_threads(threads):
        got = ex.execute(net, x, widths=widths, batch_size=len(x))
    assert plan.session(net).program(net, "dynamic" if widths == "dynamic" else net.width_mix(widths))
    np.testing.assert_array_equal(got.codes, want.codes)
    np.testing.assert_array_equal(got.widths, want.widths)
    np.testing.assert_array_equal(got.bitops, want.bitops)
    if widths == "dynamic":
        # the controller switches inside chunks: runs of inputs with one row each
        assert (got.switches() > 0).sum() > 10


@needs_program
def test_program_on_resnet18_and_a_new_weight_array(monkeypatch, rng):
    net = nw.random_controller(nw.random_network(resnet18_cifar(width=16), seed=0), seed=1)
    x = rng.integers(0, 256, (3, 3, 32, 32))
    for widths in (4, "dynamic"):
        want = layer_path(monkeypatch, net, x, widths)
        got = ex.execute(net, x, widths=widths)
        np.testing.assert_array_equal(got.codes, want.codes)
        np.testing.assert_array_equal(got.widths, want.widths)
    # a layer given a new weight array: the program is compiled again
    L = net.layers["fc"]
    L.w = L.w.copy()
    L.w[:, 0] = 0
    assert plan.session(net).program(net, net.width_mix(4)).weights[-1] is L.w
    np.testing.assert_array_equal(ex.execute(net, x, widths=4).codes,
                                  layer_path(monkeypatch, net, x, 4).codes)
    # and a controller layer: the dynamic program too
    c = net.controller
    old = plan.session(net).program(net, "dynamic")
    c.fc2.w = c.fc2.w[::-1].copy()
    assert plan.session(net).program(net, "dynamic") is not old
    got = ex.execute(net, x, widths="dynamic")
    want = layer_path(monkeypatch, net, x, "dynamic")
    np.testing.assert_array_equal(got.codes, want.codes)
    np.testing.assert_array_equal(got.widths, want.widths)


@needs_program
def test_programs_kept_are_the_latest(rng):
    """A sweep over many width mixes keeps only the latest few programs (each holds
    packed weights and activation arenas), and a program used again is kept longest."""
    net = nw.random_network(resnet_tiny(), seed=5)
    x = rng.integers(0, 256, (2, 1, 8, 8))
    ex.execute(net, x, widths=8)
    for pair in [(2, 2), (2, 4), (4, 2), (4, 4), (6, 2), (6, 4), (8, 2), (8, 4), (2, 2)]:
        ex.execute(net, x, widths=[pair] * 7)
    kept = plan.session(net).programs
    assert len(kept) == dsettings.PROGRAMS_KEPT
    assert list(kept)[-1] == tuple([(2, 2)] * 7)
    assert tuple([(8, 8)] * 7) not in kept and tuple([(2, 4)] * 7) not in kept


@needs_program
def test_controller_on_a_later_node(monkeypatch, rng):
    """The controller's features at the first residual add (not the stem): the layers up
    to it at their static widths, the later ones per input; program == layer path."""
    net = nw.random_controller(nw.random_network(resnet_tiny(), seed=5), seed=2,
                               features="layer1.0.add")
    assert net.controller.layers[0] == "layer2.0.conv1"
    x = (rng.integers(0, 256, (16, 1, 8, 8)) * rng.uniform(0, 1, (16, 1, 1, 1))).astype(int)
    want = layer_path(monkeypatch, net, x, "dynamic")
    got = ex.execute(net, x, widths="dynamic")
    assert plan.session(net).program(net, "dynamic") is not None
    np.testing.assert_array_equal(got.codes, want.codes)
    np.testing.assert_array_equal(got.widths, want.widths)
    assert (got.widths[:, :3] == 8).all()
