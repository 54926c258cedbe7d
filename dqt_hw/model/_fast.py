"""Fast bit-exact paths of ``conv2d`` and ``gemm`` (private).

Nothing here changes the contract of docs/arithmetic.md; it only chooses, from bounds on
the codes, cheaper ways of computing the very same integers:

- **exact sums with VNNI** (``_simd``, on CPUs with AVX-512 VNNI, codes spanning at most
  256 values, as every format of up to 8 bits): the codes are moved to x - ox in
  [0, 255] and w - ow in [-128, 127], a hand-written ``vpdpbusd`` micro-kernel sums
  (x - ox)(w - ow) in int32 lanes that cannot overflow (at most 65536 terms of at most
  32640), over a padded NHWC block of bytes, and the side sums restore the codes'
  product (below). ``plan_conv`` picks it; elsewhere the float paths do the same work.
- **exact sums** (overflow ``wrap``, or any mode when no partial sum can leave the W-bit
  range): the products are summed by float32 (or float64) BLAS GEMMs over chunks of K
  small enough that *every* partial sum of a chunk, in whatever order BLAS adds, is an
  integer of magnitude at most 2^24 (2^53), hence exact. When the raw codes are too wide
  for that (8/8 codes at K > 256), both operands are first centred, x = xc + ox and
  w = wc + ow, and side sums restore the product: sum x w = sum xc wc + ow sum xc +
  ox sum w (sum xc: the window sums of the centred input, exact; sum w: per output
  channel). Chunk results are added in int64 and the total is wrapped to W bits (the
  wrapped accumulator is the exact sum modulo 2^W whatever the order). Layout: padded
  NHWC blocks of the input, im2col rows (ky, kx, c) that stay in L2, GEMMs
  (rows, K) x (K, O); with few output pixels (batch 1 at 8x8 and 4x4), one im2col and
  GEMMs (O-block, K) x (K, rows) instead.
- **threads**: the calling thread and a worker pool take units of work from a shared
  counter; each thread runs its units on one core with NumPy's OpenBLAS set to one
  thread for that thread only, so OpenBLAS's own pool never competes with ours.
- **saturate**, when the bounds say a partial sum may reach the limit: a sequential
  direct convolution in the documented order (c, ky, kx) ascending that clamps after
  every addition, in float32 (W <= 24) or float64 (W <= 53) lanes, register-blocked over
  six output pixels by up to 64 output channels (``_simd.sat_tiles``). Every accumulator
  value and every sum before the clamp has magnitude below 2^W, so the float arithmetic
  is exact and equals the integer one.

- **fused layers** (``layer.FusedConv``, used by ``conv_layer`` and the network
  executor): the exact path above with the layer pipeline around it: the activation
  view by a table over the master codes while the padded NHWC block is built, sum_a as
  the window sums of that block, and the requantization of each accumulator in the
  finishing pass (branch-free rounding, so that it vectorises), writing codes in a small
  integer dtype. The constants' bound is proved from the code ranges once per layer.
- **small work** (below ``SERIAL_WORK`` multiply-adds) runs in the calling thread with
  OpenBLAS at one thread: handing it to another thread costs more than it saves, most of
  all on a busy machine.

The callers (``core.conv2d``, ``core._exact``, ``layer.FusedConv``) validate arguments
and decide which path applies; these functions assume valid input.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit, prange

from . import _simd
from ._kernels import O_SATURATE, O_TRAP, round_shift

F32_EXACT = 1 << 24  # integers of magnitude <= 2^24 are exact in float32
F64_EXACT = 1 << 53  # ... and <= 2^53 in float64


# ----------------------------------------------------------------------------- planning


def centre(lo: int, hi: int) -> int:
    """An integer offset that minimises max(|lo - off|, |hi - off|)."""
    return (lo + hi) // 2


def plan_exact(K: int, xlo: int, xhi: int, wlo: int, whi: int):
    """Choose (dtype, ox, ow, nchunks) for exact chunked GEMMs of K terms whose codes lie
    in [xlo, xhi] x [wlo, whi]; None when no float path is cheap enough."""
    A = max(abs(xlo), abs(xhi))
    B = max(abs(wlo), abs(whi))
    if K * A * B <= F32_EXACT:
        return np.float32, 0, 0, 1
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
        return np.float32, ox, ow, 1
    kc32 = F32_EXACT // ab
    if kc32 >= min(K, 128):
        return np.float32, ox, ow, -(-K // kc32)
    kc64 = F64_EXACT // ab
    return np.float64, ox, ow, -(-K // kc64)


def plan_conv(Cg: int, kh: int, kw: int, xlo: int, xhi: int, wlo: int, whi: int):
    """The plan of ``conv_exact`` for a conv of Cg channels per group and a kh x kw
    kernel: ("vnni", ox, ow, 1) where the VNNI kernel applies (``_simd``: codes moved to
    x - ox in [0, 255] and w - ow in [-128, 127], at most ``_simd.MAX_K`` terms), else
    ``plan_exact``."""
    if (_simd.AVAILABLE and xhi - xlo <= 255 and whi - wlo <= 255
            and kh * kw * _simd.pad4(Cg) <= _simd.MAX_K):
        ox = 0 if 0 <= xlo and xhi <= 255 else xlo
        ow = 0 if -128 <= wlo and whi <= 127 else wlo + 128
        return "vnni", ox, ow, 1
    return plan_exact(Cg * kh * kw, xlo, xhi, wlo, whi)


def chunks(K: int, n: int):
    """n balanced [k0, k1) pieces of range(K)."""
    size = -(-K // n)
    return [(k0, min(K, k0 + size)) for k0 in range(0, K, size)]


# ----------------------------------------------------------------------------- kernels


@njit(cache=True, nogil=True)
def im2col_nhwc(xp, n0, iy0, m0, m1, kh, kw, stride, Ho, Wo, out):
    """out[m - m0, (ky * kw + kx) * cg + c] = xp[n - n0, oy * stride + ky - iy0,
    ox * stride + kx, c] for the outputs m = (n, oy, ox) in [m0, m1): each row is kh runs
    of kw * cg contiguous values of the padded NHWC image."""
    cg = xp.shape[3]
    run = kw * cg
    HW = Ho * Wo
    for m in range(m0, m1):
        n = m // HW
        rem = m - n * HW
        oy = rem // Wo
        ox = rem - oy * Wo
        img = xp[n - n0]
        orow = out[m - m0]
        for ky in range(kh):
            src = img[oy * stride + ky - iy0].reshape(-1)
            s0 = ox * stride * cg
            d0 = ky * run
            for t in range(run):
                orow[d0 + t] = src[s0 + t]
    return out


@njit(cache=True, nogil=True)
def window_sums(xp, n0, iy0, m0, m1, kh, kw, stride, Ho, Wo, out):
    """out[m - m0] = the exact sum of the (centred) taps of output m = (n, oy, ox) in
    [m0, m1), from the padded NHWC block xp: channel sums per pixel, then the window."""
    nimg, R, Wp, cg = xp.shape
    plane = np.zeros((nimg, R, Wp), dtype=np.float64)
    for n in range(nimg):
        for r in range(R):
            for ix in range(Wp):
                s = 0.0
                px = xp[n, r, ix]
                for c in range(cg):
                    s += px[c]
                plane[n, r, ix] = s
    HW = Ho * Wo
    for m in range(m0, m1):
        n = m // HW
        rem = m - n * HW
        oy = rem // Wo
        ox = rem - oy * Wo
        s = 0.0
        for ky in range(kh):
            row = plane[n - n0, oy * stride + ky - iy0]
            for kx in range(kw):
                s += row[ox * stride + kx]
        out[m - m0] = np.int64(s)
    return out


@njit(cache=True, nogil=True)
def window_sums_bytes(xp, n0, iy0, m0, m1, kh, kw, stride, Ho, Wo, out):
    """``window_sums`` of a padded NHWC block of bytes (the VNNI path): the channel
    sums in integers, which vectorise."""
    nimg, R, Wp, cg = xp.shape
    plane = np.zeros((nimg, R, Wp), dtype=np.int64)
    for n in range(nimg):
        for r in range(R):
            for ix in range(Wp):
                si = np.int32(0)
                px = xp[n, r, ix]
                for c in range(cg):
                    si += np.int32(px[c])
                plane[n, r, ix] = si
    HW = Ho * Wo
    for m in range(m0, m1):
        n = m // HW
        rem = m - n * HW
        oy = rem // Wo
        ox = rem - oy * Wo
        s = np.int64(0)
        for ky in range(kh):
            row = plane[n - n0, oy * stride + ky - iy0]
            for kx in range(kw):
                s += row[ox * stride + kx]
        out[m - m0] = s
    return out


@njit(cache=True, nogil=True)
def finish_rows(G, m0, o0, sx, ow, corr, W, out):
    """out[n, o0 + o, p] = wrap_W(sum_ch G[ch, j, o] + corr[o] + ow * sx[j]) for the
    outputs m = m0 + j = (n, p) of a block; G (nch, rows, nro) holds exact chunk sums
    (float32: |.| <= 2^24, float64: |.| <= 2^53)."""
    nch, mb, nro = G.shape
    HW = out.shape[2]
    half = np.int64(1) << (W - 1)
    mask = (np.int64(1) << W) - 1
    TJ = 16
    tile = np.empty((nro, TJ), dtype=np.int64)
    acc = np.empty(nro, dtype=np.int64)
    for j0 in range(0, mb, TJ):
        jn = min(TJ, mb - j0)
        for t in range(jn):
            base = ow * sx[j0 + t] if ow != 0 else np.int64(0)
            for o in range(nro):
                acc[o] = corr[o] + base
            for ch in range(nch):
                g = G[ch, j0 + t]
                for o in range(nro):
                    acc[o] += np.int64(g[o])
            for o in range(nro):
                tile[o, t] = ((acc[o] + half) & mask) - half
        ma = m0 + j0
        na = ma // HW
        pa = ma - na * HW
        if pa + jn <= HW:
            for o in range(nro):
                orow = out[na, o0 + o]
                for t in range(jn):
                    orow[pa + t] = tile[o, t]
        else:
            for t in range(jn):
                n = (ma + t) // HW
                p = ma + t - n * HW
                for o in range(nro):
                    out[n, o0 + o, p] = tile[o, t]
    return out


@njit(cache=True, nogil=True)
def finish_cols(GT, o0, sx, ow, corr, W, out):
    """out[n, o0 + o, p] = wrap_W(sum_ch GT[ch, o, m] + corr[o] + ow * sx[m]) for all
    outputs m = (n, p); GT (nch, nro, M) holds exact chunk sums."""
    nch, nro, M = GT.shape
    HW = out.shape[2]
    half = np.int64(1) << (W - 1)
    mask = (np.int64(1) << W) - 1
    acc = np.empty(M, dtype=np.int64)
    for o in range(nro):
        for m in range(M):
            acc[m] = corr[o]
        if ow != 0:
            for m in range(M):
                acc[m] += ow * sx[m]
        for ch in range(nch):
            g = GT[ch, o]
            for m in range(M):
                acc[m] += np.int64(g[m])
        for n in range(M // HW):
            orow = out[n, o0 + o]
            for p in range(HW):
                orow[p] = ((acc[n * HW + p] + half) & mask) - half
    return out


@njit(cache=True, nogil=True)
def same_words(a, b):
    """a == b for two flat arrays of the same length and dtype (vectorised, in blocks)."""
    n = a.shape[0]
    step = 4096
    for s in range(0, n, step):
        e = min(n, s + step)
        aa = a[s:e]
        bb = b[s:e]
        d = a[0] ^ a[0]
        for i in range(e - s):  # from 0 (no negative-index test): vectorises
            d |= aa[i] ^ bb[i]
        if d != 0:
            return False
    return True


@njit(cache=True, parallel=True)
def same_words_par(a, b):
    """``same_words`` in pieces over Numba's threads (large weight arrays: the
    comparison is bound by memory bandwidth, which two cores nearly double here)."""
    n = a.shape[0]
    nb = 16
    step = (n + nb - 1) // nb
    diff = np.zeros(nb, dtype=np.uint8)
    for i in prange(nb):
        s = i * step
        e = min(n, s + step)
        if e > s:
            aa = a[s:e]
            bb = b[s:e]
            d = a[0] ^ a[0]
            for j in range(e - s):
                d |= aa[j] ^ bb[j]
            diff[i] = d != 0
    return not diff.any()


PAR_COMPARE = 1 << 17  # words from which ``same_bytes`` compares in parallel


# ----------------------------------------------------------------------------- drivers


SERIAL_WORK = 1 << 26


class Tuner:
    """Serial or threaded, for one recurring call (a layer, a weight array and shape):
    after a warm-up call it times one call each way and keeps the faster, trying again
    every ``RETUNE`` calls (the load of a shared machine changes). Both ways compute the
    very same integers; only the time differs. On a machine whose second core is busy
    with other work, or is a sibling of the first, a second thread only adds overhead."""

    RETUNE = 64

    def __init__(self):
        self.calls = 0
        self.times = {}
        self.choice = None

    def pick(self) -> bool:
        """True: run serially this call."""
        self.calls += 1
        if self.calls % self.RETUNE == 0:
            self.times.clear()
            self.choice = None
        if self.choice is not None:
            return self.choice
        if self.calls == 1:
            return False  # warm-up (compilation, prepared weights): not timed
        for mode in (True, False):
            if mode not in self.times:
                return mode
        return False  # pragma: no cover

    def record(self, serial: bool, dt: float):
        if self.calls == 1 or self.choice is not None:
            return
        self.times[serial] = dt
        if len(self.times) == 2:
            self.choice = self.times[True] <= self.times[False]


_LOCAL = threading.local()


def _numba_threads(n):
    """Numba's thread count for this thread's next parallel regions: n, or back to the
    count it had before (None)."""
    import numba

    if n is None:
        old = getattr(_LOCAL, "numba_threads", None)
        if old is not None:
            numba.set_num_threads(old)
            _LOCAL.numba_threads = None
        return
    cur = numba.get_num_threads()
    if cur != n:
        _LOCAL.numba_threads = cur
        numba.set_num_threads(n)


class serial_scope:
    """``with serial_scope():`` the fast paths called from this thread run in it alone
    (``_Threads.count()`` is 1 here), for callers that already keep every core busy
    with work of their own (the network executor's batch parts)."""

    def __enter__(self):
        self.old = getattr(_LOCAL, "serial", False)
        _LOCAL.serial = True
        return self

    def __exit__(self, *exc):
        _LOCAL.serial = self.old
        return False


def _tuned(tuner, work, nt, serial_work=None):
    """(serial?, start time) for a call of ``work`` multiply-adds."""
    if work < (SERIAL_WORK if serial_work is None else serial_work) or nt <= 1:
        return True, None
    if tuner is None:
        return False, None
    return tuner.pick(), time.perf_counter()


def _tuned_done(tuner, serial, t0):
    if t0 is not None:
        tuner.record(serial, time.perf_counter() - t0)


class _Threads:
    """Worker threads for the fast paths.

    ``run(unit, n)`` calls ``unit(i)`` for i in range(n): the calling thread and up to
    ``count() - 1`` workers take the next unit from a shared counter until none is left,
    so a thread the OS leaves waiting holds back at most one unit. Each thread sets
    NumPy's OpenBLAS to one thread for itself alone (``openblas_set_num_threads_local``),
    so a unit runs its im2col, GEMMs and finish on one core and no two thread pools
    compete for the cores. Without that OpenBLAS entry point, or with one thread, the
    units run in the calling thread and OpenBLAS keeps its own threading.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.pool = None
        self.n = 0
        self.set_local = _openblas_set_local()

    def _init_worker(self):
        self.set_local(1)

    _cpus = os.cpu_count() or 1

    def count(self) -> int:
        if getattr(_LOCAL, "serial", False):
            return 1  # inside ``serial_scope``: this thread does its work alone
        try:
            import numba

            n = numba.get_num_threads()
        except Exception:  # pragma: no cover
            n = self._cpus
        return max(1, min(n, self._cpus))

    def run(self, unit, n, blas=True, work=None):
        """unit(i) for i in range(n), spread over the threads. ``blas``: the units call
        OpenBLAS (so they need its per-thread setting to share the cores). ``work``: the
        multiply-adds of all units; below ``SERIAL_WORK`` they run in the calling thread
        (handing work to another thread costs more than it saves)."""
        nt = min(self.count(), n)
        if work is not None and work < SERIAL_WORK:
            nt = 1
        if nt <= 1 or (blas and self.set_local is None):
            # OpenBLAS's own threads, waking for each small GEMM, cost far more than
            # they bring here: one thread for this caller while its units run
            local = blas and self.set_local is not None
            if local:
                self.set_local(1)
            try:
                for i in range(n):
                    unit(i)
            finally:
                if local:
                    self.set_local(0)
            return
        counter = iter(range(n))
        take = threading.Lock()
        errors = []

        def loop():
            try:
                while True:
                    with take:
                        i = next(counter, None)
                    if i is None or errors:
                        return
                    unit(i)
            except BaseException as e:  # pragma: no cover - re-raised below
                errors.append(e)

        with self.lock:
            if self.pool is None or self.n < nt - 1:
                if self.pool is not None:
                    self.pool.shutdown(wait=False)
                self.n = nt - 1
                init = self._init_worker if self.set_local is not None else None
                self.pool = ThreadPoolExecutor(self.n, thread_name_prefix="dqt_hw_fast",
                                               initializer=init)
            pool = self.pool
        futs = [pool.submit(loop) for _ in range(nt - 1)]
        local = blas and self.set_local is not None
        if local:
            self.set_local(1)
        try:
            loop()
        finally:
            if local:
                self.set_local(0)  # back to OpenBLAS's global setting
            for f in futs:
                # a worker the OS has not started yet has nothing to finish: drop it
                if not f.cancel():
                    f.result()
        if errors:
            raise errors[0]


def _openblas_set_local():
    """A function setting ``openblas_set_num_threads_local`` (OpenBLAS >= 0.3.27) of every
    OpenBLAS loaded in the process (NumPy's among them) for the calling thread, or None."""
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({ln.split()[-1] for ln in f
                            if "openblas" in os.path.basename(ln.split()[-1]).lower()
                            and ".so" in os.path.basename(ln.split()[-1])})
    except OSError:
        return None
    fns = []
    for p in paths:
        try:
            fn = ctypes.CDLL(p).openblas_set_num_threads_local
        except (OSError, AttributeError):
            continue
        fn.argtypes = [ctypes.c_int]
        fn.restype = ctypes.c_int
        fns.append(fn)
    if not fns:
        return None

    def set_local(n):
        for fn in fns:
            fn(n)

    return set_local


_THREADS = None


def _threads() -> _Threads:
    global _THREADS
    if _THREADS is None:
        np.ones((2, 2)) @ np.ones((2, 2))  # make sure NumPy's BLAS is loaded
        _THREADS = _Threads()
    return _THREADS


class _WeightCache:
    """Prepared float weights, reused while the caller's weight array is unchanged.

    An entry keeps a private copy of the codes it was made from and is used only after
    a byte-for-byte comparison with the array passed in, so a weight array modified in
    place (or a new one at a recycled address) is never served stale data."""

    def __init__(self, size=8):
        self.size = size
        self.entries = OrderedDict()
        self.lock = threading.Lock()

    @staticmethod
    def key(w):
        return (w.__array_interface__["data"][0], w.shape, w.dtype.str)

    def lookup(self, w):
        k = self.key(w)
        with self.lock:
            e = self.entries.get(k)
        if e is None:
            return None
        if not same_bytes(w, e["copy"]):
            with self.lock:
                self.entries.pop(k, None)
            return None
        with self.lock:
            self.entries.move_to_end(k)
        return e

    def insert(self, w, lo, hi):
        e = {"copy": w.copy(), "lo": lo, "hi": hi, "prep": {}}
        with self.lock:
            self.entries[self.key(w)] = e
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)
        return e


def same_bytes(a, b):
    """Byte-for-byte equality of two C-contiguous arrays of the same shape and dtype."""
    a = a.reshape(-1).view(np.uint8)
    b = b.reshape(-1).view(np.uint8)
    n8 = a.shape[0] // 8 * 8
    if n8 and a.ctypes.data % 8 == 0 and b.ctypes.data % 8 == 0:
        a8, b8 = a[:n8].view(np.uint64), b[:n8].view(np.uint64)
        par = n8 // 8 >= PAR_COMPARE and _threads().count() > 1
        if not (same_words_par(a8, b8) if par else same_words(a8, b8)):
            return False
        a, b = a[n8:], b[n8:]
    return a.shape[0] == 0 or same_words(a, b)


_WCACHE = _WeightCache()

CACHE_MIN_SIZE = 1 << 14  # weights smaller than this are cheap to prepare every call


def weight_entry(w):
    """A cache entry for the C-contiguous weight array ``w`` (None for small ones)."""
    if w.size < CACHE_MIN_SIZE:
        return None
    return _WCACHE.lookup(w)


def _prepare(w, groups, dt, ow, transposed, entry):
    """Per group: the centred float weights w - ow, as (K, Og) (``transposed`` False) or
    (Og, K), with k in (ky, kx, c) order (the NHWC im2col order; the sums are exact, so
    the order is free), and sw[o] = sum_k w[o, k] (int64)."""
    key = ("exact", groups, np.dtype(dt).str, ow, transposed)
    if entry is not None and key in entry["prep"]:
        return entry["prep"][key]
    O, Cg, kh, kw = w.shape
    K = Cg * kh * kw
    Og = O // groups
    prep = []
    for g in range(groups):
        wg = w[g * Og : (g + 1) * Og]
        sw = wg.reshape(Og, K).sum(axis=1, dtype=np.int64)
        if transposed:
            m = np.ascontiguousarray(wg.transpose(0, 2, 3, 1).reshape(Og, K), dtype=dt)
        else:
            m = np.ascontiguousarray(wg.transpose(2, 3, 1, 0).reshape(K, Og), dtype=dt)
        if ow:
            m -= dt(ow)
        prep.append((m, sw))
    if entry is not None:
        entry["prep"][key] = prep
    return prep


COLS_BLOCK = 1 << 19  # floats of im2col per unit (2 MiB of float32: about L2)
MIN_UNIT_ROWS = 128  # fewer rows make OpenBLAS repack the weights too often


NO_VIEW = (0, 0, -(1 << 62), 1 << 62)


def conv_exact(x, w, stride, pad, groups, pad_code, W, plan, entry=None, view=None, rq=None,
               out=None, tuner=None):
    """Exact conv sums wrapped to W bits, (N, O, Ho, Wo) int64. ``x`` (NCHW) and ``w``
    (OIHW) are C-contiguous integer arrays; ``plan`` = (dtype, ox, ow, nchunks) comes
    from ``plan_exact`` on their code ranges (pad_code included when pad > 0).

    Fused layer (see "fused layers" below): ``view`` = (d, r, vlo, vhi) views every code
    of x first (``plan`` and ``pad_code`` then refer to the viewed codes), or
    ``view`` = (qlo, qhi, d, r, vlo, vhi) does the same by a table over the master codes
    [qlo, qhi], which x must respect (the caller has checked it); ``rq`` =
    (RK1, RE1, RK2, RE2, C34, SL, SR, r, lo, hi) (per-channel int64 arrays, SL/SR the
    left/right parts max(-S, 0), max(S, 0) of the final shift S, then ints)
    requantizes each wrapped accumulator with its sum_a, writing codes into ``out``
    (N, O, Ho*Wo) of any integer dtype holding [lo, hi]. ``tuner``: a ``Tuner`` choosing
    serial or threaded execution for this recurring call."""
    if plan[0] == "vnni":
        return conv_vnni(x, w, stride, pad, groups, pad_code, W, plan, entry, view, rq,
                         out, tuner)
    dt, ox, ow, nch = plan
    Nb, C, H, Wd = x.shape
    O, Cg, kh, kw = w.shape
    Og = O // groups
    K = Cg * kh * kw
    Ho = (H + 2 * pad - kh) // stride + 1
    Wo = (Wd + 2 * pad - kw) // stride + 1
    Hp, Wp = H + 2 * pad, Wd + 2 * pad
    HW = Ho * Wo
    M = Nb * HW
    if out is None:
        out = np.empty((Nb, O, HW), dtype=np.int64)
    dtype = np.dtype(dt)
    tab = None
    if view is not None and len(view) == 6:
        qlo, qhi = view[0], view[1]
        tab = view_table(qlo, qhi, *view[2:], ox, dtype)
        view = None
    vd, vr, vlo, vhi = NO_VIEW if view is None else view
    if rq is not None:
        RK1, RE1, RK2, RE2, C34, SL, SR, rr, rlo, rhi = rq
        ksa = K * ox  # sum_a = (sum of the centred taps) + K * ox
    pieces = chunks(K, nch)
    off = dtype.type(ox)
    padv = dtype.type(pad_code - ox)
    th = _threads()
    nt = th.count()
    none = np.zeros(1, dtype=np.int64)
    serial, t0 = _tuned(tuner, M * K * O, nt)
    work = 0 if serial else None  # th.run: 0 runs in this thread, None spreads

    if M < MIN_UNIT_ROWS * nt and Og >= 16 * nt:
        # few output pixels: im2col once, then units of output channels, each a GEMM
        # (o, K) x (K, M) (else every thread would stream all the weights)
        prep = _prepare(w, groups, dt, ow, True, entry)
        for g in range(groups):
            wmT, sw = prep[g]
            xp = np.empty((Nb, Hp, Wp, Cg), dtype=dtype)
            if tab is not None:
                to_nhwc_table(x, 0, Nb, 0, Hp, g * Cg, Cg, pad, padv, tab, qlo, xp)
            else:
                to_nhwc_view(x, 0, Nb, 0, Hp, g * Cg, Cg, pad, padv, off, vd, vr, vlo, vhi,
                             xp)
            cols = np.empty((M, K), dtype=dtype)
            im2col_nhwc(xp, 0, 0, 0, M, kh, kw, stride, Ho, Wo, cols)
            sx = none
            if ow or rq is not None:
                sx = window_sums(xp, 0, 0, 0, M, kh, kw, stride, Ho, Wo,
                                 np.empty(M, dtype=np.int64))
            corr = ox * sw
            nu = 1 if serial else min(4 * nt, Og // 8)
            step = -(-Og // nu)
            bounds = [(o0, min(Og, o0 + step)) for o0 in range(0, Og, step)]

            def unit(i, wmT=wmT, cols=cols, sx=sx, corr=corr, g=g):
                o0, o1 = bounds[i]
                GT = np.empty((len(pieces), o1 - o0, M), dtype=dtype)
                for c, (k0, k1) in enumerate(pieces):
                    np.matmul(wmT[o0:o1, k0:k1], cols[:, k0:k1].T, out=GT[c])
                if rq is None:
                    finish_cols(GT, g * Og + o0, sx, ow, corr[o0:o1], W, out)
                else:
                    finish_cols_rq(GT, g * Og + o0, sx, ow, corr[o0:o1], W, ksa, RK1, RE1,
                                   RK2, RE2, C34, SL, SR, rr, rlo, rhi, out)

            th.run(unit, len(bounds), work=work)
        _tuned_done(tuner, serial, t0)
        return out.reshape(Nb, O, Ho, Wo)

    # units of output pixels: whole images, or bands of output rows of one image, each
    # GEMMs (rows, K) x (K, Og); rows per unit: an im2col block that stays in L2, and
    # enough units to share between the threads
    prep = _prepare(w, groups, dt, ow, False, entry)
    # at least 8 units per thread where the rows allow: a thread the OS leaves waiting
    # (a busy machine) then holds back a small share of the work
    mb = min(max(MIN_UNIT_ROWS, COLS_BLOCK // K), max(MIN_UNIT_ROWS, -(-M // (8 * nt))))
    if M * K * O < SERIAL_WORK:
        # small work, one thread does it all (``_Threads.run``): fewer, larger units
        mb = max(mb, min(M, 4 * COLS_BLOCK // K))
    if HW <= mb:
        per = max(1, mb // HW)
        units = [(n0, min(Nb, n0 + per), 0, Ho) for n0 in range(0, Nb, per)]
    else:
        bands = -(-HW // mb)
        rows = -(-Ho // bands)
        units = [(n, n + 1, y0, min(Ho, y0 + rows)) for n in range(Nb)
                 for y0 in range(0, Ho, rows)]

    def unit(i):
        n0, n1, y0, y1 = units[i]
        iy0 = y0 * stride
        iy1 = (y1 - 1) * stride + kh
        m0 = n0 * HW + y0 * Wo
        m1 = (n1 - 1) * HW + y1 * Wo
        xp = np.empty((n1 - n0, iy1 - iy0, Wp, Cg), dtype=dtype)
        cols = np.empty((m1 - m0, K), dtype=dtype)
        G = np.empty((len(pieces), m1 - m0, Og), dtype=dtype)
        sums = ow or rq is not None
        sx = np.empty(m1 - m0, dtype=np.int64) if sums else none
        for g in range(groups):
            wm, sw = prep[g]
            if tab is not None:
                to_nhwc_table(x, n0, n1, iy0, iy1, g * Cg, Cg, pad, padv, tab, qlo, xp)
            else:
                to_nhwc_view(x, n0, n1, iy0, iy1, g * Cg, Cg, pad, padv, off, vd, vr, vlo,
                             vhi, xp)
            im2col_nhwc(xp, n0, iy0, m0, m1, kh, kw, stride, Ho, Wo, cols)
            if sums:
                window_sums(xp, n0, iy0, m0, m1, kh, kw, stride, Ho, Wo, sx)
            for c, (k0, k1) in enumerate(pieces):
                np.matmul(cols[:, k0:k1], wm[k0:k1], out=G[c])
            if rq is None:
                finish_rows(G, m0, g * Og, sx, ow, ox * sw, W, out)
            else:
                finish_rows_rq(G, m0, g * Og, sx, ow, ox * sw, W, ksa, RK1, RE1, RK2, RE2,
                               C34, SL, SR, rr, rlo, rhi, out)

    th.run(unit, len(units), work=work)
    _tuned_done(tuner, serial, t0)
    return out.reshape(Nb, O, Ho, Wo)


@njit(cache=True, inline="always")
def _channels(c0, n, a1, a2, a3, a4, a5, a6, a7):
    """The per-channel constant arrays' slices [c0, c0 + n) (a finishing pass's
    channels)."""
    return (a1[c0:c0 + n], a2[c0:c0 + n], a3[c0:c0 + n], a4[c0:c0 + n], a5[c0:c0 + n],
            a6[c0:c0 + n], a7[c0:c0 + n])


@njit(cache=True, nogil=True)
def finish_tiles(Cacc, cm0, m0, m1, n0, n1, og, sx, ow, corr, W, out):
    """out[n, og + o, p] = wrap_W(Cacc[m - cm0, o] + corr[o] + ow * sx[m]) for the
    outputs m = (n, p) in [m0, m1) and the columns o in [n0, n1) of the int32 sums of the
    VNNI kernel (exact, so the int64 total is the exact sum); Cacc's row m - cm0 holds
    output m."""
    HW = out.shape[2]
    half = np.int64(1) << (W - 1)
    mask = (np.int64(1) << W) - 1
    nro = n1 - n0
    TJ = 16
    tile = np.empty((TJ, nro), dtype=np.int64)
    cr = corr[n0:n1]
    for j0 in range(m0, m1, TJ):
        jn = min(TJ, m1 - j0)
        for t in range(jn):
            base = ow * sx[j0 + t] if ow != 0 else np.int64(0)
            src = Cacc[j0 + t - cm0, n0:n1]
            tr = tile[t]
            for o in range(nro):
                a = np.int64(src[o]) + cr[o] + base
                tr[o] = ((a + half) & mask) - half
        _put_tile(tile, j0, jn, og + n0, nro, out)
    return out


@njit(cache=True, nogil=True)
def finish_tiles_rq(Cacc, cm0, m0, m1, n0, n1, og, sx, ow, corr, W, ksa, RK1, RE1, RK2, RE2,
                    C34, SL, SR, r, lo, hi, out):
    """As ``finish_tiles``, then requantized (see ``finish_rows_rq``; the per-channel
    arrays are indexed by the output channel og + o)."""
    HW = out.shape[2]
    half = np.int64(1) << (W - 1)
    mask = (np.int64(1) << W) - 1
    nro = n1 - n0
    c0 = og + n0
    TJ = 16
    tile = np.empty((TJ, nro), dtype=np.int64)
    cr = corr[n0:n1]
    k1, e1, k2, e2, c34, sl, sr = _channels(c0, nro, RK1, RE1, RK2, RE2, C34, SL, SR)
    for j0 in range(m0, m1, TJ):
        jn = min(TJ, m1 - j0)
        for t in range(jn):
            sxj = sx[j0 + t]
            base = ow * sxj
            sa = sxj + ksa
            src = Cacc[j0 + t - cm0, n0:n1]
            tr = tile[t]
            for o in range(nro):
                a = np.int64(src[o]) + cr[o] + base
                a = ((a + half) & mask) - half
                tr[o] = _requant1(a, sa, k1[o], e1[o], k2[o], e2[o], c34[o], sl[o], sr[o],
                                  r, lo, hi)
        _put_tile(tile, j0, jn, c0, nro, out)
    return out


@njit(cache=True, nogil=True, inline="always")
def _put_tile(tile, ma, jn, c0, nro, out):
    """out[n, c0 + o, p] = tile[t, o] for the outputs ma + t = (n, p), t < jn."""
    HW = out.shape[2]
    na = ma // HW
    pa = ma - na * HW
    if pa + jn <= HW:
        for o in range(nro):
            orow = out[na, c0 + o]
            for t in range(jn):
                orow[pa + t] = tile[t, o]
    else:
        for t in range(jn):
            n = (ma + t) // HW
            p = ma + t - n * HW
            for o in range(nro):
                out[n, c0 + o, p] = tile[t, o]


@njit(cache=True, nogil=True)
def finish_tiles_rq_nhwc(Cacc, cm0, m0, m1, n0, n1, og, sx, ow, corr, W, ksa, RK1, RE1, RK2,
                         RE2, C34, SL, SR, r, lo, hi, out):
    """``finish_tiles_rq`` writing channels-last: out (M, O)[m, og + o]. Unsigned
    indices (no wraparound test) and no per-row views: the loop over the channels
    vectorises even for a few channels."""
    half = np.int64(1) << (W - 1)
    mask = (np.int64(1) << W) - 1
    nro = n1 - n0
    c0 = og + n0
    cr = corr[n0:n1]
    k1, e1, k2, e2, c34, sl, sr = _channels(c0, nro, RK1, RE1, RK2, RE2, C34, SL, SR)
    Cs = Cacc[m0 - cm0:m1 - cm0]
    Os = out[m0:m1]
    sxs = sx[m0:m1]
    un0 = np.uintp(n0)
    uc0 = np.uintp(c0)
    for i in range(m1 - m0):
        sxj = sxs[i]
        base = ow * sxj
        sa = sxj + ksa
        for o in range(nro):
            uo = np.uintp(o)
            a = np.int64(Cs[i, un0 + uo]) + cr[o] + base
            a = ((a + half) & mask) - half
            Os[i, uc0 + uo] = _requant1(a, sa, k1[o], e1[o], k2[o], e2[o], c34[o], sl[o],
                                        sr[o], r, lo, hi)
    return out


@njit(cache=True, nogil=True)
def finish_tiles_rq_lin(Cacc, cm0, m0, m1, n0, n1, og, sx, ow, corr, ksa, K1i, RE1, K2i,
                        RE2, C34, SR, HH, r, lo, hi, out):
    """``finish_tiles_rq_nhwc`` where the caller has proved (``FusedConv``) that no sum
    can leave the accumulator (so the wrap is the identity and every accumulator fits
    int32), that K1, K2 and sum_a fit int32 (32 x 32 -> 64-bit products) and that every
    shift S is a right shift of at least one bit, so that each rounding is one shift of
    the sum plus a correction: floor v >> s; half_up (v + h) >> s; half_even
    (v + h - 1 + ((v >> s) & 1)) >> s; half_away (v + h - [v < 0]) >> s, h = 2^(s-1)
    (``HH``). The same codes as the general finish, in fewer operations."""
    nro = n1 - n0
    c0 = og + n0
    cr = corr[n0:n1]
    k1, e1, k2, e2, c34, sr, hh = _channels(c0, nro, K1i, RE1, K2i, RE2, C34, SR, HH)
    Cs = Cacc[m0 - cm0:m1 - cm0]
    Os = out[m0:m1]
    sxs = sx[m0:m1]
    un0 = np.uintp(n0)
    uc0 = np.uintp(c0)
    for i in range(m1 - m0):
        sxj = sxs[i]
        base = ow * sxj
        sa = np.int64(np.int32(sxj + ksa))
        for o in range(nro):
            uo = np.uintp(o)
            a = np.int64(np.int32(np.int64(Cs[i, un0 + uo]) + cr[o] + base))
            v = ((a * np.int64(k1[o])) << e1[o]) + ((sa * np.int64(k2[o])) << e2[o]) + c34[o]
            sh = sr[o]
            h = hh[o]
            if r == 0:
                q = v >> sh
            elif r == 1:
                q = (v + h) >> sh
            elif r == 2:
                q = (v + h - 1 + ((v >> sh) & 1)) >> sh
            else:
                q = (v + h - np.int64(v < 0)) >> sh
            Os[i, uc0 + uo] = min(max(q, lo), hi)
    return out


@njit(cache=True, nogil=True)
def finish_tiles_rq_aff(Cacc, cm0, m0, m1, n0, n1, og, sx, K1, E1, Q, R, SR, HH, r, lo, hi,
                        out):
    """``finish_tiles_rq_lin`` with the sum in its affine form v = P C + Q sx + R, P C
    taken as (K1 C) << E1 (see ``FusedConv._affine``, which proves it the same integer
    and bounded)."""
    nro = n1 - n0
    c0 = og + n0
    p = K1[c0:c0 + nro]
    e = E1[c0:c0 + nro]
    q = Q[c0:c0 + nro]
    rr = R[c0:c0 + nro]
    sr = SR[c0:c0 + nro]
    hh = HH[c0:c0 + nro]
    Cs = Cacc[m0 - cm0:m1 - cm0]
    Os = out[m0:m1]
    sxs = sx[m0:m1]
    un0 = np.uintp(n0)
    uc0 = np.uintp(c0)
    for i in range(m1 - m0):
        s_ = sxs[i]
        for o in range(nro):
            uo = np.uintp(o)
            v = ((np.int64(Cs[i, un0 + uo]) * np.int64(p[o])) << e[o]) + s_ * q[o] + rr[o]
            sh = sr[o]
            h = hh[o]
            if r == 0:
                qq = v >> sh
            elif r == 1:
                qq = (v + h) >> sh
            elif r == 2:
                qq = (v + h - 1 + ((v >> sh) & 1)) >> sh
            else:
                qq = (v + h - np.int64(v < 0)) >> sh
            Os[i, uc0 + uo] = min(max(qq, lo), hi)
    return out


@njit(cache=True, nogil=True, inline="always")
def _view_row(src, dst, nb, ident, simple, tab, hv, d, r, vlo, vhi, off):
    """dst[j] = the view of src[j], j < nb (one loop from 0: it vectorises)."""
    if ident:
        for j in range(nb):
            dst[j] = src[j]
    elif simple:
        for j in range(nb):
            dst[j] = min(max((np.int64(src[j]) + hv) >> d, vlo), vhi)
    elif tab.shape[0] > 0:
        for j in range(nb):
            dst[j] = tab[src[j]]
    else:
        for j in range(nb):
            dst[j] = _view1(src[j], d, r, vlo, vhi) - off


@njit(cache=True, nogil=True, inline="always")
def _fill(a, s, e, v):
    sub = a[s:e]  # indices from 0: the loop vectorises
    for j in range(sub.shape[0]):
        sub[j] = v


@njit(cache=True, nogil=True)
def nhwc_to_padded_view(xf, H, Wd, C, n0, n1, c0, cg, pad, padv, off, d, r, vlo, vhi, tab,
                        ident, use64, xpf, Hp, Wp, Cp, planef):
    """Channels-last codes x (N, H, W, C), given flat as xf = x.reshape(-1), images
    [n0, n1), channels [c0, c0 + cg), into the padded NHWC block of bytes xpf (flat:
    (n1 - n0, Hp = H + 2 pad, Wp = W + 2 pad, Cp >= cg); border ``padv``; channels past
    cg hold whatever they held, or ``padv`` on the border: their weights are zero), each
    code q viewed as clamp(round_shift(q, d, r), vlo, vhi) - off (branch-free), or as
    tab[q] where ``tab`` is not empty (uint8 codes, the table of the view over 0..255,
    moved by -off; ``ident``: that table is the identity, a byte copy; ``use64``: AVX-512
    may be used: the floor / half_up view of 8-bit codes by ``_simd.view64`` and the
    pixel sums by ``_simd.sad64``); planef (flat (n1 - n0, Hp, Wp)) receives the sum of
    each pixel's cg bytes. Flat indices from 0, so the loops vectorise; where the
    channels are not padded (cg = C = Cp) a row's view is one loop over its bytes."""
    pv = np.int64(padv) * cg
    pb8 = np.uint8(padv)
    flat = cg == C and Cp == C
    g8 = C // 8
    sad = flat and use64 and C % 8 == 0
    simple = (not ident and off == 0 and (r == 0 or r == 1) and 0 <= d < 63
              and tab.shape[0] > 0)
    hv = ((np.int64(1) << d) >> 1) if r == 1 else np.int64(0)
    # the byte kernel on whole rows: the identity view, or floor / half_up of 8-bit codes
    v64 = use64 and (ident or (simple and 1 <= d <= 7 and vlo == 0 and vhi == (255 >> d)))
    dv = d if not ident else 0
    if ident:
        hv = np.int64(0)
    img = Hp * Wp * Cp
    rowlen = Wp * Cp
    # scratch: the sums of 8 bytes of a padded image
    s8 = np.empty(img // 8 + 8 if sad else 1, dtype=np.int64)
    xpa = xpf.ctypes.data
    xfa = xf.ctypes.data
    sa8 = s8.ctypes.data
    HWp = Hp * Wp
    for n in range(n0, n1):
        ib = (n - n0) * img
        pb = (n - n0) * HWp
        if sad:
            # the padded image: all of it at the border code, then each row's view
            # (64 bytes at a time by AVX-512 where it is the identity or a floor /
            # half_up view of 8-bit codes); then the sums of its bytes 8 at a time by
            # psadbw over the whole image (border pixels included: cg = Cp) and per
            # pixel the sum of its C / 8 groups
            _fill(xpf, ib, ib + img, pb8)
            nb = Wd * C
            for r_ in range(pad, H + pad):
                sb = (n * H + r_ - pad) * nb
                db = ib + r_ * rowlen + pad * Cp
                c = 0
                if v64:
                    while c + 64 <= nb:
                        _simd.view64(xfa + sb + c, xpa + db + c, hv, dv)
                        c += 64
                if c < nb:
                    _view_row(xf[sb + c:sb + nb], xpf[db + c:db + nb], nb - c, ident, simple,
                              tab, hv, d, r, vlo, vhi, off)
            j = 0
            while j + 64 <= img:
                _simd.sad64(xpa + ib + j, sa8 + j)
                j += 64
            im = xpf[ib:ib + img]
            for g in range(j // 8, img // 8):
                t = np.int64(0)
                for c in range(8):
                    t += np.int64(im[8 * g + c])
                s8[g] = t
            pl = planef[pb:pb + HWp]
            sg = s8[:g8 * HWp].reshape(HWp, g8)
            if g8 == 1:
                for ix in range(HWp):
                    pl[ix] = sg[ix, 0]
            elif g8 == 2:
                for ix in range(HWp):
                    pl[ix] = sg[ix, 0] + sg[ix, 1]
            else:
                for ix in range(HWp):
                    t = sg[ix, 0]
                    for g in range(1, g8):
                        t += sg[ix, g]
                    pl[ix] = t
            continue
        if cg == 1 and C == 1 and tab.shape[0] > 0:
            # one channel (an image input): the border everywhere, then each pixel's
            # byte by the table and its sum (the byte itself)
            _fill(xpf, ib, ib + img, pb8)
            _fill(planef, pb, pb + HWp, pv)
            for r_ in range(pad, H + pad):
                src = xf[(n * H + r_ - pad) * Wd:(n * H + r_ - pad + 1) * Wd]
                dst = xpf[ib + (r_ * Wp + pad) * Cp:ib + (r_ * Wp + pad + Wd) * Cp]
                pl = planef[pb + r_ * Wp + pad:pb + r_ * Wp + pad + Wd]
                for ix in range(Wd):
                    v = tab[src[ix]]
                    dst[np.uintp(ix) * np.uintp(Cp)] = v
                    pl[ix] = v
            continue
        for r_ in range(Hp):
            rb = ib + r_ * rowlen
            prb = pb + r_ * Wp
            if r_ < pad or r_ >= H + pad:
                _fill(xpf, rb, rb + rowlen, pb8)
                _fill(planef, prb, prb + Wp, pv)
                continue
            if pad:
                _fill(xpf, rb, rb + pad * Cp, pb8)
                _fill(xpf, rb + (Wd + pad) * Cp, rb + rowlen, pb8)
                _fill(planef, prb, prb + pad, pv)
                _fill(planef, prb + Wd + pad, prb + Wp, pv)
            sb = (n * H + r_ - pad) * Wd * C + c0
            db = rb + pad * Cp
            pp = prb + pad
            if flat:
                _view_row(xf[sb:sb + Wd * C], xpf[db:db + Wd * C], Wd * C, ident, simple,
                          tab, hv, d, r, vlo, vhi, off)
                for ix in range(Wd):
                    px = xpf[db + ix * C:db + (ix + 1) * C]
                    t = np.int32(0)
                    for c in range(C):
                        t += np.int32(px[c])
                    planef[pp + ix] = t
                continue
            for ix in range(Wd):
                s0 = sb + ix * C
                d0 = db + ix * Cp
                t = np.int64(0)
                for c in range(cg):
                    q = xf[s0 + c]
                    if ident:
                        v = np.int64(q)
                    elif simple:
                        v = min(max((np.int64(q) + hv) >> d, vlo), vhi)
                    elif tab.shape[0] > 0:
                        v = np.int64(tab[q])
                    else:
                        v = _view1(q, d, r, vlo, vhi) - off
                    xpf[d0 + c] = v
                    t += v
                planef[pp + ix] = t
    return xpf


@njit(cache=True, nogil=True)
def window_sums_plane(plane, n0, n1, kh, kw, stride, Ho, Wo, out):
    """out[(n - n0) * Ho * Wo + oy * Wo + ox] = the sum of the kh x kw window of output
    (n, oy, ox) over the pixel sums ``plane`` (images n0 <= n < n1 at plane[n - n0],
    C-contiguous). On the flat plane of all the images: the column sums over ky, then
    the sums over kx, each one loop from 0 over the whole block (entries that straddle
    two rows or images are computed and never read), then each output's entry."""
    nimg = n1 - n0
    Hp = plane.shape[1]
    Wp = plane.shape[2]
    HpWp = Hp * Wp
    pf = plane.reshape(-1)
    L = nimg * HpWp
    if kh == 1 and kw == 1:
        u = pf
    else:
        nc = L - (kh - 1) * Wp
        col = np.empty(nc, dtype=np.int64)
        p0 = pf[0:nc]
        for j in range(nc):
            col[j] = p0[j]
        for ky in range(1, kh):
            pk = pf[ky * Wp:ky * Wp + nc]
            for j in range(nc):
                col[j] += pk[j]
        nu = nc - (kw - 1)
        u = np.empty(nu, dtype=np.int64)
        for j in range(nu):
            u[j] = col[j]
        for kx in range(1, kw):
            ck = col[kx:kx + nu]
            for j in range(nu):
                u[j] += ck[j]
    for n in range(nimg):
        for oy in range(Ho):
            src = u[n * HpWp + oy * stride * Wp:]
            o = out[(n * Ho + oy) * Wo:(n * Ho + oy + 1) * Wo]
            for ox in range(Wo):
                o[ox] = src[ox * stride]
    return out


@njit(cache=True, nogil=True)
def fused_images(xin, H, Wd, C, a, b, pad, padv, off, d, r, vlo, vhi, btab, ident, use64, kh,
                 kw, stride, Ho, Wo, Cp, pix, koff, wp, woff, nvs, Np, O, mb, ow, corr, ksa,
                 K1i, RE1, K2i, RE2, C34, SR, HH, aff, Q, R, rr, lo, hi, out2):
    """Images [a, b) of a fused channels-last layer (one group, the short finish): xin
    the layer's input codes flat (N, H, W, C), out2 ((b - a) Ho Wo, O) their output
    rows. The padded block of the images and its pixel sums, their window sums, then
    per block of ``mb`` output rows the VNNI sums into a scratch tile (each row's window
    corner from ``pix``, the offsets within one padded image) and the requantizing
    finish (``finish_tiles_rq_aff`` where ``aff``, else ``finish_tiles_rq_lin``)."""
    nimg = b - a
    Hp = H + 2 * pad
    Wp = Wd + 2 * pad
    HW = Ho * Wo
    M = nimg * HW
    imgb = Hp * Wp * Cp
    xp = np.empty(nimg * imgb, dtype=np.uint8)
    plane = np.empty(nimg * Hp * Wp, dtype=np.int64)
    nhwc_to_padded_view(xin[a * H * Wd * C:b * H * Wd * C], H, Wd, C, 0, nimg, 0, C, pad,
                        padv, off, d, r, vlo, vhi, btab, ident, use64, xp, Hp, Wp, Cp, plane)
    sx = np.empty(M, dtype=np.int64)
    window_sums_plane(plane.reshape(nimg, Hp, Wp), 0, nimg, kh, kw, stride, Ho, Wo, sx)
    nblk = nvs.shape[0]
    mr = MR_
    for m0 in range(0, M, mb):
        m1 = min(M, m0 + mb)
        cnt = m1 - m0
        cntp = (cnt + mr - 1) // mr * mr
        rl = np.empty(cntp, dtype=np.int64)
        # the window corner of each output pixel (image n, pixel q): no division per row
        n = m0 // HW
        q = m0 - n * HW
        for i in range(cnt):
            rl[i] = n * imgb + pix[q]
            q += 1
            if q == HW:
                q = 0
                n += 1
        for i in range(cnt, cntp):
            rl[i] = rl[cnt - 1]
        Cacc = np.empty((cntp, Np), dtype=np.int32)
        _simd.gemm_tiles(xp, rl, koff, wp, woff, nvs, Cacc, 0, cntp, 0, nblk)
        if aff:
            finish_tiles_rq_aff(Cacc, m0, m0, m1, 0, O, 0, sx, K1i, RE1, Q, R, SR, HH, rr, lo,
                                hi, out2)
        else:
            finish_tiles_rq_lin(Cacc, m0, m0, m1, 0, O, 0, sx, ow, corr, ksa, K1i, RE1, K2i,
                                RE2, C34, SR, HH, rr, lo, hi, out2)
    return out2


@njit(cache=True, parallel=True)
def layer_nhwc_lin(x, pad, padv, off, d, r, vlo, vhi, btab, ident, use64, kh, kw, stride, Ho,
                   Wo, Cp, pix, koff, wp, woff, nvs, Np, Og, mb, per, ow, corr, ksa, K1i, RE1,
                   K2i, RE2, C34, SR, HH, aff, Q, R, rr, lo, hi, out2):
    """One fused channels-last layer (one group, the short finish) in one call: chunks
    of ``per`` images over Numba's threads, each ``fused_images``, writing codes into
    out2 (M, O). The same steps as the Python driver ``conv_vnni`` (which takes every
    other case), without its per-step call overhead: what a small network's many small
    layers need."""
    Nb, H, Wd, C = x.shape
    xin = x.reshape(-1)
    HW = Ho * Wo
    nch = (Nb + per - 1) // per
    for ci in prange(nch):
        n0 = ci * per
        n1 = min(Nb, n0 + per)
        fused_images(xin, H, Wd, C, n0, n1, pad, padv, off, d, r, vlo, vhi, btab, ident,
                     use64, kh, kw, stride, Ho, Wo, Cp, pix, koff, wp, woff, nvs, Np, Og, mb,
                     ow, corr, ksa, K1i, RE1, K2i, RE2, C34, SR, HH, aff, Q, R, rr, lo, hi,
                     out2[n0 * HW:n1 * HW])
    return out2


LAYER_PAR_WORK = 1 << 20  # multiply-adds from which a layer's images go parallel
PAR_BLOCKS_WORK = 1 << 23  # multiply-adds from which one image's blocks go parallel
VNNI_BLOCK = 1 << 19  # bytes of input windows per GEMM block (about a quarter of L2)
MR_ = _simd.MR
_NO_TABLE = np.zeros(0, dtype=np.uint8)
_NO_AFFINE = (np.zeros(0, np.int64), np.zeros(0, np.int64))  # Q, R of no affine finish


def block_rows(Cp, kh, kw):
    """Output pixels per GEMM block of the integer kernel: their input windows (Cp kh kw
    bytes each) about ``VNNI_BLOCK`` bytes, a multiple of the micro-tile's MR rows."""
    mr = _simd.MR
    return max(mr, (VNNI_BLOCK // max(1, Cp * kh * kw)) // mr * mr)


def conv_vnni(x, w, stride, pad, groups, pad_code, W, plan, entry=None, view=None, rq=None,
              out=None, tuner=None, in_nhwc=False, out_nhwc=False, lin=None):
    """``conv_exact`` by the VNNI kernel (``_simd``; ``plan`` = ("vnni", ox, ow, 1) from
    ``plan_conv``): the padded NHWC block of x - ox as bytes, int32 sums of
    (x - ox)(w - ow) per output, then the same finishing passes as the float paths.

    Channels-last (fused layers with a view table and ``rq`` only): ``in_nhwc``, x is
    (N, H, W, C); ``out_nhwc``, ``out`` (N, Ho * Wo, O) receives the codes channels-last.
    A network then keeps its activations in the layout the kernel reads and writes.
    ``lin`` = (K1 int32, K2 int32, HH) selects ``finish_tiles_rq_lin`` (its conditions
    proved by the caller)."""
    _, ox, ow, _ = plan
    if in_nhwc:
        Nb, H, Wd, C = x.shape
    else:
        Nb, C, H, Wd = x.shape
    O, Cg, kh, kw = w.shape
    Og = O // groups
    K = Cg * kh * kw
    Ho = (H + 2 * pad - kh) // stride + 1
    Wo = (Wd + 2 * pad - kw) // stride + 1
    Hp, Wp = H + 2 * pad, Wd + 2 * pad
    HW = Ho * Wo
    M = Nb * HW
    Cp = _simd.pad4(Cg)
    if out is None:
        out = np.empty((Nb, O, HW), dtype=np.int64)
    out2 = out.reshape(M, O) if out_nhwc else None
    tab = None
    btab = _NO_TABLE
    ident = False
    if view is not None and len(view) == 6:
        qlo = view[0]
        tkey = ("vnni-view", view, ox, in_nhwc, x.dtype == np.uint8)
        hit = entry["prep"].get(tkey) if entry is not None else None
        if hit is None:
            if not in_nhwc:
                hit = (view_table(view[0], view[1], *view[2:], ox, np.uint8), _NO_TABLE,
                       False)
            elif x.dtype == np.uint8 and view[0] == 0 and view[1] == 255:
                bt = view_table(0, 255, *view[2:], ox, np.uint8)
                hit = (None, bt, bool((bt == np.arange(256)).all()))
            else:
                hit = (None, _NO_TABLE, False)
            if entry is not None:
                entry["prep"][tkey] = hit
        tab, btab, ident = hit
        view = view[2:]
    vd, vr, vlo, vhi = NO_VIEW if view is None else view
    if rq is not None:
        RK1, RE1, RK2, RE2, C34, SL, SR, rr, rlo, rhi = rq
        ksa = K * ox
    padv = np.uint8((pad_code - ox) & 0xFF)  # in [0, 255] where pad > 0 (else unused)
    key = ("vnni", groups, ow)
    packs = entry["prep"].get(key) if entry is not None else None
    if packs is None:
        packs = []
        for g in range(groups):
            wg = w[g * Og:(g + 1) * Og]
            packs.append(_simd.pack_weights(wg, ow)
                         + (wg.reshape(Og, K).sum(axis=1, dtype=np.int64),))
        if entry is not None:
            entry["prep"][key] = packs
    gkey = ("vnni-geometry", Nb, Hp, Wp, Cp, kh, kw, stride)
    geom = entry["prep"].get(gkey) if entry is not None else None
    if geom is None:
        geom = (_simd.tap_offsets(kh, kw, Cp, Wp),
                _simd.pixel_offsets(Nb, Hp, Wp, Cp, Ho, Wo, stride))
        if entry is not None:
            entry["prep"][gkey] = geom
    koff, rows = geom
    th = _threads()
    nt = th.count()
    none = np.zeros(1, dtype=np.int64)
    serial, t0 = _tuned(tuner, M * K * O, nt)
    mr = _simd.MR
    # rows of output pixels per GEMM block: input windows that stay in L2
    mb = block_rows(Cp, kh, kw)
    sums = bool(ow) or rq is not None
    if (in_nhwc and out_nhwc and lin is not None and groups == 1 and Nb >= 2
            and btab.shape[0] == 256):
        # the whole layer in one call, its images over Numba's threads (``serial``:
        # the calling thread's Numba thread count, 1 inside ``serial_scope``)
        wp, woff, nvs, Np, sw = packs[0]
        nthr = nt if M * K * O >= LAYER_PAR_WORK else 1
        per = -(-Nb // (4 * nthr)) if nthr > 1 else Nb
        pix = rows[:HW]  # the offsets within the first image are those of every image
        _numba_threads(nthr)
        try:
            layer_nhwc_lin(x, pad, padv, ox, vd, vr, vlo, vhi, btab, ident, _simd.BYTES64,
                           kh, kw, stride, Ho, Wo, Cp, pix, koff, wp, woff, nvs, Np, Og, mb,
                           per, ow, ox * sw, ksa, lin[0], RE1, lin[1], RE2, C34, SR, lin[2],
                           len(lin) == 5, *(lin[3:] if len(lin) == 5 else _NO_AFFINE), rr,
                           rlo, rhi, out2)
        finally:
            _numba_threads(None)
        _tuned_done(tuner, serial, t0)
        return out.reshape(Nb, Ho, Wo, O)
    # serial work of one image on several threads: the weight blocks over Numba's pool
    par_blocks = serial and Nb == 1 and nt > 1 and M * K * O >= PAR_BLOCKS_WORK
    for g in range(groups):
        wp, woff, nvs, Np, sw = packs[g]
        nblk = len(nvs)
        corr = ox * sw
        xp = (np.zeros if Cp != Cg else np.empty)((Nb, Hp, Wp, Cp), dtype=np.uint8)
        xflat = xp.reshape(-1)
        sx = np.empty(M, dtype=np.int64) if sums else none

        def prep(n0, n1, g=g, xp=xp, sx=sx):
            """The padded NHWC block and the window sums of images [n0, n1)."""
            xb = xp[n0:n1]
            if in_nhwc:
                plane = np.empty((n1 - n0, Hp, Wp), dtype=np.int64)
                nhwc_to_padded_view(x.reshape(-1), H, Wd, C, n0, n1, g * Cg, Cg, pad, padv,
                                    ox, vd, vr, vlo, vhi, btab, ident, _simd.BYTES64,
                                    xb.reshape(-1), Hp, Wp, Cp, plane.reshape(-1))
                if sums:
                    window_sums_plane(plane, n0, n1, kh, kw, stride, Ho, Wo,
                                      sx[n0 * HW:n1 * HW])
                return
            if tab is not None:
                to_nhwc_table(x, n0, n1, 0, Hp, g * Cg, Cg, pad, padv, tab, qlo, xb)
            else:
                to_nhwc_view(x, n0, n1, 0, Hp, g * Cg, Cg, pad, padv, np.int64(ox), vd, vr,
                             vlo, vhi, xb)
            if sums:
                window_sums_bytes(xb, n0, 0, n0 * HW, n1 * HW, kh, kw, stride, Ho, Wo,
                                  sx[n0 * HW:n1 * HW])

        def block(m0, m1, b0, b1, g=g, wp=wp, woff=woff, nvs=nvs, Np=Np, Og=Og, sx=sx,
                  corr=corr, xflat=xflat):
            """Outputs [m0, m1) x weight blocks [b0, b1): the int32 sums into a scratch
            tile (its rows padded to whole micro-tiles by repeating the last pixel), then
            the finish."""
            rl = rows[m0:m1]
            if (m1 - m0) % mr:
                rl = np.concatenate([rl, np.full(mr - (m1 - m0) % mr, rl[-1], np.int64)])
            Cacc = np.empty((rl.size, Np), dtype=np.int32)
            if par_blocks and b1 - b0 > 1:
                _simd.gemm_tiles_par(xflat, rl, koff, wp, woff, nvs, Cacc, 0, rl.size, b0, b1)
            else:
                _simd.gemm_tiles(xflat, rl, koff, wp, woff, nvs, Cacc, 0, rl.size, b0, b1)
            n0 = b0 * _simd.NB
            n1 = min(Og, b1 * _simd.NB)
            if out_nhwc and lin is not None:
                finish_tiles_rq_lin(Cacc, m0, m0, m1, n0, n1, g * Og, sx, ow, corr, ksa,
                                    lin[0], RE1, lin[1], RE2, C34, SR, lin[2], rr, rlo, rhi,
                                    out2)
            elif out_nhwc:
                finish_tiles_rq_nhwc(Cacc, m0, m0, m1, n0, n1, g * Og, sx, ow, corr, W, ksa,
                                     RK1, RE1, RK2, RE2, C34, SL, SR, rr, rlo, rhi, out2)
            elif rq is None:
                finish_tiles(Cacc, m0, m0, m1, n0, n1, g * Og, sx, ow, corr, W, out)
            else:
                finish_tiles_rq(Cacc, m0, m0, m1, n0, n1, g * Og, sx, ow, corr, W, ksa, RK1,
                                RE1, RK2, RE2, C34, SL, SR, rr, rlo, rhi, out)

        if serial or Nb >= 2 * nt:
            # units of whole images: each builds its images' block and computes their
            # outputs (no unit reads another's images: one pass, no barrier between)
            per = Nb if serial else -(-Nb // (8 * nt))
            imgs = [(n0, min(Nb, n0 + per)) for n0 in range(0, Nb, per)]

            def unit(i, prep=prep, block=block, nblk=nblk):
                n0, n1 = imgs[i]
                prep(n0, n1)
                for m0 in range(n0 * HW, n1 * HW, mb):
                    block(m0, min(n1 * HW, m0 + mb), 0, nblk)

            if serial:
                unit(0)
            else:
                th.run(unit, len(imgs), blas=False)
            continue
        # few images: the block first, then units of output rows x weight blocks
        per = max(1, Nb // nt)
        imgs = [(n0, min(Nb, n0 + per)) for n0 in range(0, Nb, per)]
        th.run(lambda i: prep(*imgs[i]), len(imgs), blas=False)
        mranges = [(m0, min(M, m0 + mb)) for m0 in range(0, M, mb)]
        bsplit = min(nblk, max(1, -(-4 * nt // len(mranges))))
        bstep = -(-nblk // bsplit)
        units = [(m0, m1, b0, min(nblk, b0 + bstep)) for m0, m1 in mranges
                 for b0 in range(0, nblk, bstep)]
        th.run(lambda i, block=block: block(*units[i]), len(units), blas=False)
    _tuned_done(tuner, serial, t0)
    if out_nhwc:
        return out.reshape(Nb, Ho, Wo, O)
    return out.reshape(Nb, O, Ho, Wo)


def conv_saturate_driver(x, w, stride, pad, groups, pad_code, W, entry=None):
    """Saturating conv (N, O, Ho, Wo) int64 for W <= 53, exact in float lanes: the
    register-blocked kernel ``_simd.sat_tiles`` on MR output pixels by up to four
    vectors of output channels at a time."""
    dt = np.float32 if W <= 24 else np.float64
    lanes = 16 if dt == np.float32 else 8
    Nb, C, H, Wd = x.shape
    O, Cg, kh, kw = w.shape
    Og = O // groups
    K = Cg * kh * kw
    Ho = (H + 2 * pad - kh) // stride + 1
    Wo = (Wd + 2 * pad - kw) // stride + 1
    Hp, Wp = H + 2 * pad, Wd + 2 * pad
    HW = Ho * Wo
    M = Nb * HW
    xp = np.full((Nb, C, Hp, Wp), pad_code, dtype=dt)
    xp[:, :, pad : pad + H, pad : pad + Wd] = x
    L = _simd.sat_vectors(Og, lanes) * lanes
    nblk = -(-Og // L)
    key = ("saturate", groups, np.dtype(dt).str, L)
    wt = entry["prep"].get(key) if entry is not None else None
    if wt is None:
        wt = np.zeros((groups, nblk * L, K), dtype=dt)
        wt[:, :Og] = w.reshape(groups, Og, K)
        # (groups, nblk, K, L): block b holds channels [b L, b L + L), k in (c, ky, kx)
        wt = np.ascontiguousarray(wt.reshape(groups, nblk, L, K).transpose(0, 1, 3, 2))
        if entry is not None:
            entry["prep"][key] = wt
    c_, ky, kx = np.meshgrid(np.arange(Cg), np.arange(kh), np.arange(kw), indexing="ij")
    toff = np.ascontiguousarray(((c_ * Hp + ky) * Wp + kx).reshape(-1), dtype=np.int64)
    n_, oy, ox = np.meshgrid(np.arange(Nb), np.arange(Ho), np.arange(Wo), indexing="ij")
    rows = ((n_ * C * Hp + oy * stride) * Wp + ox * stride).reshape(-1).astype(np.int64)
    mr = _simd.MR
    Mp = -(-M // mr) * mr
    if Mp > M:
        rows = np.concatenate([rows, np.full(Mp - M, rows[-1], np.int64)])
    hi = (1 << (W - 1)) - 1
    lo = -hi - 1
    out = np.empty((Nb, O, HW), dtype=np.int64)
    th = _threads()
    tuner = None
    if entry is not None:
        tuner = entry["prep"].setdefault(("tune-saturate", x.shape, stride, pad, groups, W),
                                         Tuner())
    # the sequential kernel is slow per multiply-add: threads pay off on less work
    serial, t0 = _tuned(tuner, Nb * O * HW * K, th.count(), SERIAL_WORK >> 4)
    xflat = xp.reshape(-1)
    for g in range(groups):
        Cacc = np.empty((Mp, nblk * L), dtype=dt)
        if serial:
            units = [(0, Mp, 0, nblk)]
        else:
            want = 8 * th.count()
            mstep = max(mr, -(-Mp // (want * mr)) * mr)
            bstep = -(-nblk // min(nblk, max(1, -(-want // -(-Mp // mstep)))))
            units = [(m0, min(Mp, m0 + mstep), b0, min(nblk, b0 + bstep))
                     for m0 in range(0, Mp, mstep) for b0 in range(0, nblk, bstep)]
        wg = wt[g]

        def unit(i, g=g, wg=wg, Cacc=Cacc):
            m0, m1, b0, b1 = units[i]
            _simd.sat_tiles(xflat, g * Cg * Hp * Wp, rows, toff, wg, Cacc, m0, m1, b0, b1,
                            lo, hi)
            me = min(m1, M)
            if me > m0:
                o0 = b0 * L
                _simd.sat_finish(Cacc[:, o0:], m0, me, g * Og + o0,
                                 min(Og, b1 * L) - o0, out)

        th.run(unit, len(units), blas=False, work=0 if serial else None)
    _tuned_done(tuner, serial, t0)
    return out.reshape(Nb, O, Ho, Wo)


# ----------------------------------------------------------------------------- entry

_FAST_DTYPES = frozenset(
    np.dtype(t) for t in (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64)
)


def codes(name, x, as_codes, limit):
    """(array, lo, hi): ``x`` validated exactly as ``as_codes(name, x, -limit, limit)``
    would (same errors), but kept in its own small integer dtype when it has one."""
    if isinstance(x, np.ndarray) and x.dtype in _FAST_DTYPES:
        if x.size == 0:
            return np.ascontiguousarray(x), 0, 0
        lo, hi = int(x.min()), int(x.max())
        if lo < -limit or hi > limit:
            as_codes(name, x, -limit, limit)  # raises the standard error
        return np.ascontiguousarray(x), lo, hi
    x = as_codes(name, x, -limit, limit)
    if x.size == 0:
        return x, 0, 0
    return x, int(x.min()), int(x.max())


def weight_codes(name, w, as_codes, limit):
    """As ``codes``, plus the weight-cache entry (None for small weights); a cached
    array's codes were range-checked when it was entered."""
    if isinstance(w, np.ndarray) and w.dtype in _FAST_DTYPES and w.flags.c_contiguous:
        e = weight_entry(w)
        if e is not None:
            return w, e["lo"], e["hi"], e
    w, lo, hi = codes(name, w, as_codes, limit)
    e = _WCACHE.insert(w, lo, hi) if w.size >= CACHE_MIN_SIZE else None
    return w, lo, hi, e


def try_conv2d(x, w, stride, pad, groups, pad_code, W, mode, xlo, xhi, wlo, whi, entry=None):
    """The conv2d accumulators by a fast path, or None where the caller's general path
    must decide (a product wider than W by the coarse bounds, or a possible trap)."""
    if x.size == 0 or w.size == 0:
        return None
    if pad > 0:
        xlo, xhi = min(xlo, pad_code), max(xhi, pad_code)
    A = max(abs(xlo), abs(xhi))
    B = max(abs(wlo), abs(whi))
    hi = (1 << (W - 1)) - 1
    if A * B > hi:
        return None
    O, Cg, kh, kw = w.shape
    K = Cg * kh * kw
    if A * B * K > hi:
        if mode == O_TRAP:
            return None
        if mode == O_SATURATE:
            return conv_saturate_driver(x, w, stride, pad, groups, pad_code, W, entry)
    plan = plan_conv(Cg, kh, kw, xlo, xhi, wlo, whi)
    tuner = None
    if entry is not None:
        tuner = entry["prep"].setdefault(("tune", x.shape, stride, pad, groups, plan), Tuner())
    return conv_exact(x, w, stride, pad, groups, pad_code, W, plan, entry, tuner=tuner)


# ----------------------------------------------------------------------------- fused layers
#
# The same exact conv sums as ``conv_exact``, with the layer pipeline of
# docs/arithmetic.md fused around them: the nested view of the activations is applied
# while the padded NHWC block is built, the side sum sum_a is the window sum of that very
# block (sum_a = sum of the centred taps + K * ox), and each output is requantized as soon
# as its accumulator is known. The caller has checked, from the code ranges, that every
# requantization sum stays below 2^62 (so the int64 arithmetic is exact, as in
# ``_kernels.requantize3``) and passes per channel K1, E1, K2, E2, S and the constant part
# C34 = (K3 sum_w << E3) + (K4 << E4).


@njit(cache=True, inline="always")
def _view1(q, d, r, vlo, vhi):
    """clamp(round_shift(q, d, r), vlo, vhi) for d >= 0, without data-dependent branches
    (see ``round_shift_bf``, defined below; Numba resolves it at compile time)."""
    return min(max(round_shift_bf(np.int64(q), 0, d, r), vlo), vhi)


def view_table(qlo, qhi, d, r, vlo, vhi, off, dtype):
    """tab[q - qlo] = clamp(round_shift(q, d, r), vlo, vhi) - off for every master code q
    in [qlo, qhi], in the float ``dtype`` of the exact plan (the values are small
    integers, exact there)."""
    q = np.arange(qlo, qhi + 1, dtype=np.int64)
    v = np.empty_like(q)
    view_codes(q, d, r, vlo, vhi, v)
    return (v - off).astype(dtype)


@njit(cache=True, nogil=True)
def view_codes(q, d, r, vlo, vhi, out):
    for i in range(q.shape[0]):
        out[i] = min(max(round_shift(q[i], d, r), vlo), vhi)
    return out


@njit(cache=True, nogil=True)
def to_nhwc_table(x, n0, n1, iy0, iy1, c0, cg, pad, padv, tab, qlo, xp):
    """x (N, C, H, W), images [n0, n1), padded rows [iy0, iy1), channels [c0, c0 + cg),
    into the padded NHWC block xp (border ``pad`` wide holding ``padv``), each code q
    becoming tab[q - qlo] (its view, centred): the codes lie in the table's range."""
    H = x.shape[2]
    Wd = x.shape[3]
    Wp = xp.shape[2]
    for n in range(n0, n1):
        img = xp[n - n0]
        for r_ in range(iy0, iy1):
            row = img[r_ - iy0]
            if r_ < pad or r_ >= H + pad:
                for ix in range(Wp):
                    for c in range(cg):
                        row[ix, c] = padv
                continue
            for ix in range(pad):
                for c in range(cg):
                    row[ix, c] = padv
            for ix in range(Wd + pad, Wp):
                for c in range(cg):
                    row[ix, c] = padv
            for c in range(cg):
                xr = x[n, c0 + c, r_ - pad]
                for ix in range(Wd):
                    row[ix + pad, c] = tab[np.int64(xr[ix]) - qlo]
    return xp


@njit(cache=True, nogil=True)
def to_nhwc_view(x, n0, n1, iy0, iy1, c0, cg, pad, padv, off, d, r, vlo, vhi, xp):
    """As ``to_nhwc_table``, each code q first viewed as clamp(round_shift(q, d, r), vlo,
    vhi) and moved by -off (the border holds ``padv`` as given)."""
    H = x.shape[2]
    Wd = x.shape[3]
    Wp = xp.shape[2]
    for n in range(n0, n1):
        img = xp[n - n0]
        for r_ in range(iy0, iy1):
            row = img[r_ - iy0]
            if r_ < pad or r_ >= H + pad:
                for ix in range(Wp):
                    for c in range(cg):
                        row[ix, c] = padv
                continue
            for ix in range(pad):
                for c in range(cg):
                    row[ix, c] = padv
            for ix in range(Wd + pad, Wp):
                for c in range(cg):
                    row[ix, c] = padv
            for c in range(cg):
                xr = x[n, c0 + c, r_ - pad]
                if d == 0:
                    for ix in range(Wd):
                        row[ix + pad, c] = xr[ix] - off
                else:
                    for ix in range(Wd):
                        row[ix + pad, c] = _view1(xr[ix], d, r, vlo, vhi) - off
    return xp


@njit(cache=True, inline="always")
def round_shift_bf(x, sl, sr, r):
    """``round_shift(x, s, r)`` without branches on the data (so that loops over lanes
    with per-lane shifts vectorise), given sl = max(-s, 0) and sr = max(s, 0): x << sl
    when s <= 0, else the rounding of docs/arithmetic.md 2.1 (q = x >> s,
    rem = x - (q << s), half = 2^(s-1))."""
    v = x << sl
    q = v >> sr
    if r == 0:
        return q
    rem = v - (q << sr)
    half = (np.int64(1) << sr) >> 1
    if r == 1:
        tie = np.int64(1)
    elif r == 2:
        tie = q & 1
    else:
        tie = np.int64(q >= 0)
    up = np.int64(rem > half) | (np.int64(rem == half) & tie)
    return q + (up & np.int64(sr > 0))


@njit(cache=True, inline="always")
def _requant1(acc, sa, k1, e1, k2, e2, c34, sl, sr, r, lo, hi):
    v = round_shift_bf(((k1 * acc) << e1) + ((k2 * sa) << e2) + c34, sl, sr, r)
    return min(max(v, lo), hi)


@njit(cache=True, nogil=True)
def finish_rows_rq(G, m0, o0, sx, ow, corr, W, ksa, RK1, RE1, RK2, RE2, C34, SL, SR, r,
                   lo, hi, out):
    """As ``finish_rows``, then requantized: out[n, o0 + o, p] = requant of the wrapped
    accumulator with sum_a = sx[j] + ksa (per channel o0 + o of RK1 .. RS)."""
    nch, mb, nro = G.shape
    HW = out.shape[2]
    half = np.int64(1) << (W - 1)
    mask = (np.int64(1) << W) - 1
    TJ = 16
    tile = np.empty((TJ, nro), dtype=np.int64)
    acc = np.empty(nro, dtype=np.int64)
    k1, e1, k2, e2, c34, sl, sr = _channels(o0, nro, RK1, RE1, RK2, RE2, C34, SL, SR)
    for j0 in range(0, mb, TJ):
        jn = min(TJ, mb - j0)
        for t in range(jn):
            sxj = sx[j0 + t]
            base = ow * sxj
            sa = sxj + ksa
            for o in range(nro):
                acc[o] = corr[o] + base
            for ch in range(nch):
                g = G[ch, j0 + t]
                for o in range(nro):
                    acc[o] += np.int64(g[o])
            tr = tile[t]
            for o in range(nro):
                a = ((acc[o] + half) & mask) - half
                tr[o] = _requant1(a, sa, k1[o], e1[o], k2[o], e2[o], c34[o], sl[o], sr[o],
                                  r, lo, hi)
        ma = m0 + j0
        na = ma // HW
        pa = ma - na * HW
        if pa + jn <= HW:
            for o in range(nro):
                orow = out[na, o0 + o]
                for t in range(jn):
                    orow[pa + t] = tile[t, o]
        else:
            for t in range(jn):
                n = (ma + t) // HW
                p = ma + t - n * HW
                for o in range(nro):
                    out[n, o0 + o, p] = tile[t, o]
    return out


@njit(cache=True, nogil=True)
def finish_cols_rq(GT, o0, sx, ow, corr, W, ksa, RK1, RE1, RK2, RE2, C34, SL, SR, r, lo,
                   hi, out):
    """As ``finish_cols``, then requantized (see ``finish_rows_rq``)."""
    nch, nro, M = GT.shape
    HW = out.shape[2]
    half = np.int64(1) << (W - 1)
    mask = (np.int64(1) << W) - 1
    acc = np.empty(M, dtype=np.int64)
    for o in range(nro):
        oc = o0 + o
        for m in range(M):
            acc[m] = corr[o] + ow * sx[m]
        for ch in range(nch):
            g = GT[ch, o]
            for m in range(M):
                acc[m] += np.int64(g[m])
        k1, e1, k2, e2, c34 = RK1[oc], RE1[oc], RK2[oc], RE2[oc], C34[oc]
        sl, sr = SL[oc], SR[oc]
        for n in range(M // HW):
            orow = out[n, oc]
            for p in range(HW):
                m = n * HW + p
                a = ((acc[m] + half) & mask) - half
                orow[p] = _requant1(a, sx[m] + ksa, k1, e1, k2, e2, c34, sl, sr, r, lo, hi)
    return out

