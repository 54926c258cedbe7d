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

Two phases: ``epochs`` of joint training of the network and the controller with the whole
J, then ``ctrl_epochs`` of controller fine-tuning with the network frozen (weights,
biases, PACT clips and EMA ranges; only the controller's logit range follows it), with
the same Gumbel-softmax (temperature annealed from ``ctrl_tau0`` to ``ctrl_tau1``) and
J = J_task + ``ctrl_beta`` J_cost (J_consistency does not depend on the controller). In
joint training the network adapts to whatever mix the controller favours until every
training input is fitted at it, after which no input gains from more bits; on the frozen
network the inputs that the cheap mix does not fit remain, and the controller learns to
give them more bits. ``entropy`` subtracts that weight times the mean entropy of the
controller's probabilities (both phases; 0 by default).

``init`` (a network file or ``Network``): fine-tune that network instead of training
``resnet_tiny`` from scratch (``dqt_hw.train.init``: its graph, weights and formats);
``data`` may then also be the user's ``.npz`` (training on its ``x_cal``/``y_cal``,
testing on its ``x``/``y``).

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
from .config import DEFAULTS, check_config  # noqa: F401 (re-exported)
from .qat import CONSTANT_SPREAD, PACT_MIN, ActQuant, DQTModel


def _batches(n, batch, rng):
    idx = rng.permutation(n)
    for s in range(0, n, batch):
        yield idx[s:s + batch]


def build_model(ds: data_mod.DataSet, *, stages, widths, hidden, name=None):
    # the graph is named after the data family: digits-contrast trains resnet8_digits
    family = ds.name.split(":")[0].split("-")[0]
    g = resnet_tiny(ds.shape, tuple(stages), ds.classes,
                    name=name or f"resnet{2 + 2 * len(stages)}_{family}")
    return DQTModel(g, widths=widths, hidden=hidden)


def _init(cfg):
    """(the network to start from, its data set) of ``cfg["init"]``, checked."""
    init = cfg["init"]
    net = init if isinstance(init, nw.Network) else nw.load(init)
    src = f"network {net.name!r}" if isinstance(init, nw.Network) else \
        f"network file {str(init)!r}"
    shape = tuple(next(iter(net.graph)).shape)
    name = cfg["data"]
    ds = cfg.get("dataset")
    if ds is None and data_mod.is_file_spec(name):
        ds = data_mod.load_arrays(name, shape=shape)
        if not len(ds.y_train):
            raise ValueError(f"data file {str(name)!r}: fine-tuning needs 'x_cal' and 'y_cal' "
                             f"(the training inputs; 'x' and 'y' are the test set)")
    elif ds is None:
        ds = data_mod.load(name)
    if tuple(ds.shape) != shape:
        raise ValueError(f"data set {ds.name!r} has inputs {tuple(ds.shape)}; {src} takes "
                         f"{shape}")
    classes = net.graph[net.output_node()].shape[0]
    top = int(max(ds.y_train.max(initial=0), ds.y_test.max(initial=0)))
    if top >= classes:
        raise ValueError(f"data set {ds.name!r} has label {top}; {src} has {classes} outputs")
    return net, ds, src


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


def _log_epoch(log, rec):
    log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                 for k, v in rec.items()))


def _clamp_pact(model):
    with torch.no_grad():
        for mod in model.modules():
            if hasattr(mod, "alpha") and isinstance(mod.alpha, torch.nn.Parameter):
                mod.alpha.clamp_(min=PACT_MIN)


def _entropy(probs):
    """Mean over inputs and controlled layers of the controller's softmax entropy."""
    return -(probs * torch.log(probs.clamp_min(1e-12))).sum(-1).mean()


