"""Independent peers for checking and benchmarking the model: onnxruntime's ConvInteger.

onnx and onnxruntime come with the ``test`` extra. Only ``ConvInteger`` is used as a
reference: onnxruntime's QLinearConv (u8s8) saturates int16 pair sums on some CPUs and
is not bit-exact.
"""

from __future__ import annotations

import numpy as np


def conv_integer_session(x_shape, w, *, stride=1, padding=0, threads=2, w_dtype=np.uint8,
                         groups=1):
    """An onnxruntime session computing ConvInteger(x, w) (zero points 0, ``groups``
    groups) with the weight ``w`` (OIHW) built in. Run it with
    ``sess.run(None, {"x": x_uint8})[0]`` (int32)."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    w = np.asarray(w)
    wt = numpy_helper.from_array(w.astype(w_dtype), name="w")
    node = helper.make_node("ConvInteger", ["x", "w"], ["y"], strides=[stride, stride],
                            pads=[padding] * 4, kernel_shape=list(w.shape[2:]),
                            group=groups)
    graph = helper.make_graph(
        [node], "conv_integer",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, list(x_shape))],
        [helper.make_tensor_value_info("y", TensorProto.INT32, None)],
        initializer=[wt])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
