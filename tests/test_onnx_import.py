"""Bring your own network: ONNX models (QDQ int8 from onnxruntime's quantize_static, or
float plus calibration inputs) imported as DQT networks at n = 8 (dqt_hw.net.onnx_import,
docs/networks.md "Your own model").

The agreement tests compare the integer executor at 8/8 with onnxruntime running the same
QDQ file. That is the one place a tolerance belongs: onnxruntime requantizes with float32
multipliers (QLinearConv, QLinearAdd, ...), the executor with 32-bit integer constants
from the exact formats, so a value on a rounding tie may land one code apart at a layer
and move the logits. The bound asserted: the same argmax on >= 99 % of the inputs and
every logit within 2 output steps (measured: 0 codes apart on 300 inputs for both
models). Everything else is compared with ==.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnx_models as om
from dqt_hw.cli import main
from dqt_hw.net import network as nw
from dqt_hw.net.executor import execute, input_codes
from dqt_hw.net.onnx_import import from_onnx, range_format

MODELS = {"resnet": om.resnet_like, "mobilenet": om.mobilenet_like}


@pytest.fixture(scope="module", params=sorted(MODELS))
def pair(request, tmp_path_factory):
    """(float model path, QDQ model path, calibration inputs) of one model."""
    d = tmp_path_factory.mktemp(request.param)
    cal = om.inputs(1, 64)
    m = om.centered(MODELS[request.param](seed=0), cal)
    f = d / f"{request.param}.onnx"
    onnx.save(m, f)
    q = om.quantize_qdq(f, d / f"{request.param}_qdq.onnx", cal)
    return f, q, cal


def _ort(path, x):
    import onnxruntime as ort

    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return s.run(None, {"x": x})[0]


def test_qdq_agrees_with_onnxruntime(pair):
    _, q, _ = pair
    net = from_onnx(q)
    x = om.inputs(2, 300)
    ref = _ort(q, x)
    r = execute(net, input_codes(net, x), widths=8)
    step = net.layers[net.output_node()].fmt.delta
    assert np.mean(r.pred == ref.argmax(axis=1)) >= 0.99
    assert np.abs(r.logits - ref).max() <= 2 * step  # tolerance: see the module docstring
    # the input codes are onnxruntime's QuantizeLinear of the same inputs
    s, z = net.layers["x"].fmt.delta, -net.layers["x"].fmt.m / net.layers["x"].fmt.delta
    np.testing.assert_array_equal(input_codes(net, x),
                                  np.clip(np.rint(x / np.float32(s)) + round(z), 0, 255))


def test_qdq_formats_are_the_files_scales(pair):
    """Every activation format is (m = -s z, delta = s) of the file's uint8 quantization,
    every weight code the file's int8 code + 128 with w_m = -128 s_w."""
    _, q, _ = pair
    net = from_onnx(q)
    model = onnx.load(q)
    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    s, z = float(init["x_scale"]), int(init["x_zero_point"])
    assert (net.layers["x"].fmt.m, net.layers["x"].fmt.delta) == (-s * z, s)
    conv0 = next(nd for nd in model.graph.node if nd.op_type == "Conv")
    first = next(nd for nd in model.graph.node if nd.output[0] == conv0.input[1])
    conv = next(L for L in net.layers.values() if L.op == "conv")
    np.testing.assert_array_equal(conv.w, init[first.input[0]].astype(np.int64) + 128)
    sw = init[first.input[1]].astype(np.float64)
    np.testing.assert_array_equal(conv.w_delta, sw)
    np.testing.assert_array_equal(conv.w_m, -128 * sw)


def test_lower_widths_are_shifts_of_the_saved_master_codes(pair, tmp_path):
    _, q, _ = pair
    net = from_onnx(q, widths=(2, 4, 6, 8))
    path = net.save(tmp_path / "net.json")
    back = nw.load(path)
    x = input_codes(net, om.inputs(3, 20))
    names = net.compute_layers()
    mix = {nm: (4, 6) if i % 2 else (6, 4) for i, nm in enumerate(names)}
    for w in (8, 4, mix):
        a, b = execute(net, x, widths=w), execute(back, x, widths=w)
        np.testing.assert_array_equal(a.codes, b.codes)
    for nm in names:  # one tensor per layer: the master codes, n = 8
        assert back.layers[nm].w.max() <= 255 and back.layers[nm].widths == (2, 4, 6, 8)
    assert back.provenance["import"] == "qdq"


