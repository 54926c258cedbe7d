"""QONNX: ``dqt-hw export`` writes Quant nodes (dqt_hw.net.qonnx_export) and ``dqt-hw
import`` reads them (dqt_hw.net.qonnx_read; docs/networks.md, "Export to QONNX").

The round trip import(export(net)) is compared with == (logit codes, constants). The
comparisons with qonnx's own executor (float32 arithmetic on the Quant semantics) run
only where the optional ``qonnx`` package is installed (the ``qonnx`` extra) and have a
tolerance: an exact tie of a rounding (an average pool's mean of 4 or 16 codes is often
one) lands on either side in float32, so a code before the last layer may be one apart.
The bound asserted is that effect: every logit within one code of the last layer's input
times the sum of |w| of its row, plus one output step; and the same argmax on >= 95 %."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnx_models as om
from dqt_hw import model
from dqt_hw.cli import main
from dqt_hw.net import network as nw
from dqt_hw.net.executor import execute, input_codes
from dqt_hw.net.onnx_import import from_onnx
from dqt_hw.net.qonnx_export import DOMAIN, META_KEY, export_file, to_qonnx
from dqt_hw.train import data as data_mod


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    """name -> (network, inputs): an imported QDQ model, a float model imported with
    16-bit logits, and the shipped trained network (float64 formats)."""
    d = tmp_path_factory.mktemp("qonnx")
    cal = om.inputs(1, 64)
    f = d / "resnet.onnx"
    onnx.save(om.centered(om.resnet_like(seed=0), cal), f)
    q = om.quantize_qdq(f, d / "resnet_qdq.onnx", cal)
    x = om.inputs(2, 60)
    return {"qdq": (from_onnx(q), x), "float": (from_onnx(f, calibration=cal), x),
            "shipped": (nw.load(nw.default_path()), data_mod.load("digits").x_test[:120])}


@pytest.mark.parametrize("name", ["qdq", "float", "shipped"])
def test_round_trip_is_bit_exact(nets, name, tmp_path):
    net, x = nets[name]
    p = export_file(net, tmp_path / "m.onnx")
    onnx.checker.check_model(onnx.load(p))
    back = from_onnx(p)
    assert back.provenance["import"] == "qonnx (dqt_hw export, exact formats)"
    assert back.arith == net.arith
    for nm in net.compute_layers():
        L, B = net.layers[nm], back.layers[nm]
        np.testing.assert_array_equal(B.w, L.w)
        np.testing.assert_array_equal(B.K, L.K)
        np.testing.assert_array_equal(B.S, L.S)
        assert B.widths == L.widths
    for w in (8, 4, 2):
        a = execute(net, input_codes(net, x), widths=w)
        b = execute(back, input_codes(back, x), widths=w)
        np.testing.assert_array_equal(b.codes, a.codes)


def test_export_has_quant_nodes_at_the_master_width(nets):
    net, _ = nets["shipped"]
    m = to_qonnx(net)
    quants = [nd for nd in m.graph.node if nd.op_type == "Quant"]
    assert {nd.domain for nd in quants} == {DOMAIN}
    consts = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    # one Quant for the input, one per conv/fc weight tensor, one per conv/fc/add output
    # and one per average pool (its mean rounded to a code)
    acts = [nd for nd in net.graph if nd.op in ("input", "conv", "fc", "add")]
    pools = [nd for nd in net.graph if nd.op == "avgpool"]
    assert pools and len(quants) == len(acts) + len(net.compute_layers()) + len(pools)
    bits = {nd.output[0]: float(consts[nd.input[3]]) for nd in quants}
    for nd in acts:  # each at its format's width (the 16-bit logits, 8 bits elsewhere)
        assert bits[nd.name if nd.op != "input" else f"{nd.name}.q"] == net.layers[nd.name].fmt.n
    assert {b for t, b in bits.items() if t.endswith(".weight.q")} == {8.0}
    nm = net.compute_layers()[0]
    wq = next(nd for nd in quants if nd.name == f"{nm}.weight_quant")
    np.testing.assert_array_equal(consts[wq.input[1]].reshape(-1),
                                  net.layers[nm].w_delta.astype(np.float32))
    meta = json.loads({p.key: p.value for p in m.metadata_props}[META_KEY])
    assert float.fromhex(meta["layers"][nm]["fmt"][2]) == net.layers[nm].fmt.delta


def test_export_of_a_static_mix_describes_the_nested_views(nets):
    net, _ = nets["qdq"]
    names = net.compute_layers()
    m = to_qonnx(net, mix={nm: (4, 2) if nm == names[1] else (8, 8) for nm in names})
    consts = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    views = {nd.name: nd for nd in m.graph.node if nd.name.endswith("_view")}
    assert sorted(views) == [f"{names[1]}.input_view", f"{names[1]}.weight_view"]
    a_fmt = net.in_fmt(names[1])
    iv = views[f"{names[1]}.input_view"]
    assert float(consts[iv.input[3]]) == 4.0
    assert float(consts[iv.input[1]]) == np.float32(a_fmt.delta * 16)
    wv = views[f"{names[1]}.weight_view"]
    assert float(consts[wv.input[3]]) == 2.0
    np.testing.assert_array_equal(consts[wv.input[1]].reshape(-1),
                                  (net.layers[names[1]].w_delta * 64).astype(np.float32))
    attrs = {a.name: a for a in iv.attribute}
    assert attrs["rounding_mode"].s == b"HALF_UP"  # the network's view rounding


def _mixes(net):
    """Three static mixes of ``net``: one width pair for all, and two that differ by layer
    (the first layer at 8/8 or only its weights narrowed, the fc at 8x2)."""
    names = net.compute_layers()
    per = {nm: ((4, 6) if i % 2 else (6, 4)) for i, nm in enumerate(names)}
    per[names[0]], per[names[-1]] = (8, 8), (8, 2)
    return [{nm: (4, 4) for nm in names}, per,
            {nm: ((8, 6) if i == 0 else (2, 2)) for i, nm in enumerate(names)}]


@pytest.mark.parametrize("name", ["qdq", "float", "shipped"])
@pytest.mark.parametrize("view_rounding", ["half_up", "floor"])
def test_export_of_a_mix_imports_and_runs_like_the_net_at_that_mix(nets, name, view_rounding,
                                                                   tmp_path):
    net, x = nets[name]
    net = nw.Network(net.graph, nw.Arith(**{**net.arith.to_dict(),
                                            "view_rounding": view_rounding}),
                     net.layers, None, net.provenance)
    for k, mix in enumerate(_mixes(net)):
        p = export_file(net, tmp_path / f"m{k}.onnx", mix=mix)
        back = from_onnx(p)
        assert back.provenance["import"] == "qonnx (dqt_hw export, exact formats)"
        assert back.arith == net.arith
        assert back.provenance["mix"] == {nm: list(b) for nm, b in mix.items()}
        for nm in net.compute_layers():  # the master tensors, not the views
            np.testing.assert_array_equal(back.layers[nm].w, net.layers[nm].w)
            np.testing.assert_array_equal(back.layers[nm].K, net.layers[nm].K)
        a = execute(net, input_codes(net, x), widths=mix)
        b = execute(back, input_codes(back, x), widths=back.provenance["mix"])
        np.testing.assert_array_equal(b.codes, a.codes)
        np.testing.assert_array_equal(b.widths, a.widths)


def test_export_of_a_mix_without_metadata_takes_the_views_rounding(nets, tmp_path):
    net, x = nets["qdq"]
    net = nw.Network(net.graph, nw.Arith(**{**net.arith.to_dict(), "view_rounding": "floor"}),
                     net.layers, None, net.provenance)
    mix = _mixes(net)[1]
    m = to_qonnx(net, mix=mix)
    del m.metadata_props[:]
    p = tmp_path / "m.onnx"
    onnx.save(m, p)
    back = from_onnx(p)
    assert back.provenance["import"] == "qonnx" and back.arith.view_rounding == "floor"
    assert back.provenance["mix"] == {nm: list(b) for nm, b in mix.items()}
    a = execute(net, input_codes(net, x), widths=mix)
    b = execute(back, input_codes(back, x), widths=back.provenance["mix"])
    np.testing.assert_array_equal(np.argmax(b.logits, 1), np.argmax(a.logits, 1))


@pytest.mark.parametrize("which, match", [
    ("one", r"nested views round floor and half_up; a network has one view rounding$"),
    ("all", r"nested views round floor, its metadata's view_rounding is half_up$")])
def test_views_of_another_rounding_are_refused(nets, which, match, tmp_path):
    net, _ = nets["qdq"]
    m = to_qonnx(net, mix=4)
    views = [nd for nd in m.graph.node if nd.name.endswith("_view")]
    for nd in views[:1] if which == "one" else views:
        for a in nd.attribute:
            if a.name == "rounding_mode":
                a.s = b"FLOOR"
    p = tmp_path / "m.onnx"
    onnx.save(m, p)
    with pytest.raises(ValueError, match=match):
        from_onnx(p)


def test_an_edited_view_is_refused(nets, tmp_path):
    net, _ = nets["qdq"]
    nm = net.compute_layers()[1]
    m = to_qonnx(net, mix={k: (4, 4) if k == nm else (8, 8) for k in net.compute_layers()})
    for i, t in enumerate(m.graph.initializer):
        if t.name == f"{nm}.input_view.scale":  # no longer 16 times the input's scale
            m.graph.initializer[i].CopyFrom(numpy_helper.from_array(
                numpy_helper.to_array(t) * np.float32(1.5), t.name))
    p = tmp_path / "m.onnx"
    onnx.save(m, p)
    with pytest.raises(ValueError, match=rf"node '{nm}.input_view' \(Quant\): activation "
                                         rf"bitwidth 4 is not supported .* a nested view"):
        from_onnx(p)


def _one_code(net):
    """The tolerance of the module docstring for ``net``'s logits."""
    last = net.layers[net.output_node()]
    w = last.w_m.reshape(-1, 1) + last.w_delta.reshape(-1, 1) * last.w.reshape(len(last.w), -1)
    return float(np.abs(w).sum(axis=1).max() * net.in_fmt(last.name).delta + last.fmt.delta)


