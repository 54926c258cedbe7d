"""Requantization with per-output-channel constants, and whole layers on master codes.

A layer takes master codes, views them at (b_a, b_w), accumulates (gemm/conv2d), forms
the side sums and requantizes to b_out codes: the pipeline of docs/arithmetic.md in order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import spec
from ..spec.format import code_range
from . import _kernels as K
from .core import (
    _EXACT_LIMIT,
    _int,
    as_codes,
    conv2d,
    gemm,
    nested_view,
    side_sums_conv2d,
    side_sums_gemm,
)


@dataclass(frozen=True)
class Requant:
    """Per-output-channel requantization: for channel c,

    code = clamp(round_shift((K1 acc << E1) + (K2 sum_a << E2) + (K3 sum_w << E3)
                             + (K4 << E4), S, rounding), lo, hi)

    with (K_i, E_i, S) = ``spec.align`` of the channel's four ``Constant``s. [lo, hi] is
    the b_out-bit code range, narrowed by ``clamp`` (codes) for ReLU/PACT where given.
    """

    constants: tuple  # C tuples of 4 spec.Constant
    rounding: str
    b_out: int
    signed: bool = False
    clamp: tuple | None = None

    def __post_init__(self):
        spec.check_rounding(self.rounding)
        spec.check_width("b_out", self.b_out, 2 if self.signed else 1, 16)
        cs = tuple(tuple(ch) for ch in self.constants)
        if not cs:
            raise ValueError("a requantization needs constants for at least one channel")
        for c, ch in enumerate(cs):
            if len(ch) != 4 or not all(isinstance(k, spec.Constant) for k in ch):
                raise TypeError(
                    f"channel {c} must have 4 dqt_hw.spec.Constant (k1..k4), not {ch!r}"
                )
        object.__setattr__(self, "constants", cs)
        lo, hi = code_range(self.b_out, self.signed)
        if self.clamp is not None:
            clo, chi = (_int("clamp low", self.clamp[0]), _int("clamp high", self.clamp[1]))
            if not lo <= clo <= chi <= hi:
                raise ValueError(
                    f"clamp ({clo}, {chi}) must lie within the {self.b_out}-bit code range "
                    f"[{lo}, {hi}] with low <= high"
                )
            object.__setattr__(self, "clamp", (clo, chi))

    @property
    def channels(self) -> int:
        return len(self.constants)

    @property
    def range(self) -> tuple[int, int]:
        """The (lo, hi) output clamp in codes."""
        return self.clamp if self.clamp is not None else code_range(self.b_out, self.signed)

    def arrays(self):
        """(K (4, C), E (4, C), S (C,)) int64 arrays of the aligned constants."""
        Ks, Es, Ss = [], [], []
        for ch in self.constants:
            k, e, s = spec.align(ch)
            Ks.append(k)
            Es.append(e)
            Ss.append(s)
        return (
            np.array(Ks, np.int64).T.copy(),
            np.array(Es, np.int64).T.copy(),
            np.array(Ss, np.int64),
        )

    @classmethod
    def from_formats(
        cls,
        *,
        a_fmt: spec.Format,
        b_a: int,
        w_fmts,
        b_w: int,
        out_fmt: spec.Format,
        b_out: int,
        taps: int,
        rounding: str,
        bias=None,
        bits: int = spec.DEFAULT_CONST_BITS,
        clamp=None,
    ) -> "Requant":
        """Constants of a layer from its formats: ``spec.requant_constants`` per output
        channel (``w_fmts`` one Format per channel, or one for all), quantized to
        ``bits``-bit mantissas."""
        if isinstance(w_fmts, spec.Format):
            w_fmts = [w_fmts]
        w_fmts = list(w_fmts)
        C = len(w_fmts) if bias is None else len(np.atleast_1d(bias))
        if len(w_fmts) == 1:
            w_fmts = w_fmts * C
        if bias is None:
            bias = np.zeros(C)
        bias = np.atleast_1d(np.asarray(bias, dtype=np.float64))
        if len(w_fmts) != len(bias):
            raise ValueError(f"{len(w_fmts)} weight formats but {len(bias)} biases")
        consts = []
        for fw, beta in zip(w_fmts, bias):
            ks = spec.requant_constants(a_fmt, b_a, fw, b_w, out_fmt, b_out, taps, float(beta))
            consts.append(tuple(spec.quantize_constant(k, bits=bits) for k in ks))
        return cls(tuple(consts), rounding, b_out, out_fmt.signed, clamp)

    def switched(self, *, d_a: int, d_w: int, d_out: int, b_out: int | None = None) -> "Requant":
        """The same requantization after the views shift by (d_a, d_w, d_out) more bits:
        every constant keeps its K and moves its S (``spec.switch_shifts``)."""
        e = spec.switch_shifts("requant", d_a, d_w, d_out)
        consts = tuple(tuple(k.scaled_pow2(ei) for k, ei in zip(ch, e)) for ch in self.constants)
        return Requant(consts, self.rounding, self.b_out - d_out if b_out is None else b_out,
                       self.signed, None)


def requantize(acc, sum_a, sum_w, rq: Requant, *, channel_axis: int = -1) -> np.ndarray:
    """Output codes from accumulators ``acc`` (any shape, channels along ``channel_axis``),
    ``sum_a`` (broadcastable to ``acc``) and ``sum_w`` (one per channel)."""
    if not isinstance(rq, Requant):
        raise TypeError(f"rq must be a Requant, not {rq!r}")
    acc = as_codes("acc", acc)
    sum_a = as_codes("sum_a", sum_a)
    sum_w = as_codes("sum_w", sum_w)
    ax = channel_axis % acc.ndim if acc.ndim else 0
    C = acc.shape[ax]
    if C != rq.channels:
        raise ValueError(f"acc has {C} channels on axis {ax}, the requantization {rq.channels}")
    if sum_w.shape != (C,):
        raise ValueError(f"sum_w must have shape ({C},), not {sum_w.shape}")
    try:
        sa = np.broadcast_to(sum_a, acc.shape)
    except ValueError:
        raise ValueError(f"sum_a of shape {sum_a.shape} does not broadcast to acc {acc.shape}") from None
    Kc, Ec, Sc = rq.arrays()
    mags = [
        np.abs(np.moveaxis(acc, ax, -1)).reshape(-1, C).max(axis=0) if acc.size else np.zeros(C),
        np.abs(np.moveaxis(sa, ax, -1)).reshape(-1, C).max(axis=0) if acc.size else np.zeros(C),
        np.abs(sum_w),
        np.ones(C),
    ]
    for c in range(C):
        bound = sum(abs(int(Kc[t, c])) * int(mags[t][c]) << int(Ec[t, c]) for t in range(4))
        if bound >= _EXACT_LIMIT:
            raise ValueError(
                f"requantization of channel {c}: the integer sum can reach {bound} "
                f"({bound.bit_length() + 1} bits), beyond the model's exact 63-bit datapath; "
                f"use narrower constants or a narrower accumulator"
            )
    A = np.ascontiguousarray(np.moveaxis(acc, ax, -1).reshape(-1, C))
    SA = np.ascontiguousarray(np.moveaxis(sa, ax, -1).reshape(-1, C))
    lo, hi = rq.range
    r = spec.ROUNDING_CODES[rq.rounding]
    out = K.requantize(A, SA, sum_w, Kc, Ec, Sc, r, lo, hi)
    moved = np.moveaxis(acc, ax, -1).shape
    return np.moveaxis(out.reshape(moved), -1, ax)


def _layer_views(a, w, a_fmt, w_fmt, b_a, b_w, view_rounding):
    for name, f in (("a_fmt", a_fmt), ("w_fmt", w_fmt)):
        if not isinstance(f, spec.Format):
            raise TypeError(f"{name} must be a dqt_hw.spec.Format, not {f!r}")
    b_a = a_fmt.check_width(b_a)
    b_w = w_fmt.check_width(b_w)
    av = nested_view(a, n=a_fmt.n, b=b_a, rounding=view_rounding, signed=a_fmt.signed)
    wv = nested_view(w, n=w_fmt.n, b=b_w, rounding=view_rounding, signed=w_fmt.signed)
    return av, wv, b_a, b_w


def _check_product_width(acc_bits, b_a, b_w, a_fmt, w_fmt):
    lo_a, hi_a = code_range(b_a, a_fmt.signed)
    lo_w, hi_w = code_range(b_w, w_fmt.signed)
    prod = max(abs(x * y) for x in (lo_a, hi_a) for y in (lo_w, hi_w))
    need = spec.signed_bits_for_magnitude(prod)
    if _int("acc_bits", acc_bits) < need:
        raise ValueError(
            f"acc_bits = {acc_bits} is narrower than one product of a {b_a}-bit by a "
            f"{b_w}-bit code ({prod} needs {need} bits)"
        )


def dense_layer(a, w, *, a_fmt, w_fmt, b_a, b_w, view_rounding, acc_bits, overflow, requant,
                stats=False):
    """A fully connected layer on master codes a (M, K) and w (K, N): views at (b_a, b_w),
    ``gemm``, side sums, ``requantize``. Returns codes (M, N) (and AccStats with ``stats``)."""
    a = as_codes("a", a, *a_fmt.code_range()) if isinstance(a_fmt, spec.Format) else a
    w = as_codes("w", w, *w_fmt.code_range()) if isinstance(w_fmt, spec.Format) else w
    av, wv, b_a, b_w = _layer_views(a, w, a_fmt, w_fmt, b_a, b_w, view_rounding)
    _check_product_width(acc_bits, b_a, b_w, a_fmt, w_fmt)
    acc, st = gemm(av, wv, acc_bits=acc_bits, overflow=overflow, stats=True) if stats else (
        gemm(av, wv, acc_bits=acc_bits, overflow=overflow), None)
    sa, sw = side_sums_gemm(av, wv)
    out = requantize(acc, sa[:, None], sw, requant, channel_axis=-1)
    return (out, st) if stats else out


def conv_layer(x, w, *, a_fmt, w_fmt, b_a, b_w, view_rounding, acc_bits, overflow, requant,
               stride=1, padding=0, groups=1, pad_code=0, stats=False):
    """A conv layer on master codes x (N, C, H, W), w (O, C/groups, kh, kw): views,
    ``conv2d``, side sums, ``requantize``. Returns codes (N, O, Ho, Wo)."""
    x = as_codes("x", x, *a_fmt.code_range()) if isinstance(a_fmt, spec.Format) else x
    w = as_codes("w", w, *w_fmt.code_range()) if isinstance(w_fmt, spec.Format) else w
    xv, wv, b_a, b_w = _layer_views(x, w, a_fmt, w_fmt, b_a, b_w, view_rounding)
    _check_product_width(acc_bits, b_a, b_w, a_fmt, w_fmt)
    res = conv2d(xv, wv, stride=stride, padding=padding, groups=groups, acc_bits=acc_bits,
                 overflow=overflow, pad_code=pad_code, stats=stats)
    acc, st = res if stats else (res, None)
    sa, sw = side_sums_conv2d(xv, wv, stride=stride, padding=padding, groups=groups,
                              pad_code=pad_code)
    Og = w.shape[0] // groups
    sa_full = np.repeat(sa, Og, axis=1)  # (N, O, Ho, Wo): each channel's group sum
    out = requantize(acc, sa_full, sw, requant, channel_axis=1)
    return (out, st) if stats else out