def test_float_model_post_training_quantization(pair):
    f, _, cal = pair
    net = from_onnx(f, calibration=cal)
    x = om.inputs(2, 300)
    ref = _ort(f, x).argmax(axis=1)
    agree = {b: np.mean(execute(net, input_codes(net, x), widths=b).pred == ref)
             for b in (8, 6, 4)}
    assert agree[8] >= 0.85, agree  # measured 0.96 (resnet) and 0.89 (mobilenet)
    assert agree[8] >= agree[4], agree
    assert net.layers[net.output_node()].fmt.n == 16
    assert net.provenance["calibration"] == {"inputs": 64, "percentile": 99.99,
                                             "logit_bits": 16, "logit_margin": 0.25}


def test_depthwise_network_equals_the_naive_oracle(tmp_path):
    """The imported MobileNet-like network (depthwise convs, groups = channels) on the
    whole-network oracle of tests/naive.py, at 8/8 and a mix."""
    from test_net_executor import oracle

    cal = np.random.default_rng(1).uniform(0, 1, (16, 3, 8, 8)).astype(np.float32)
    f = tmp_path / "m.onnx"
    onnx.save(om.mobilenet_like(seed=3, width=2), f)
    net = from_onnx(f, calibration=cal)  # inputs >= 0: the stem pads with code 0
    assert any(nd.attr("groups", 1) > 1 for nd in net.graph)
    x = input_codes(net, cal[:2])
    for mix in (8, [(8, 8), (4, 6), (2, 8), (6, 2), (4, 4), (8, 4), (3, 5), (5, 3), (8, 8)]):
        m = net.width_mix(mix)
        np.testing.assert_array_equal(execute(net, x, widths=mix).codes, oracle(net, x, m))


def test_range_format_keeps_zero_a_code():
    f = range_format(-1.0, 3.0)
    assert f.delta == 4.0 / 255 and -f.m / f.delta == round(-f.m / f.delta) == 64
    assert range_format(0.0, 0.0).m == 0.0 and range_format(0.0, 0.0).delta == 1.0 / 255


# ---------------------------------------------------------------------- refusals


def _model(nodes, inits=(), shape=("N", 3, 8, 8), out="y", out_shape=None, opset=om.OPSET):
    g = helper.make_graph(list(nodes), "t",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                          [helper.make_tensor_value_info(out, TensorProto.FLOAT,
                                                         out_shape or [None] * 4)],
                          initializer=[numpy_helper.from_array(np.asarray(v), k)
                                       for k, v in inits])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


W = ("w", np.full((4, 3, 3, 3), 0.1, np.float32))


def _conv(**attrs):
    return helper.make_node("Conv", ["x", "w"], ["y"], name="c", **attrs)


def _save(m, tmp_path, name="m.onnx"):
    p = tmp_path / name
    p.write_bytes(m.SerializeToString())
    return p


CAL = np.zeros((2, 3, 8, 8), np.float32)


@pytest.mark.parametrize("nodes, inits, match", [
    ([helper.make_node("Sigmoid", ["x"], ["y"], name="s")], [],
     r"node 's' \(Sigmoid\): op type Sigmoid is not supported \(supported: Conv, "),
    ([helper.make_node("Concat", ["x", "x"], ["y"], name="cat", axis=2)], [],
     r"node 'cat' \(Concat\): attribute axis = 2 is not supported \(only 1: the channels of "
     r"\(N, C, H, W\)\)$"),
    ([helper.make_node("Concat", ["x", "x"], ["y"], name="cat", axis=-1)], [],
     r"node 'cat' \(Concat\): attribute axis = -1 is not supported"),
    ([_conv(dilations=[2, 2])], [W],
     r"node 'c' \(Conv\): attribute dilations = \[2, 2\] is not supported \(only 1\)$"),
    ([_conv(strides=[1, 2])], [W],
     r"node 'c' \(Conv\): attribute strides = \[1, 2\] is not supported"),
    ([_conv(pads=[1, 1, 0, 0])], [W],
     r"node 'c' \(Conv\): attribute pads = \[1, 1, 0, 0\] is not supported"),
    ([_conv(auto_pad="SAME_UPPER")], [W],
     r"node 'c' \(Conv\): attribute auto_pad = 'SAME_UPPER' is not supported"),
    ([helper.make_node("MaxPool", ["x"], ["y"], name="p", kernel_shape=[2, 2], ceil_mode=1)],
     [], r"node 'p' \(MaxPool\): attribute ceil_mode = 1 is not supported$"),
    ([helper.make_node("AveragePool", ["x"], ["y"], name="p", kernel_shape=[3, 3],
                       pads=[1, 1, 1, 1])], [],
     r"node 'p' \(AveragePool\): attribute pads = \[1, 1, 1, 1\] is not supported"),
    ([helper.make_node("Flatten", ["x"], ["y"], name="f", axis=2)], [],
     r"node 'f' \(Flatten\): attribute axis = 2 is not supported"),
    ([helper.make_node("Relu", ["x"], ["y"], name="r")], [],
     r"node 'r' \(Relu\): follows layer 'x' \(input\); a Relu/Clip is supported only right "
     r"after a Conv/Gemm/MatMul/Add"),
    ([helper.make_node("Add", ["x", "k"], ["y"], name="a")], [("k", np.float32(1))],
     r"node 'a' \(Add\): adding a constant is supported only as the bias"),
])
def test_unsupported_ops_and_attributes_are_refused(tmp_path, nodes, inits, match):
    p = _save(_model(nodes, inits), tmp_path)
    with pytest.raises(ValueError, match=match):
        from_onnx(p, calibration=CAL)


