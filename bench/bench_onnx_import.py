"""Agreement of ``dqt-hw import`` with onnxruntime on models written in plain torch.

A small ResNet-like and a small MobileNetV2-like model (batch norms, ReLU / ReLU6,
depthwise convs, residual adds, global average pool) with random weights, exported with
``torch.onnx.export(..., dynamo=False)``, quantized by onnxruntime's ``quantize_static``
(QDQ, per-channel int8 weights, uint8 activations) on calibration inputs, imported with
``dqt_hw.net.from_onnx`` and run by the integer executor: at 8/8 against onnxruntime on
the same QDQ file (argmax agreement, logit differences in output steps), and at every
lower width against the float model (argmax agreement); the float model is also imported
directly (post-training quantization, ``--calibration``). Each model's 8/8 speed is
printed beside onnxruntime's on the same QDQ file (and, to show what the depthwise path
of ``dqt_hw.model.depthwise`` buys, the executor with it switched off). Needs torch (the ``train``
extra); the tests (tests/test_onnx_import.py) build their models with the onnx helper
API instead.

    python bench/bench_onnx_import.py [--inputs 1000] [--size 16]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def models(torch, cin=3):
    nn = torch.nn

    def cbr(cin, cout, k=3, s=1, g=1, act=nn.ReLU):
        layers = [nn.Conv2d(cin, cout, k, s, k // 2, groups=g, bias=False), nn.BatchNorm2d(cout)]
        return nn.Sequential(*layers, act()) if act else nn.Sequential(*layers)

    class Basic(nn.Module):
        def __init__(self, cin, cout, s):
            super().__init__()
            self.body = nn.Sequential(cbr(cin, cout, 3, s), cbr(cout, cout, 3, 1, act=None))
            self.down = cbr(cin, cout, 1, s, act=None) if (s != 1 or cin != cout) else None
            self.relu = nn.ReLU()

        def forward(self, x):
            return self.relu(self.body(x) + (x if self.down is None else self.down(x)))

    class ResNetLike(nn.Module):
        def __init__(self, w=16, classes=10):
            super().__init__()
            self.stem = nn.Sequential(cbr(cin, w), nn.MaxPool2d(3, 1, 1))
            self.blocks = nn.Sequential(Basic(w, w, 1), Basic(w, 2 * w, 2), Basic(2 * w, 4 * w, 2))
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(4 * w, classes)

        def forward(self, x):
            return self.fc(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))

    class InvRes(nn.Module):
        def __init__(self, cin, cout, s, t):
            super().__init__()
            h = cin * t
            self.body = nn.Sequential(cbr(cin, h, 1, act=nn.ReLU6), cbr(h, h, 3, s, h, nn.ReLU6),
                                      cbr(h, cout, 1, act=None))
            self.skip = s == 1 and cin == cout

        def forward(self, x):
            return x + self.body(x) if self.skip else self.body(x)

    class MobileNetV2Like(nn.Module):
        def __init__(self, w=16, classes=10):
            super().__init__()
            self.features = nn.Sequential(
                cbr(cin, w, 3, 1, act=nn.ReLU6), InvRes(w, w, 1, 1), InvRes(w, 24, 2, 4),
                InvRes(24, 24, 1, 4), InvRes(24, 32, 2, 4), InvRes(32, 32, 1, 4),
                cbr(32, 64, 1, act=nn.ReLU6))
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(64, classes)

        def forward(self, x):
            return self.fc(torch.flatten(self.pool(self.features(x)), 1))

    return {"resnet_like": ResNetLike, "mobilenetv2_like": MobileNetV2Like}


def _speed(net, q, x, ort, execute, input_codes, from_onnx, repeats=3):
    """Images per second (best of ``repeats``, 2 threads) of the 8/8 executor, of the
    same with the depthwise path switched off (a fresh import: the group-by-group GEMM
    every depthwise conv took before), and of onnxruntime's QDQ session, in words."""
    import numba

    from dqt_hw.model import depthwise

    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    o = ort.SessionOptions()
    o.intra_op_num_threads, o.inter_op_num_threads = 2, 1
    sess = ort.InferenceSession(str(q), o, providers=["CPUExecutionProvider"])
    codes = input_codes(net, x)

    def best(fn):
        fn()
        ts = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
        return len(x) / min(ts)

    ours = best(lambda: execute(net, codes, widths=8))
    orig = depthwise.applies
    depthwise.applies = lambda w, groups: False
    try:
        net0 = from_onnx(q)
        before = best(lambda: execute(net0, codes, widths=8))
    finally:
        depthwise.applies = orig
    peer = best(lambda: sess.run(None, {"x": x}))
    return (f"speed (images/s, 2 threads, best of {repeats}): dqt_hw 8/8 {ours:.0f} "
            f"(depthwise path off: {before:.0f}), onnxruntime QDQ {peer:.0f}: "
            f"{ours / peer:.2f}x")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", type=int, default=1000)
    ap.add_argument("--calibration", type=int, default=128)
    ap.add_argument("--size", type=int, default=16, help="input H = W")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    import onnx
    import onnxruntime as ort
    import torch

    import onnx_models as om
    from dqt_hw.net import from_onnx
    from dqt_hw.net.executor import execute, input_codes

    torch.manual_seed(args.seed)
    shape = (3, args.size, args.size)
    cal = om.inputs(args.seed + 1, args.calibration, shape)
    x = om.inputs(args.seed + 2, args.inputs, shape)
    for name, cls in models(torch).items():
        model = cls().eval()
        with torch.no_grad():  # random batch-norm statistics, so that folding matters
            for mod in model.modules():
                if isinstance(mod, torch.nn.BatchNorm2d):
                    mod.running_mean.normal_(0, 0.1)
                    mod.running_var.uniform_(0.5, 1.5)
                    mod.weight.uniform_(0.5, 1.5)
        with tempfile.TemporaryDirectory() as d:
            f, q = Path(d) / f"{name}.onnx", Path(d) / f"{name}_qdq.onnx"
            torch.onnx.export(model, torch.from_numpy(cal[:1]), str(f), dynamo=False,
                              input_names=["x"], output_names=["y"], opset_version=17,
                              dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
            onnx.save(om.centered(onnx.load(f), cal), f)
            om.quantize_qdq(f, q, cal)
            t = time.perf_counter()
            net = from_onnx(q)
            t_imp = time.perf_counter() - t
            ops = sorted({n.op_type for n in onnx.load(f).graph.node})

            def run(p, fuse=True):
                o = ort.SessionOptions()
                if not fuse:  # DequantizeLinear -> float op -> QuantizeLinear, unfused
                    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
                return ort.InferenceSession(str(p), o, providers=["CPUExecutionProvider"]).run(
                    None, {"x": x})[0]

            ref_q, ref_f, ref_u = run(q), run(f), run(q, fuse=False)
            r8 = execute(net, input_codes(net, x), widths=8)
            step = net.layers[net.output_node()].fmt.delta
            diff = np.abs(r8.logits - ref_q) / step
            print(f"\n{name}: {len(net.compute_layers())} conv/fc layers, "
                  f"{net.graph.total_macs():,} MACs, float ONNX ops {ops}; import {t_imp:.2f} s")
            print(f"  8/8 vs onnxruntime QDQ ({args.inputs} inputs): same argmax "
                  f"{np.mean(r8.pred == ref_q.argmax(1)):.2%}, logits max "
                  f"{diff.max():.3g} output steps, {np.mean(diff > 0.5):.3%} of logits "
                  f"differ; onnxruntime QDQ vs float: "
                  f"{np.mean(ref_q.argmax(1) == ref_f.argmax(1)):.2%}")
            du = np.abs(r8.logits - ref_u) / step
            print(f"  8/8 vs onnxruntime QDQ unfused (float ops between Q/DQ): same argmax "
                  f"{np.mean(r8.pred == ref_u.argmax(1)):.2%}, logits max {du.max():.3g} "
                  f"output steps, {np.mean(du > 0.5):.3%} of logits differ")
            print("  " + _speed(net, q, x, ort, execute, input_codes, from_onnx))
            netf = from_onnx(f, calibration=cal)
            for label, nt in (("QDQ import", net), ("float + calibration", netf)):
                row = []
                for b in range(8, 1, -1):
                    r = execute(nt, input_codes(nt, x), widths=b)
                    row.append(f"{b}/{b} {np.mean(r.pred == ref_f.argmax(1)):.1%}")
                print(f"  {label}, same argmax as the float model: " + ", ".join(row))


if __name__ == "__main__":
    main()
