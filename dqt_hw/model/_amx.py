"""The AMX level of the exact integer kernel (private): ``tdpbusd`` tiles into int32.

An AMX tile register holds up to 16 rows of 64 bytes. ``tdpbusd C, A, B`` adds to each
int32 C[i, n] (16 x 16) the dot products of the four unsigned bytes of A's dword k in row
i with the four signed bytes of B's dword n in row k, for k < 16: 16 x 16 x 64 products
in one instruction, each group of four summed into the int32 lane without saturation, as
``vpdpbusd`` does. The operands are those of the other levels (``_simd``): pixel codes
moved to xu = x - ox in [0, 255] and weights to ws = w - ow in [-128, 127], so every
product has magnitude at most 255 * 128 and a sum of at most ``_simd.MAX_K`` of them
stays below 2^31: the same bound proves the same exact sums (docs/arithmetic.md 4).

Layout.
- B: the packed weights of ``_simd.pack_weights`` are already B tiles: a block's row k4
  holds 16 nv channels x 4 bytes, so rows 16 s .. 16 s + 15 of the vector j of 16
  channels are one B tile at ``wb + 16 s wstep + 64 j`` with row stride ``wstep`` (=
  64 nv). ``pack_weights`` pads every block to a whole number of 16-row steps with zero
  rows, so the last step reads only the block's own zeros.
- A: straight from the channels-last block where a group's 16 windows are equally
  spaced (d bytes apart: one output row) and every step's 16 k4 are 64 contiguous bytes
  of a window (``direct_steps``): step s at window + koff[16 s], row stride d. Else 16
  output pixels' windows, gathered once per group of 16 pixels into a panel of ``lda``
  = 64 x steps bytes per pixel (k4 order, as the weights; the tail bytes zero): any
  pixel set the callers form (rows that span output rows, images and strides, the last
  pixel repeated) works alike. Contiguous taps are copied as runs. The kernel reads
  step s's A address from a table (64 s for the panel, koff[16 s] for the block).
- C: 16 pixels x 16 channels of int32 per tile; four C tiles (tmm0-3) take a block's 64
  channels, A sits in tmm4 and the B tiles rotate through tmm5-7. A group of fewer than
  16 pixels (the last) is stored to a scratch tile and its rows copied out.

Every tile is configured 16 rows x 64 bytes (``tile_config``), once per ``amx_tiles``
call, by the thread that runs it (tile state is per thread); ``tilerelease`` ends it.

Emulation. ``DQT_HW_KERNEL=amx-emulated`` runs the same driver with the tile kernel
replaced by ``_tile_soft``, which reads and writes memory at exactly the addresses and
strides of the instructions and computes the SDM's ``TDPBUSD`` pseudo-code (int32 lanes
wrapping modulo 2^32). It checks the layout, the gather, the tails and the partial
groups on any CPU; the instructions themselves run only on a CPU with AMX-INT8 whose
OS grants the tile state (``dqt_hw._cpu.request_amx``), where the tests of every level run them.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from .. import _cpu, settings
from ._pack import NB, STEP_K4, pack_weights, pad4, pixel_offsets, steps, tap_offsets

ROWS = STEP_K4  # pixels per A tile (16), rows of four k per B tile
TILE_BYTES = 4 * STEP_K4  # bytes per tile row (64)
PALETTE = 1  # the tile palette of 8 registers of 16 rows x 64 bytes
EMULATED = settings.KERNEL == "amx-emulated"

_I8 = ir.IntType(8)
_I32 = ir.IntType(32)
_I64 = ir.IntType(64)
_P8 = _I8.as_pointer()


@njit(cache=True, nogil=True)
def tile_config():
    """The 64-byte ``ldtilecfg`` operand: palette 1, start row 0, tiles 0-7 of 16 rows x
    64 bytes (bytes 16 + 2 t: colsb of tile t as little-endian uint16; byte 48 + t: its
    rows; the rest zero)."""
    cfg = np.zeros(64, np.uint8)
    cfg[0] = PALETTE
    for t in range(8):
        cfg[16 + 2 * t] = TILE_BYTES & 255
        cfg[17 + 2 * t] = TILE_BYTES >> 8
        cfg[48 + t] = ROWS
    return cfg


# ----------------------------------------------------------------------------- hardware


def _fn(builder, name, args):
    f = builder.module.globals.get(name)
    return f if f is not None else ir.Function(builder.module,
                                               ir.FunctionType(ir.VoidType(), args), name)


def _imm(v):
    return ir.Constant(_I8, v)


@intrinsic
def _config_hw(typingctx, cfg):
    """``ldtilecfg`` from the 64 bytes at address cfg."""
    sig = types.void(types.int64)

    def codegen(context, builder, signature, args):
        builder.call(_fn(builder, "llvm.x86.ldtilecfg", [_P8]), [builder.inttoptr(args[0], _P8)])
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _release_hw(typingctx):
    """``tilerelease``: the tile state back to its initial (unused) state."""
    sig = types.void()

    def codegen(context, builder, signature, args):
        builder.call(_fn(builder, "llvm.x86.tilerelease", []), [])
        return context.get_dummy_value()

    return sig, codegen


def _tile_hw(nv: int):
    """An intrinsic kern(abase, atab, lda, nst, wb, wstep, cb, ldc) (int64): C tiles
    0..nv-1 zeroed; for s < nst: A (tmm4) loaded from abase + atab[s] (atab the address
    of an int64 table; row stride lda), and for
    each j < nv the B tile of vector j (tmm5 + j % 3) from wb + 16 s wstep + 64 j (row
    stride wstep) and ``tdpbusd`` C_j, A, B_j; then C_j stored at cb + 64 j (row stride
    ldc). Compiled only where Numba's target has AMX-TILE and AMX-INT8."""

    @intrinsic
    def kern(typingctx, abase, atab, lda, nst, wb, wstep, cb, ldc):
        sig = types.void(*([types.int64] * 8))

        def codegen(context, builder, signature, args):
            abase, atab, lda, nst, wb, wstep, cb, ldc = args
            zero = _fn(builder, "llvm.x86.tilezero", [_I8])
            load = _fn(builder, "llvm.x86.tileloadd64", [_I8, _P8, _I64])
            dp = _fn(builder, "llvm.x86.tdpbusd", [_I8, _I8, _I8])
            store = _fn(builder, "llvm.x86.tilestored64", [_I8, _P8, _I64])
            for j in range(nv):
                builder.call(zero, [_imm(j)])
            pre = builder.block
            loop = builder.append_basic_block("amx.loop")
            done = builder.append_basic_block("amx.done")
            builder.cbranch(builder.icmp_signed(">", nst, ir.Constant(_I64, 0)), loop, done)
            builder.position_at_end(loop)
            s = builder.phi(_I64)
            s.add_incoming(ir.Constant(_I64, 0), pre)
            ta = builder.add(atab, builder.mul(s, ir.Constant(_I64, 8)))
            a = builder.add(abase, builder.load(builder.inttoptr(ta, _I64.as_pointer()),
                                                align=8))
            builder.call(load, [_imm(4), builder.inttoptr(a, _P8), lda])
            brow = builder.add(wb, builder.mul(builder.mul(s, ir.Constant(_I64, ROWS)), wstep))
            for j in range(nv):
                t = 5 + j % 3
                b = builder.add(brow, ir.Constant(_I64, TILE_BYTES * j))
                builder.call(load, [_imm(t), builder.inttoptr(b, _P8), wstep])
                builder.call(dp, [_imm(j), _imm(4), _imm(t)])
            s1 = builder.add(s, ir.Constant(_I64, 1))
            s.add_incoming(s1, builder.block)
            builder.cbranch(builder.icmp_signed("<", s1, nst), loop, done)
            builder.position_at_end(done)
            for j in range(nv):
                c = builder.add(cb, ir.Constant(_I64, TILE_BYTES * j))
                builder.call(store, [_imm(j), builder.inttoptr(c, _P8), ldc])
            return context.get_dummy_value()

        return sig, codegen

    return kern


