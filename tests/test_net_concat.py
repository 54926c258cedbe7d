"""Concat along the channels (docs/networks.md, "Concat"): the graph, the network file, every
executor path (layer by layer, whole-network program, the naive oracle), ``dqt-hw import``
of an ONNX Concat (QDQ and float), the QONNX export and its re-import, and the cost
models' counting."""

import json

import numpy as np
import onnx
import pytest

import onnx_models as om
from dqt_hw import settings as dsettings
from dqt_hw import spec
from dqt_hw.cost.workload import load_network
from dqt_hw.net import network as nw
from dqt_hw.net import plan, program
from dqt_hw.net.executor import execute, input_codes
from dqt_hw.net.graph import Graph, Node
from dqt_hw.net.onnx_import import from_onnx
from dqt_hw.net.qonnx_export import export_file
from dqt_hw.net.tiles import prefix_network
from test_net_executor import oracle


def concat_graph():
    """A concat of three inputs in three formats (a ReLU conv, a conv without ReLU, the
    network input), a conv on it, a concat of that conv with itself, pool, fc."""
    return Graph([
        Node("in", "input", (), {"shape": (2, 6, 6)}),
        Node("c1", "conv", ("in",), {"out_channels": 4, "kernel": 3, "padding": 1,
                                     "relu": True}),
        Node("c2", "conv", ("in",), {"out_channels": 3, "kernel": 1, "relu": False}),
        Node("cat", "concat", ("c1", "c2", "in")),
        Node("c3", "conv", ("cat",), {"out_channels": 4, "kernel": 3, "relu": True}),
        Node("cat2", "concat", ("c3", "c3")),
        Node("ap", "avgpool", ("cat2",), {"kernel": 4}),
        Node("fl", "flatten", ("ap",)),
        Node("fc", "fc", ("fl",), {"out_features": 3}),
    ], name="concat")


@pytest.fixture(scope="module")
def net():
    return nw.random_network(concat_graph(), seed=3)


MIXES = [8, [(8, 8), (4, 6), (2, 8), (6, 6)], [(6, 2), (2, 2), (4, 4), (8, 2)]]


def test_graph_shapes_and_refusals():
    g = concat_graph()
    assert g["cat"].shape == (9, 6, 6) and g["cat2"].shape == (8, 4, 4)
    assert g.layer_info(g["c3"])["taps"] == 9 * 9  # the concat's channels
    with pytest.raises(ValueError, match=r"layer 'cat': op 'concat' takes 2 to 64 inputs, "
                                         r"not 1$"):
        Graph([Node("in", "input", (), {"shape": (2, 6, 6)}),
               Node("cat", "concat", ("in",))])
    with pytest.raises(ValueError, match=r"layer 'cat': concat of 'in' \(2, 6, 6\) and 'p' "
                                         r"\(2, 3, 3\): heights and widths differ$"):
        Graph([Node("in", "input", (), {"shape": (2, 6, 6)}),
               Node("p", "maxpool", ("in",), {"kernel": 2}),
               Node("cat", "concat", ("in", "p"))])


@pytest.mark.parametrize("mix", MIXES)
def test_every_executor_path_equals_the_naive_oracle(net, rng, mix, monkeypatch):
    x = rng.integers(0, 256, (4, 2, 6, 6))
    x[0] = 255
    m = net.width_mix(mix)
    want = oracle(net, x, m)
    if program.enabled():
        assert plan.session(net).program(net, m) is not None
    np.testing.assert_array_equal(execute(net, x, widths=mix).codes, want)
    monkeypatch.setattr(dsettings, "PROGRAM", False)  # the layer-by-layer path
    np.testing.assert_array_equal(execute(net, x, widths=mix, batch_size=3).codes, want)
    np.testing.assert_array_equal(execute(net, x, widths=mix, stats=True).codes, want)


def test_dynamic_program_equals_the_layer_path(net, rng, monkeypatch):
    dyn = nw.random_controller(net, seed=4)
    x = rng.integers(0, 256, (6, 2, 6, 6))
    if program.enabled():
        assert plan.session(dyn).program(dyn, "dynamic") is not None
    a = execute(dyn, x, widths="dynamic")
    monkeypatch.setattr(dsettings, "PROGRAM", False)
    b = execute(dyn, x, widths="dynamic")
    np.testing.assert_array_equal(a.codes, b.codes)
    np.testing.assert_array_equal(a.widths, b.widths)
    for i in range(len(x)):  # each input as a static run at its chosen widths
        r = execute(dyn, x[i:i + 1], widths=[tuple(p) for p in b.widths[i]])
        np.testing.assert_array_equal(r.codes[0], b.codes[i])