def _qonnx():
    return pytest.importorskip("qonnx", reason="qonnx (the 'qonnx' extra) is not installed")


def _qonnx_run(path, x):
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    mw = ModelWrapper(str(path)).transform(InferShapes())
    name = mw.graph.input[0].name
    return np.concatenate([next(iter(execute_onnx(mw, {name: x[i:i + 1].astype(np.float32)})
                                     .values())) for i in range(len(x))])


@pytest.mark.parametrize("name", ["qdq", "shipped"])
def test_qonnx_runs_the_export_and_counts_its_macs(nets, name, tmp_path):
    _qonnx()
    from qonnx.util.inference_cost import inference_cost

    net, x = nets[name]
    p = export_file(net, tmp_path / "m.onnx")
    got = _qonnx_run(p, x[:30])
    r = execute(net, input_codes(net, x[:30]), widths=8)
    assert np.abs(got - r.logits).max() <= _one_code(net)  # tolerance: module docstring
    assert np.mean(got.argmax(axis=1) == r.pred) >= 0.95
    cost = inference_cost(str(p), discount_sparsity=False)
    assert cost["total_cost"]["total_macs"] == net.graph.total_macs()


# ---------------------------------------------------------------- QONNX as Brevitas writes it


def _brevitas_like(w_bits=4, act_bits=8, act_narrow=0, act_round="ROUND", act_scale=None,
                   domain="onnx.brevitas", seed=0, batch=1):
    """Input Quant (signed 8 bits, zero point 0), Conv with per-channel signed w_bits
    weights (scale (O, 1, 1, 1), zero point 0, narrow), Relu, unsigned act_bits Quant,
    global average pool, Reshape to [1, 6], Gemm with per-tensor weights, 16-bit output
    Quant."""
    rng = np.random.default_rng(seed)
    inits, nodes = [], []

    def c(name, v, dtype=np.float32):
        inits.append(numpy_helper.from_array(np.asarray(v, dtype), name))
        return name

    def quant(x, out, s, z, b, signed, narrow=0, rnd="ROUND"):
        nodes.append(helper.make_node("Quant", [x, c(out + ".s", s), c(out + ".z", z),
                                                c(out + ".b", b)], [out], name=out,
                                      domain=domain, signed=signed, narrow=narrow,
                                      rounding_mode=rnd))
        return out

    xq = quant("x", "xq", 0.02, 0.0, 8, 1)
    w = rng.normal(0, 0.3, (6, 3, 3, 3))
    ws = np.abs(w).reshape(6, -1).max(axis=1).reshape(6, 1, 1, 1) / (2 ** (w_bits - 1) - 1)
    wq = quant(c("w", w), "wq", ws, np.zeros_like(ws), w_bits, 1, narrow=1)
    nodes.append(helper.make_node("Conv", [xq, wq, c("b", rng.normal(0, 0.1, 6))], ["y"],
                                  name="conv", kernel_shape=[3, 3], pads=[1] * 4))
    nodes.append(helper.make_node("Relu", ["y"], ["yr"], name="relu"))
    aq = quant("yr", "aq", act_scale if act_scale is not None else 0.03, 0.0, act_bits, 0,
               narrow=act_narrow, rnd=act_round)
    nodes.append(helper.make_node("GlobalAveragePool", [aq], ["p"], name="gap"))
    # Reshape to [1, 6]: a flatten, as Brevitas writes it for its static batch of 1
    nodes.append(helper.make_node("Reshape", ["p", c("shape", [1, 6], np.int64)], ["f"],
                                  name="flat"))
    w2 = rng.normal(0, 0.5, (4, 6))
    w2q = quant(c("w2", w2), "w2q", np.abs(w2).max() / 127, 0.0, 8, 1)
    nodes.append(helper.make_node("Gemm", ["f", w2q, c("b2", np.zeros(4))], ["o"], name="fc",
                                  transB=1))
    quant("o", "oq", 0.001, 0.0, 16, 1)
    g = helper.make_graph(nodes, "brev", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [batch, 3, 6, 6])], [helper.make_tensor_value_info(
            "oq", TensorProto.FLOAT, [batch, 4])], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                            helper.make_opsetid(domain, 1)])
    m.ir_version = 8
    return m


