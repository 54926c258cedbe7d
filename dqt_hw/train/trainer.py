"""DQT training: J = J_task + alpha J_consistency + beta J_cost, and export.

- J_task: cross-entropy of the network run with the controller's per-input widths
  (straight-through Gumbel-softmax samples, temperature annealed from ``tau0`` to
  ``tau1``);
- J_consistency: the sum over the widths b in K' of the cross-entropy of the whole network
  run statically at b (every conv/fc layer at b/b);
- J_cost: the expected BitOPs of the controller's choices (softmax probabilities)
  relative to the network at n/n; with ``cost_target`` t, the distance |c - t| of the
  batch's mean relative cost c from t instead (a budget on the mean over the batch, so
  the controller may spend more bits on some inputs and fewer on others).

``export`` writes the trained model to the ``dqt_hw.net`` format: master weight codes,
formats, and the integer constants computed from them (``dqt_hw.net.network``).
"""

from __future__ import annotations

import copy
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from .. import spec
from ..net import network as nw
from ..net.graph import resnet_tiny
from . import data as data_mod
from .qat import PACT_MIN, DQTModel

DEFAULTS = dict(data="digits", stages=(16, 32, 64), widths=(2, 4, 6, 8), kprime=None,
                epochs=40, batch=64, lr=3e-3, alpha=0.5, beta=1.0, tau0=2.0, tau1=0.3,
                seed=0, threads=1, hidden=64, cost_target=None)


def _batches(n, batch, rng):
    idx = rng.permutation(n)
    for s in range(0, n, batch):
        yield idx[s:s + batch]


def build_model(ds: data_mod.DataSet, *, stages, widths, hidden, name=None):
    g = resnet_tiny(ds.shape, tuple(stages), ds.classes,
                    name=name or f"resnet{2 + 2 * len(stages)}_{ds.name}")
    return DQTModel(g, widths=widths, hidden=hidden)


def evaluate(model: DQTModel, x, y, widths, batch=512):
    """(accuracy, mean BitOPs) of ``model`` on real inputs at ``widths`` (int/dict/
    'dynamic') in eval mode (controller argmax)."""
    model.eval()
    correct, bitops, N = 0, 0.0, len(y)
    with torch.no_grad():
        for s in range(0, N, batch):
            xb = torch.as_tensor(x[s:s + batch], dtype=next(model.parameters()).dtype)
            out, probs = model(xb, widths)
            correct += int((out.argmax(1).numpy() == y[s:s + batch]).sum())
            if probs is not None:
                bitops += float(model.bitops(probs.argmax(-1)).sum())
    if widths != "dynamic":
        b = widths
        bitops = N * sum(m * b * b for m in model.macs.values())
    return correct / max(N, 1), bitops / max(N, 1)


def train(*, log=print, **kw):
    """Train a DQT network; returns (model, history). Keyword arguments: ``DEFAULTS``."""
    cfg = {**DEFAULTS, **kw}
    torch.manual_seed(cfg["seed"])
    torch.set_num_threads(cfg["threads"])
    rng = np.random.default_rng(cfg["seed"])
    ds = cfg.get("dataset") or data_mod.load(cfg["data"])
    model = build_model(ds, stages=cfg["stages"], widths=cfg["widths"], hidden=cfg["hidden"])
    kprime = tuple(cfg["kprime"] or cfg["widths"])
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    steps = cfg["epochs"] * math.ceil(len(ds.y_train) / cfg["batch"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg["lr"], total_steps=steps,
                                                pct_start=0.15)
    xt = torch.as_tensor(ds.x_train, dtype=torch.float32)
    yt = torch.as_tensor(ds.y_train)
    hist = []
    step = 0
    t0 = time.perf_counter()
    for ep in range(cfg["epochs"]):
        model.train()
        tot = dict(task=0.0, cons=0.0, cost=0.0, n=0)
        for idx in _batches(len(yt), cfg["batch"], rng):
            tau = cfg["tau0"] * (cfg["tau1"] / cfg["tau0"]) ** (step / max(steps - 1, 1))
            xb, yb = xt[idx], yt[idx]
            out, probs = model(xb, "dynamic", tau=tau)
            j_task = F.cross_entropy(out, yb)
            j_cons = sum(F.cross_entropy(model(xb, b)[0], yb) for b in kprime)
            j_cost = model.expected_cost(probs)
            if cfg["cost_target"] is not None:
                j_cost = (j_cost - cfg["cost_target"]).abs()
            loss = j_task + cfg["alpha"] * j_cons + cfg["beta"] * j_cost
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            with torch.no_grad():
                for mod in model.modules():
                    if hasattr(mod, "alpha") and isinstance(mod.alpha, torch.nn.Parameter):
                        mod.alpha.clamp_(min=PACT_MIN)
            step += 1
            k = len(idx)
            tot["task"] += float(j_task.detach()) * k
            tot["cons"] += float(j_cons.detach()) * k
            tot["cost"] += float(j_cost.detach()) * k
            tot["n"] += k
        rec = {"epoch": ep + 1, **{k: v / tot["n"] for k, v in tot.items() if k != "n"},
               "tau": tau, "seconds": time.perf_counter() - t0}
        if ep + 1 == cfg["epochs"] or (ep + 1) % max(1, cfg["epochs"] // 5) == 0:
            acc, bops = evaluate(model, ds.x_test, ds.y_test, "dynamic")
            rec.update(test_dynamic=acc, dynamic_bitops=bops)
        hist.append(rec)
        log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in rec.items()))
    return model, hist, ds


