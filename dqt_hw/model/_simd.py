"""Hand-written SIMD micro-kernels in LLVM IR (private): exact integer sums (AVX-512
VNNI, or vpmaddwd with AVX-512BW or AVX2), and the register-blocked saturating
accumulation.

VNNI
----

On a CPU with AVX-512 VNNI, ``vpdpbusd`` multiplies 64 unsigned bytes by 64 signed bytes
and adds each group of four products into one of 16 int32 lanes, without saturation.
Numba does not emit it by itself, so the micro-kernel here is written in LLVM IR
(``numba.extending.intrinsic``) and called from ordinary Numba loops.

Exactness (docs/arithmetic.md 4: the wrapped accumulator is the exact sum modulo 2^W,
whatever the order): the caller moves the codes into the instruction's operand ranges,
xu = x - ox in [0, 255] and ws = w - ow in [-128, 127], so every product has magnitude
at most 255 * 128 = 32640 and a sum of K <= ``MAX_K`` = 65536 of them stays below 2^31:
the int32 lanes never wrap, and each lane holds the exact sum of its products. The side
sums restore the codes' own product,

    sum x w = sum xu ws + ow sum xu + ox sum w,

exactly as the float paths do (``epilogue``: the finishing passes of both).

Layout. The input is a padded NHWC block of bytes with the channels padded to a multiple
of four (Cp, zeros), so that every group of four k is four channels of one tap. The
micro-kernel computes MR = 6 output pixels by up to 64 output channels (NV = 1..4
vectors of 16): each step of k4 broadcasts four bytes of each of the six pixels' windows
(pixel base offset + ``koff[k4]``) and multiplies them with one 64-byte row of the packed
weights per vector, [k4][16 NV channels][4 bytes]. The six pixel bases come from a table,
so a tile may span output rows and images (the last tile repeats its last pixel; those
rows of the int32 result are ignored).

Levels. ``VECTOR_LEVEL`` follows the features Numba compiles for: "vnni" as above;
"avx512bw" and "avx2" do the same sums with ``vpmaddwd`` (bytes widened to int16, pairs
of products in int32 lanes; see ``_pmadd_code``). ``LEVEL`` is "amx" above them where
the CPU has AMX-INT8 and the OS grants the tile state (``_amx``: ``tdpbusd`` tiles, the
same operands and bound), else ``VECTOR_LEVEL``. ``AVAILABLE`` (any level) is False on
CPUs without AVX2, when Numba compiles for another CPU by name (``NUMBA_CPU_NAME``), or
with the environment variable ``DQT_HW_VNNI=0``; the float-BLAS paths (``drivers.conv_exact``) then
do the same work.

Saturating accumulation
-----------------------
``sat_tiles`` computes the saturating convolution of docs/arithmetic.md 4 (each output
adds its products in the order k = (c, ky, kx) ascending and clamps to [lo, hi] after
every addition) for MR output pixels by NV vectors of output channels at a time, with
the accumulators in registers: per k, one multiply-add, one min and one max per vector.
The lanes are float32 (W <= 24) or float64 (W <= 53); the caller guarantees that every
product has magnitude at most hi, so every value before a clamp is an integer below
2^W in magnitude, which the float format holds exactly: the float arithmetic (fused or
not) equals the integer one. It uses only generic LLVM vector operations and runs on
any CPU (AVX-512 makes one vector one register).
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from .. import _cpu, settings
from . import _amx
from ._pack import NB, pack_weights, pad4, pixel_offsets, tap_offsets  # noqa: F401

MR = 6  # output pixels per micro-tile
MAX_K = 1 << 16  # terms per sum: 65536 * 255 * 128 < 2^31


def _detect():
    """The integer kernel level for Numba's target: "vnni" (AVX-512 VNNI: ``vpdpbusd``),
    "avx512bw" (AVX-512BW: ``vpmaddwd`` on 512 bits), "avx2" (``vpmaddwd`` on 256 bits),
    or None (the float-BLAS paths; also with ``DQT_HW_VNNI=0``)."""
    if not settings.VNNI:
        return None
    try:
        feats = _cpu.target_features()
    except Exception:  # pragma: no cover - no LLVM feature query on this platform
        return None
    if feats is None:
        return None
    if all(feats.get(f, False) for f in ("avx512f", "avx512bw", "avx512vnni")):
        return "vnni"
    if all(feats.get(f, False) for f in ("avx512f", "avx512bw")):
        return "avx512bw"
    if feats.get("avx2", False):
        return "avx2"
    return None


VECTOR_LEVEL = _detect()  # the level of the vector kernels below


class AmxFacts(NamedTuple):
    """What decides the AMX level (``amx_decision``)."""

    vector_level: object  # VECTOR_LEVEL
    emulated: bool  # DQT_HW_KERNEL=amx-emulated
    hardware: bool  # Numba's target has AMX-TILE and AMX-INT8 (``_amx.HARDWARE``)
    request: object  # () -> (granted, why): the OS's answer (``_cpu.request_amx``)
    self_check: object  # () -> None or what differs (``_amx.self_check``)
    host: object  # the host's features, or None
    kernel: str  # DQT_HW_KERNEL


def amx_decision(f: AmxFacts):
    """(on, why): the AMX level (``_amx``) runs where a vector level does, Numba's target
    has AMX-TILE and AMX-INT8, the OS grants the tile state and the tile kernel passes
    its self-check, or where it is emulated; ``why`` says which, or why not, in words. A
    failed self-check also warns (RuntimeWarning): the vector level runs instead."""
    if f.vector_level is None:
        return False, "no integer kernel"
    if f.emulated:
        return True, "emulated (DQT_HW_KERNEL=amx-emulated): the tile kernel in Numba code"
    if f.hardware:
        ok, why = f.request()
        bad = f.self_check() if ok else None
        if bad is not None:
            warnings.warn(f"dqt_hw: the AMX tile kernel failed its self-check ({bad}); "
                          f"the {f.vector_level} kernel runs instead", RuntimeWarning)
            return False, f"the tile kernel failed its self-check: {bad}"
        return ok, why
    if f.host is not None and _cpu.host_has_amx(f.host):
        if f.kernel:
            return False, f"turned off by DQT_HW_KERNEL={f.kernel}"
        return False, f.request()[1]
    return False, "this CPU has no AMX-INT8"


AMX_ON, AMX_WHY = amx_decision(AmxFacts(VECTOR_LEVEL, _amx.EMULATED, _amx.HARDWARE,
                                          _cpu.request_amx, _amx.self_check,
                                          _cpu.host_features(), settings.KERNEL))
LEVEL = "amx" if AMX_ON else VECTOR_LEVEL
KERNEL_NAMES = {"amx": "AMX-INT8 (tdpbusd tiles of 16 pixels x 16 channels)",
                "vnni": "AVX-512 VNNI (vpdpbusd)",
                "avx512bw": "AVX-512BW (vpmaddwd, 512 bits; narrow codes: vpmaddubsw into int16)",
                "avx2": "AVX2 (vpmaddwd, 256 bits; narrow codes: vpmaddubsw into int16)"}


def describe() -> str:
    """Which kernel does the exact sums, in words (for benchmark reports)."""
    if LEVEL is None:
        return ("float-BLAS paths (no AVX2 or AVX-512 target, a named NUMBA_CPU_NAME, or "
                "DQT_HW_VNNI=0)")
    name = KERNEL_NAMES[LEVEL] + (", emulated" if LEVEL == "amx" and _amx.EMULATED else "")
    note = ("" if LEVEL == "amx" or AMX_WHY == "this CPU has no AMX-INT8"
            else f"; AMX not used: {AMX_WHY}")
    return (f"integer kernel for {name} (DQT_HW_KERNEL=vnni / avx512bw / avx2 takes a lower "
            f"level, DQT_HW_VNNI=0 the float-BLAS paths{note})")


AVAILABLE = LEVEL is not None  # an exact integer tile kernel (any level)
BYTES64 = VECTOR_LEVEL in ("vnni", "avx512bw")  # the 64-byte kernels view64 / sad64

_I32 = ir.IntType(32)
_I64 = ir.IntType(64)
_V16 = ir.VectorType(_I32, 16)


def _c64(v):
    return ir.Constant(_I64, v)


def _splat(builder, V, v):
    """The scalar v in every lane of the vector type V."""
    undef = ir.Constant(V, None)
    lanes = ir.Constant(ir.VectorType(_I32, V.count), [0] * V.count)
    return builder.shuffle_vector(builder.insert_element(undef, v, ir.Constant(_I32, 0)),
                                  undef, lanes)


class _Args(NamedTuple):
    """The IR values (int64) of a tile kernel's arguments (see ``_tile_kernel``)."""

    xbase: object
    rows: object
    koff: object
    nk4: object
    wb: object
    cb: object
    ldc: object
    wstep: object


