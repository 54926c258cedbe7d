"""The integer network executor: equal to a whole-network oracle built from tests/naive.py,
deterministic bit for bit, and independent of batching and of how the dynamic run
groups inputs."""

import numpy as np
import pytest

import naive
from dqt_hw import spec
from dqt_hw.net import network as nw
from dqt_hw.net.executor import execute
from dqt_hw.net.graph import Graph, Node, resnet_tiny


def small_graph():
    return Graph([
        Node("in", "input", (), {"shape": (2, 6, 6)}),
        Node("c1", "conv", ("in",), {"out_channels": 4, "kernel": 3, "padding": 1,
                                     "relu": True}),
        Node("mp", "maxpool", ("c1",), {"kernel": 3, "stride": 2, "padding": 1}),
        Node("c2", "conv", ("mp",), {"out_channels": 4, "kernel": 3, "padding": 1,
                                     "groups": 2, "relu": False}),
        Node("a", "add", ("c2", "mp"), {"relu": True}),
        Node("ap", "avgpool", ("a",), {"kernel": 3}),
        Node("fl", "flatten", ("ap",)),
        Node("fc", "fc", ("fl",), {"out_features": 3}),
    ], name="small")


def _list(a):
    return np.asarray(a).tolist()


def oracle(net, x, mix):
    """The network on Python ints, from the contract: views, naive conv/gemm in order,
    master constants with S moved by the width-switch rule, the DQT add, pooling."""
    a = net.arith
    n = a.n
    vals = {}
    names = net.compute_layers()
    for nd in net.graph:
        if nd.op == "input":
            v = _list(x)
        elif nd.op in ("conv", "fc"):
            L = net.layers[nd.name]
            b_a, b_w = mix[names.index(nd.name)]
            xin = np.asarray(vals[nd.inputs[0]])
            if nd.op == "fc":
                xin = xin.reshape(xin.shape[0], -1, 1, 1)
            xv = [[[[naive.nested_view(int(q), n, b_a, a.view_rounding) for q in row]
                    for row in ch] for ch in img] for img in _list(xin)]
            w = L.w if nd.op == "conv" else L.w.reshape(L.w.shape + (1, 1))
            wv = [[[[naive.nested_view(int(q), n, b_w, a.view_rounding) for q in row]
                    for row in ci] for ci in co] for co in _list(w)]
            p = nd.attr("padding", 0)
            g = nd.attr("groups", 1)
            acc, *_ = naive.conv2d(xv, wv, nd.attr("stride", 1), p, g, a.acc_width, a.overflow)
            e = (n - b_a + n - b_w, n - b_a, n - b_w, 0)
            lo, hi = 0, (1 << L.fmt.n) - 1
            O, Cg = len(wv), len(wv[0])
            Og = O // g
            out = []
            for nb, img in enumerate(acc):
                och = []
                for o, plane in enumerate(img):
                    KS = [(int(L.K[t, o]), int(L.S[t, o]) - e[t]) for t in range(4)]
                    sw = sum(sum(sum(r) for r in ci) for ci in wv[o])
                    grp = o // Og
                    rows = []
                    for oy, row in enumerate(plane):
                        r = []
                        for ox, accv in enumerate(row):
                            taps = naive.conv_taps(xv, nb, grp * Cg, Cg, oy, ox, len(wv[0][0]),
                                                   len(wv[0][0][0]), nd.attr("stride", 1), p, 0)
                            r.append(naive.requantize(accv, sum(taps), sw, KS, a.rounding, lo, hi))
                        rows.append(r)
                    och.append(rows)
                out.append(och)
            v = out
        elif nd.op == "add":
            L = net.layers[nd.name]
            KS = list(zip(L.K.tolist(), L.S.tolist()))
            x1, x2 = np.asarray(vals[nd.inputs[0]]), np.asarray(vals[nd.inputs[1]])
            v = np.vectorize(lambda p, q: naive.lincomb([p, q, 1], KS, a.rounding, 0, 255))(
                x1, x2).tolist()
        elif nd.op == "maxpool":
            p = nd.attr("padding", 0)
            xp = np.pad(np.asarray(vals[nd.inputs[0]]), ((0, 0), (0, 0), (p, p), (p, p)))
            v = naive.pool(_list(xp), nd.attrs["kernel"], nd.attr("stride"), "max")
        elif nd.op == "avgpool":
            v = naive.pool(vals[nd.inputs[0]], nd.attrs["kernel"],
                           nd.attr("stride", nd.attrs["kernel"]), "avg", a.pool_rounding)
        elif nd.op == "flatten":
            v = np.asarray(vals[nd.inputs[0]]).reshape(len(x), -1, 1, 1).tolist()
        elif nd.op == "concat":  # each input requantized: q_o = lincomb([q, 1], (k1, k3))
            L = net.layers[nd.name]
            parts = []
            for j, i in enumerate(nd.inputs):
                KS = [(int(L.K[t, j]), int(L.S[t, j])) for t in range(2)]
                parts.append(np.vectorize(
                    lambda q, KS=KS: naive.lincomb([q, 1], KS, a.rounding, 0, 255))(
                        np.asarray(vals[i])))
            v = np.concatenate(parts, axis=1).tolist()
        vals[nd.name] = v
    return np.asarray(vals[net.output_node()]).reshape(len(x), -1)