def test_dynamic_shape_is_refused(tmp_path):
    p = _save(_model([_conv()], [W], shape=["N", 3, "H", 8]), tmp_path)
    with pytest.raises(ValueError, match=r"input 'x' has a dynamic dimension 'H' at axis 2 "
                                         r"\(dqt_hw needs static C, H, W"):
        from_onnx(p, calibration=CAL)


def test_too_old_opset_is_refused(tmp_path):
    p = _save(_model([_conv()], [W], opset=11), tmp_path)
    with pytest.raises(ValueError, match=r"opset 11 is too old \(dqt_hw reads opset 13 or "
                                         r"later"):
        from_onnx(p, calibration=CAL)


@pytest.mark.parametrize("data, match", [
    (b"", r"is not an ONNX file \(no graph nodes or no opset"),
    (b"not an onnx model at all\n" * 4, r"is not an ONNX file"),
])
def test_non_onnx_files_are_refused(tmp_path, data, match):
    p = tmp_path / "bad.onnx"
    p.write_bytes(data)
    with pytest.raises(ValueError, match=match):
        from_onnx(p, calibration=CAL)


def test_truncated_file_is_refused(pair, tmp_path):
    _, q, _ = pair
    data = q.read_bytes()
    p = tmp_path / "cut.onnx"
    p.write_bytes(data[:len(data) * 2 // 3])
    with pytest.raises(ValueError, match=r"ONNX model '.*cut\.onnx' is not (an ONNX file|a valid)"):
        from_onnx(p)


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"ONNX model file '.*nope\.onnx' does not exist$"):
        from_onnx(tmp_path / "nope.onnx")


def _qdq_edit(q, tmp_path, name, value, cast=None):
    """The QDQ model q with initializer ``name`` replaced by ``value``."""
    m = onnx.load(q)
    for i, t in enumerate(m.graph.initializer):
        if t.name == name:
            old = numpy_helper.to_array(t)
            v = np.full(old.shape, value, cast or old.dtype)
            m.graph.initializer[i].CopyFrom(numpy_helper.from_array(v, name))
    return _save(m, tmp_path, "edited.onnx")


@pytest.mark.parametrize("name, value, match", [
    ("x_scale", 0.0, r"node '.*' \(QuantizeLinear\): scale 'x_scale'\[0\] = 0\.0 is not a "
                     r"positive finite number$"),
    ("x_scale", np.nan, r"scale 'x_scale'\[0\] = nan is not a positive finite number$"),
    ("x_scale", np.inf, r"scale 'x_scale'\[0\] = inf is not a positive finite number$"),
    ("x_scale", -0.5, r"scale 'x_scale'\[0\] = -0\.5 is not a positive finite number$"),
])
def test_bad_scales_are_refused(pair, tmp_path, name, value, match):
    _, q, _ = pair
    with pytest.raises(ValueError, match=match):
        from_onnx(_qdq_edit(q, tmp_path, name, value))


def test_zero_point_outside_the_code_range_is_refused(tmp_path):
    """int8 weight codes with a uint8 zero point of 200: not an int8 code."""
    m = _model([helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], name="dq",
                                 axis=0),
                helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q"),
                helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"], name="d"),
                helper.make_node("Conv", ["xd", "w"], ["y"], name="c")],
               [("wq", np.ones((4, 3, 3, 3), np.int8)), ("ws", np.full(4, 0.1, np.float32)),
                ("wz", np.full(4, 200, np.uint8)), ("s", np.float32(0.1)),
                ("z", np.uint8(0))])
    with pytest.raises(ValueError, match=r"node 'dq' \(DequantizeLinear\): zero point 200 is "
                                         r"outside the int8 code range \[-128, 127\]$"):
        from_onnx(_save(m, tmp_path))