class _Tile(NamedTuple):
    """A micro-tile's accumulators: ``mr`` pixels x ``nv`` weight vectors of ``vbytes``
    bytes x ``nacc`` accumulators of vector type V each; the weight vectors of type WV
    (None: V); pixel and tap offsets in elements of ``esz`` bytes."""

    V: object
    nv: int
    mr: int = MR
    WV: object = None
    nacc: int = 1
    vbytes: int = 64
    esz: int = 1
    add: bool = False  # add the tile to what is stored there (a later chunk of k)


def _tile_loop(builder, t, a, step, fin=None):
    """The IR shared by the micro-kernels (``_Tile`` t, ``_Args`` a): ``t.mr`` pixel
    bases xbase + rows[i] * esz, a loop over k < nk4 with mr x nv x nacc vector
    accumulators (type V) starting at zero, the tap offset koff[k] * esz and the nv
    weight vectors of row k (type WV, at wb + k * wstep + j * vbytes) loaded, the
    accumulators updated by ``step(bases, tap, weights, acc) -> new``
    (acc[i][j * nacc + a]), and the tile stored at cb + i * ldc + j * vbytes: the
    accumulator itself, or ``fin(its nacc accumulators)`` (a vector of vbytes bytes)."""
    V, nv, mr, nacc, vbytes, esz = t.V, t.nv, t.mr, t.nacc, t.vbytes, t.esz
    WV = t.WV or V
    nk, wb, wstep, cb, ldc = a.nk4, a.wb, a.wstep, a.cb, a.ldc
    base = []
    for i in range(mr):
        p = builder.inttoptr(builder.add(a.rows, _c64(8 * i)), _I64.as_pointer())
        base.append(builder.add(a.xbase, builder.mul(builder.load(p, align=8), _c64(esz))))
    pre = builder.block
    loop = builder.append_basic_block("tile.loop")
    done = builder.append_basic_block("tile.done")
    zero = ir.Constant(V, None)
    builder.cbranch(builder.icmp_signed(">", nk, _c64(0)), loop, done)

    builder.position_at_end(loop)
    k = builder.phi(_I64)
    acc = [[builder.phi(V) for _ in range(nv * nacc)] for _ in range(mr)]
    tap = builder.load(builder.inttoptr(builder.add(a.koff, builder.mul(k, _c64(8))),
                                        _I64.as_pointer()), align=8)
    tap = builder.mul(tap, _c64(esz))
    ws = wstep if isinstance(wstep, ir.Value) else _c64(wstep)
    wrow = builder.add(wb, builder.mul(k, ws))
    wv = [builder.load(builder.inttoptr(builder.add(wrow, _c64(vbytes * j)),
                                        WV.as_pointer()), align=1)
          for j in range(nv)]
    new = step(base, tap, wv, acc)
    k1 = builder.add(k, _c64(1))
    end = builder.block
    k.add_incoming(_c64(0), pre)
    k.add_incoming(k1, end)
    for i in range(mr):
        for j in range(nv * nacc):
            acc[i][j].add_incoming(zero, pre)
            acc[i][j].add_incoming(new[i][j], end)
    builder.cbranch(builder.icmp_signed("<", k1, nk), loop, done)

    builder.position_at_end(done)
    res = []
    for i in range(mr):
        row = []
        for j in range(nv * nacc):
            ph = builder.phi(V)
            ph.add_incoming(zero, pre)
            ph.add_incoming(new[i][j], end)
            row.append(ph)
        res.append(row)
    for i in range(mr):
        for j in range(nv):
            out = res[i][j] if fin is None else fin(res[i][j * nacc:(j + 1) * nacc])
            addr = builder.add(builder.add(cb, builder.mul(ldc, _c64(i))), _c64(vbytes * j))
            ptr = builder.inttoptr(addr, out.type.as_pointer())
            if t.add:
                out = builder.add(out, builder.load(ptr, align=4))
            builder.store(out, ptr, align=4)