def test_brevitas_style_qonnx_imports_and_agrees_with_qonnx(tmp_path):
    p = tmp_path / "brev.onnx"
    onnx.save(_brevitas_like(), p)
    net = from_onnx(p)
    assert net.provenance["import"] == "qonnx"
    conv = net.layers["conv"]
    m = _brevitas_like()
    w = numpy_helper.to_array(next(t for t in m.graph.initializer if t.name == "w"))
    s = numpy_helper.to_array(next(t for t in m.graph.initializer if t.name == "wq.s"))
    # 4-bit narrow signed codes in [-7, 7], from the lowest code up, as the 8-bit master
    # codes whose nested view at 4 bits they are: (q + 7) 2^4, step s / 16
    q4 = np.clip(np.round(w / s), -7, 7) + 7
    np.testing.assert_array_equal(conv.w, q4 * 16)
    np.testing.assert_array_equal(conv.w_m, -7 * s.reshape(-1).astype(np.float64))
    np.testing.assert_array_equal(conv.w_delta, s.reshape(-1).astype(np.float64) / 16)
    for rnd in ("half_up", "floor"):  # the view at 4 bits is the 4-bit codes
        np.testing.assert_array_equal(model.nested_view(conv.w, n=8, b=4, rounding=rnd), q4)
    assert net.layers["oq" if "oq" in net.layers else net.output_node()].fmt.n == 16
    _qonnx()
    x = np.random.default_rng(5).normal(0, 1, (40, 3, 6, 6))
    got = _qonnx_run(p, x)
    r = execute(net, input_codes(net, x), widths=8)
    assert np.abs(got - r.logits).max() <= _one_code(net)  # tolerance: module docstring
    assert np.mean(got.argmax(axis=1) == r.pred) >= 0.95