def _qconv(s, z, z_dq=None):
    """x -> QuantizeLinear(s, z) -> DequantizeLinear(s, z_dq or z) -> Conv."""
    return _model([helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q"),
                   helper.make_node("DequantizeLinear", ["xq", "s", z_dq or "z"], ["xd"],
                                    name="d"),
                   helper.make_node("DequantizeLinear", ["wq", "ws"], ["w"], name="dw", axis=0),
                   helper.make_node("Conv", ["xd", "w"], ["y"], name="c")],
                  [("wq", np.ones((4, 3, 3, 3), np.int8)), ("ws", np.full(4, 0.1, np.float32)),
                   ("s", s), ("z", z), ("z2", np.uint8(7))])


@pytest.mark.parametrize("s, z, z_dq, match", [
    (np.float32(0.1), np.uint16(3), None,
     r"node 'q' \(QuantizeLinear\): code type uint16 is not an 8-bit type \(uint8, int8\): "
     r"dqt_hw imports at master width n = 8$"),
    (np.full(3, 0.1, np.float32), np.zeros(3, np.uint8), None,
     r"node 'q' \(QuantizeLinear\): activation 'x' is quantized per channel \(3 scales\)"),
    (np.float32(0.1), np.uint8(0), "z2",
     r"node 'd' \(DequantizeLinear\): dequantizes 'x' with scale \[0\.1.*\] and zero point "
     r"\[7\] \(uint8\), not the QuantizeLinear's .* and 0 \(uint8\)$"),
])
def test_activation_quantizations_dqt_cannot_hold_are_refused(tmp_path, s, z, z_dq, match):
    with pytest.raises(ValueError, match=match):
        from_onnx(_save(_qconv(s, z, z_dq), tmp_path))


def test_relu_that_needs_another_clamp_is_refused(tmp_path):
    """Conv -> Relu -> QuantizeLinear with zero point 10: ReLU is the clamp at code 10,
    which the network format cannot hold."""
    m = _model([helper.make_node("QuantizeLinear", ["x", "s", "z0"], ["xq"], name="q0"),
                helper.make_node("DequantizeLinear", ["xq", "s", "z0"], ["xd"], name="d0"),
                helper.make_node("DequantizeLinear", ["wq", "ws"], ["w"], name="dw", axis=0),
                helper.make_node("Conv", ["xd", "w"], ["c"], name="c"),
                helper.make_node("Relu", ["c"], ["r"], name="r"),
                helper.make_node("QuantizeLinear", ["r", "s", "z"], ["rq"], name="q1"),
                helper.make_node("DequantizeLinear", ["rq", "s", "z"], ["y"], name="d1")],
               [("wq", np.ones((4, 3, 3, 3), np.int8)), ("ws", np.full(4, 0.1, np.float32)),
                ("s", np.float32(0.1)), ("z0", np.uint8(128)), ("z", np.uint8(10))])
    with pytest.raises(ValueError, match=r"layer 'c' \(c/r\): its Relu/Clip \[0\.0, inf\] does "
                                         r"not cover its output format \[-1, 24\.5\]"):
        from_onnx(_save(m, tmp_path))


def test_calibration_is_required_checked_and_refused_where_it_does_not_apply(pair, tmp_path):
    f, q, cal = pair
    with pytest.raises(ValueError, match=r"is a float model: give calibration inputs "
                                         r"\(--calibration DATA\.npy, shape \(N, 3, 8, 8\)\)$"):
        from_onnx(f)
    with pytest.raises(ValueError, match=r"is already quantized \(QDQ\): calibration inputs "
                                         r"do not apply$"):
        from_onnx(q, calibration=cal)
    with pytest.raises(ValueError, match=r"calibration inputs: shape \(3, 8, 8\) is not "
                                         r"\(N >= 1, 3, 8, 8\)"):
        from_onnx(f, calibration=cal[0])
    bad = cal.copy()
    bad[1, 2, 3, 4] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    with pytest.raises(ValueError, match=r"calibration file '.*bad\.npy': value at "
                                         r"\(1, 2, 3, 4\) is nan, not finite$"):
        from_onnx(f, calibration=tmp_path / "bad.npy")
    with pytest.raises(ValueError, match=r"percentile must be a number in \(50, 100\], not 30"):
        from_onnx(f, calibration=cal, percentile=30)


