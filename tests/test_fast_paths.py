"""The fast paths of conv2d/gemm (dqt_hw.model.drivers) against the oracle, bit for bit.

Each path is forced directly: exact chunked float GEMMs with any centring offsets and any
number of K chunks (float32 and float64), the unit splits by output pixels and by output
channels, one and two threads, and the sequential saturating kernel in float32 (W <= 24)
and float64 lanes, on edge values and sums that overflow. The public conv2d is checked
on every integer dtype it keeps as is, and the weight cache against in-place changes.
"""

from contextlib import contextmanager

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import naive
from dqt_hw import model, spec
from dqt_hw import settings as dsettings
from dqt_hw.model import drivers, wcache
from dqt_hw.model import plan as mplan
from strategies import codes

OVERFLOWS = st.sampled_from(["wrap", "saturate"])


def code_array(shape, b, signed):
    return hnp.arrays(np.int64, shape, elements=codes(b, signed))


def wrap(v, W):
    half = 1 << (W - 1)
    return ((v + half) & ((1 << W) - 1)) - half


def exact_ref(x, w, stride, pad, groups, pad_code):
    """Exact (unbounded) conv sums by the oracle at a width nothing reaches."""
    return np.array(naive.conv2d(x.tolist(), w.tolist(), stride, pad, groups, 62, "wrap",
                                 pad_code)[0], dtype=np.int64)


