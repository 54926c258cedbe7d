"""Planning the exact sums of a convolution from bounds on its codes.

A ``ConvPlan`` says how the sums of a conv are computed exactly: by the integer kernel
(``model/_simd.py``: codes moved to x - ox in [0, 255] and w - ow in [-128, 127]), or
by float32 / float64 BLAS GEMMs over chunks of K small enough that *every* partial sum of
a chunk, in whatever order BLAS adds, is an integer of magnitude at most 2^24 (2^53),
hence exact. When the raw codes are too wide for that (8/8 codes at K > 256), both
operands are first centred, x = xc + ox and w = wc + ow, and side sums restore the
product: sum x w = sum xc wc + ow sum xc + ox sum w.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import settings
from . import _simd

F32_EXACT = 1 << 24  # integers of magnitude <= 2^24 are exact in float32
F64_EXACT = 1 << 53  # ... and <= 2^53 in float64


VNNI = "vnni"
"""``ConvPlan.dtype`` of the integer kernel."""


class ConvPlan(NamedTuple):
    """How a conv's exact sums are computed: ``dtype`` np.float32 / np.float64 (chunked
    BLAS GEMMs in ``nchunks`` pieces of K) or ``VNNI`` (the integer kernel, one piece);
    the codes are moved by -ox (activations) and -ow (weights) first. ``l16`` > 0: the
    integer kernel's sums by the narrow kernel in chunks of l16 steps (``narrow_steps``)."""

    dtype: object
    ox: int
    ow: int
    nchunks: int
    l16: int = 0  # integer kernel: k4 steps per int16 chunk of the narrow kernel (0: none)

    @property
    def vnni(self) -> bool:
        return isinstance(self.dtype, str) and self.dtype == VNNI


# ----------------------------------------------------------------------------- planning


class ConvArgs(NamedTuple):
    """A conv's arguments besides its operands: stride, zero padding ``pad`` (filled
    with ``pad_code``), ``groups``, accumulator width W."""

    stride: int
    pad: int
    groups: int
    pad_code: int
    W: int


def integer_kernel() -> bool:
    """True where the integer kernel runs here (AVX-512 VNNI, AVX-512BW or AVX2 and not
    switched off, ``settings.VNNI``): the condition of the one-call fused layers and of
    whole-network programs."""
    return _simd.AVAILABLE


def centre(lo: int, hi: int) -> int:
    """An integer offset that minimises max(|lo - off|, |hi - off|)."""
    return (lo + hi) // 2


def plan_exact(K: int, xlo: int, xhi: int, wlo: int, whi: int):
    """The ``ConvPlan`` (dtype, ox, ow, nchunks) of exact chunked GEMMs of K terms whose
    codes lie in [xlo, xhi] x [wlo, whi]."""
    A = max(abs(xlo), abs(xhi))
    B = max(abs(wlo), abs(whi))
    if K * A * B <= F32_EXACT:
        return ConvPlan(np.float32, 0, 0, 1)
    ox, ow = centre(xlo, xhi), centre(wlo, whi)
    Ac = max(abs(xlo - ox), abs(xhi - ox))
    Bc = max(abs(wlo - ow), abs(whi - ow))
    # offsets only where they help
    if Ac >= A:
        ox, Ac = 0, A
    if Bc >= B:
        ow, Bc = 0, B
    ab = Ac * Bc
    if ab == 0:
        return ConvPlan(np.float32, ox, ow, 1)
    kc32 = F32_EXACT // ab
    if kc32 >= min(K, 128):
        return ConvPlan(np.float32, ox, ow, -(-K // kc32))
    kc64 = F64_EXACT // ab
    return ConvPlan(np.float64, ox, ow, -(-K // kc64))


I16_MAX = (1 << 15) - 1
NARROW_MIN_STEPS = 2  # one step per chunk: its int32 store costs what int16 saves


def int16_steps(xu_max: int, ws_max: int) -> int:
    """The steps of k4 (four products per channel, two in each of its int16 lanes) that
    one int16 chunk of the narrow kernel may take for moved codes xu in [0, xu_max] and
    |ws| <= ws_max: each ``vpmaddubsw`` pair sum is at most P = 2 xu_max ws_max in
    magnitude, and a lane's sum over L steps at most L P, so L = 32767 // P keeps both
    inside int16: no pair saturates and no lane wraps (``_simd._maddubs_code``). 0 where
    P > 32767 (8-bit codes against 8-bit weights); ``_simd.MAX_K`` where P = 0."""
    P = 2 * xu_max * ws_max
    return I16_MAX // P if P else _simd.MAX_K


def narrow_steps(xu_max: int, ws_max: int) -> int:
    """``ConvPlan.l16``: ``int16_steps`` where the level's narrow kernel is the faster
    (``_simd.NARROW``: AVX-512BW and AVX2; with VNNI one ``vpdpbusd`` does the work of
    ``vpmaddubsw`` and ``vpaddw``) and a chunk takes at least ``NARROW_MIN_STEPS``
    steps, else 0 (the int32 kernel)."""
    L = int16_steps(xu_max, ws_max)
    return L if _simd.NARROW and L >= NARROW_MIN_STEPS else 0


def plan_conv(Cg: int, kh: int, kw: int, xlo: int, xhi: int, wlo: int, whi: int):
    """The ``ConvPlan`` of a conv of Cg channels per group and a kh x kw kernel:
    (VNNI, ox, ow, 1, l16) where the integer kernel applies (``_simd``: codes moved to
    x - ox in [0, 255] and w - ow in [-128, 127], at most ``_simd.MAX_K`` terms; l16
    from ``narrow_steps`` of the moved ranges), else ``plan_exact``."""
    if (_simd.AVAILABLE and xhi - xlo <= 255 and whi - wlo <= 255
            and kh * kw * _simd.pad4(Cg) <= _simd.MAX_K):
        ox = 0 if 0 <= xlo and xhi <= 255 else xlo
        ow = 0 if -128 <= wlo and whi <= 127 else wlo + 128
        l16 = narrow_steps(xhi - ox, max(abs(wlo - ow), abs(whi - ow)))
        return ConvPlan(VNNI, ox, ow, 1, l16)
    return plan_exact(Cg * kh * kw, xlo, xhi, wlo, whi)


def kernel_of(plan) -> str:
    """Which kernel computes a ``ConvPlan``'s sums, in words (for benchmark reports)."""
    if not plan.vnni:
        return f"{np.dtype(plan.dtype).name} BLAS GEMMs in {plan.nchunks} chunk(s)"
    if plan.l16:
        return f"narrow ({_simd.LEVEL}, int16 chunks of {plan.l16} steps)"
    return {"amx": "tdpbusd tiles (AMX)", "vnni": "vpdpbusd", "avx512bw": "vpmaddwd 512",
            "avx2": "vpmaddwd 256"}[_simd.LEVEL]


def chunks(K: int, n: int):
    """n balanced [k0, k1) pieces of range(K)."""
    size = -(-K // n)
    return [(k0, min(K, k0 + size)) for k0 in range(0, K, size)]


def block_rows(Cp, kh, kw):
    """Output pixels per GEMM block of the integer kernel: their input windows (Cp kh kw
    bytes each) about ``settings.VNNI_BLOCK`` bytes, a multiple of the micro-tile's MR
    rows."""
    mr = _simd.MR
    return max(mr, (settings.VNNI_BLOCK // max(1, Cp * kh * kw)) // mr * mr)
