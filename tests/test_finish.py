"""The integer kernel's channels-first passes against the oracle, bit for bit, called
directly on every geometry their callers can give them and more:

- ``epilogue.finish_tiles``: blocks of output pixels that start, end and cross images
  anywhere (images of one output pixel included: no transpose there), column ranges from odd or even first columns (the channel pairs read as one
  int64, and the single-channel path), odd and even tile widths, side terms with ow = 0
  and ow != 0, any accumulator width W in [2, 62], with and without the requantization
  (every rounding, shifts 0..62); outputs outside the block stay as they were;
- ``views.to_nhwc_bytes``: the padded channels-last byte block of channels-first codes
  of several integer dtypes, for any padding, channel range and padded channel count
  (channels past the range left as they were), by an offset, a table or a computed
  nested view; rows of 1..9 pixels (the four-pixel loop and its tail).
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import naive
from dqt_hw import spec
from dqt_hw.model import epilogue, views

ROUNDINGS = sorted(spec.ROUNDING_CODES)
SENTINEL = -(1 << 60) + 7


@st.composite
def finish_case(draw):
    N = draw(st.integers(1, 3))
    HW = draw(st.one_of(st.just(1), st.integers(1, 40)))  # 1: out is channels-last too
    M = N * HW
    m0 = draw(st.integers(0, M - 1))
    m1 = draw(st.integers(m0 + 1, min(M, m0 + 150)))
    cm0 = draw(st.integers(max(0, m0 - 6), m0))
    n0 = draw(st.integers(0, 5))
    n1 = draw(st.integers(n0 + 1, n0 + 12))
    cols = n1 + draw(st.integers(0, 3))
    og = draw(st.integers(0, 2))
    O = og + n1 + draw(st.integers(0, 2))
    W = draw(st.integers(2, 62))
    seed = draw(st.integers(0, 2**32 - 1))
    ow = draw(st.sampled_from([0, 0, 1, -3, 127]))
    rq = draw(st.booleans())
    return N, HW, m0, m1, cm0, n0, n1, cols, og, O, W, seed, ow, rq


def requant_case(rng, nch, W):
    """Per-channel constants whose sums stay below 2^62 for |acc| < 2^(W-1) and
    |sum_a| < 2^20 (what ``FusedConv`` proves before it passes them)."""
    E1 = rng.integers(0, max(1, 61 - W - 8), nch)
    K1 = rng.integers(-255, 256, nch)
    E2 = rng.integers(0, 20, nch)
    K2 = rng.integers(-255, 256, nch)
    C34 = rng.integers(-(1 << 40), 1 << 40, nch)
    S = rng.integers(0, 63, nch)
    H = np.where(S > 0, np.left_shift(np.int64(1), np.maximum(S, 1) - 1), 0)
    r = rng.choice(ROUNDINGS)
    lo, hi = sorted(int(v) for v in rng.integers(-(1 << 40), 1 << 40, 2))
    q = epilogue.Requant(K1, E1, K2, E2, C34, S, H.astype(np.int64), K1[:0], K1[:0],
                         spec.ROUNDING_CODES[r], lo, hi, epilogue.GENERAL)
    return q, r


@settings(max_examples=150)
@given(case=finish_case())
def test_finish_tiles_matches_oracle(case):
    N, HW, m0, m1, cm0, n0, n1, cols, og, O, W, seed, ow, with_rq = case
    rng = np.random.default_rng(seed)
    M = N * HW
    Cacc = rng.integers(-(1 << 31), 1 << 31, (m1 - cm0, cols)).astype(np.int32)
    corr = rng.integers(-(1 << 40), 1 << 40, cols)  # per column of Cacc
    sx = rng.integers(-(1 << 19), 1 << 19, M)
    ksa = int(rng.integers(-1000, 1000))
    s = epilogue.Sums(sx, ow, corr, ksa, W)
    b = epilogue.Tile(cm0, m0, m1, n0, n1, og)
    rq, r = requant_case(rng, O, W) if with_rq else (None, None)
    out = np.full((N, O, HW), SENTINEL, dtype=np.int64)
    epilogue.finish_tiles(Cacc, b, s, rq, out)
    want = np.full((N, O, HW), SENTINEL, dtype=np.int64)
    c0 = og + n0
    for m in range(m0, m1):
        n, p = divmod(m, HW)
        for o in range(n1 - n0):
            acc = naive.wrap(int(Cacc[m - cm0, n0 + o]) + int(corr[n0 + o]) + ow * int(sx[m]), W)
            if rq is not None:
                c = c0 + o
                sa = int(sx[m]) + ksa
                v = ((int(rq.K1[c]) * acc) << int(rq.E1[c])) + (
                    (int(rq.K2[c]) * sa) << int(rq.E2[c])) + int(rq.C34[c])
                acc = naive.clamp(naive.round_shift(v, int(rq.S[c]), r), rq.lo, rq.hi)
            want[n, c0 + o, p] = acc
    np.testing.assert_array_equal(out, want)


@st.composite
def nhwc_case(draw):
    N = draw(st.integers(1, 2))
    C = draw(st.integers(1, 9))
    H = draw(st.integers(1, 4))
    Wd = draw(st.integers(1, 9))
    pad = draw(st.integers(0, 2))
    c0 = draw(st.integers(0, C - 1))
    cg = draw(st.integers(1, C - c0))
    Cp = cg + draw(st.integers(0, 4))
    n0 = draw(st.integers(0, N - 1))
    n1 = draw(st.integers(n0 + 1, N))
    dtype = draw(st.sampled_from([np.uint8, np.int8, np.int16, np.int32]))
    mode = draw(st.sampled_from(["offset", "table", "view"]))
    seed = draw(st.integers(0, 2**32 - 1))
    return N, C, H, Wd, pad, c0, cg, Cp, n0, n1, dtype, mode, seed


@settings(max_examples=150)
@given(case=nhwc_case())
def test_to_nhwc_bytes_matches_oracle(case):
    N, C, H, Wd, pad, c0, cg, Cp, n0, n1, dtype, mode, seed = case
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    qlo, qhi = max(info.min, -300), min(info.max, 300)
    x = rng.integers(qlo, qhi + 1, (N, C, H, Wd)).astype(dtype)
    off = int(rng.integers(-200, 200))
    padv = np.uint8(rng.integers(0, 256))
    d, rr, vlo, vhi = 0, 0, -(1 << 62), 1 << 62
    if mode == "offset":
        v = views.make_view(pad, padv, np.int64(off), None, None)
    elif mode == "table":
        tab = rng.integers(0, 256, qhi - qlo + 1).astype(np.uint8)
        v = views.make_view(pad, padv, np.int64(off), None, tab, qlo)
    else:
        rname = rng.choice(ROUNDINGS)
        d, rr = int(rng.integers(1, 5)), spec.ROUNDING_CODES[rname]
        vlo, vhi = sorted(int(t) for t in rng.integers(-40, 40, 2))
        v = views.make_view(pad, padv, np.int64(off), (d, rr, vlo, vhi), None)
    Hp, Wp = H + 2 * pad, Wd + 2 * pad
    xp = rng.integers(0, 256, (n1 - n0, Hp, Wp, Cp)).astype(np.uint8)
    want = xp.copy()
    views.to_nhwc_bytes(x, n0, n1, c0, cg, v, xp)
    for n in range(n0, n1):
        for r_ in range(Hp):
            for ix in range(Wp):
                for c in range(cg):
                    y, xx = r_ - pad, ix - pad
                    if not (0 <= y < H and 0 <= xx < Wd):
                        want[n - n0, r_, ix, c] = padv
                        continue
                    q = int(x[n, c0 + c, y, xx])
                    if mode == "offset":
                        b = q - off
                    elif mode == "table":
                        b = int(tab[q - qlo])
                    else:
                        b = naive.clamp(naive.round_shift(q, d, rname), vlo, vhi) - off
                    want[n - n0, r_, ix, c] = b % 256
    np.testing.assert_array_equal(xp, want)