_V64B = ir.VectorType(ir.IntType(8), 64)


def _intrinsic_fn(builder, name, ret, argtys):
    f = builder.module.globals.get(name)
    return f if f is not None else ir.Function(builder.module, ir.FunctionType(ret, argtys),
                                               name)


def _lanes(n, start, step):
    return ir.Constant(ir.VectorType(_I32, n), list(range(start, start + n * step, step)))


def _vnni_code(builder, nv, args):
    """AVX-512 VNNI: per step and pixel one ``vpdpbusd`` per vector of 16 channels."""
    dp = _intrinsic_fn(builder, "llvm.x86.avx512.vpdpbusd.512", _V16, [_V16, _V16, _V16])

    def step(base, tap, wv, acc):
        new = []
        for i in range(MR):
            a = builder.load(builder.inttoptr(builder.add(base[i], tap), _I32.as_pointer()),
                             align=1)
            a = _splat(builder, _V16, a)  # four bytes of pixel i, in every lane
            new.append([builder.call(dp, [acc[i][j], a, wv[j]]) for j in range(nv)])
        return new

    _tile_loop(builder, _Tile(_V16, nv), args, step)


def _pair_steps(builder, mr, base, tap, rep, widen, wparts, acc, op):
    """One step of k4 of the pairwise kernels: for each of the ``mr`` pixels its four
    codes at base[i] + tap, repeated by the shuffle ``rep`` (and zero-extended to
    ``widen`` where given), and acc[i][j * nacc + h] + op(codes, wparts[j][h]) for every
    weight vector j and part h (nacc parts each)."""
    V4B = ir.VectorType(ir.IntType(8), 4)
    nacc = len(wparts[0])
    new = []
    for i in range(mr):
        a = builder.load(builder.inttoptr(builder.add(base[i], tap), V4B.as_pointer()),
                         align=1)
        a = builder.shuffle_vector(a, a, rep)  # the 4 codes in every 32-bit lane
        if widen is not None:
            a = builder.zext(a, widen)
        new.append([builder.add(acc[i][j * nacc + h], builder.call(op, [a, wparts[j][h]]))
                    for j in range(len(wparts)) for h in range(nacc)])
    return new