# ----------------------------------------------------------------------------- emulation


def _load(nt, ty):
    """An intrinsic load(addr): the value at address addr (int64, any alignment) of LLVM
    type ty, typed as Numba's nt."""

    @intrinsic
    def load(typingctx, addr):
        def codegen(context, builder, signature, args):
            return builder.load(builder.inttoptr(args[0], ty.as_pointer()), align=1)

        return nt(types.int64), codegen

    return load


_load_u8 = _load(types.uint8, _I8)
_load_i8 = _load(types.int8, _I8)
_load_i64 = _load(types.int64, _I64)


@intrinsic
def _store_i32(typingctx, addr, v):
    """Stores the int32 v at address addr."""
    sig = types.void(types.int64, types.int32)

    def codegen(context, builder, signature, args):
        builder.store(args[1], builder.inttoptr(args[0], _I32.as_pointer()), align=1)
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, nogil=True)
def _config_soft(cfg):
    """Nothing to configure: ``_tile_soft`` has the geometry of ``tile_config``."""


@njit(cache=True, nogil=True)
def _release_soft():
    """Nothing to release."""


@njit(cache=True, nogil=True)
def _tile_soft(nv, abase, atab, lda, nst, wb, wstep, cb, ldc):
    """What ``_tile_hw(nv)`` computes, by the SDM's pseudo-code of TILEZERO, TILELOADD,
    TDPBUSD (int32 lanes, sums wrapping modulo 2^32) and TILESTORED, at the same
    addresses."""
    acc = np.zeros((nv, ROWS, ROWS), np.int64)
    for s in range(nst):
        for j in range(nv):
            bt = wb + ROWS * s * wstep + TILE_BYTES * j
            for i in range(ROWS):  # row i of A and of C
                arow = abase + _load_i64(atab + 8 * s) + i * lda
                for k in range(ROWS):  # dword k of A's row, row k of B
                    for n in range(ROWS):  # dword n of B's row, lane n of C
                        d = np.int64(0)
                        for t in range(4):
                            d += (np.int64(_load_u8(arow + 4 * k + t))
                                  * np.int64(_load_i8(bt + k * wstep + 4 * n + t)))
                        v = acc[j, i, n] + d
                        acc[j, i, n] = ((v + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
    for j in range(nv):
        for i in range(ROWS):
            for n in range(ROWS):
                _store_i32(cb + TILE_BYTES * j + i * ldc + 4 * n, np.int32(acc[j, i, n]))


def _hardware() -> bool:
    """Whether ``amx_tiles`` compiles with the tile instructions: where Numba's target
    has AMX-TILE and AMX-INT8 (``dqt_hw/__init__.py`` turns them off where the OS
    refused the tile state) and the level is not emulated. Elsewhere it compiles with
    the emulation, which compiles anywhere (and runs only at the emulated level)."""
    feats = _cpu.target_features()
    return not EMULATED and feats is not None and _cpu.host_has_amx(feats)


HARDWARE = _hardware()
if HARDWARE:
    _h1, _h2, _h3, _h4 = _tile_hw(1), _tile_hw(2), _tile_hw(3), _tile_hw(4)
    _config, _release = _config_hw, _release_hw

    @njit(cache=True, nogil=True, inline="always")
    def _tile(nv, abase, atab, lda, nst, wb, wstep, cb, ldc):
        if nv == 4:
            _h4(abase, atab, lda, nst, wb, wstep, cb, ldc)
        elif nv == 3:
            _h3(abase, atab, lda, nst, wb, wstep, cb, ldc)
        elif nv == 2:
            _h2(abase, atab, lda, nst, wb, wstep, cb, ldc)
        else:
            _h1(abase, atab, lda, nst, wb, wstep, cb, ldc)
else:
    _config, _release, _tile = _config_soft, _release_soft, _tile_soft


# ----------------------------------------------------------------------------- driver


@njit(cache=True, nogil=True)
def tap_runs(koff):
    """(start, length) in k4 of the runs of contiguous taps: koff[k + 1] = koff[k] + 4
    inside a run (a tap's channels, or kw taps of four channels)."""
    n = koff.shape[0]
    st = np.empty(n, np.int64)
    ln = np.empty(n, np.int64)
    r = 0
    k = 0
    while k < n:
        e = k + 1
        while e < n and koff[e] == koff[e - 1] + 4:
            e += 1
        st[r] = k
        ln[r] = e - k
        r += 1
        k = e
    return st[:r], ln[:r]


@njit(cache=True, nogil=True)
def direct_steps(koff):
    """The A addresses (relative to a pixel's window) of the tile steps where every step's
    16 groups of four k are 64 contiguous bytes of the window (a tap's channels, Cp a
    multiple of 64): koff[16 s]; an empty table where some step is not."""
    nk4 = koff.shape[0]
    if nk4 % STEP_K4:
        return np.empty(0, np.int64)
    nst = nk4 // STEP_K4
    for s in range(nst):
        for t in range(1, STEP_K4):
            if koff[STEP_K4 * s + t] != koff[STEP_K4 * s] + 4 * t:
                return np.empty(0, np.int64)
    return np.ascontiguousarray(koff[::STEP_K4])


@njit(cache=True, nogil=True, inline="always")
def _spacing(rows, m):
    """d > 0 where the 16 pixels from row m have windows d bytes apart (one output row:
    d = stride Cp), else 0."""
    d = rows[m + 1] - rows[m]
    if d <= 0:
        return 0
    for p in range(2, ROWS):
        if rows[m + p] != rows[m] + p * d:
            return 0
    return d


@njit(cache=True, nogil=True)
def amx_tiles(xp, rows, koff, wp, woff, nvs, C, m0, m1, b0, b1):
    """``_simd.gemm_tiles``'s sums (C[m, 64 b + n] for m in [m0, m1), blocks b in
    [b0, b1)) by AMX tiles, per group of 16 pixels and per block its 1-4 C tiles over the
    tile steps. The A tiles come straight from the channels-last block where the group's
    windows are equally spaced (16 pixels of one output row) and every step is 64
    contiguous bytes of a window (``direct_steps``), else from a panel of the group's
    windows. Returns the number of groups loaded straight (for tests and reports)."""
    nk4 = koff.shape[0]
    nst = (nk4 + STEP_K4 - 1) // STEP_K4
    lda = nst * TILE_BYTES
    panel = np.zeros((ROWS, max(lda, TILE_BYTES)), np.uint8)
    scratch = np.empty((ROWS, NB), np.int32)
    ptab = np.arange(max(nst, 1)) * TILE_BYTES  # A at step s of the panel: 64 s
    dtab = direct_steps(koff)
    rst, rln = tap_runs(koff)
    xa = xp.ctypes.data
    wa = wp.ctypes.data
    ca = C.ctypes.data
    ldc = C.shape[1] * 4
    ndirect = 0
    cfg = tile_config()
    _config(cfg.ctypes.data)
    for m in range(m0, m1, ROWS):
        cnt = min(ROWS, m1 - m)
        d = _spacing(rows, m) if cnt == ROWS and dtab.shape[0] > 0 else 0
        if d > 0:  # A tile rows d bytes apart in the block itself
            abase, atab, astr = xa + rows[m], dtab.ctypes.data, d
            ndirect += 1
        else:
            for p in range(cnt):
                r = rows[m + p]
                for q in range(rst.shape[0]):
                    k0 = rst[q]
                    nb = 4 * rln[q]
                    src = r + koff[k0]
                    panel[p, 4 * k0:4 * k0 + nb] = xp[src:src + nb]
            for p in range(cnt, ROWS):
                panel[p, :] = 0
            abase, atab, astr = panel.ctypes.data, ptab.ctypes.data, lda
        for b in range(b0, b1):
            nv = nvs[b]
            wb = wa + woff[b]
            if cnt == ROWS:
                _tile(nv, abase, atab, astr, nst, wb, TILE_BYTES * nv,
                      ca + m * ldc + b * NB * 4, ldc)
            else:
                _tile(nv, abase, atab, astr, nst, wb, TILE_BYTES * nv, scratch.ctypes.data,
                      NB * 4)
                for p in range(cnt):
                    for n in range(16 * nv):
                        C[m + p, b * NB + n] = scratch[p, n]
    _release()
    return ndirect


def self_check(run=None) -> str | None:
    """None where ``amx_tiles`` (or ``run`` of its signature) gives the exact sums of
    two small convolutions that take every path of the AMX level (A tiles straight and
    from the panel, 1 and 4 vectors of channels, a K tail, a partial group), against
    int64 sums of the same codes; else what differs, in words. Run once where the
    instructions would run (``_simd.amx_decision``): a CPU that computes them otherwise falls
    back to the vector level instead of giving wrong codes."""
    run = amx_tiles if run is None else run
    rng = np.random.default_rng(20261207)
    for C, H, O in ((64, 18, 80), (20, 7, 16)):  # straight A tiles; panel, K tail, 25 px
        x = rng.integers(0, 256, size=(1, H, H, C)).astype(np.uint8)
        w = rng.integers(-128, 128, size=(O, C, 3, 3))
        Cp = pad4(C)
        xp = np.zeros((1, H, H, Cp), np.uint8)
        xp[..., :C] = x
        Ho = H - 2
        rows = pixel_offsets(1, H, H, Cp, Ho, Ho, 1)
        koff = tap_offsets(3, 3, Cp, H)
        wp, woff, nvs, Np = pack_weights(w, 0)
        got = np.zeros((rows.size, Np), np.int32)
        run(xp.reshape(-1), rows, koff, wp, woff, nvs, got, 0, rows.size, 0, nvs.size)
        win = np.stack([x[0, ky:ky + Ho, kx:kx + Ho, :] for ky in range(3) for kx in range(3)],
                       axis=2).reshape(Ho * Ho, 9 * C).astype(np.int64)
        want = win @ w.transpose(2, 3, 1, 0).reshape(9 * C, O).astype(np.int64)
        bad = np.argwhere(got[:, :O] != want)
        if bad.size:
            i, o = bad[0]
            return (f"{len(bad)} of {want.size} sums differ on a {C}-channel 3x3 conv of "
                    f"{H}x{H} (pixel {i}, channel {o}: {got[i, o]}, exact {want[i, o]})")
    return None