@pytest.mark.parametrize("kw, match", [
    ({"act_bits": 4}, r"node 'aq' \(Quant\): activation bitwidth 4 is not supported"),
    ({"act_narrow": 1}, r"node 'aq' \(Quant\): attribute narrow = 1 on an activation"),
    ({"act_round": "FLOOR"}, r"node 'aq' \(Quant\): attribute rounding_mode = 'FLOOR' on an "
                             r"activation"),
    ({"act_round": "SIDEWAYS"}, r"rounding_mode = 'SIDEWAYS' is not a QONNX rounding mode"),
    ({"act_scale": -1.0}, r"node 'aq' \(Quant\): scale 'aq.s'\[0\] = -1.0 is not a positive"),
    ({"act_scale": [0.1, 0.2]}, r"activation 'yr' is quantized per channel \(2 scales\)"),
    ({"w_bits": 9}, r"node 'conv' \(Conv\): weight 'wq' is not quantized"),
    ({"domain": "my.domain"}, r"a Quant node of domain 'my.domain', not QONNX's"),
    ({"batch": "N"}, r"node 'flat' \(Reshape\): target shape \[1, 6\] is not supported"),
])
def test_bad_quant_nodes_are_refused(tmp_path, kw, match):
    p = tmp_path / "bad.onnx"
    onnx.save(_brevitas_like(**kw), p)
    with pytest.raises(ValueError, match=match):
        from_onnx(p)