def _pmadd_code(builder, nv, args, bits):
    """``vpmaddwd`` (AVX-512BW on 512 bits, AVX2 on 256): the bytes widened to int16
    (pixel codes zero-, weights sign-extended: every product fits int16, |255 x 128| <
    2^15), each instruction the sums of pairs of products in int32 lanes, accumulated
    per pair (every partial sum is a sum of some of the output's products, so it is
    below 2^31 as the whole is); after the loop the two lanes of each channel added.
    512 bits: MR pixels, two accumulators per vector of 16 channels (nv <= 2); 256 bits:
    ``mr`` = 2 pixels, four accumulators per vector (nv = 1), so the registers hold
    them."""
    lanes = bits // 32
    I16 = ir.IntType(16)
    W16 = ir.VectorType(I16, 2 * lanes)
    VA = ir.VectorType(_I32, lanes)
    name = "llvm.x86.avx512.pmaddw.d.512" if bits == 512 else "llvm.x86.avx2.pmadd.wd"
    pm = _intrinsic_fn(builder, name, VA, [W16, W16])
    nacc = 64 // (2 * lanes)  # 16-bit halves of a 64-byte weight vector
    mr = MR if bits == 512 else 2
    rep = ir.Constant(ir.VectorType(_I32, 2 * lanes), [t % 4 for t in range(2 * lanes)])

    def step(base, tap, wv, acc):
        wparts = [[builder.sext(builder.shuffle_vector(w, w, _lanes(2 * lanes, h * 2 * lanes,
                                                                       1)), W16)
                   for h in range(nacc)] for w in wv]
        return _pair_steps(builder, mr, base, tap, rep, W16, wparts, acc, pm)

    def fin(parts):
        # lane e of part h holds channel (h * lanes + e) // 2's pair e % 2: add the pairs
        out = []
        for h in range(0, nacc, 2):
            lo, hi = parts[h], parts[h + 1]
            out.append(builder.add(builder.shuffle_vector(lo, hi, _lanes(lanes, 0, 2)),
                                   builder.shuffle_vector(lo, hi, _lanes(lanes, 1, 2))))
        if len(out) == 1:
            return out[0]
        return builder.shuffle_vector(out[0], out[1], _lanes(2 * lanes, 0, 1))

    _tile_loop(builder, _Tile(VA, nv, mr, _V64B, nacc), args, step, fin)