@pytest.mark.parametrize("mix", [8, [(8, 8), (4, 6), (2, 8)], [(6, 2), (2, 2), (4, 4)]])
def test_executor_equals_naive_oracle(rng, mix):
    net = nw.random_network(small_graph(), seed=11)
    x = rng.integers(0, 256, (2, 2, 6, 6))
    r = execute(net, x, widths=mix)
    m = net.width_mix(mix)
    np.testing.assert_array_equal(r.codes, oracle(net, x, m))
    macs = [row["macs"] for row in net.graph.layer_table()]
    assert r.bitops.tolist() == [sum(M * ba * bw for M, (ba, bw) in zip(macs, m))] * 2


@pytest.fixture(scope="module")
def dyn_net():
    return nw.random_controller(nw.random_network(resnet_tiny(), seed=5), seed=6)


def test_dynamic_equals_static_per_input_and_is_deterministic(dyn_net, rng):
    # images of different brightness, so that the controller's features differ
    x = (rng.integers(0, 256, (12, 1, 8, 8)) * rng.uniform(0, 1, (12, 1, 1, 1))).astype(int)
    r = execute(dyn_net, x, widths="dynamic", batch_size=5)
    assert len({tuple(w.ravel()) for w in r.widths}) > 1, "random controller picks one mix"
    again = execute(dyn_net, x, widths="dynamic", batch_size=12)
    np.testing.assert_array_equal(r.codes, again.codes)
    np.testing.assert_array_equal(r.widths, again.widths)
    for i in range(len(x)):
        one = execute(dyn_net, x[i:i + 1], widths=[tuple(p) for p in r.widths[i]])
        np.testing.assert_array_equal(one.codes[0], r.codes[i])
    assert r.widths[:, 0].tolist() == [[8, 8]] * 12  # the stem is static
    assert r.controller_bitops == (64 * 16 + 64 * 6 * 4) * 64
    sw = r.switches()
    assert sw[0] == 0 and all(
        sw[i] == int(np.any(r.widths[i] != r.widths[i - 1], axis=1).sum()) for i in range(1, 12))
    assert (r.shifts(dyn_net) > 0).all()


def test_stats_per_layer_and_per_input(dyn_net, rng):
    x = rng.integers(0, 256, (3, 1, 8, 8))
    r = execute(dyn_net, x, widths=4, stats="input")
    assert set(r.acc_stats) == set(dyn_net.compute_layers())
    for name, st in r.acc_stats.items():
        per = [s[name] for s in r.input_stats]
        assert st.max_abs_partial == max(p.max_abs_partial for p in per)
        assert st.outputs == sum(p.outputs for p in per)
        assert st.events == 0 and st.bits_needed <= 32
    r2 = execute(dyn_net, x, widths=4, stats=True)
    assert r2.acc_stats == r.acc_stats
    np.testing.assert_array_equal(r2.codes, r.codes)


def test_saturating_accumulator_counts_events(rng):
    net = nw.random_network(small_graph(), seed=11,
                            arith=nw.Arith(acc_width=18, overflow="saturate"))
    x = np.full((1, 2, 6, 6), 255)
    r = execute(net, x, widths=8, stats=True)
    assert r.acc_stats["c1"].bits_needed > 18 and r.acc_stats["c1"].events > 0
    np.testing.assert_array_equal(r.codes, oracle(net, x, net.width_mix(8)))


def test_bad_inputs(dyn_net):
    with pytest.raises(ValueError, match=r"^layer 'input': input codes have shape \(1, 1, 7, 8\), "
                                         r"the network takes \(N, 1, 8, 8\)$"):
        execute(dyn_net, np.zeros((1, 1, 7, 8), np.int64), widths=8)
    with pytest.raises(ValueError, match=r"input codes holds code 256 at index \(0, 0, 0, 0\), "
                                         r"outside \[0, 255\]"):
        execute(dyn_net, np.full((1, 1, 8, 8), 256), widths=8)
    net = nw.random_network(small_graph(), seed=1)
    with pytest.raises(ValueError, match=r"^network 'small' has no controller"):
        execute(net, np.zeros((1, 2, 6, 6), np.int64), widths="dynamic")
    assert spec.Format(8).n == 8
