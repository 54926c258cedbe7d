"""Validating wrappers around the Numba kernels: the public reference model.

Every function checks its arguments (types, widths, code ranges, shapes, and the bounds
that keep the int64 kernels exact) and raises ``TypeError``/``ValueError`` naming the
values involved. Results are ``numpy.int64`` arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import spec
from ..spec.format import code_range
from ..spec.intops import as_int
from . import drivers, wcache
from .plan import F32_EXACT
from . import _kernels as K

MAX_MODEL_ACC_WIDTH = spec.MAX_MODEL_ACC_WIDTH

CODE_LIMIT = 1 << 16
"""Codes handed to gemm/conv2d must lie in [-2^16, 2^16] (16-bit unsigned or signed)."""

_EXACT_LIMIT = 1 << 62  # every exact int64 sum in the kernels stays below this
_F64_EXACT = 1 << 53  # a float64 GEMM is exact while every partial sum stays below this


def as_codes(name: str, x, lo: int | None = None, hi: int | None = None) -> np.ndarray:
    """``x`` as a C-contiguous int64 array, refusing non-integer dtypes and (when given)
    codes outside [lo, hi]."""
    if not isinstance(x, np.ndarray):
        if isinstance(x, (list, tuple)) or np.isscalar(x):
            x = np.asarray(x)
        else:
            raise TypeError(f"{name} must be an integer array, not {type(x).__name__}")
    if x.dtype == np.bool_ or not np.issubdtype(x.dtype, np.integer):
        raise TypeError(f"{name} must have an integer dtype, not {x.dtype}")
    if x.dtype == np.uint64 and x.size and x.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{name} holds codes above the int64 range")
    x = np.ascontiguousarray(x, dtype=np.int64)
    if x.size and (lo is not None or hi is not None):
        xmin, xmax = int(x.min()), int(x.max())
        if (lo is not None and xmin < lo) or (hi is not None and xmax > hi):
            bad = xmin if lo is not None and xmin < lo else xmax
            idx = np.unravel_index(int(np.argmax(x == bad)), x.shape)
            raise ValueError(
                f"{name} holds code {bad} at index {tuple(int(i) for i in idx)}, "
                f"outside [{lo}, {hi}]"
            )
    return x


# ----------------------------------------------------------------------------- views


def nested_view(codes, *, n: int, b: int, rounding: str, signed: bool = False) -> np.ndarray:
    """The ``b``-bit views of an array of ``n``-bit master codes (``spec.nested_view``
    element-wise)."""
    n, b = spec.check_view_widths(n, b, signed)
    r = spec.ROUNDING_CODES[spec.check_rounding(rounding)]
    lo, hi = code_range(n, signed)
    q = as_codes("codes", codes, lo, hi)
    lo_b, hi_b = code_range(b, signed)
    return K.nested_view(q.ravel(), n - b, r, lo_b, hi_b).reshape(q.shape)


# ----------------------------------------------------------------------------- lincomb


def _aligned(constants):
    cs = list(constants)
    for c in cs:
        if not isinstance(c, spec.Constant):
            raise TypeError(f"constants must be dqt_hw.spec.Constant, not {c!r}")
    return spec.align(cs)


def _check_lincomb_bound(mags, Ks, Es, S, what):
    # a negative S makes round_shift a left shift of the whole sum by -S
    bound = sum(abs(k) * m << e for k, m, e in zip(Ks, mags, Es)) << max(0, -S)
    if bound >= _EXACT_LIMIT:
        raise ValueError(
            f"{what}: the integer sum can reach {bound} ({bound.bit_length() + 1} bits), "
            f"beyond the model's exact 63-bit datapath; use narrower constants "
            f"(K widths {[abs(k).bit_length() + 1 for k in Ks]}, shifts E {list(Es)})"
        )


def lincomb(terms, constants, *, rounding: str, lo: int, hi: int) -> np.ndarray:
    """Element-wise ``spec.lincomb``: clamp(round_shift(sum_i (K_i x_i) << E_i, S), lo, hi)
    over broadcast integer arrays ``terms``."""
    r = spec.ROUNDING_CODES[spec.check_rounding(rounding)]
    lo, hi = as_int("lo", lo), as_int("hi", hi)
    if lo > hi:
        raise ValueError(f"clamp range is empty: lo = {lo} > hi = {hi}")
    terms = [as_codes(f"term {i}", t) for i, t in enumerate(terms)]
    Ks, Es, S = _aligned(constants)
    if len(terms) != len(Ks):
        raise ValueError(f"{len(terms)} terms but {len(Ks)} constants")
    shape = np.broadcast_shapes(*(t.shape for t in terms))
    X = np.stack([np.broadcast_to(t, shape).ravel() for t in terms]).astype(np.int64)
    mags = [int(np.abs(t).max()) if t.size else 0 for t in terms]
    _check_lincomb_bound(mags, Ks, Es, S, "lincomb")
    out = K.lincomb(
        np.ascontiguousarray(X), np.array(Ks, np.int64), np.array(Es, np.int64), S, r, lo, hi
    )
    return out.reshape(shape)


def dqt_add(q1, q2, constants, *, rounding: str, b_out: int, signed: bool = False):
    """The DQT add q1 (+) q2 = clamp(k1 q1 + k2 q2 + k3) to the b_out-bit code range."""
    cs = list(constants)
    if len(cs) != 3:
        raise ValueError(f"the DQT add takes 3 constants (k1, k2, k3), not {len(cs)}")
    lo, hi = code_range(spec.check_width("b_out", b_out, 1, 16), signed)
    one = np.ones((), np.int64)
    return lincomb([q1, q2, one], cs, rounding=rounding, lo=lo, hi=hi)


def dqt_mul(q1, q2, constants, *, rounding: str, b_out: int, signed: bool = False):
    """The DQT multiply q1 (x) q2 = clamp(k1 q1 q2 + k2 q1 + k3 q2 + k4)."""
    cs = list(constants)
    if len(cs) != 4:
        raise ValueError(f"the DQT multiply takes 4 constants (k1..k4), not {len(cs)}")
    lo, hi = code_range(spec.check_width("b_out", b_out, 1, 16), signed)
    a = as_codes("q1", q1, -CODE_LIMIT, CODE_LIMIT)
    b = as_codes("q2", q2, -CODE_LIMIT, CODE_LIMIT)
    one = np.ones((), np.int64)
    return lincomb([a * b, a, b, one], cs, rounding=rounding, lo=lo, hi=hi)


# ----------------------------------------------------------------------------- GEMM


@dataclass(frozen=True)
class AccStats:
    """What an architect needs from one accumulation call.

    - ``max_abs_partial``: the largest |partial sum| of the exact (unbounded) accumulation;
    - ``bits_needed``: the narrowest signed accumulator that holds every partial sum;
    - ``events``: additions whose result wrap or saturate changed;
    - ``outputs_affected`` of ``outputs``: outputs with at least one event.
    """

    max_abs_partial: int
    bits_needed: int
    events: int
    outputs_affected: int
    outputs: int

    @property
    def overflow_rate(self) -> float:
        """outputs_affected / outputs."""
        return self.outputs_affected / self.outputs if self.outputs else 0.0

    def merge(self, other: "AccStats") -> "AccStats":
        m = max(self.max_abs_partial, other.max_abs_partial)
        return AccStats(
            m,
            spec.signed_bits_for_magnitude(m),
            self.events + other.events,
            self.outputs_affected + other.outputs_affected,
            self.outputs + other.outputs,
        )


def _check_acc(acc_width, overflow):
    W = spec.check_width("acc_width", acc_width, 2, MAX_MODEL_ACC_WIDTH)
    return W, spec.OVERFLOW_CODES[spec.check_overflow(overflow)]


def _max_abs(x):
    return int(np.abs(x).max()) if x.size else 0


def _gemm_checked(a, w, W, mode, stats, where, colmajor=False):
    """Core of gemm/conv2d on validated int64 arrays. ``where(i, j)`` names an output;
    trap reports the first overflow in row-major output order, or column-major (j
    before i) with ``colmajor``."""
    M, Kd = a.shape
    N = w.shape[1]
    amax, wmax = _max_abs(a), _max_abs(w)
    prod = amax * wmax
    hi = (1 << (W - 1)) - 1
    if prod > hi:
        raise ValueError(
            f"acc_width = {W} is narrower than one product: |a| up to {amax} times |w| up "
            f"to {wmax} gives {prod}, which needs {spec.signed_bits_for_magnitude(prod)} bits"
        )
    bound = prod * Kd  # no partial sum can exceed this in magnitude
    if mode == K.O_TRAP:
        first = K.gemm_first_overflow_colmajor if colmajor else K.gemm_first_overflow
        i, j, k, part = first(a, w, W) if bound > hi else (-1, -1, -1, 0)
        if i >= 0:
            raise OverflowError(
                f"accumulator of {W} bits overflows at output {where(i, j)}, term k = {k}: "
                f"partial sum {int(part)} is outside [{-hi - 1}, {hi}]"
            )
    if mode == K.O_WRAP and not stats and bound < _EXACT_LIMIT:
        # the wrapped accumulator is the exact sum modulo 2^W, whatever the order
        out = _exact(a, w, bound)
        return ((out + (hi + 1)) & ((1 << W) - 1)) - (hi + 1), None
    if stats or (bound > hi and mode != K.O_TRAP):
        out, mx, ev, aff = K.gemm_seq(a, w, W, mode)
        st = AccStats(int(mx), spec.signed_bits_for_magnitude(int(mx)), int(ev), int(aff), M * N)
        return out, st
    return _exact(a, w, bound), None


def _exact(a, w, bound):
    """The exact int64 product: float32 BLAS where no partial sum can pass 2^24 in
    magnitude, float64 BLAS where none can pass 2^53 (integers up to those limits are
    exact in the format, so every addition is, in any order); int64 loops otherwise."""
    if bound <= F32_EXACT:
        return (a.astype(np.float32) @ w.astype(np.float32)).astype(np.int64)
    if bound < _F64_EXACT:
        return np.rint(a.astype(np.float64) @ w.astype(np.float64)).astype(np.int64)
    return K.gemm_exact(a, w)


def gemm(a, w, *, acc_width: int, overflow: str, stats: bool = False):
    """Accumulators of the (M, K) x (K, N) product of integer code arrays.

    Each output starts at 0 and adds a[i, k] * w[k, j] for k ascending from 0 into a
    signed ``acc_width`` accumulator; ``overflow`` is ``wrap`` (mod 2^W), ``saturate``
    (clamp at every addition) or ``trap`` (``OverflowError`` naming the output index and
    the partial sum). With ``stats=True`` returns ``(acc, AccStats)``.
    """
    W, mode = _check_acc(acc_width, overflow)
    a = as_codes("a", a, -CODE_LIMIT, CODE_LIMIT)
    w = as_codes("w", w, -CODE_LIMIT, CODE_LIMIT)
    if a.ndim != 2 or w.ndim != 2:
        raise ValueError(f"gemm takes 2-D a (M, K) and w (K, N), not {a.shape} and {w.shape}")
    if a.shape[1] != w.shape[0]:
        raise ValueError(f"shape mismatch: a is {a.shape}, w is {w.shape} (K {a.shape[1]} != {w.shape[0]})")
    out, st = _gemm_checked(a, w, W, mode, stats, lambda i, j: (int(i), int(j)))
    if stats:
        return out, st
    return out


def side_sums_gemm(a, w):
    """(sum_a (M,), sum_w (N,)): the exact sums of a over k and of w over k."""
    a = as_codes("a", a, -CODE_LIMIT, CODE_LIMIT)
    w = as_codes("w", w, -CODE_LIMIT, CODE_LIMIT)
    return a.sum(axis=1), w.sum(axis=0)


# ----------------------------------------------------------------------------- conv2d


def _conv_geometry(x, w, stride, padding, groups):
    stride = as_int("stride", stride)
    padding = as_int("padding", padding)
    groups = as_int("groups", groups)
    if stride < 1:
        raise ValueError(f"stride must be at least 1, not {stride}")
    if padding < 0:
        raise ValueError(f"padding must be non-negative, not {padding}")
    if groups < 1:
        raise ValueError(f"groups must be at least 1, not {groups}")
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"conv2d takes x in NCHW and w in OIHW (4-D), not {x.shape} and {w.shape}")
    Nb, C, H, Wd = x.shape
    O, Cg, kh, kw = w.shape
    if C % groups or O % groups:
        raise ValueError(f"groups = {groups} must divide the {C} input and {O} output channels")
    if Cg != C // groups:
        raise ValueError(
            f"shape mismatch: w has {Cg} input channels per group, x has {C} channels / "
            f"{groups} groups = {C // groups}"
        )
    Ho = (H + 2 * padding - kh) // stride + 1
    Wo = (Wd + 2 * padding - kw) // stride + 1
    if Ho < 1 or Wo < 1:
        raise ValueError(
            f"kernel {kh}x{kw} does not fit the {H}x{Wd} input with padding {padding}"
        )
    return stride, padding, groups, Ho, Wo


def conv2d(
    x,
    w,
    *,
    stride: int = 1,
    padding: int = 0,
    groups: int = 1,
    acc_width: int,
    overflow: str,
    pad_code: int = 0,
    stats: bool = False,
):
    """Accumulators of a 2-D convolution of codes x (N, C, H, W) with w (O, C/groups, kh, kw).

    Each output (n, o, y, x) accumulates over its taps in im2col order (c, ky, kx)
    ascending, exactly as ``gemm`` does over k. Taps outside the image read ``pad_code``
    (default 0). Returns (N, O, Ho, Wo) int64, or ``(acc, AccStats)`` with ``stats``.
    """
    W, mode = _check_acc(acc_width, overflow)
    x, xlo, xhi = wcache.codes("x", x, as_codes, CODE_LIMIT)
    w, wlo, whi, wentry = wcache.weight_codes("w", w, as_codes, CODE_LIMIT)
    pad_code = as_int("pad_code", pad_code)
    if not -CODE_LIMIT <= pad_code <= CODE_LIMIT:
        raise ValueError(f"pad_code {pad_code} is outside [{-CODE_LIMIT}, {CODE_LIMIT}]")
    stride, padding, groups, Ho, Wo = _conv_geometry(x, w, stride, padding, groups)
    if not stats:
        # bounds from the code ranges pick an exact float-BLAS or sequential fast path
        out = drivers.try_conv2d(x, w, drivers.ConvArgs(stride, padding, groups, pad_code, W),
                                 mode, (xlo, xhi, wlo, whi), wentry)
        if out is not None:
            return out
    x = as_codes("x", x)
    w = as_codes("w", w)
    Nb, C, _, _ = x.shape
    O, Cg, kh, kw = w.shape
    Og = O // groups
    out = np.empty((Nb, O, Ho, Wo), dtype=np.int64)
    st = None
    # trap names the first overflowing output in (n, o, y, x) order: one image at a time,
    # groups in order, and within one the output channels before the pixels
    trap = mode == K.O_TRAP
    for n0, n1 in [(n, n + 1) for n in range(Nb)] if trap else [(0, Nb)]:
        xs = x[n0:n1]
        for g in range(groups):
            cols = K.im2col(xs, kh, kw, stride, padding, pad_code, g * Cg, Cg)
            wg = np.ascontiguousarray(w[g * Og : (g + 1) * Og].reshape(Og, Cg * kh * kw).T)

            def where(i, j, g=g, n0=n0):
                nb, rem = divmod(int(i), Ho * Wo)
                return (n0 + nb, g * Og + int(j), rem // Wo, rem % Wo)

            acc, s = _gemm_checked(cols, wg, W, mode, stats, where, colmajor=trap)
            out[n0:n1, g * Og : (g + 1) * Og] = acc.reshape(n1 - n0, Ho, Wo, Og).transpose(
                0, 3, 1, 2)
            if s is not None:
                st = s if st is None else st.merge(s)
    if stats:
        return out, st
    return out


def side_sums_conv2d(x, w, *, stride=1, padding=0, groups=1, pad_code=0):
    """(sum_a (N, groups, Ho, Wo), sum_w (O,)): exact sums of each output's input taps
    (padding included, as ``pad_code``) and of each output channel's weights."""
    x = as_codes("x", x, -CODE_LIMIT, CODE_LIMIT)
    w = as_codes("w", w, -CODE_LIMIT, CODE_LIMIT)
    pad_code = as_int("pad_code", pad_code)
    stride, padding, groups, Ho, Wo = _conv_geometry(x, w, stride, padding, groups)
    Nb = x.shape[0]
    O, Cg, kh, kw = w.shape
    sa = np.empty((Nb, groups, Ho, Wo), dtype=np.int64)
    for g in range(groups):
        cols = K.im2col(x, kh, kw, stride, padding, pad_code, g * Cg, Cg)
        sa[:, g] = cols.sum(axis=1).reshape(Nb, Ho, Wo)
    return sa, w.reshape(O, -1).sum(axis=1)