def test_requantization_rule_and_identity(net, rng):
    """k1 = delta_i / delta_o, k3 = (m_i - m_o) / delta_o per input; an input already in
    the concat's format is copied code for code (k1 = 1, k3 = 0)."""
    L = net.layers["cat"]
    fo = L.fmt
    for j, i in enumerate(("c1", "c2", "in")):
        f = net.layers[i].fmt
        k1, k3 = (spec.Constant(int(L.K[t, j]), int(L.S[t, j]), 32) for t in range(2))
        # against the float ratios the integer constants quantize (a float reference:
        # 32-bit K, so the tolerance is the constant's own quantization, not the codes')
        assert k1.value == pytest.approx(f.delta / fo.delta, rel=1e-9)  # float reference
        assert k3.value == pytest.approx((f.m - fo.m) / fo.delta, rel=1e-9, abs=1e-9)  # float reference
    ident = nw.Network(net.graph, net.arith, dict(net.layers), None, {})
    c3 = net.layers["c3"].fmt
    K, S = nw.concat_layer_constants(net.arith, [c3, c3], c3)
    ident.layers["cat2"] = nw.Layer("cat2", "concat", fmt=c3, K=K, S=S)
    ident.validate()
    x = rng.integers(0, 256, (3, 2, 6, 6))
    a = execute(prefix_network(ident, "c3"), x, widths=8).codes
    b = execute(prefix_network(ident, "cat2"), x, widths=8).codes
    a = a.reshape(3, 4, 16)
    np.testing.assert_array_equal(b.reshape(3, 8, 16), np.concatenate([a, a], axis=1))


def test_file_round_trip_and_bad_constants(net, rng, tmp_path):
    p = net.save(tmp_path / "cat.json")
    back = nw.load(p)
    x = rng.integers(0, 256, (3, 2, 6, 6))
    for w in MIXES:
        np.testing.assert_array_equal(execute(back, x, widths=w).codes,
                                      execute(net, x, widths=w).codes)
    bad = nw.Network(net.graph, net.arith, dict(net.layers), None, {})
    bad.layers["cat"] = nw.Layer("cat", "concat", fmt=net.layers["cat"].fmt,
                                 K=net.layers["cat"].K[:, :2], S=net.layers["cat"].S[:, :2])
    with pytest.raises(ValueError, match=r"layer 'cat': constants K have shape \(2, 2\), not "
                                         r"\(2, 3\)$"):
        bad.validate()
    doc = json.loads(p.read_text())
    doc["nodes"][3]["inputs"] = ["c1"]
    p.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"layer 'cat'.*inputs"):
        nw.load(p)


def test_cost_models_count_the_convs_on_the_concat(net, tmp_path):
    p = net.save(tmp_path / "cat.json")
    g = load_network(p)
    assert g.total_macs() == net.graph.total_macs()
    macs = {r["name"]: r["macs"] for r in g.layer_table()}
    assert macs["c3"] == 4 * 4 * 4 * 9 * 9  # O x Ho x Wo x (C_concat x 3 x 3)


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    d = tmp_path_factory.mktemp("concat")
    cal = om.inputs(1, 64)
    f = d / "inception.onnx"
    onnx.save(om.centered(om.inception_like(seed=0), cal), f)
    q = om.quantize_qdq(f, d / "inception_qdq.onnx", cal)
    return {"qdq": (from_onnx(q), q), "float": (from_onnx(f, calibration=cal), f)}


def test_qdq_concat_agrees_with_onnxruntime(imported):
    import onnxruntime as ort

    net, q = imported["qdq"]
    cats = [nd.name for nd in net.graph if nd.op == "concat"]
    assert len(cats) == 2
    x = om.inputs(2, 300)
    r = execute(net, input_codes(net, x), widths=8)
    ref = ort.InferenceSession(str(q), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    step = net.layers[net.output_node()].fmt.delta
    assert np.mean(r.pred == ref.argmax(axis=1)) >= 0.99
    assert np.abs(r.logits - ref).max() <= 2 * step * (1 + 1e-6)  # float32 ties


@pytest.mark.parametrize("name", ["qdq", "float"])
def test_concat_export_imports_back_bit_for_bit(imported, name, tmp_path):
    net, _ = imported[name]
    p = export_file(net, tmp_path / "m.onnx")
    assert sum(nd.op_type == "Concat" for nd in onnx.load(p).graph.node) == 2
    back = from_onnx(p)
    assert back.provenance["import"] == "qonnx (dqt_hw export, exact formats)"
    x = om.inputs(3, 40)
    for nm in (nd.name for nd in net.graph if nd.op == "concat"):
        np.testing.assert_array_equal(back.layers[nm].K, net.layers[nm].K)
        np.testing.assert_array_equal(back.layers[nm].S, net.layers[nm].S)
    for w in (8, 4, 2):
        np.testing.assert_array_equal(execute(back, input_codes(back, x), widths=w).codes,
                                      execute(net, input_codes(net, x), widths=w).codes)


def test_qonnx_runs_and_counts_a_concat_export(imported, tmp_path):
    pytest.importorskip("qonnx", reason="qonnx (the 'qonnx' extra) is not installed")
    from qonnx.util.inference_cost import inference_cost

    from test_qonnx import _one_code, _qonnx_run

    net, _ = imported["qdq"]
    p = export_file(net, tmp_path / "m.onnx")
    x = om.inputs(4, 20)
    got = _qonnx_run(p, x)
    r = execute(net, input_codes(net, x), widths=8)
    assert np.abs(got - r.logits).max() <= _one_code(net)  # test_qonnx's tolerance
    assert np.mean(got.argmax(axis=1) == r.pred) >= 0.95
    cost = inference_cost(str(p), discount_sparsity=False)
    assert cost["total_cost"]["total_macs"] == net.graph.total_macs()
