"""Per-model figures of ``dqt-hw import`` on briefly trained models (docs/networks.md,
"Your own model", the per-model table): each model is trained in float (plain torch) or
with quantization-aware training (Brevitas) on the packaged digits (``digits-contrast``,
1438 training and 359 test images of 1x8x8), then

- (a) ResNet-like and MobileNetV2-like (``bench_onnx_import.models``) and an
  Inception-like with two channel concats (``inception_like``): exported with
  ``torch.onnx.export(..., dynamo=False)``, quantized by onnxruntime's ``quantize_static``
  (QDQ, per-channel int8 weights, uint8 activations, 128 training images), imported;
- (b) a small Brevitas QAT model (8-bit signed input, 4-bit and 8-bit per-channel weights,
  unsigned 8-bit activations, 8-bit output) exported with ``brevitas.export.export_qonnx``,
  imported;
- (c) the float ResNet-like imported with ``--calibration`` (128 training images);
- and the QDQ ResNet-like import fine-tuned the DQT way (``dqt-hw train --init``,
  ``--finetune-epochs`` joint epochs and 2 controller epochs on the training images).

For each: the ONNX operators, MACs (dqt_hw's graph and qonnx's ``inference_cost`` of the
model, or of its ``dqt-hw export`` where the source is not QONNX), agreement at 8/8 with
the reference (onnxruntime on the QDQ or float file; Brevitas' own torch model for (b)):
same argmax and the largest logit difference (in output steps of the imported network's
logits, and as a real number), and the test accuracy at 8/8, 4/4 and 2/2 as ``dqt-hw run
--net NET.json --data digits.npz`` reports it (its ``results.json``). Needs torch (the
``train`` extra), onnxruntime, qonnx and brevitas (``make setup``).

    python bench/bench_onnx_digits.py [--epochs 30] [--seed 0] [--out out/bench_onnx_digits]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def train(torch, model, ds, epochs, seed, lr=3e-3):
    """Adam on the training set, batches of 64; returns the model in eval mode."""
    g = torch.Generator().manual_seed(seed)
    x, y = torch.from_numpy(ds.x_train.astype(np.float32)), torch.from_numpy(ds.y_train)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), 64):
            idx = perm[i:i + 64]
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    return model.eval()


def inception_like(torch, cin=1):
    """Three branches in three quantizations (1x1 ReLU, 3x3 ReLU, 3x3 without activation)
    joined by a Concat, a strided 3x3 conv on it, a second Concat with its own 1x1 branch,
    global average pool, fc (tests/onnx_models.py's ``inception_like`` in plain torch)."""
    nn = torch.nn

    def cbr(i, o, k=3, s=1, act=True):
        mods = [nn.Conv2d(i, o, k, s, k // 2, bias=False), nn.BatchNorm2d(o)]
        return nn.Sequential(*mods, nn.ReLU()) if act else nn.Sequential(*mods)

    class InceptionLike(nn.Module):
        def __init__(self, w=8, classes=10):
            super().__init__()
            self.stem = cbr(cin, w)
            self.b1, self.b2, self.b3 = cbr(w, w, 1), cbr(w, w // 2), cbr(w, w // 2, act=False)
            self.mid = cbr(2 * w, 2 * w, 3, 2)
            self.side = cbr(2 * w, w, 1, act=False)
            self.fc = nn.Linear(3 * w, classes)

        def forward(self, x):
            x = self.stem(x)
            x = self.mid(torch.cat([self.b1(x), self.b2(x), self.b3(x)], 1))
            x = torch.cat([x, self.side(x)], 1)
            return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))

    return InceptionLike


def brevitas_model(torch):
    import brevitas.nn as qnn
    from brevitas.quant import (Int8ActPerTensorFloat, Int8WeightPerChannelFloat,
                                Uint8ActPerTensorFloat)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat,
                                         return_quant_tensor=True)
            self.c1 = qnn.QuantConv2d(1, 16, 3, padding=1, weight_bit_width=4,
                                      weight_quant=Int8WeightPerChannelFloat, bias=True)
            self.r1 = qnn.QuantReLU(act_quant=Uint8ActPerTensorFloat, return_quant_tensor=True)
            self.c2 = qnn.QuantConv2d(16, 32, 3, padding=1, stride=2, weight_bit_width=8,
                                      weight_quant=Int8WeightPerChannelFloat, bias=True)
            self.r2 = qnn.QuantReLU(act_quant=Uint8ActPerTensorFloat, return_quant_tensor=True)
            self.pool = torch.nn.AvgPool2d(4)
            self.fc = qnn.QuantLinear(32, 10, bias=True, weight_bit_width=8)
            self.out = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat)

        def forward(self, x):
            x = self.r2(self.c2(self.r1(self.c1(self.inp(x)))))
            return self.out(self.fc(torch.flatten(self.pool(x), 1)))

    return Net()


