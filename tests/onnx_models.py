"""Small ONNX models built with the onnx helper API (no torch), for tests/test_onnx_import.py:
a ResNet-like and a MobileNetV2-like float model with random weights and batch norms,
and onnxruntime's ``quantize_static`` QDQ version of a float model."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


class Builder:
    """A float ONNX graph under construction: ``conv_bn`` etc. return output names."""

    def __init__(self, seed, shape=(3, 8, 8)):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits = [], []
        self.shape = shape
        self.k = 0

    def _name(self, base):
        self.k += 1
        return f"{base}{self.k}"

    def const(self, arr, base="c"):
        name = self._name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def node(self, op, inputs, base=None, **attrs):
        out = self._name(base or op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def conv_bn(self, x, cin, cout, k=3, stride=1, groups=1, act="relu", bias=False):
        fan = cin // groups * k * k
        w = self.rng.normal(0, np.sqrt(2.0 / fan), (cout, cin // groups, k, k))
        ins = [x, self.const(w.astype(np.float32), "w")]
        if bias:
            ins.append(self.const(self.rng.normal(0, 0.1, cout).astype(np.float32), "b"))
        y = self.node("Conv", ins, "conv", kernel_shape=[k, k], strides=[stride] * 2,
                      pads=[k // 2] * 4, group=groups)
        bn = [self.const(v.astype(np.float32), "bn") for v in (
            self.rng.uniform(0.5, 1.5, cout), self.rng.normal(0, 0.1, cout),
            self.rng.normal(0, 0.1, cout), self.rng.uniform(0.5, 1.5, cout))]
        y = self.node("BatchNormalization", [y, *bn], "bn", epsilon=1e-5)
        if act == "relu":
            y = self.node("Relu", [y])
        elif act == "relu6":
            y = self.node("Clip", [y, self.const(np.float32(0)), self.const(np.float32(6))],
                          "clip")
        return y

    def model(self, y, classes):
        C, H, W = self.shape
        g = helper.make_graph(
            self.nodes, "net", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                              ["N", C, H, W])],
            [helper.make_tensor_value_info(y, TensorProto.FLOAT, ["N", classes])],
            initializer=self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])
        m.ir_version = 8
        onnx.checker.check_model(m)
        return m


def resnet_like(seed=0, width=8, classes=10):
    """Stem conv-BN-ReLU, max pool, a basic block, a strided block with a 1x1 downsample,
    global average pool, flatten, Gemm."""
    b = Builder(seed)
    x = b.conv_bn("x", 3, width, bias=True)
    x = b.node("MaxPool", [x], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])
    for cin, cout, s in ((width, width, 1), (width, 2 * width, 2)):
        y = b.conv_bn(x, cin, cout, stride=s)
        y = b.conv_bn(y, cout, cout, act=None)
        sc = x if (s == 1 and cin == cout) else b.conv_bn(x, cin, cout, k=1, stride=s, act=None)
        x = b.node("Relu", [b.node("Add", [y, sc])])
    x = b.node("Flatten", [b.node("GlobalAveragePool", [x])], axis=1)
    w = b.rng.normal(0, 0.3, (classes, 2 * width)).astype(np.float32)
    y = b.node("Gemm", [x, b.const(w), b.const(np.zeros(classes, np.float32))], transB=1)
    return b.model(y, classes)


def inception_like(seed=0, width=8, classes=10, axis=1):
    """Stem conv-BN-ReLU, three branches (1x1 ReLU, 3x3 ReLU, 3x3 without activation, so
    their quantizations differ) joined by a Concat along ``axis``, a strided 3x3 conv on
    the concat, a second Concat of that conv's output with its own 1x1 branch, global
    average pool, flatten, Gemm."""
    b = Builder(seed)
    x = b.conv_bn("x", 3, width, bias=True)
    br = [b.conv_bn(x, width, width, k=1), b.conv_bn(x, width, width // 2),
          b.conv_bn(x, width, width // 2, act=None)]
    x = b.node("Concat", br, axis=axis)
    x = b.conv_bn(x, 2 * width, 2 * width, stride=2)
    x = b.node("Concat", [x, b.conv_bn(x, 2 * width, width, k=1, act=None)], axis=1)
    x = b.node("Flatten", [b.node("GlobalAveragePool", [x])], axis=1)
    w = b.rng.normal(0, 0.3, (classes, 3 * width)).astype(np.float32)
    y = b.node("Gemm", [x, b.const(w), b.const(np.zeros(classes, np.float32))], transB=1)
    return b.model(y, classes)


def mobilenet_like(seed=0, width=8, classes=10):
    """Stem conv-BN-ReLU6, an inverted residual block with its skip Add (1x1 expand,
    3x3 depthwise, linear 1x1 project), a strided one without, a 1x1 conv, 4x4 average
    pool, Reshape to (N, -1), MatMul + Add bias."""
    b = Builder(seed)
    x = b.conv_bn("x", 3, width, act="relu6")
    for cin, cout, s, t in ((width, width, 1, 2), (width, 2 * width, 2, 2)):
        h = b.conv_bn(x, cin, cin * t, k=1, act="relu6")
        h = b.conv_bn(h, cin * t, cin * t, stride=s, groups=cin * t, act="relu6")
        h = b.conv_bn(h, cin * t, cout, k=1, act=None)
        x = b.node("Add", [h, x]) if (s == 1 and cin == cout) else h
    x = b.conv_bn(x, 2 * width, 4 * width, k=1, act="relu6")
    x = b.node("AveragePool", [x], kernel_shape=[4, 4], strides=[4, 4])
    x = b.node("Reshape", [x, b.const(np.array([0, -1], np.int64))])
    w = b.rng.normal(0, 0.3, (4 * width, classes)).astype(np.float32)
    y = b.node("MatMul", [x, b.const(w)])
    y = b.node("Add", [y, b.const(b.rng.normal(0, 0.1, classes).astype(np.float32))])
    return b.model(y, classes)


def quantize_qdq(float_path, qdq_path, calib, input_name="x"):
    """onnxruntime's ``quantize_static`` (QDQ, per-channel int8 weights, uint8
    activations) of the float model at ``float_path`` on the inputs ``calib``, after
    onnxruntime's pre-processing (which folds the batch norms into the convs)."""
    import logging

    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{input_name: calib[i:i + 1]} for i in range(len(calib))])

        def get_next(self):
            return next(self.it, None)

    pre = str(qdq_path) + ".pre.onnx"
    logging.getLogger().setLevel(logging.ERROR)
    quant_pre_process(str(float_path), pre, skip_symbolic_shape=True)
    quantize_static(pre, str(qdq_path), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8)
    return qdq_path


def centered(model, x, input_name="x"):
    """``model`` with its last bias moved so that its mean logit over the inputs ``x`` is 0
    for every class (a random network otherwise predicts one class for almost every
    input, which makes an agreement test weak)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    mean = sess.run(None, {input_name: x})[0].mean(axis=0)
    last = model.graph.node[-1]
    bname = last.input[2] if last.op_type == "Gemm" else last.input[1]
    for i, t in enumerate(model.graph.initializer):
        if t.name == bname:
            b = numpy_helper.to_array(t) - mean.astype(np.float32)
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(b, bname))
    return model


def inputs(seed, n, shape=(3, 8, 8)):
    """Varied float inputs: Gaussian pixels with a random gain and offset per image and
    channel."""
    rng = np.random.default_rng(seed)
    gain = rng.uniform(0.2, 2.0, (n, shape[0], 1, 1))
    off = rng.normal(0, 0.5, (n, shape[0], 1, 1))
    return (rng.normal(0, 1, (n, *shape)) * gain + off).astype(np.float32)
