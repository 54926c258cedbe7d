"""The integer kernel's own limit on this CPU, measured in the benchmark's run: the
micro-kernel of the level that runs (``dqt_hw.model._simd``) on a 3x3 convolution of 32
channels whose every output pixel reads the same window, so that its operands stay in
L1 and nothing but the multiply-adds costs time. At the AMX level: 64 channels, and each
group of 16 pixels the windows of one output row (the same row for every group), so that
the A tiles load straight from the block (``_amx.direct_steps``) and its operands stay
in L1 and L2. The benchmarks report their rates as a
fraction of it ("of the limit"): how far the work around the kernel (layouts, sums,
finishing passes, threads) keeps a call from the CPU's multiply rate."""

from __future__ import annotations

import time

import numpy as np


def l1_rate(threads: int = 1, *, l16: int = 0, repeats: int = 25,
            seconds: float = 1.5, pixels: int = 24000) -> float:
    """G multiply-adds per second of ``_simd.gemm_tiles`` with its operands in L1, on
    ``threads`` of Numba's threads (one weight block of 64 channels each); ``l16`` > 0
    times the narrow kernel in int16 chunks of that many steps instead."""
    import numba

    from dqt_hw.model import _simd

    if not _simd.AVAILABLE:
        return float("nan")
    rng = np.random.default_rng(0)
    amx = _simd.LEVEL == "amx" and not l16
    C, Hp = (64, 18) if amx else (32, 10)
    O = 64 * threads
    xp = rng.integers(0, 16 if l16 else 256, Hp * Hp * C).astype(np.uint8)
    w = rng.integers(-8 if l16 else -128, 8 if l16 else 128, (O, C, 3, 3)).astype(np.int8)
    wp, woff, nvs, Np = _simd.pack_weights(w, 0)
    koff = _simd.tap_offsets(3, 3, C, Hp)
    M = -(-pixels // 48) * 48  # whole micro-tiles of every level
    if amx:  # the 16 windows of one output row, equally spaced: A loads straight
        rows = (np.arange(M, dtype=np.int64) % 16) * C
    else:
        rows = np.zeros(M, np.int64)  # every pixel the same window: all in L1
    acc = np.empty((M, Np), np.int32)
    old = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        run = _simd.gemm_tiles_par if threads > 1 else _simd.gemm_tiles
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 0.5:  # the cores at their working clock first
            run(xp, rows, koff, wp, woff, nvs, acc, 0, M, 0, len(nvs), l16)
        best = float("inf")
        t0 = time.perf_counter()
        n = 0
        # the best of many calls over ``seconds``: a machine whose cores the host shares
        # gives some calls at the full rate
        while n < repeats or time.perf_counter() - t0 < seconds:
            t = time.perf_counter()
            run(xp, rows, koff, wp, woff, nvs, acc, 0, M, 0, len(nvs), l16)
            best = min(best, time.perf_counter() - t)
            n += 1
    finally:
        numba.set_num_threads(old)
    return M * O * C * 9 / best / 1e9


if __name__ == "__main__":
    for t in (1, 2):
        print(f"{t} thread(s): {l1_rate(t):.0f} GMAC/s (narrow, 4-bit codes: "
              f"{l1_rate(t, l16=64):.0f})")