@st.composite
def conv_case(draw, max_b=16):
    groups = draw(st.integers(1, 2))
    C = groups * draw(st.integers(1, 3))
    O = groups * draw(st.integers(1, 3))
    kh = draw(st.integers(1, 3))
    kw = draw(st.integers(1, 3))
    pad = draw(st.integers(0, 2))
    stride = draw(st.integers(1, 3))
    H = draw(st.integers(max(1, kh - 2 * pad), 6))
    Wd = draw(st.integers(max(1, kw - 2 * pad), 6))
    ba, bw = draw(st.integers(2, max_b)), draw(st.integers(2, max_b))
    sa, sw = draw(st.booleans()), draw(st.booleans())
    x = draw(code_array((draw(st.integers(1, 3)), C, H, Wd), ba, sa))
    w = draw(code_array((O, C // groups, kh, kw), bw, sw))
    lo, hi = naive.code_range(ba, sa)
    pad_code = draw(st.sampled_from([0, lo, hi, 1]))
    return x, w, stride, pad, groups, pad_code


def code_bounds(x, w, pad, pad_code):
    xlo, xhi = int(x.min()), int(x.max())
    if pad:
        xlo, xhi = min(xlo, pad_code), max(xhi, pad_code)
    return xlo, xhi, int(w.min()), int(w.max())


@contextmanager
def num_threads(n):
    old = numba.get_num_threads()
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(old)


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    with num_threads(request.param):
        yield


# ----------------------------------------------------------------------------- exact


@settings(max_examples=80)
@given(case=conv_case(), data=st.data())
def test_conv_exact_any_plan_matches_oracle(case, data):
    """Any offsets and any chunking are exact while each chunk's float sums are."""
    x, w, stride, pad, groups, pad_code = case
    xlo, xhi, wlo, whi = code_bounds(x, w, pad, pad_code)
    K = w[0].size
    ox = data.draw(st.integers(xlo, xhi))
    ow = data.draw(st.integers(wlo, whi))
    A = max(abs(xlo - ox), abs(xhi - ox))
    B = max(abs(wlo - ow), abs(whi - ow))
    # float32 where one product and its chunk fit 2^24, else float64
    dt = np.float32 if A * B <= mplan.F32_EXACT else np.float64
    limit = mplan.F32_EXACT if dt == np.float32 else mplan.F64_EXACT
    kc_max = limit // max(1, A * B)
    nch = data.draw(st.integers(max(1, -(-K // kc_max)), K))
    W = data.draw(st.integers(2, 48))
    got = drivers.conv_exact(x, w, drivers.ConvArgs(stride, pad, groups, pad_code, W), (dt, ox, ow, nch))
    want = wrap(exact_ref(x, w, stride, pad, groups, pad_code), W)
    np.testing.assert_array_equal(got, want)


@settings(max_examples=60)
@given(case=conv_case(), W=st.integers(2, 48))
def test_conv_exact_planned_matches_oracle(case, W):
    x, w, stride, pad, groups, pad_code = case
    xlo, xhi, wlo, whi = code_bounds(x, w, pad, pad_code)
    plan = mplan.plan_exact(w[0].size, xlo, xhi, wlo, whi)
    got = drivers.conv_exact(x, w, drivers.ConvArgs(stride, pad, groups, pad_code, W), plan)
    np.testing.assert_array_equal(got, wrap(exact_ref(x, w, stride, pad, groups, pad_code), W))


def test_plan_bounds_every_chunk():
    for K, xr, wr in [(576, (0, 255), (0, 255)), (4608, (0, 255), (-128, 127)),
                      (4608, (0, 15), (0, 15)), (9, (-65536, 65536), (-65536, 65536)),
                      (1, (0, 0), (5, 5)), (100000, (0, 255), (0, 255))]:
        dt, ox, ow, nch = mplan.plan_exact(K, *xr, *wr)[:4]
        A = max(abs(xr[0] - ox), abs(xr[1] - ox))
        B = max(abs(wr[0] - ow), abs(wr[1] - ow))
        limit = mplan.F32_EXACT if dt == np.float32 else mplan.F64_EXACT
        assert max(k1 - k0 for k0, k1 in mplan.chunks(K, nch)) * A * B <= limit
        assert sum(k1 - k0 for k0, k1 in mplan.chunks(K, nch)) == K


@pytest.mark.parametrize("split", ["pixels", "channels"])
def test_conv_exact_unit_splits(threads, monkeypatch, split, rng):
    """Bands of rows, whole images and output-channel units, with the worst-case 8/8
    sums (all codes 255: float32 chunks at their 2^24 limit)."""
    if split == "pixels":
        monkeypatch.setattr(dsettings, "MIN_UNIT_ROWS", 4)
        monkeypatch.setattr(dsettings, "COLS_BLOCK", 64)
    else:
        monkeypatch.setattr(dsettings, "MIN_UNIT_ROWS", 1000)
    for trial in range(6):
        N, C, O = int(rng.integers(1, 4)), int(rng.integers(1, 40)), int(rng.integers(1, 70))
        H, Wd = int(rng.integers(1, 9)), int(rng.integers(1, 9))
        stride, pad = int(rng.integers(1, 3)), int(rng.integers(0, 2))
        kh = kw = 3 if H + 2 * pad >= 3 and Wd + 2 * pad >= 3 else 1
        x = rng.integers(0, 256, (N, C, H, Wd)).astype(np.uint8)
        w = rng.integers(0, 256, (O, C, kh, kw)).astype(np.uint8)
        if trial == 0:
            x[:] = 255
            w[:] = 255
        got = model.conv2d(x, w, stride=stride, padding=pad, acc_width=32, overflow="wrap")
        want, _ = model.conv2d(x, w, stride=stride, padding=pad, acc_width=32,
                               overflow="wrap", stats=True)
        np.testing.assert_array_equal(got, want)


# ----------------------------------------------------------------------------- saturate


@st.composite
def saturating_case(draw):
    x, w, stride, pad, groups, pad_code = draw(conv_case(max_b=13))
    A = max(abs(int(x.min())), abs(int(x.max())), abs(pad_code) if pad else 0)
    B = max(abs(int(w.min())), abs(int(w.max())))
    prod_bits = spec.signed_bits_for_magnitude(A * B)
    W = draw(st.integers(max(2, prod_bits), max(2, prod_bits) + 4))
    return x, w, stride, pad, groups, pad_code, W


@settings(max_examples=80)
@given(case=saturating_case(), nt=st.sampled_from([1, 2]))
def test_conv_saturate_matches_oracle(case, nt):
    x, w, stride, pad, groups, pad_code, W = case
    with num_threads(nt):
        got = drivers.conv_saturate_driver(x, w, drivers.ConvArgs(stride, pad, groups, pad_code, W))
    want = naive.conv2d(x.tolist(), w.tolist(), stride, pad, groups, W, "saturate", pad_code)[0]
    np.testing.assert_array_equal(got, np.array(want, dtype=np.int64))


@pytest.mark.parametrize("W", [18, 24, 25, 33, 48])
def test_conv_saturate_edges(W):
    """Alternating extreme products that hit both limits, in float32 and float64 lanes."""
    m = 1 << 16
    A = int(np.sqrt((1 << (W - 1)) - 1))
    A = min(A, m)
    x = np.array([[[[A, A, 0, A], [A, 1, A, A]]]] * 2, dtype=np.int64).repeat(3, axis=1)
    x[1] = -x[1] + 1
    w = np.array([A, A, -A, A, -A, -A]).reshape(2, 3, 1, 1) * np.array([1, -1]).reshape(2, 1, 1, 1)
    for stride, pad in [(1, 0), (1, 1), (2, 1)]:
        got = model.conv2d(x, w, stride=stride, padding=pad, acc_width=W, overflow="saturate",
                           pad_code=-A)
        want = naive.conv2d(x.tolist(), w.tolist(), stride, pad, 1, W, "saturate", -A)[0]
        np.testing.assert_array_equal(got, np.array(want, dtype=np.int64))


def test_conv_saturate_bench_shape_matches_sequential(rng):
    """The benchmark's saturating case (8/8, signed weights, W = 18), where nearly every
    output saturates, against the model's sequential kernel (stats path)."""
    x = rng.integers(0, 256, (2, 32, 6, 6)).astype(np.uint8)
    w = rng.integers(-128, 128, (40, 32, 3, 3)).astype(np.int8)
    got = model.conv2d(x, w, padding=1, acc_width=18, overflow="saturate")
    want, st_ = model.conv2d(x, w, padding=1, acc_width=18, overflow="saturate", stats=True)
    assert st_.outputs_affected > st_.outputs // 2
    np.testing.assert_array_equal(got, want)


# ----------------------------------------------------------------------------- public


DTYPES = [np.uint8, np.int8, np.uint16, np.int16, np.int32, np.uint32, np.int64]


@settings(max_examples=80)
@given(case=conv_case(max_b=8), overflow=OVERFLOWS, data=st.data())
def test_conv2d_dtypes_match_oracle(case, overflow, data):
    x, w, stride, pad, groups, pad_code = case
    xd = data.draw(st.sampled_from([d for d in DTYPES if np.can_cast(
        np.min_scalar_type(int(x.min())), d) and np.can_cast(np.min_scalar_type(int(x.max())), d)]))
    wd = data.draw(st.sampled_from([d for d in DTYPES if np.can_cast(
        np.min_scalar_type(int(w.min())), d) and np.can_cast(np.min_scalar_type(int(w.max())), d)]))
    A = max(abs(int(x.min())), abs(int(x.max())), abs(pad_code) if pad else 0)
    B = max(abs(int(w.min())), abs(int(w.max())))
    W = data.draw(st.integers(max(2, spec.signed_bits_for_magnitude(A * B)), 40))
    want = naive.conv2d(x.tolist(), w.tolist(), stride, pad, groups, W, overflow, pad_code)[0]
    got = model.conv2d(x.astype(xd), w.astype(wd), stride=stride, padding=pad, groups=groups,
                       acc_width=W, overflow=overflow, pad_code=pad_code)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, np.array(want, dtype=np.int64))


def test_weight_cache_sees_in_place_changes(rng):
    x = rng.integers(0, 256, (1, 128, 4, 4)).astype(np.uint8)
    w = rng.integers(0, 256, (16, 128, 3, 3)).astype(np.uint8)
    assert w.size >= dsettings.CACHE_MIN_SIZE
    for ovf, W in (("wrap", 32), ("saturate", 26)):
        for step in range(3):
            got = model.conv2d(x, w, padding=1, acc_width=W, overflow=ovf)
            want, _ = model.conv2d(x, w, padding=1, acc_width=W, overflow=ovf, stats=True)
            np.testing.assert_array_equal(got, want)
            w[step, 5 * step, 1, 2] ^= 0xA5  # the same array, changed in place
            w.ravel()[-1] ^= 1


def test_errors_unchanged_for_kept_dtypes():
    x = np.zeros((1, 1, 3, 3), np.uint32)
    x[0, 0, 1, 2] = 70000
    with pytest.raises(ValueError, match=r"x holds code 70000 at index \(0, 0, 1, 2\)"):
        model.conv2d(x, np.ones((1, 1, 1, 1), np.uint8), acc_width=32, overflow="wrap")
    with pytest.raises(TypeError, match="integer dtype"):
        model.conv2d(np.zeros((1, 1, 3, 3), np.float32), np.ones((1, 1, 1, 1), np.uint8),
                     acc_width=32, overflow="wrap")


# ----------------------------------------------------------------------------- gemm


@settings(max_examples=60)
@given(data=st.data(), overflow=OVERFLOWS)
def test_gemm_float32_exact_path(data, overflow):
    M, Kd, N = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 40)), data.draw(
        st.integers(1, 5))
    ba, bw = data.draw(st.integers(2, 12)), data.draw(st.integers(2, 12))
    a = data.draw(code_array((M, Kd), ba, data.draw(st.booleans())))
    w = data.draw(code_array((Kd, N), bw, data.draw(st.booleans())))
    prod = max(1, int(np.abs(a).max()) * int(np.abs(w).max()))
    W = data.draw(st.integers(spec.signed_bits_for_magnitude(prod), 48))
    want = naive.gemm(a.tolist(), w.tolist(), W, overflow)[0]
    got = model.gemm(a, w, acc_width=W, overflow=overflow)
    np.testing.assert_array_equal(got, np.array(want, dtype=np.int64).reshape(M, N))


def test_trap_names_first_output_in_nchw_order():
    """Two outputs overflow at the same term; the oracle names the one first in
    (n, o, y, x) order, not the one first among the GEMM rows (pixels)."""
    x = np.full((2, 3, 3, 2), 63)
    x[0, 0, 0, 0] = 0
    w = np.full((2, 3, 3, 1), 66)
    w[0, 0, 1, 0] = -7
    wg = np.full((3, 1, 3, 1), 66)
    wg[1, 0, 0, 0] = 70
    for groups, ww, W in ((1, w, 16), (3, wg, 14)):
        try:
            naive.conv2d(x.tolist(), ww.tolist(), 1, 0, groups, W, "trap", 0)
        except naive.Trap as t:
            want = rf"at output \({', '.join(map(str, t.index))}\), term k = {t.k}: " \
                   rf"partial sum {t.partial} "
        else:  # pragma: no cover
            raise AssertionError("the case must trap")
        for stats in (False, True):
            with pytest.raises(OverflowError, match=want):
                model.conv2d(x, ww, groups=groups, acc_width=W, overflow="trap", stats=stats)


@pytest.mark.parametrize("nt", [1, 2])
def test_weight_cache_large_arrays_compared_in_parallel(nt):
    """Weights above ``PAR_COMPARE`` words are compared in pieces over the threads: a
    change of one byte anywhere (first, inside a piece, at a piece boundary, last)
    is seen, and the result follows it."""
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, (1, 512, 1, 1)).astype(np.uint8)
    w = rng.integers(0, 256, (2100, 512, 1, 1)).astype(np.uint8)
    assert w.size // 8 >= dsettings.PAR_COMPARE
    step = -(-(w.size // 8) // 16) * 8  # bytes per piece of same_words_par
    with num_threads(nt):
        for pos in (0, 12345, step - 1, step, w.size - 1):
            got = model.conv2d(x, w, acc_width=32, overflow="wrap")
            want = (w.reshape(2100, 512).astype(np.int64) @ x.reshape(512).astype(np.int64))
            np.testing.assert_array_equal(got.reshape(-1), want)
            w.reshape(-1)[pos] ^= 0x5A  # in place: the cached packing must not serve
        got = model.conv2d(x, w, acc_width=32, overflow="wrap")
        want = (w.reshape(2100, 512).astype(np.int64) @ x.reshape(512).astype(np.int64))
        np.testing.assert_array_equal(got.reshape(-1), want)
    a = np.arange(1 << 18, dtype=np.uint64)
    b = a.copy()
    assert wcache.same_words_par(a, b)
    for pos in (0, 1 << 17, (1 << 18) - 1):
        b[pos] += 1
        assert not wcache.same_words_par(a, b) and not wcache.same_words(a, b)
        b[pos] -= 1
