"""PyTorch peers for the benchmarks (torch from the pinned ``train`` extra; optional).

- ``qconv_x86``: PyTorch's quantized ``Conv2d`` on the x86 backend (oneDNN / FBGEMM),
  channels-last quint8 activations and per-channel qint8 weights. A throughput peer: it
  requantizes its int32 sums in float, so its outputs are not compared.
- ``int_mm``: ``torch._int_mm``, an exact int8 x int8 -> int32 GEMM, on the im2col shapes
  of a convolution (the GEMM alone, im2col not timed). Exact, so its result is checked.
- ``fx_quantized``: a dqt_hw network's topology as a float torch module, quantized with FX
  graph mode on the x86 backend (``get_default_qconfig_mapping("x86")``, calibrated on the
  benchmark inputs): the peer of the whole-network benchmark.

Every helper returns a zero-argument callable that runs the peer once; ``available()``
says whether torch imports (the benchmarks then print the peer's columns as n/a).
"""

from __future__ import annotations

import warnings

import numpy as np


def available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _torch(threads: int):
    import torch

    torch.set_num_threads(threads)
    torch.backends.quantized.engine = "x86"
    # quantized tensor constructors print a deprecation warning on every call
    warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
    return torch


def qconv_x86(x_codes, w_codes, *, padding: int, threads: int, stride: int = 1,
              groups: int = 1):
    """PyTorch's quantized Conv2d (x86 backend) on NCHW uint8 activation codes and OIHW
    weight codes (int8, or uint8 taken as int8 - 128), ``groups`` groups: the call times
    the convolution alone (input already a channels-last quantized tensor)."""
    torch = _torch(threads)
    import torch.ao.nn.quantized as nnq

    O, C, kh, kw = w_codes.shape
    w = np.asarray(w_codes).astype(np.int64)
    if w_codes.dtype == np.uint8:
        w = w - 128
    m = nnq.Conv2d(C * groups, O, (kh, kw), stride=stride, padding=padding, groups=groups,
                   bias=False)
    scales = torch.full((O,), 0.01, dtype=torch.double)
    qw = torch._make_per_channel_quantized_tensor(
        torch.from_numpy(w.astype(np.int8)), scales, torch.zeros(O, dtype=torch.long), 0)
    m.set_weight_bias(qw, None)
    m.scale, m.zero_point = 1.0, 0
    qx = torch._make_per_tensor_quantized_tensor(
        torch.from_numpy(np.ascontiguousarray(x_codes, dtype=np.uint8)), 0.01, 0)
    qx = qx.contiguous(memory_format=torch.channels_last)

    def run():
        with torch.no_grad():
            return m(qx)

    return run


def im2col(x, kh: int, kw: int, padding: int) -> np.ndarray:
    """(N*H*W, C*kh*kw) patches of NCHW ``x`` (stride 1), column order (c, ky, kx): the
    left operand of the convolution as a GEMM with the OIHW weights reshaped (O, C*kh*kw)."""
    N, C, H, W = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    Ho, Wo = H + 2 * padding - kh + 1, W + 2 * padding - kw + 1
    cols = np.empty((N, Ho, Wo, C, kh, kw), dtype=x.dtype)
    for ky in range(kh):
        for kx in range(kw):
            cols[..., ky, kx] = xp[:, :, ky:ky + Ho, kx:kx + Wo].transpose(0, 2, 3, 1)
    return cols.reshape(N * Ho * Wo, C * kh * kw)