def _maddubs_code(builder, nv, args, bits, add):
    """The narrow kernel (``vpmaddubsw``, AVX-512BW on 512 bits, AVX2 on 256) for one
    chunk of at most ``plan.int16_steps`` steps of k4: each instruction multiplies the pixel's
    four unsigned bytes by a channel's four signed bytes and adds them in pairs into
    int16 lanes (lane 2l: bytes 0, 1 of channel l; lane 2l + 1: bytes 2, 3), and
    ``vpaddw`` accumulates the chunk in those int16 lanes. The caller's bound (see
    ``plan.narrow_steps``) makes every pair sum, and every lane's sum over the chunk, at
    most 32767 in magnitude: no pair saturates and no lane wraps, so each holds its exact
    sum. After the chunk ``vpmaddwd`` by ones adds each channel's two lanes into its int32
    lane, stored (``add``: added to the tile of the earlier chunks). No widening of the
    bytes: half the instructions of ``_pmadd_code`` per product. 512 bits: MR pixels x
    ``nv`` vectors of 16 channels; 256 bits: MR pixels x one vector in two halves."""
    lanes = bits // 32
    I16 = ir.IntType(16)
    W16 = ir.VectorType(I16, 2 * lanes)
    VB = ir.VectorType(ir.IntType(8), 4 * lanes)
    VA = ir.VectorType(_I32, lanes)
    if bits == 512:
        mub, mwd = "llvm.x86.avx512.pmaddubs.w.512", "llvm.x86.avx512.pmaddw.d.512"
    else:
        mub, mwd = "llvm.x86.avx2.pmadd.ub.sw", "llvm.x86.avx2.pmadd.wd"
    pb = _intrinsic_fn(builder, mub, W16, [VB, VB])
    pw = _intrinsic_fn(builder, mwd, VA, [W16, W16])
    ones = ir.Constant(W16, [1] * (2 * lanes))
    nacc = 64 // (4 * lanes)  # parts of a 64-byte weight vector
    rep = ir.Constant(ir.VectorType(_I32, 4 * lanes), [t % 4 for t in range(4 * lanes)])

    def step(base, tap, wv, acc):
        wparts = [[w if nacc == 1 else builder.shuffle_vector(
            w, w, _lanes(4 * lanes, h * 4 * lanes, 1)) for h in range(nacc)] for w in wv]
        return _pair_steps(builder, MR, base, tap, rep, None, wparts, acc, pb)

    def fin(parts):
        out = [builder.call(pw, [p, ones]) for p in parts]  # channel l's two lanes added
        if len(out) == 1:
            return out[0]
        return builder.shuffle_vector(out[0], out[1], _lanes(2 * lanes, 0, 1))

    _tile_loop(builder, _Tile(W16, nv, MR, _V64B, nacc, add=add), args, step, fin)


def _narrow_kernel(nv: int, add: bool):
    """An intrinsic like ``_tile_kernel``'s by ``_maddubs_code`` (levels "avx512bw" and
    "avx2"; at "vnni" too, where the tests run it): nk4 at most the chunk's steps,
    ``add`` adds the tile to the stored one."""

    @intrinsic
    def kern(typingctx, xbase, rows, koff, nk4, wb, cb, ldc, wstep):
        sig = types.void(*([types.int64] * 8))

        def codegen(context, builder, signature, args):
            _maddubs_code(builder, nv, _Args(*args), 256 if VECTOR_LEVEL == "avx2" else 512, add)
            return context.get_dummy_value()

        return sig, codegen

    return kern


def _tile_kernel(nv: int):
    """An intrinsic kern(xbase, rows, koff, nk4, wb, cb, ldc, wstep) (all int64; addresses
    of the NHWC bytes, of the pixel offsets, of nk4 int64 tap offsets, of the packed
    weights, of the int32 result tile, its row stride in bytes, and the bytes of a
    weight row): C[i, 16 j + l] = sum over k4 of the four products of bytes xbase[rows[i]
    + koff[k4] + t] (unsigned) and wb[k4 * wstep + 64 j + 4 l + t] (signed), for j < nv,
    l < 16 and the kernel's pixels i (MR for "vnni" and "avx512bw", 2 for "avx2"), by the
    instructions of ``LEVEL`` (Numba's target: its cache keeps code per feature set)."""

    @intrinsic
    def kern(typingctx, xbase, rows, koff, nk4, wb, cb, ldc, wstep):
        sig = types.void(*([types.int64] * 8))

        def codegen(context, builder, signature, args):
            a = _Args(*args)
            if VECTOR_LEVEL == "vnni":
                _vnni_code(builder, nv, a)
            elif VECTOR_LEVEL == "avx512bw":
                _pmadd_code(builder, nv, a, 512)
            else:
                _pmadd_code(builder, nv, a, 256)
            return context.get_dummy_value()

        return sig, codegen

    return kern


_k1 = _tile_kernel(1)
_k2 = _tile_kernel(2)
_k3 = _tile_kernel(3)
_k4 = _tile_kernel(4)
KPIX = 2 if VECTOR_LEVEL == "avx2" else MR  # pixels per kernel call
_n1, _n1a = _narrow_kernel(1, False), _narrow_kernel(1, True)
_n2, _n2a = _narrow_kernel(2, False), _narrow_kernel(2, True)
_n4, _n4a = _narrow_kernel(4, False), _narrow_kernel(4, True)
NARROW = LEVEL in ("avx512bw", "avx2")  # levels where the narrow kernel is the faster
NARROW_NV = 1 if VECTOR_LEVEL == "avx2" else 4  # vectors of 16 channels per narrow call