# ----------------------------------------------------------------------------- pooling


def max_pool2d(x, *, kernel: int, stride: int | None = None) -> np.ndarray:
    """Max pooling of codes (N, C, H, W), no padding (codes are monotone in the real value)."""
    x = as_codes("x", x)
    kernel, stride = _pool_args(x, kernel, stride)
    return K.pool2d(x, kernel, kernel, stride, K.POOL_MAX, K.R_FLOOR)


def avg_pool2d(x, *, kernel: int, stride: int | None = None, rounding: str) -> np.ndarray:
    """Average pooling of codes: round_div(window sum, kernel^2, rounding), no padding."""
    x = as_codes("x", x, -CODE_LIMIT, CODE_LIMIT)
    r = spec.ROUNDING_CODES[spec.check_rounding(rounding)]
    kernel, stride = _pool_args(x, kernel, stride)
    return K.pool2d(x, kernel, kernel, stride, K.POOL_AVG, r)


def global_avg_pool_nhwc(x, *, rounding: str) -> np.ndarray:
    """The global average pool of channels-last codes x (N, H, W, C) (any integer dtype):
    (N, C) int64, each channel's sum over the H W pixels divided by H W with ``round_div``
    (the same codes as ``avg_pool2d`` with kernel H of the channels-first codes, H = W)."""
    r = spec.ROUNDING_CODES[spec.check_rounding(rounding)]
    x = np.ascontiguousarray(x)
    return K.gap_nhwc(x, r, np.empty((x.shape[0], x.shape[3]), np.int64))


def _pool_args(x, kernel, stride):
    kernel = as_int("kernel", kernel)
    stride = kernel if stride is None else as_int("stride", stride)
    if kernel < 1 or stride < 1:
        raise ValueError(f"kernel and stride must be at least 1, not {kernel} and {stride}")
    if x.ndim != 4:
        raise ValueError(f"pooling takes x in NCHW (4-D), not shape {x.shape}")
    if kernel > x.shape[2] or kernel > x.shape[3]:
        raise ValueError(f"kernel {kernel} is larger than the {x.shape[2]}x{x.shape[3]} input")
    return kernel, stride