def int_mm(x_codes, w_codes, *, padding: int, threads: int):
    """``torch._int_mm`` on the im2col GEMM of a convolution of int8 codes: returns
    (run, to_nchw) where ``run()`` gives the int32 (N*H*W, O) product and ``to_nchw``
    turns it into the NCHW int64 convolution result for the equality check."""
    torch = _torch(threads)
    N, _, H, W = x_codes.shape
    O, _, kh, kw = w_codes.shape
    if x_codes.dtype != np.int8 or w_codes.dtype != np.int8:
        raise TypeError(f"torch._int_mm takes int8 codes, not {x_codes.dtype} and "
                        f"{w_codes.dtype}")
    a = torch.from_numpy(im2col(x_codes, kh, kw, padding))
    b = torch.from_numpy(np.ascontiguousarray(w_codes.reshape(O, -1).T))
    Ho, Wo = H + 2 * padding - kh + 1, W + 2 * padding - kw + 1

    def run():
        return torch._int_mm(a, b)

    def to_nchw(c):
        return c.numpy().astype(np.int64).reshape(N, Ho, Wo, O).transpose(0, 3, 1, 2)

    return run, to_nchw


def float_module(net, *, threads: int = 2):
    """The topology of the dqt_hw network ``net`` as a float torch module with its real
    weights (w_m + w_delta * codes) and biases; ReLU where the graph says ``relu``."""
    torch = _torch(threads)
    from torch import nn

    g = net.graph

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.mods = nn.ModuleDict()
            for nd in g:
                if nd.op not in ("conv", "fc"):
                    continue
                L = net.layers[nd.name]
                shape = (-1,) + (1,) * (L.w.ndim - 1)
                wr = L.w_m.reshape(shape) + L.w_delta.reshape(shape) * L.w
                if nd.op == "conv":
                    k = wr.shape[2]
                    m = nn.Conv2d(wr.shape[1] * nd.attr("groups", 1), wr.shape[0], k,
                                  stride=nd.attr("stride", 1), padding=nd.attr("padding", 0),
                                  groups=nd.attr("groups", 1))
                else:
                    m = nn.Linear(wr.shape[1], wr.shape[0])
                m.weight.data = torch.tensor(wr, dtype=torch.float32)
                m.bias.data = torch.tensor(np.asarray(L.bias), dtype=torch.float32)
                self.mods[_key(nd.name)] = m
                if nd.attr("relu", False):
                    self.mods[_key(nd.name) + "_relu"] = nn.ReLU()
            self.relus = nn.ModuleDict({_key(nd.name): nn.ReLU() for nd in g
                                        if nd.op == "add" and nd.attr("relu", False)})

        def forward(self, x):
            t = {}
            for nd in g:
                src = [t[i] for i in nd.inputs]
                if nd.op == "input":
                    y = x
                elif nd.op in ("conv", "fc"):
                    y = self.mods[_key(nd.name)](src[0])
                    if _key(nd.name) + "_relu" in self.mods:
                        y = self.mods[_key(nd.name) + "_relu"](y)
                elif nd.op == "add":
                    y = src[0] + src[1]
                    if _key(nd.name) in self.relus:
                        y = self.relus[_key(nd.name)](y)
                elif nd.op == "avgpool":
                    k = nd.attrs["kernel"]
                    y = nn.functional.avg_pool2d(src[0], k, nd.attr("stride", k))
                elif nd.op == "maxpool":
                    k = nd.attrs["kernel"]
                    y = nn.functional.max_pool2d(src[0], k, nd.attr("stride", k),
                                                 nd.attr("padding", 0))
                elif nd.op == "flatten":
                    y = torch.flatten(src[0], 1)
                else:
                    raise ValueError(f"layer {nd.name!r}: op {nd.op!r} has no torch peer")
                t[nd.name] = y
            return y

    return Net().eval()


def _key(name: str) -> str:
    return name.replace(".", "_")


def fx_quantized(net, x_real, *, threads: int):
    """``net``'s topology quantized by FX graph mode on the x86 backend (calibrated on
    ``x_real``), channels-last; returns ``run()`` computing the batch ``x_real``."""
    torch = _torch(threads)
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    m = float_module(net, threads=threads)
    x = torch.tensor(np.asarray(x_real), dtype=torch.float32).contiguous(
        memory_format=torch.channels_last)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = prepare_fx(m, get_default_qconfig_mapping("x86"), example_inputs=(x,))
        with torch.no_grad():
            p(x)
        q = convert_fx(p)

    def run():
        with torch.no_grad():
            return q(x)

    return run