@njit(cache=True, nogil=True, inline="always")
def _narrow_call(nv, add, xa, r, ka, nk4, wb, cb, ldc, ws):
    if nv == 4:
        if add:
            _n4a(xa, r, ka, nk4, wb, cb, ldc, ws)
        else:
            _n4(xa, r, ka, nk4, wb, cb, ldc, ws)
    elif nv == 2:
        if add:
            _n2a(xa, r, ka, nk4, wb, cb, ldc, ws)
        else:
            _n2(xa, r, ka, nk4, wb, cb, ldc, ws)
    elif add:
        _n1a(xa, r, ka, nk4, wb, cb, ldc, ws)
    else:
        _n1(xa, r, ka, nk4, wb, cb, ldc, ws)


@njit(cache=True, nogil=True, inline="always")
def _narrow_tile(xa, r, ka, nk4, l16, wb, cb, ldc, ws, nv):
    """One micro-tile by the narrow kernel: chunks of at most l16 steps of k4, the first
    stored, the others added; the tile's vectors 4, 2 or 1 at a time."""
    j = 0
    while j < nv:
        step = min(NARROW_NV, 4 if nv - j >= 4 else 2 if nv - j >= 2 else 1)
        k0 = 0
        while k0 == 0 or k0 < nk4:  # one call even for nk4 = 0: the tile stored as 0
            _narrow_call(step, k0 > 0, xa, r, ka + 8 * k0, min(l16, nk4 - k0),
                         wb + k0 * ws + 64 * j, cb + 64 * j, ldc, ws)
            k0 += l16
        j += step


@njit(cache=True, nogil=True)
def gemm_tiles(xp, rows, koff, wp, woff, nvs, C, m0, m1, b0, b1, l16):
    """C[m, 64 b + n] (int32) = the exact sum over k4 < len(koff) for the pixels m in
    [m0, m1) (m0 a multiple of MR; ``rows`` holds a pixel offset into the flat byte array
    ``xp`` for every row of C) and the weight blocks b in [b0, b1) (block b at byte
    ``woff[b]`` of ``wp``, ``nvs[b]`` vectors of 16 channels), by the kernel of ``LEVEL``
    (vectors 4 at a time for "vnni", 2 for "avx512bw", 1 for "avx2"), or where l16 > 0
    by the narrow kernel in chunks of l16 steps of k4 (``plan.narrow_steps``); at the
    "amx" level by ``_amx.amx_tiles``."""
    if LEVEL == "amx" and l16 == 0:
        _amx.amx_tiles(xp, rows, koff, wp, woff, nvs, C, m0, m1, b0, b1)
        return
    nk4 = koff.shape[0]
    xa = xp.ctypes.data
    ra = rows.ctypes.data
    ka = koff.ctypes.data
    wa = wp.ctypes.data
    ca = C.ctypes.data
    ldc = C.shape[1] * 4
    for b in range(b0, b1):
        nv = nvs[b]
        wb = wa + woff[b]
        ws = 64 * nv
        for m in range(m0, m1, MR):
            r = ra + m * 8
            cb = ca + m * ldc + b * NB * 4
            if l16 > 0:
                _narrow_tile(xa, r, ka, nk4, l16, wb, cb, ldc, ws, nv)
            elif VECTOR_LEVEL == "vnni":
                if nv == 4:
                    _k4(xa, r, ka, nk4, wb, cb, ldc, ws)
                elif nv == 3:
                    _k3(xa, r, ka, nk4, wb, cb, ldc, ws)
                elif nv == 2:
                    _k2(xa, r, ka, nk4, wb, cb, ldc, ws)
                else:
                    _k1(xa, r, ka, nk4, wb, cb, ldc, ws)
            elif VECTOR_LEVEL == "avx512bw":
                j = 0
                while j + 2 <= nv:
                    _k2(xa, r, ka, nk4, wb + 64 * j, cb + 64 * j, ldc, ws)
                    j += 2
                if j < nv:
                    _k1(xa, r, ka, nk4, wb + 64 * j, cb + 64 * j, ldc, ws)
            else:
                for j in range(nv):
                    for p in range(0, MR, KPIX):
                        _k1(xa, r + 8 * p, ka, nk4, wb + 64 * j, cb + p * ldc + 64 * j, ldc,
                            ws)


