"""Requantization with per-output-channel constants, and whole layers on master codes.

A layer takes master codes, views them at (b_a, b_w), accumulates (gemm/conv2d), forms
the side sums and requantizes to b_out codes: the pipeline of docs/arithmetic.md in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .. import spec
from ..spec.format import code_range
from . import depthwise, drivers
from .epilogue import AFFINE, GENERAL, SHORT
from .epilogue import Requant as RqConsts
from .plan import ConvArgs, plan_conv
from .runtime import Tuner
from .views import LayerView
from .wcache import FAST_DTYPES
from . import _kernels as K
from .core import (
    _EXACT_LIMIT,
    CODE_LIMIT,
    _check_acc,
    _conv_geometry,
    as_int,
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
            clo, chi = (as_int("clamp low", self.clamp[0]), as_int("clamp high", self.clamp[1]))
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
        got = self.__dict__.get("_arrays")
        if got is None:
            got = self._arrays_uncached()
            for a in got:
                a.setflags(write=False)
            object.__setattr__(self, "_arrays", got)
        return tuple(a.copy() for a in got)

    def _arrays_ro(self):
        """``arrays()`` without the defensive copies (read-only arrays; private)."""
        self.arrays()
        return self.__dict__["_arrays"]

    def _arrays_uncached(self):
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
    Kc, Ec, Sc = rq._arrays_ro()
    pre = int(np.prod(acc.shape[:ax], dtype=np.int64))
    post = int(np.prod(acc.shape[ax + 1:], dtype=np.int64))
    acc3 = acc.reshape(pre, C, post)
    sa3 = sa.reshape(pre, C, post)  # a view where the broadcast allows (it usually does)
    if acc.size:
        amag = K.absmax_axis1(acc3)
        smag = K.absmax_axis1(sa3)
    else:
        amag = smag = np.zeros(C, np.int64)
    mags = [amag, smag, np.abs(sum_w), np.ones(C, np.int64)]
    _check_requant_bound(Kc, Ec, Sc, mags)
    lo, hi = rq.range
    r = spec.ROUNDING_CODES[rq.rounding]
    out = K.requantize3(acc3, sa3, sum_w, Kc, Ec, Sc, r, lo, hi)
    return out.reshape(acc.shape)


def _check_requant_bound(Kc, Ec, Sc, mags):
    """Refuse (ValueError naming the first channel) any channel whose requantization sum
    sum_t |K_t| mag_t << E_t, left-shifted by -S where S < 0 (round_shift of a negative S
    is a left shift), can reach 2^62. Vectorised: a float64 estimate clears the channels
    far from the limit; only the others get the exact Python-int sum."""
    C = Kc.shape[1]
    Ec = Ec + np.maximum(0, -np.asarray(Sc, np.int64))[None, :]
    est = np.zeros(C)
    for t in range(4):
        m = np.asarray(mags[t], np.float64)
        live = (Kc[t] != 0) & (m != 0)  # 0 << E is 0 (and 0 * 2^E must not make a NaN)
        with np.errstate(over="ignore"):
            term = np.abs(Kc[t]).astype(np.float64) * m * np.exp2(Ec[t].astype(np.float64))
        est += np.where(live, term, 0.0)
    for c in np.nonzero(est >= float(_EXACT_LIMIT) / 2)[0]:
        c = int(c)
        bound = sum(abs(int(Kc[t, c])) * int(mags[t][c]) << int(Ec[t, c]) for t in range(4))
        if bound >= _EXACT_LIMIT:
            raise ValueError(
                f"requantization of channel {c}: the integer sum can reach {bound} "
                f"({bound.bit_length() + 1} bits), beyond the model's exact 63-bit datapath; "
                f"use narrower constants or a narrower accumulator"
            )


def _layer_views(a, w, a_fmt, w_fmt, b_a, b_w, view_rounding):
    for name, f in (("a_fmt", a_fmt), ("w_fmt", w_fmt)):
        if not isinstance(f, spec.Format):
            raise TypeError(f"{name} must be a dqt_hw.spec.Format, not {f!r}")
    b_a = a_fmt.check_width(b_a)
    b_w = w_fmt.check_width(b_w)
    av = nested_view(a, n=a_fmt.n, b=b_a, rounding=view_rounding, signed=a_fmt.signed)
    wv = nested_view(w, n=w_fmt.n, b=b_w, rounding=view_rounding, signed=w_fmt.signed)
    return av, wv, b_a, b_w


def _check_product_width(acc_width, b_a, b_w, a_fmt, w_fmt):
    lo_a, hi_a = code_range(b_a, a_fmt.signed)
    lo_w, hi_w = code_range(b_w, w_fmt.signed)
    prod = max(abs(x * y) for x in (lo_a, hi_a) for y in (lo_w, hi_w))
    need = spec.signed_bits_for_magnitude(prod)
    if as_int("acc_width", acc_width) < need:
        raise ValueError(
            f"acc_width = {acc_width} is narrower than one product of a {b_a}-bit by a "
            f"{b_w}-bit code ({prod} needs {need} bits)"
        )


def dense_layer(a, w, *, a_fmt, w_fmt, b_a, b_w, view_rounding, acc_width, overflow, requant,
                stats=False):
    """A fully connected layer on master codes a (M, K) and w (K, N): views at (b_a, b_w),
    ``gemm``, side sums, ``requantize``. Returns codes (M, N) (and AccStats with ``stats``)."""
    a = as_codes("a", a, *a_fmt.code_range()) if isinstance(a_fmt, spec.Format) else a
    w = as_codes("w", w, *w_fmt.code_range()) if isinstance(w_fmt, spec.Format) else w
    av, wv, b_a, b_w = _layer_views(a, w, a_fmt, w_fmt, b_a, b_w, view_rounding)
    _check_product_width(acc_width, b_a, b_w, a_fmt, w_fmt)
    acc, st = gemm(av, wv, acc_width=acc_width, overflow=overflow, stats=True) if stats else (
        gemm(av, wv, acc_width=acc_width, overflow=overflow), None)
    sa, sw = side_sums_gemm(av, wv)
    out = requantize(acc, sa[:, None], sw, requant, channel_axis=-1)
    return (out, st) if stats else out


def _small_codes(name, x, lo, hi):
    """``as_codes(name, x, lo, hi)`` (same errors), keeping a small integer dtype."""
    if isinstance(x, np.ndarray) and x.dtype in FAST_DTYPES and x.size:
        xmin, xmax = int(x.min()), int(x.max())
        if xmin < lo or xmax > hi:
            as_codes(name, x, lo, hi)  # raises the standard error
        return np.ascontiguousarray(x)
    return as_codes(name, x, lo, hi)


def code_dtype(lo: int, hi: int) -> np.dtype:
    """The smallest integer dtype holding the codes [lo, hi] (uint8, int8, uint16,
    int16, int32, else int64): what fused layers write."""
    for dt in (np.uint8, np.int8, np.uint16, np.int16, np.int32):
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return np.dtype(dt)
    return np.dtype(np.int64)


class FusedConv:
    """One conv layer at one width pair with everything that does not depend on the
    input prepared once: the viewed weights and their float forms, the exact-sum plan,
    the requantization constants and the proof (from the code ranges) that every
    requantization sum stays inside the exact 63-bit datapath. ``ok`` is False where that
    proof fails or the layer needs the sequential path (a possible saturation or trap);
    the caller then takes the general path, which decides from the data.

    ``run(x)`` takes master activation codes (N, C, H, W) of any integer dtype, already
    known to lie in the activation format's range, and returns the output codes
    (N, O, Ho, Wo) in ``out_dtype`` (int64 by default): bit for bit what
    ``conv_layer`` returns. ``cs``: the conv's ``ConvArgs`` (stride, padding, groups,
    pad_code, accumulator width W), validated; ``mode`` the overflow code. The network
    executor keeps one per layer and width pair (``fused_conv`` makes them)."""

    def __init__(self, wv, cs, *, a_fmt, b_a, view_rounding, mode, rq, out_dtype=np.int64):
        self.ok = False
        self.dw = None
        self.wv = wv
        self.cs = cs
        stride, padding, groups, pad_code, W = cs
        self.stride, self.padding, self.groups, self.pad_code = stride, padding, groups, pad_code
        self.W = W
        O, Cg, kh, kw = wv.shape
        taps = Cg * kh * kw
        if wv.size == 0 or O != rq.channels:
            return
        vlo, vhi = code_range(b_a, a_fmt.signed)
        alo, ahi = (min(vlo, pad_code), max(vhi, pad_code)) if padding > 0 else (vlo, vhi)
        wlo, whi = int(wv.min()), int(wv.max())
        A = max(abs(alo), abs(ahi))
        B = max(abs(wlo), abs(whi))
        hi = (1 << (W - 1)) - 1
        if A * B > hi or (A * B * taps > hi and mode != K.O_WRAP):
            return
        Kc, Ec, Sc = rq._arrays_ro()
        sw = wv.reshape(O, -1).sum(axis=1, dtype=np.int64)
        accmax = min(A * B * taps, hi + 1)
        mags = [np.full(O, accmax, np.int64), np.full(O, taps * A, np.int64), np.abs(sw),
                np.ones(O, np.int64)]
        try:
            _check_requant_bound(Kc, Ec, Sc, mags)
        except ValueError:
            return
        if int(Ec[0].max()) >= 63 or int(Ec[1].max()) >= 63 or not (
                0 <= int(Sc.min()) and int(Sc.max()) <= 62):
            return  # shifts outside what the fused kernels take: the general path
        c34 = np.array([((int(Kc[2, c]) * int(sw[c])) << int(Ec[2, c]))
                        + (int(Kc[3, c]) << int(Ec[3, c])) for c in range(O)], np.int64)
        lo, hi_o = rq.range
        d, vr = a_fmt.n - b_a, spec.ROUNDING_CODES[view_rounding]
        qlo, qhi = a_fmt.code_range()
        # the view by a table over the master codes (run() takes codes in that range)
        self.view = LayerView(d, vr, vlo, vhi, qlo, qhi, qhi - qlo < (1 << 16))
        self.plan = plan_conv(Cg, kh, kw, alo, ahi, wlo, whi)
        # a depthwise layer: direct stencils in types proved wide enough (``depthwise``)
        self.dw = depthwise.dtypes(A, B, taps) if depthwise.applies(wv, groups) else None
        # the shorter forms of the finish (``epilogue.SHORT``, ``AFFINE``) where their
        # conditions hold: no sum can overflow W or int32, K1/K2 and sum_a fit int32,
        # every S >= 1
        i31 = (1 << 31) - 1
        form, K1, K2 = GENERAL, Kc[0], Kc[1]
        Q = R = np.zeros(0, np.int64)
        if (A * B * taps <= min(hi, i31) and taps * A <= i31
                and int(np.abs(Kc[0]).max()) <= i31 and int(np.abs(Kc[1]).max()) <= i31
                and int(Sc.min()) >= 1):
            form, K1, K2 = SHORT, Kc[0].astype(np.int32), Kc[1].astype(np.int32)
            aff = self._affine(Kc, Ec, c34, sw, taps) if (self.plan.vnni
                                                          and groups == 1) else ()
            if aff:
                form, (Q, R) = AFFINE, aff
        c = np.ascontiguousarray
        S = c(Sc, dtype=np.int64)  # in [0, 62] (checked above)
        self.rq = RqConsts(c(K1), c(Ec[0]), c(K2), c(Ec[1]), c34, S, (np.int64(1) << S) >> 1, Q,
                           R, spec.ROUNDING_CODES[rq.rounding], int(lo), int(hi_o), form)
        self.entry = {"prep": {}}
        self.tuner = Tuner()
        self.out_dtype = np.dtype(out_dtype)
        self._tuned_n = None  # the tuner learns from calls with the batch it first saw
        self.ok = True

    def _affine(self, Kc, Ec, c34, sw, taps):
        """(Q, R) of the ``AFFINE`` form of the finish (``epilogue``) where they fit,
        else ().

        On the VNNI path the accumulator is acc = C + ox sw + ow sx (C the int32 sum of
        the moved codes, sx their window sum) and sum_a = sx + taps ox, so with no
        overflow (proved by the caller) the requantization sum is
        (K1 acc << E1) + (K2 sum_a << E2) + C34 = P C + Q sx + R with P = K1 << E1,
        Q = P ow + (K2 << E2), R = P ox sw + (K2 << E2) taps ox + C34: the same integer
        in fewer operations; the kernel takes P C as (K1 C) << E1 (K1 fits int32: a
        32 x 32-bit product, then a shift). Required here: |P| max|C| + |Q| max|sx| +
        |R| < 2^61 (so no term and no sum overflows int64: the rounding adds at most
        2^61)."""
        ox, ow = self.plan.ox, self.plan.ow
        cmax = taps * 255 * 128
        smax = taps * 255
        Q, R = [], []
        for c in range(len(sw)):
            p = int(Kc[0, c]) << int(Ec[0, c])
            k2 = int(Kc[1, c]) << int(Ec[1, c])
            q = p * ow + k2
            r = p * ox * int(sw[c]) + k2 * taps * ox + int(c34[c])
            if abs(p) * cmax + abs(q) * smax + abs(r) >= 1 << 61:
                return ()
            Q.append(q)
            R.append(r)
        return (np.array(Q, np.int64), np.array(R, np.int64))

    def run(self, x):
        Nb, _, H, Wd = x.shape
        O, _, kh, kw = self.wv.shape
        p, s = self.padding, self.stride
        Ho = (H + 2 * p - kh) // s + 1
        Wo = (Wd + 2 * p - kw) // s + 1
        out = np.empty((Nb, O, Ho * Wo), dtype=self.out_dtype)
        if Nb:
            if self._tuned_n is None:
                self._tuned_n = Nb
            tuner = self.tuner if Nb == self._tuned_n else None
            if self.dw is not None:
                depthwise.conv(np.ascontiguousarray(x), self.wv, self.cs, self.dw, self.view,
                               self.rq, out, tuner, entry=self.entry)
            else:
                drivers.conv_exact(np.ascontiguousarray(x), self.wv, self.cs, self.plan,
                                   self.entry, self.view, self.rq, out, tuner)
        return out.reshape(Nb, O, Ho, Wo)

    @property
    def nhwc(self) -> bool:
        """True where ``run_nhwc`` applies (the integer kernel with a view table, or a
        depthwise layer)."""
        return self.ok and (self.dw is not None or (self.plan.vnni and self.view.table))

    def fused_layer(self, H: int, Wd: int):
        """The ``fused.FusedLayer`` of this layer on uint8 channels-last images H x Wd,
        or None where the layer is not on that one-call path (the integer kernel, one
        group, a byte view table over 0..255, the ``SHORT`` or ``AFFINE`` finish): what
        a whole-network program runs."""
        if not (self.nhwc and self.rq.form != GENERAL and self.groups == 1
                and (self.view.qlo, self.view.qhi) == (0, 255)):
            return None
        return drivers.fused_layer(self.wv, self.cs, self.plan, self.view, self.rq, H, Wd,
                                   self.entry)

    def run_nhwc(self, x, channels_last: bool):
        """As ``run``, writing the codes channels-last (N, Ho, Wo, O); ``x`` is master
        codes channels-last (N, H, W, C) where ``channels_last``, else (N, C, H, W).
        Only where ``nhwc`` is True."""
        if not channels_last:
            # the channels-last copy of the input (NumPy's strided copy), so the padded
            # block and its pixel sums come from the vectorised channels-last kernel
            x = x.transpose(0, 2, 3, 1)
        if x.dtype != np.uint8 and (self.view.qlo, self.view.qhi) == (0, 255):
            x = x.astype(np.uint8)  # 8-bit unsigned codes (the caller keeps them in range)
        Nb, H, Wd, _ = x.shape
        O, _, kh, kw = self.wv.shape
        p, s = self.padding, self.stride
        Ho = (H + 2 * p - kh) // s + 1
        Wo = (Wd + 2 * p - kw) // s + 1
        out = np.empty((Nb, Ho * Wo, O), dtype=self.out_dtype)
        if Nb:
            if self._tuned_n is None:
                self._tuned_n = Nb
            tuner = self.tuner if Nb == self._tuned_n else None
            if self.dw is not None:
                depthwise.conv(np.ascontiguousarray(x), self.wv, self.cs, self.dw, self.view,
                               self.rq, out, tuner, nhwc=True, entry=self.entry)
            else:
                drivers.conv_vnni(np.ascontiguousarray(x), self.wv, self.cs, self.plan,
                                  self.entry, self.view, self.rq, out, tuner, nhwc=True)
        return out.reshape(Nb, Ho, Wo, O)


class ConvGeometry(NamedTuple):
    """Where a conv layer's windows lie: ``stride``, ``padding`` (both sides),
    ``groups`` and the code ``pad_code`` of the padding (as ``conv2d`` takes them)."""

    stride: int = 1
    padding: int = 0
    groups: int = 1
    pad_code: int = 0


def _geometry(geometry) -> ConvGeometry:
    if not isinstance(geometry, ConvGeometry):
        raise TypeError(f"geometry must be a model.ConvGeometry(stride, padding, groups, "
                        f"pad_code), not {geometry!r}")
    return geometry


def conv_layer(x, w, *, a_fmt, w_fmt, b_a, b_w, view_rounding, acc_width, overflow, requant,
               geometry=ConvGeometry(), stats=False):
    """A conv layer on master codes x (N, C, H, W), w (O, C/groups, kh, kw) with its
    :class:`ConvGeometry`: views, ``conv2d``, side sums, ``requantize``. Returns codes
    (N, O, Ho, Wo)."""
    stride, padding, groups, pad_code = _geometry(geometry)
    if not stats and isinstance(a_fmt, spec.Format) and isinstance(w_fmt, spec.Format):
        # fused path: the same checks in the same order, then view, exact sums, side sums
        # and requantization in one pass (FusedConv) where the code ranges allow
        x = _small_codes("x", x, *a_fmt.code_range())
        w = _small_codes("w", w, *w_fmt.code_range())
        b_a = a_fmt.check_width(b_a)
        b_w = w_fmt.check_width(b_w)
        wv = nested_view(w, n=w_fmt.n, b=b_w, rounding=view_rounding, signed=w_fmt.signed)
        _check_product_width(acc_width, b_a, b_w, a_fmt, w_fmt)
        W, mode = _check_acc(acc_width, overflow)
        pc = as_int("pad_code", pad_code)
        if (isinstance(requant, Requant) and -CODE_LIMIT <= pc <= CODE_LIMIT
                and x.ndim == 4 and w.ndim == 4):
            st_, pd_, gr_, _, _ = _conv_geometry(x, wv, stride, padding, groups)
            fc = FusedConv(wv, ConvArgs(st_, pd_, gr_, pc, W), a_fmt=a_fmt, b_a=b_a,
                           view_rounding=view_rounding, mode=mode, rq=requant)
            if fc.ok and x.shape[0]:
                return fc.run(x)
    x = as_codes("x", x, *a_fmt.code_range()) if isinstance(a_fmt, spec.Format) else x
    w = as_codes("w", w, *w_fmt.code_range()) if isinstance(w_fmt, spec.Format) else w
    xv, wv, b_a, b_w = _layer_views(x, w, a_fmt, w_fmt, b_a, b_w, view_rounding)
    _check_product_width(acc_width, b_a, b_w, a_fmt, w_fmt)
    res = conv2d(xv, wv, stride=stride, padding=padding, groups=groups, acc_width=acc_width,
                 overflow=overflow, pad_code=pad_code, stats=stats)
    acc, st = res if stats else (res, None)
    sa, sw = side_sums_conv2d(xv, wv, stride=stride, padding=padding, groups=groups,
                              pad_code=pad_code)
    Og = w.shape[0] // groups
    sa_full = np.repeat(sa, Og, axis=1)  # (N, O, Ho, Wo): each channel's group sum
    out = requantize(acc, sa_full, sw, requant, channel_axis=1)
    return (out, st) if stats else out


def fused_conv(w, x_shape, *, a_fmt, w_fmt, b_a, b_w, view_rounding, acc_width, overflow,
               requant, geometry=ConvGeometry(), out_dtype=None):
    """The ``FusedConv`` of a conv layer with master weight codes ``w`` (O, C/groups, kh,
    kw; already validated in ``w_fmt``) at widths (b_a, b_w), for inputs of shape
    ``x_shape`` (N, C, H, W), ``geometry`` its :class:`ConvGeometry`:
    bit for bit what ``conv_layer`` returns on such inputs, with the weights viewed once
    here. None where the layer needs the general path (``conv_layer`` then decides from
    the data, or raises the error these arguments deserve). The codes are written in
    ``out_dtype`` (default: the smallest dtype of the requantization's range)."""
    stride, padding, groups, pad_code = _geometry(geometry)
    try:
        _check_product_width(acc_width, b_a, b_w, a_fmt, w_fmt)
        W, mode = _check_acc(acc_width, overflow)
        stride, padding, groups, _, _ = _conv_geometry(
            np.broadcast_to(np.uint8(0), tuple(x_shape)), w, stride, padding, groups)
    except (TypeError, ValueError):
        return None
    wv = nested_view(w, n=w_fmt.n, b=b_w, rounding=view_rounding, signed=w_fmt.signed)
    fc = FusedConv(wv, ConvArgs(stride, padding, groups, pad_code, W), a_fmt=a_fmt, b_a=b_a,
                   view_rounding=view_rounding, mode=mode, rq=requant,
                   out_dtype=code_dtype(*requant.range) if out_dtype is None else out_dtype)
    return fc if fc.ok else None