def test_edited_export_falls_back_to_its_quant_nodes(nets, tmp_path):
    net, x = nets["shipped"]
    m = to_qonnx(net)
    nm = net.compute_layers()[0]
    for i, t in enumerate(m.graph.initializer):
        if t.name == f"{nm}.quant.scale":  # the first layer's output scale, edited
            v = numpy_helper.to_array(t) * np.float32(1.5)
            m.graph.initializer[i].CopyFrom(numpy_helper.from_array(v, t.name))
    p = tmp_path / "edited.onnx"
    onnx.save(m, p)
    back = from_onnx(p)
    assert back.provenance["import"] == "qonnx"  # the exact values disagree: not used
    assert back.layers[nm].fmt.delta == float(np.float32(net.layers[nm].fmt.delta)
                                              * np.float32(1.5))


def test_malformed_metadata_is_refused(nets, tmp_path):
    m = to_qonnx(nets["qdq"][0])
    helper.set_model_props(m, {META_KEY: "{not json"})
    p = tmp_path / "m.onnx"
    onnx.save(m, p)
    with pytest.raises(ValueError, match=r"metadata 'dqt_hw.network' is not a dqt_hw export's"):
        from_onnx(p)


def test_cli_export_and_refusals(nets, tmp_path, capsys):
    net, _ = nets["qdq"]
    path = net.save(tmp_path / "net.json")
    assert main(["export", str(path), "-o", str(tmp_path / "m.onnx")]) == 0
    assert "wrote" in capsys.readouterr().out
    assert main(["import", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "back.json")]) == 0
    assert main(["export", str(path), "-o", str(tmp_path / "x.onnx"), "--mix", "9x9"]) == 2
    err = capsys.readouterr().err
    assert "width 9 is not in its candidate widths" in err and err.count("\n") == 1
    assert main(["export", str(path), "-o", str(tmp_path / "x.onnx"), "--mix", "4x4"]) == 0
    assert main(["import", str(tmp_path / "x.onnx"), "-o", str(tmp_path / "y.json")]) == 0
    assert "nested views: static mix 4x4 per layer (provenance.mix)" in capsys.readouterr().out
    back = nw.load(tmp_path / "y.json")
    assert back.provenance["mix"] == {nm: [4, 4] for nm in net.compute_layers()}


def test_cli_export_without_onnx_says_how_to_install(tmp_path):
    import subprocess
    import sys

    code = ("import sys; sys.modules['onnx'] = None; from dqt_hw.cli import main; "
            f"sys.exit(main(['export', 'resnet8_digits', '-o', {str(tmp_path / 'm.onnx')!r}]))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 1, r.stderr
    assert "needs the onnx package: pip install 'dqt_hw[onnx]'" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "m.onnx").exists()