# ---------------------------------------------------------------------- export


def _f(t) -> float:
    return float(t.detach().double())


def _weights(op):
    w = op.weight.detach().double().numpy()
    flat = w.reshape(w.shape[0], -1)
    lo, hi = flat.min(axis=1), flat.max(axis=1)
    delta = np.where(hi > lo, (hi - lo) / 255.0, 1.0)
    shape = (-1,) + (1,) * (w.ndim - 1)
    codes = np.clip(np.rint((w - lo.reshape(shape)) / delta.reshape(shape)), 0, 255)
    return codes.astype(np.int64), lo, delta, op.bias.detach().double().numpy()


def _fmt(act) -> spec.Format:
    m, d = act.fmt()
    return spec.Format(act.bits, m=_f(m), delta=_f(d))


def export(model: DQTModel, *, provenance=None) -> nw.Network:
    """The trained ``model`` as a ``dqt_hw.net.Network`` (integer constants included)."""
    model = copy.deepcopy(model).double().eval()
    g = model.graph
    arith = nw.Arith(n=model.n, view_rounding=model.view_rounding)
    layers = {}
    table = {r["name"]: r for r in g.layer_table()}
    for nd in g:
        if nd.op == "input":
            layers[nd.name] = nw.Layer(nd.name, nd.op, fmt=spec.Format(model.n, m=0.0,
                                                                      delta=1.0 / 255.0))
        elif nd.op in nw.PASS_OPS:
            layers[nd.name] = nw.Layer(nd.name, nd.op, fmt=layers[nd.inputs[0]].fmt)
        elif nd.op in ("conv", "fc"):
            op = model.op(nd.name)
            w, w_m, w_d, bias = _weights(op)
            fo = _fmt(op.act)
            K, S = nw.layer_constants(arith, layers[nd.inputs[0]].fmt, w_m, w_d, fo,
                                      table[nd.name]["taps"], bias)
            layers[nd.name] = nw.Layer(nd.name, nd.op, fmt=fo, widths=model.widths, w=w,
                                       w_m=w_m, w_delta=w_d, bias=bias, K=K, S=S)
        elif nd.op == "add":
            fo = _fmt(model.adds[nd.name.replace(".", "_")])
            f1, f2 = (layers[i].fmt for i in nd.inputs)
            K, S = nw.add_layer_constants(arith, f1, f2, fo)
            layers[nd.name] = nw.Layer(nd.name, nd.op, fmt=fo, K=K, S=S)
    ctrl = None
    c = model.controller
    if c is not None:
        fin = layers[model.stem].fmt
        fcs = []
        for name, w_, b_, act, f_in in (("controller.fc1", c.w1, c.b1, c.act1, fin),
                                        ("controller.fc2", c.w2, c.b2, c.act2, None)):
            holder = type("W", (), {"weight": w_, "bias": b_})
            w, w_m, w_d, bias = _weights(holder)
            fo = _fmt(act)
            f_in = f_in if f_in is not None else fcs[0].fmt
            K, S = nw.layer_constants(arith, f_in, w_m, w_d, fo, w.shape[1], bias)
            fcs.append(nw.Layer(name, "fc", fmt=fo, widths=(model.n,), w=w, w_m=w_m,
                                w_delta=w_d, bias=bias, K=K, S=S))
        ctrl = nw.Controller(model.stem, tuple(model.controlled), tuple(model.widths),
                             fcs[0], fcs[1], {model.stem: model.stem_width})
    return nw.Network(g, arith, layers, ctrl, provenance)


def train_and_export(out, *, log=print, command=None, **kw):
    """Train (``train``), evaluate, export to ``out`` (.json + .npz); returns
    (network path, summary dict)."""
    cfg = {**DEFAULTS, **kw}
    model, hist, ds = train(log=log, **cfg)
    m64 = copy.deepcopy(model).double()  # evaluate as exported: float64
    acc = {}
    for b in cfg["widths"]:
        acc[f"static_{b}"] = evaluate(m64, ds.x_test, ds.y_test, b)[0]
    acc["dynamic"], dyn_bitops = evaluate(m64, ds.x_test, ds.y_test, "dynamic")
    prov = {"command": command, "seed": cfg["seed"], "torch": torch.__version__,
            "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()
                       if k != "dataset"},
            "data": ds.name, "float_fake_quant_test_accuracy": acc,
            "dynamic_mean_bitops": dyn_bitops, "epochs_trained": len(hist),
            "train_seconds": hist[-1]["seconds"] if hist else 0.0}
    net = export(model, provenance=prov)
    from ..net.executor import codes_digest, execute, input_codes

    xq = input_codes(net, ds.x_test)
    prov["integer_test_accuracy"] = {}
    prov["integer_logit_codes_sha256"] = {}
    for w in (*cfg["widths"], "dynamic"):
        key = f"static_{w}" if w != "dynamic" else w
        r = execute(net, xq, widths=w)
        prov["integer_test_accuracy"][key] = r.accuracy(ds.y_test)
        prov["integer_logit_codes_sha256"][key] = codes_digest(r.codes)
    net.provenance = prov
    path = net.save(out)
    return path, prov, model, ds