def test_batch_norm_with_negative_scale_on_quantized_weights(tmp_path):
    """DequantizeLinear weights -> Conv -> BatchNormalization (gamma < 0 on some channels)
    -> QuantizeLinear: the batch norm is folded into the weight formats (codes flipped
    where gamma < 0); equal to onnxruntime's float computation of the same file."""
    rng = np.random.default_rng(4)
    gamma = np.array([1.5, -0.7, 0.0, -2.0], np.float32)
    m = _model([helper.make_node("QuantizeLinear", ["x", "s", "z0"], ["xq"], name="q0"),
                helper.make_node("DequantizeLinear", ["xq", "s", "z0"], ["xd"], name="d0"),
                helper.make_node("DequantizeLinear", ["wq", "ws"], ["w"], name="dw", axis=0),
                helper.make_node("Conv", ["xd", "w"], ["c"], name="c", pads=[1, 1, 1, 1]),
                helper.make_node("BatchNormalization", ["c", "g", "b", "mu", "var"], ["n"],
                                 name="bn"),
                helper.make_node("QuantizeLinear", ["n", "so", "zo"], ["nq"], name="q1"),
                helper.make_node("DequantizeLinear", ["nq", "so", "zo"], ["y"], name="d1")],
               [("wq", rng.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8)),
                ("ws", rng.uniform(0.01, 0.02, 4).astype(np.float32)),
                ("s", np.float32(0.05)), ("z0", np.uint8(128)),
                ("g", gamma), ("b", rng.normal(0, 0.1, 4).astype(np.float32)),
                ("mu", rng.normal(0, 0.1, 4).astype(np.float32)),
                ("var", rng.uniform(0.5, 1.5, 4).astype(np.float32)),
                ("so", np.float32(0.02)), ("zo", np.uint8(120))])
    p = _save(m, tmp_path)
    net = from_onnx(p)
    assert [L.op for L in net.layers.values()] == ["input", "conv"]
    x = om.inputs(5, 50)
    ref = _ort(p, x)
    r = execute(net, input_codes(net, x), widths=8)
    got = r.logits.reshape(ref.shape)
    assert np.abs(got - ref).max() <= 0.02 + 1e-6  # one output step (the tolerance above)
    assert np.mean(np.abs(got - ref) < 0.01) >= 0.99


# ---------------------------------------------------------------------- command line


def test_cli_import_writes_a_network_file(pair, tmp_path, capsys):
    f, q, cal = pair
    out = tmp_path / "net.json"
    assert main(["import", str(q), "-o", str(out), "--widths", "4,8"]) == 0
    assert "wrote" in capsys.readouterr().out
    net = nw.load(out)
    assert net.layers[net.compute_layers()[0]].widths == (4, 8)
    assert net.provenance["command"].startswith("dqt-hw ")
    np.save(tmp_path / "cal.npy", cal)
    assert main(["import", str(f), "-o", str(tmp_path / "f.json"), "--calibration",
                 str(tmp_path / "cal.npy"), "--percentile", "100"]) == 0
    assert nw.load(tmp_path / "f.json").provenance["calibration"]["percentile"] == 100.0


def test_cli_refusal_is_one_line_and_writes_nothing(tmp_path, capsys):
    p = _save(_model([helper.make_node("Sigmoid", ["x"], ["y"], name="s")]), tmp_path)
    out = tmp_path / "o" / "net.json"
    assert main(["import", str(p), "-o", str(out), "--calibration", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dqt-hw import: error: ") and err.count("\n") == 1
    assert not out.exists() and not out.with_suffix(".npz").exists()


def test_cli_without_onnx_says_how_to_install(tmp_path):
    code = ("import sys; sys.modules['onnx'] = None; from dqt_hw.cli import main; "
            f"sys.exit(main(['import', {str(tmp_path / 'm.onnx')!r}, '-o', "
            f"{str(tmp_path / 'n.json')!r}]))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 1, r.stderr
    assert "needs the onnx package: pip install 'dqt_hw[onnx]'" in r.stderr
    assert "Traceback" not in r.stderr