def test_brevitas_qat_model_exported_to_qonnx(tmp_path):
    """A small Brevitas QAT model (8-bit signed input, 4- and 8-bit per-channel weights,
    QuantReLU, average pool, QuantLinear, 8-bit signed output), a few training steps,
    ``brevitas.export.export_qonnx``: imported, its logits agree with Brevitas' own within
    one output step (the average pool: Brevitas keeps the float mean, dqt_hw rounds it to
    a code) and the same argmax on >= 95 % of the inputs. Needs the ``brevitas`` extra."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("brevitas")
    pytest.importorskip("onnxoptimizer")
    import brevitas.nn as qnn
    from brevitas.export import export_qonnx
    from brevitas.quant import (Int8ActPerTensorFloat, Int8WeightPerChannelFloat,
                                Uint8ActPerTensorFloat)

    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat,
                                         return_quant_tensor=True)
            self.c1 = qnn.QuantConv2d(3, 8, 3, padding=1, weight_bit_width=4,
                                      weight_quant=Int8WeightPerChannelFloat, bias=True)
            self.r1 = qnn.QuantReLU(act_quant=Uint8ActPerTensorFloat, return_quant_tensor=True)
            self.c2 = qnn.QuantConv2d(8, 8, 3, padding=1, stride=2, weight_bit_width=8,
                                      weight_quant=Int8WeightPerChannelFloat, bias=True)
            self.r2 = qnn.QuantReLU(act_quant=Uint8ActPerTensorFloat, return_quant_tensor=True)
            self.pool = torch.nn.AvgPool2d(4)
            self.fc = qnn.QuantLinear(8, 10, bias=True, weight_bit_width=8)
            self.out = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat)

        def forward(self, x):
            x = self.r2(self.c2(self.r1(self.c1(self.inp(x)))))
            return self.out(self.fc(torch.flatten(self.pool(x), 1)))

    model = Net()
    x = torch.randn(64, 3, 8, 8)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(20):  # QAT steps on random labels (they also set the activation scales)
        loss = torch.nn.functional.cross_entropy(model(x), torch.randint(0, 10, (64,)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    p = tmp_path / "brevitas.onnx"
    export_qonnx(model, torch.randn(1, 3, 8, 8), export_path=str(p))
    with torch.no_grad():
        ref = model(x).numpy()
    net = from_onnx(p)
    w4 = net.layers[net.compute_layers()[0]].w  # 4-bit narrow: 15 codes, times 2^4
    assert w4.max() <= 14 * 16 and not np.any(w4 % 16)
    r = execute(net, input_codes(net, x.numpy()), widths=8)
    assert np.abs(r.logits - ref).max() <= net.layers[net.output_node()].fmt.delta * (1 + 1e-5)
    assert np.mean(r.pred == ref.argmax(axis=1)) >= 0.95


def test_export_refusals(nets, tmp_path, capsys):
    net, _ = nets["qdq"]
    with pytest.raises(ValueError, match=r"batch must be an integer >= 0 \(0: symbolic\), not -1"):
        to_qonnx(net, batch=-1)
    assert main(["export", str(tmp_path / "none.json"), "-o", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dqt-hw export: error: ") and "does not exist" in err
    assert err.count("\n") == 1 and not (tmp_path / "m.onnx").exists()
    mix = tmp_path / "mix.json"
    mix.write_text('{"*": "4x4", "nolayer": "8x8"}')
    path = net.save(tmp_path / "net.json")
    assert main(["export", str(path), "-o", str(tmp_path / "m.onnx"), "--mix", str(mix)]) == 2
    assert "has no conv/fc layer 'nolayer'" in capsys.readouterr().err
    m = to_qonnx(net, batch=0)
    assert m.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"


def test_run_reports_an_imported_models_own_mix(nets, tmp_path, capsys):
    """``dqt-hw run`` on an imported QONNX model whose Quant nodes give each layer its own
    widths runs that mix too (``results.json`` "own_mix", a point of the plot and a
    knapsack budget): the same accuracy and BitOPs as the executor at that mix."""
    net, _ = nets["shipped"]
    mix = _mixes(net)[1]
    back = from_onnx(export_file(net, tmp_path / "m.onnx", mix=mix))
    path = back.save(tmp_path / "back.json")
    out = tmp_path / "run"
    assert main(["run", "--net", str(path), "--data", "digits", "--limit", "150",
                 "--calibration", "40", "--out", str(out), "--no-progress"]) == 0
    said = capsys.readouterr().out
    res = json.loads((out / "results.json").read_text())
    ds = data_mod.load("digits")
    want = execute(back, input_codes(back, ds.x_test[:150]), widths=mix)
    assert res["own_mix"]["mix"] == {nm: list(b) for nm, b in mix.items()}
    assert res["own_mix"]["accuracy"] == want.accuracy(ds.y_test[:150])
    assert res["own_mix"]["mean_bitops"] == float(want.bitops.mean())
    # a mix of its own, not one of the uniform ones
    assert res["own_mix"]["mean_bitops"] not in [s["mean_bitops"] for s in res["static"]]
    assert res["own_mix"]["mean_bitops"] in [k["budget_bitops"] for k in res["knapsack"]]
    assert "the model's own mix (4x6, 6x4, 8x2, 8x8; provenance.mix): accuracy" in said