@njit(cache=True, parallel=True)
def gemm_tiles_par(xp, rows, koff, wp, woff, nvs, C, m0, m1, b0, b1, l16):
    """``gemm_tiles`` with the weight blocks shared out over Numba's threads (small
    work with several blocks: a parallel region of Numba's pool costs microseconds)."""
    for b in prange(b0, b1):
        gemm_tiles(xp, rows, koff, wp, woff, nvs, C, m0, m1, b, b + 1, l16)


# ----------------------------------------------------------------------------- saturate

SAT_NV = 4  # vectors of output channels per saturating micro-tile


def _sat_kernel(fty, lanes: int, nv: int):
    """An intrinsic kern(xbase, rows, toff, nk, wb, cb, ldc, lo, hi): for i < MR,
    j < nv * lanes, acc = 0 then for k < nk: acc = clamp(acc + x[rows[i] + toff[k]] *
    wb[k * nv * lanes + j], lo, hi); C[i, j] = acc. x and wb are arrays of ``fty``
    (addresses in bytes; rows/toff in elements), ldc in bytes."""
    V = ir.VectorType(fty, lanes)
    esz = 4 if fty == ir.FloatType() else 8
    fname = f"llvm.fmuladd.v{lanes}f{esz * 8}"

    @intrinsic
    def kern(typingctx, xbase, rows, toff, nk, wb, cb, ldc, lo, hi):
        ft = types.float32 if esz == 4 else types.float64
        sig = types.void(*([types.int64] * 7), ft, ft)

        def codegen(context, builder, signature, args):
            xbase, rows, toff, nk, wb, cb, ldc, lo, hi = args
            fma = builder.module.globals.get(fname)
            if fma is None:
                fma = ir.Function(builder.module, ir.FunctionType(V, [V, V, V]), fname)
            vlo, vhi = _splat(builder, V, lo), _splat(builder, V, hi)

            def step(base, tap, wv, acc):
                new = []
                for i in range(MR):
                    xv = builder.load(builder.inttoptr(builder.add(base[i], tap),
                                                       fty.as_pointer()), align=esz)
                    xs = _splat(builder, V, xv)
                    row = []
                    for j in range(nv):
                        v = builder.call(fma, [xs, wv[j], acc[i][j]])
                        v = builder.select(builder.fcmp_ordered(">", v, vhi), vhi, v)
                        v = builder.select(builder.fcmp_ordered("<", v, vlo), vlo, v)
                        row.append(v)
                    new.append(row)
                return new

            _tile_loop(builder, _Tile(V, nv, vbytes=esz * lanes, esz=esz),
                       _Args(xbase, rows, toff, nk, wb, cb, ldc, esz * lanes * nv), step)
            return context.get_dummy_value()

        return sig, codegen

    return kern


_s32_1 = _sat_kernel(ir.FloatType(), 16, 1)
_s32_2 = _sat_kernel(ir.FloatType(), 16, 2)
_s32_4 = _sat_kernel(ir.FloatType(), 16, 4)
_s64_1 = _sat_kernel(ir.DoubleType(), 8, 1)
_s64_2 = _sat_kernel(ir.DoubleType(), 8, 2)
_s64_4 = _sat_kernel(ir.DoubleType(), 8, 4)