def train(*, log=print, **kw):
    """Train a DQT network; returns (model, history). Keyword arguments: ``DEFAULTS``."""
    cfg = {**DEFAULTS, **kw}
    check_config(cfg)
    torch.manual_seed(cfg["seed"])
    torch.set_num_threads(cfg["threads"])
    rng = np.random.default_rng(cfg["seed"])
    if cfg.get("init") is not None:
        from .init import model_from_network

        net0, ds, src = _init(cfg)
        model = model_from_network(net0, widths=cfg["widths"], hidden=cfg["hidden"],
                                   source=src)
    else:
        ds = cfg.get("dataset") or data_mod.load(cfg["data"])
        model = build_model(ds, stages=cfg["stages"], widths=cfg["widths"],
                            hidden=cfg["hidden"])
    kprime = tuple(cfg["kprime"] or cfg["widths"])
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    xt = torch.as_tensor(ds.x_train, dtype=torch.float32)
    yt = torch.as_tensor(ds.y_train)
    # ctrl_holdout: a random part of the training inputs that the joint phase never sees,
    # on which the controller is fine-tuned (inputs the network has not memorized); none
    # without a fine-tuning phase
    n_hold = int(round(cfg["ctrl_holdout"] * len(yt))) if cfg["ctrl_epochs"] else 0
    perm = rng.permutation(len(yt)) if n_hold else np.arange(len(yt))
    joint_idx, ctrl_idx = (np.sort(perm[n_hold:]), np.sort(perm[:n_hold])) if n_hold else (
        perm, perm)
    steps = cfg["epochs"] * math.ceil(len(joint_idx) / cfg["batch"])
    sched = (torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg["lr"], total_steps=steps,
                                                 pct_start=0.15) if steps else None)
    hist = []
    step = 0
    t0 = time.perf_counter()

    def cost_of(probs):
        j_cost = model.expected_cost(probs)
        if cfg["cost_target"] is not None:
            j_cost = (j_cost - cfg["cost_target"]).abs()
        return j_cost

    def finish_epoch(rec, last, every):
        rec.update(seconds=time.perf_counter() - t0)
        if last or every:
            acc, bops = evaluate(model, ds.x_test, ds.y_test, "dynamic")
            rec.update(test_dynamic=acc, dynamic_bitops=bops)
        hist.append(rec)
        _log_epoch(log, rec)

    for ep in range(cfg["epochs"]):
        model.train()
        tot = dict(task=0.0, cons=0.0, cost=0.0, n=0)
        for b_idx in _batches(len(joint_idx), cfg["batch"], rng):
            idx = joint_idx[b_idx]
            tau = cfg["tau0"] * (cfg["tau1"] / cfg["tau0"]) ** (step / max(steps - 1, 1))
            xb, yb = xt[idx], yt[idx]
            out, probs = model(xb, "dynamic", tau=tau)
            j_task = F.cross_entropy(out, yb)
            j_cons = sum(F.cross_entropy(model(xb, b)[0], yb) for b in kprime)
            j_cost = cost_of(probs)
            loss = j_task + cfg["alpha"] * j_cons + cfg["beta"] * j_cost
            if cfg["entropy"]:
                loss = loss - cfg["entropy"] * _entropy(probs)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            _clamp_pact(model)
            step += 1
            k = len(idx)
            tot["task"] += float(j_task.detach()) * k
            tot["cons"] += float(j_cons.detach()) * k
            tot["cost"] += float(j_cost.detach()) * k
            tot["n"] += k
        rec = {"epoch": ep + 1, **{k: v / tot["n"] for k, v in tot.items() if k != "n"},
               "tau": tau}
        finish_epoch(rec, ep + 1 == cfg["epochs"] and not cfg["ctrl_epochs"],
                     (ep + 1) % max(1, cfg["epochs"] // 5) == 0)

    # phase 2: the network frozen (weights, biases, PACT clips, EMA ranges), only the
    # controller trained, J = J_task + beta J_cost (J_consistency is constant here)
    if cfg["ctrl_epochs"]:
        ctrl = model.controller
        for p in model.parameters():
            p.requires_grad_(False)
        for p in ctrl.parameters():
            p.requires_grad_(True)
        for mod in model.modules():
            if isinstance(mod, ActQuant):
                mod.update = False
        ctrl.act2.update = True  # the controller's logit range follows its logits
        beta2 = cfg["beta"] if cfg["ctrl_beta"] is None else cfg["ctrl_beta"]
        opt2 = torch.optim.Adam(ctrl.parameters(), lr=cfg["ctrl_lr"])
        steps2 = cfg["ctrl_epochs"] * math.ceil(len(ctrl_idx) / cfg["batch"])
        sched2 = torch.optim.lr_scheduler.CosineAnnealingLR(opt2, T_max=steps2)
        step2 = 0
        for ep in range(cfg["ctrl_epochs"]):
            model.train()
            tot = dict(task=0.0, cost=0.0, entropy=0.0, n=0)
            for b_idx in _batches(len(ctrl_idx), cfg["batch"], rng):
                idx = ctrl_idx[b_idx]
                tau = cfg["ctrl_tau0"] * (cfg["ctrl_tau1"] / cfg["ctrl_tau0"]) ** (
                    step2 / max(steps2 - 1, 1))
                xb, yb = xt[idx], yt[idx]
                out, probs = model(xb, "dynamic", tau=tau)
                j_task = F.cross_entropy(out, yb)
                j_cost = cost_of(probs)
                ent = _entropy(probs)
                loss = j_task + beta2 * j_cost - cfg["entropy"] * ent
                opt2.zero_grad()
                loss.backward()
                opt2.step()
                sched2.step()
                _clamp_pact(ctrl)
                step2 += 1
                k = len(idx)
                tot["task"] += float(j_task.detach()) * k
                tot["cost"] += float(j_cost.detach()) * k
                tot["entropy"] += float(ent.detach()) * k
                tot["n"] += k
            rec = {"epoch": cfg["epochs"] + ep + 1, "phase": 2,
                   **{k: v / tot["n"] for k, v in tot.items() if k != "n"}, "tau": tau}
            finish_epoch(rec, ep + 1 == cfg["ctrl_epochs"],
                         (ep + 1) % max(1, cfg["ctrl_epochs"] // 5) == 0)
        for p in model.parameters():
            p.requires_grad_(True)
        for mod in model.modules():
            if isinstance(mod, ActQuant):
                mod.update = True
    return model, hist, ds


# ---------------------------------------------------------------------- export


def _f(t) -> float:
    return float(t.detach().double())


def _weights(op):
    w = op.weight.detach().double().numpy()
    flat = w.reshape(w.shape[0], -1)
    lo, hi = flat.min(axis=1), flat.max(axis=1)
    spread = np.maximum(np.abs(lo), np.abs(hi)) * CONSTANT_SPREAD
    delta = np.where(hi - lo > spread, (hi - lo) / 255.0, 1.0)
    shape = (-1,) + (1,) * (w.ndim - 1)
    codes = np.clip(np.rint((w - lo.reshape(shape)) / delta.reshape(shape)), 0, 255)
    return codes.astype(np.int64), lo, delta, op.bias.detach().double().numpy()


BIAS_FLUSH = 2.0 ** -20
"""A bias below this fraction of its layer's output step is exported as 0: it moves no
output code but at an exact tie, and its constant k4 (bias / delta_o where the input and
output have m = 0, as in the controller's fc1) would need a shift so much larger than
the other terms' that their aligned sum leaves the 63-bit datapath
(docs/arithmetic.md, section 4); a channel whose bias the training never moved from 0 by
more than float rounding gives such a bias."""


def _flush(bias, fo):
    return np.where(np.abs(bias) < fo.delta * BIAS_FLUSH, 0.0, bias)


def _fmt(act) -> spec.Format:
    m, d = act.fmt()
    return spec.Format(act.bits, m=_f(m), delta=_f(d))


def export(model: DQTModel, *, provenance=None) -> nw.Network:
    """The trained ``model`` as a ``dqt_hw.net.Network`` (integer constants included)."""
    model = copy.deepcopy(model).double().eval()
    g = model.graph
    arith = getattr(model, "arith", None) or nw.Arith(n=model.n,
                                                      view_rounding=model.view_rounding)
    layers = {}
    table = {r["name"]: r for r in g.layer_table()}
    for nd in g:
        if nd.op == "input":
            layers[nd.name] = nw.Layer(nd.name, nd.op, fmt=spec.Format(
                model.n, m=model.in_fmt[0], delta=model.in_fmt[1]))
        elif nd.op in nw.PASS_OPS:
            layers[nd.name] = nw.Layer(nd.name, nd.op, fmt=layers[nd.inputs[0]].fmt)
        elif nd.op in ("conv", "fc"):
            op = model.op(nd.name)
            w, w_m, w_d, bias = _weights(op)
            fo = _fmt(op.act)
            bias = _flush(bias, fo)
            K, S = nw.layer_constants(arith, layers[nd.inputs[0]].fmt, w_m, w_d, fo,
                                      table[nd.name]["taps"], bias)
            layers[nd.name] = nw.Layer(nd.name, nd.op, fmt=fo, widths=model.widths, w=w,
                                       w_m=w_m, w_delta=w_d, bias=bias, K=K, S=S)
        elif nd.op == "add":
            fo = _fmt(model.adds[nd.name.replace(".", "_")])
            f1, f2 = (layers[i].fmt for i in nd.inputs)
            K, S = nw.add_layer_constants(arith, f1, f2, fo)
            layers[nd.name] = nw.Layer(nd.name, nd.op, fmt=fo, K=K, S=S)
        elif nd.op == "concat":
            fo = _fmt(model.cats[nd.name.replace(".", "_")])
            K, S = nw.concat_layer_constants(arith, [layers[i].fmt for i in nd.inputs], fo)
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
            bias = _flush(bias, fo)
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
                       if k not in ("dataset", "init")},
            "data": ds.name, "float_fake_quant_test_accuracy": acc,
            "dynamic_mean_bitops": dyn_bitops, "epochs_trained": len(hist),
            "train_seconds": hist[-1]["seconds"] if hist else 0.0}
    if cfg.get("init") is not None:
        init = cfg["init"]
        prov["init"] = ({"network": init.name} if isinstance(init, nw.Network)
                        else {"file": str(init), "network": model.graph.name})
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