def macs_qonnx(path):
    from qonnx.util.inference_cost import inference_cost

    return int(inference_cost(str(path), discount_sparsity=False)["total_cost"]["total_macs"])


def dqt_run(net_json, data, out):
    """``dqt-hw run --net NET --data DATA`` (no knapsack); {width: accuracy}."""
    from dqt_hw.cli import main

    rc = main(["run", "--net", str(net_json), "--data", str(data), "--out", str(out),
               "--calibration", "0", "--no-progress"])
    if rc != 0:
        raise SystemExit(f"dqt-hw run failed ({rc}) on {net_json}")
    res = json.loads((out / "results.json").read_text())
    return {s["width"]: s["accuracy"] for s in res["static"]}


def row(name, kind, src, ref, net, net_json, x, data, out, ops, source_acc):
    """One row of the table: ``name``'s imported network ``net`` (file ``net_json``) from
    ``src`` against the reference logits ``ref`` on the test inputs ``x``."""
    from dqt_hw.net.executor import execute, input_codes
    from dqt_hw.net.qonnx_export import export_file

    r8 = execute(net, input_codes(net, x), widths=8)
    step = net.layers[net.output_node()].fmt.delta
    diff = np.abs(r8.logits - ref)
    slug = Path(net_json).stem
    q = src if kind == "qonnx" else export_file(net, out / f"{slug}_export.onnx")
    acc = dqt_run(net_json, data, out / f"{slug}_run")
    return {"model": name, "import": kind, "ops": ops, "layers": len(net.compute_layers()),
            "macs": int(net.graph.total_macs()), "macs_qonnx": macs_qonnx(q),
            "argmax": float(np.mean(r8.pred == ref.argmax(1))),
            "logit_max_steps": float(diff.max() / step), "logit_max": float(diff.max()),
            "accuracy": {int(b): acc[b] for b in (8, 4, 2)}, "source_accuracy": source_acc}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--width", type=int, default=8, help="channels of the first stage")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--calibration", type=int, default=128)
    ap.add_argument("--out", type=Path, default=Path("out/bench_onnx_digits"))
    ap.add_argument("--finetune-epochs", type=int, default=5)
    ap.add_argument("--brevitas-lr", type=float, default=3e-2)
    args = ap.parse_args(argv)
    import onnx
    import onnxruntime as ort
    import torch

    import onnx_models as om
    from bench_onnx_import import models
    from dqt_hw.net.onnx_import import import_file
    from dqt_hw.train import data as data_mod

    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    ds = data_mod.load("digits-contrast")
    x = ds.x_test.astype(np.float32)
    cal = ds.x_train[:args.calibration].astype(np.float32)
    data = out / "digits.npz"
    np.savez(data, x=x, y=ds.y_test, x_cal=ds.x_train.astype(np.float32), y_cal=ds.y_train)
    widths = [2, 4, 8]
    ort_run = (lambda p: ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
               .run(None, {"x": x})[0])
    rows = []
    zoo = {**models(torch, cin=1), "inception_like": inception_like(torch, cin=1)}
    for name, cls in zoo.items():
        t = time.perf_counter()
        model = train(torch, cls(w=args.width), ds, args.epochs, args.seed)
        f, q = out / f"{name}.onnx", out / f"{name}_qdq.onnx"
        torch.onnx.export(model, torch.from_numpy(cal[:1]), str(f), dynamo=False,
                          input_names=["x"], output_names=["y"], opset_version=17,
                          dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
        om.quantize_qdq(f, q, cal)
        ops = sorted({n.op_type for n in onnx.load(f).graph.node})
        ref_f = ort_run(f)
        print(f"{name}: trained {args.epochs} epochs in {time.perf_counter() - t:.0f} s, "
              f"float accuracy {np.mean(ref_f.argmax(1) == ds.y_test):.2%}", flush=True)
        path, net = import_file(q, out / f"{name}_qdq.json", widths=widths)
        facc = float(np.mean(ref_f.argmax(1) == ds.y_test))
        rows.append(row(f"{name} (QDQ)", "qdq", q, ort_run(q), net, path, x, data, out, ops,
                        facc))
        if name == "resnet_like":
            qdq_path = path
            path, net = import_file(f, out / f"{name}_float.json", widths=widths,
                                    calibration=cal)
            rows.append(row(f"{name} (float + calibration)", "float", f, ref_f, net, path,
                            x, data, out, ops, facc))
    if args.finetune_epochs:
        from dqt_hw.cli import main as cli

        ft = out / "resnet_like_qdq_dqt.json"
        t = time.perf_counter()
        rc = cli(["train", "--init", str(qdq_path), "--data", str(data), "--widths", "2,4,8",
                  "--epochs", str(args.finetune_epochs), "--ctrl-epochs", "2",
                  "--seed", str(args.seed), "--threads", "2", "--out", str(ft)])
        if rc != 0:
            raise SystemExit(f"dqt-hw train --init failed ({rc})")
        print(f"fine-tuned in {time.perf_counter() - t:.0f} s", flush=True)
        acc = dqt_run(ft, data, out / "resnet_like_qdq_dqt_run")
        rows.append({"model": f"resnet_like (QDQ) + dqt-hw train --init, "
                              f"{args.finetune_epochs} + 2 epochs", "import": "qdq",
                     "ops": rows[0]["ops"], "layers": rows[0]["layers"],
                     "macs": rows[0]["macs"], "macs_qonnx": rows[0]["macs_qonnx"],
                     "argmax": None, "logit_max_steps": None,
                     "logit_max": None, "source_accuracy": rows[0]["source_accuracy"],
                     "accuracy": {b: acc[b] for b in (8, 4, 2)}})
    from brevitas.export import export_qonnx

    t = time.perf_counter()
    model = train(torch, brevitas_model(torch), ds, 2 * args.epochs, args.seed,
                  lr=args.brevitas_lr)
    b = out / "brevitas.onnx"
    export_qonnx(model, torch.from_numpy(cal[:1]), export_path=str(b))
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    print(f"brevitas: trained {2 * args.epochs} epochs in {time.perf_counter() - t:.0f} s, "
          f"QAT accuracy {np.mean(ref.argmax(1) == ds.y_test):.2%}", flush=True)
    path, net = import_file(b, out / "brevitas.json", widths=widths)
    ops = sorted({n.op_type for n in onnx.load(b).graph.node})
    rows.append(row("brevitas (QONNX)", "qonnx", b, ref, net, path, x, data, out, ops,
                    float(np.mean(ref.argmax(1) == ds.y_test))))
    (out / "table.json").write_text(json.dumps(rows, indent=1))
    print("\n| model | operators | conv/fc | MACs (dqt_hw / qonnx) | same argmax at 8/8 | "
          "max logit diff (steps; real) | source model acc. | 8/8 | 4/4 | 2/2 |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        a = r["accuracy"]
        agree = ("—", "—") if r["argmax"] is None else (
            f"{r['argmax']:.1%}", f"{r['logit_max_steps']:.3g}; {r['logit_max']:.3g}")
        print(f"| {r['model']} | {', '.join(r['ops'])} | {r['layers']} | {r['macs']:,} / "
              f"{r['macs_qonnx']:,} | {agree[0]} | {agree[1]} | {r['source_accuracy']:.1%} | "
              f"{a[8]:.1%} | {a[4]:.1%} | {a[2]:.1%} |")


if __name__ == "__main__":
    main()