def sat_vectors(Og: int, lanes: int) -> int:
    """Vectors of output channels per saturating micro-tile: 1, 2 or SAT_NV = 4."""
    v = -(-Og // lanes)
    return 1 if v <= 1 else 2 if v <= 2 else SAT_NV


@njit(cache=True, nogil=True)
def sat_tiles(xp, xoff, rows, toff, wt, C, m0, m1, b0, b1, lo, hi):
    """C[m, b * L + j] = the saturating accumulation (see the module notes) for the
    pixels m in [m0, m1) (m0 a multiple of MR) and the weight blocks b in [b0, b1):
    xp a flat float array (element offsets xoff + rows[m] + toff[k]), wt (nblk, K, L)
    float weights with L = 1, 2 or SAT_NV vectors of lanes, C (Mp, nblk * L) of the
    same float type."""
    nk = toff.shape[0]
    L = wt.shape[2]
    esz = xp.itemsize
    xa = xp.ctypes.data + xoff * esz
    ra = rows.ctypes.data
    ta = toff.ctypes.data
    wa = wt.ctypes.data
    ca = C.ctypes.data
    ldc = C.shape[1] * esz
    for b in range(b0, b1):
        wb = wa + b * nk * L * esz
        for m in range(m0, m1, MR):
            r = ra + m * 8
            cb = ca + m * ldc + b * L * esz
            if esz == 4:
                f32lo, f32hi = np.float32(lo), np.float32(hi)
                if L == 64:
                    _s32_4(xa, r, ta, nk, wb, cb, ldc, f32lo, f32hi)
                elif L == 32:
                    _s32_2(xa, r, ta, nk, wb, cb, ldc, f32lo, f32hi)
                else:
                    _s32_1(xa, r, ta, nk, wb, cb, ldc, f32lo, f32hi)
            else:
                f64lo, f64hi = np.float64(lo), np.float64(hi)
                if L == 32:
                    _s64_4(xa, r, ta, nk, wb, cb, ldc, f64lo, f64hi)
                elif L == 16:
                    _s64_2(xa, r, ta, nk, wb, cb, ldc, f64lo, f64hi)
                else:
                    _s64_1(xa, r, ta, nk, wb, cb, ldc, f64lo, f64hi)


@njit(cache=True, nogil=True)
def sat_finish(C, m0, m1, o0, nro, out):
    """out[n, o0 + o, p] = C[m, o] as int64 for the outputs m = (n, p) in [m0, m1) and
    o < nro (C's rows are absolute output indices)."""
    HW = out.shape[2]
    for m in range(m0, m1):
        n = m // HW
        p = m - n * HW
        cr = C[m]
        for o in range(nro):
            out[n, o0 + o, p] = np.int64(cr[o])


# ----------------------------------------------------------------------------- byte views


def _sums8(builder, v):
    """<8 x i64>: the sums of the eight groups of 8 unsigned bytes of v (<64 x i8>):
    ``psadbw`` against zero where Numba compiles for AVX-512BW, else the same sums in
    generic IR (the byte kernels then do not run, but they must compile)."""
    V8 = ir.VectorType(_I64, 8)
    if BYTES64:
        sad = _intrinsic_fn(builder, "llvm.x86.avx512.psad.bw.512", V8, [_V64B, _V64B])
        return builder.call(sad, [v, ir.Constant(_V64B, None)])
    red = _intrinsic_fn(builder, "llvm.vector.reduce.add.v8i64", _I64, [V8])
    out = ir.Constant(V8, None)
    for g in range(8):
        part = builder.zext(builder.shuffle_vector(v, v, _lanes(8, 8 * g, 1)), V8)
        out = builder.insert_element(out, builder.call(red, [part]), ir.Constant(_I32, g))
    return out


@intrinsic
def view64(typingctx, src, dst, h, d):
    """64 unsigned bytes at ``src`` viewed as usat8(q + h) >> d and stored at ``dst``;
    returns their sum. For 8-bit unsigned master codes and the view to b = 8 - d bits
    this is the contract's floor (h = 0) or half_up (h = 2^(d-1)) view with its clamp to
    2^b - 1: (q + h) >> d exceeds 2^b - 1 exactly when q + h > 255, where the saturated
    sum gives 255 >> d = 2^b - 1."""
    sig = types.int64(types.int64, types.int64, types.int64, types.int64)

    def codegen(context, builder, signature, args):
        src, dst, h, d = args
        mod = builder.module
        i8 = ir.IntType(8)

        def fn(name, ret, argtys):
            f = mod.globals.get(name)
            return f if f is not None else ir.Function(mod, ir.FunctionType(ret, argtys),
                                                       name)

        sat = fn("llvm.uadd.sat.v64i8", _V64B, [_V64B, _V64B])
        red = fn("llvm.vector.reduce.add.v8i64", _I64, [ir.VectorType(_I64, 8)])
        v = builder.load(builder.inttoptr(src, _V64B.as_pointer()), align=1)
        hv = _splat(builder, _V64B, builder.trunc(h, i8))
        dv = _splat(builder, _V64B, builder.trunc(d, i8))
        r = builder.lshr(builder.call(sat, [v, hv]), dv)
        builder.store(r, builder.inttoptr(dst, _V64B.as_pointer()), align=1)
        return builder.call(red, [_sums8(builder, r)])

    return sig, codegen


@intrinsic
def sad64(typingctx, src, dst):
    """The sums of the eight groups of 8 unsigned bytes in 64 bytes at ``src``
    (``psadbw`` against zero), stored as 8 int64 at ``dst``."""
    sig = types.none(types.int64, types.int64)

    def codegen(context, builder, signature, args):
        src, dst = args
        v = builder.load(builder.inttoptr(src, _V64B.as_pointer()), align=1)
        s = _sums8(builder, v)
        builder.store(s, builder.inttoptr(dst, ir.VectorType(_I64, 8).as_pointer()), align=1)
        return context.get_dummy_value()

    return sig, codegen
