"""The Numba reference model against the oracle (tests/naive.py), bit for bit."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import naive
from dqt_hw import model, spec
from strategies import ROUNDINGS, codes, edge_values, ints

OVERFLOWS = st.sampled_from(["wrap", "saturate"])


def code_array(shape, b, signed):
    return hnp.arrays(np.int64, shape, elements=codes(b, signed))


@given(data=st.data(), n=st.integers(2, 16), signed=st.booleans(), r=ROUNDINGS)
def test_nested_view_array_matches_oracle(data, n, signed, r):
    b = data.draw(st.integers(2 if signed else 1, n))
    q = data.draw(code_array(data.draw(hnp.array_shapes(max_dims=3, max_side=6)), n, signed))
    got = model.nested_view(q, n=n, b=b, rounding=r, signed=signed)
    want = np.vectorize(lambda v: naive.nested_view(int(v), n, b, r, signed), otypes=[np.int64])(q)
    np.testing.assert_array_equal(got, want)


def test_nested_view_exhaustive_n8():
    q = np.arange(256)
    for b in range(1, 9):
        for r in spec.ROUNDINGS:
            want = [naive.nested_view(int(v), 8, b, r) for v in q]
            np.testing.assert_array_equal(model.nested_view(q, n=8, b=b, rounding=r), want)
    qs = np.arange(-128, 128)
    for b in range(2, 9):
        for r in ("floor", "half_up"):
            want = [naive.nested_view(int(v), 8, b, r, True) for v in qs]
            np.testing.assert_array_equal(
                model.nested_view(qs, n=8, b=b, rounding=r, signed=True), want)


@st.composite
def gemm_case(draw):
    M, Kd, N = draw(st.integers(1, 5)), draw(st.integers(1, 12)), draw(st.integers(1, 5))
    ba, bw = draw(st.integers(2, 8)), draw(st.integers(2, 8))
    sa, sw = draw(st.booleans()), draw(st.booleans())
    a = draw(code_array((M, Kd), ba, sa))
    w = draw(code_array((Kd, N), bw, sw))
    prod_bits = spec.signed_bits_for_magnitude(
        max(abs(x * y) for x in naive.code_range(ba, sa) for y in naive.code_range(bw, sw)))
    W = draw(st.integers(prod_bits, prod_bits + 6))
    return a, w, W


@given(case=gemm_case(), overflow=OVERFLOWS, stats=st.booleans())
def test_gemm_matches_oracle(case, overflow, stats):
    a, w, W = case
    want, mx, ev, aff = naive.gemm(a.tolist(), w.tolist(), W, overflow)
    if stats:
        got, st_ = model.gemm(a, w, acc_width=W, overflow=overflow, stats=True)
        assert (st_.max_abs_partial, st_.events, st_.outputs_affected) == (mx, ev, aff)
        assert st_.bits_needed == spec.signed_bits_for_magnitude(mx)
        assert st_.outputs == a.shape[0] * w.shape[1]
    else:
        got = model.gemm(a, w, acc_width=W, overflow=overflow)
    np.testing.assert_array_equal(got, np.array(want, dtype=np.int64).reshape(got.shape))


@given(case=gemm_case())
def test_gemm_trap_matches_oracle(case):
    a, w, W = case
    try:
        want = naive.gemm(a.tolist(), w.tolist(), W, "trap")[0]
    except naive.Trap as t:
        with pytest.raises(OverflowError, match=rf"at output \({t.index[0]}, {t.index[1]}\), "
                                                rf"term k = {t.k}: partial sum {t.partial} "):
            model.gemm(a, w, acc_width=W, overflow="trap")
        return
    np.testing.assert_array_equal(model.gemm(a, w, acc_width=W, overflow="trap"),
                                  np.array(want).reshape(a.shape[0], w.shape[1]))


def test_gemm_overflow_edges_16bit_codes():
    # the largest codes the model takes: 16-bit unsigned products at 2^32, 48-bit accumulator
    a = np.full((2, 9), (1 << 16) - 1)
    w = np.full((9, 3), (1 << 16) - 1)
    for W, ov in ((34, "wrap"), (34, "saturate"), (48, "wrap")):
        want = naive.gemm(a.tolist(), w.tolist(), W, ov)[0]
        np.testing.assert_array_equal(model.gemm(a, w, acc_width=W, overflow=ov), want)


@st.composite
def conv_case(draw):
    groups = draw(st.integers(1, 2))
    C = groups * draw(st.integers(1, 3))
    O = groups * draw(st.integers(1, 2))
    kh = draw(st.integers(1, 3))
    kw = draw(st.integers(1, 3))
    pad = draw(st.integers(0, 2))
    stride = draw(st.integers(1, 2))
    H = draw(st.integers(max(1, kh - 2 * pad), 6))
    Wd = draw(st.integers(max(1, kw - 2 * pad), 6))
    ba, bw = draw(st.integers(2, 8)), draw(st.integers(2, 8))
    sw = draw(st.booleans())
    x = draw(code_array((draw(st.integers(1, 2)), C, H, Wd), ba, False))
    w = draw(code_array((O, C // groups, kh, kw), bw, sw))
    prod_bits = spec.signed_bits_for_magnitude(max(
        abs(x_ * y) for x_ in naive.code_range(ba, False) for y in naive.code_range(bw, sw)))
    W = draw(st.integers(prod_bits, prod_bits + 6))
    pad_code = draw(st.sampled_from([0, 0, 1, (1 << ba) - 1]))
    return x, w, stride, pad, groups, W, pad_code


@given(case=conv_case(), overflow=OVERFLOWS)
def test_conv2d_matches_oracle(case, overflow):
    x, w, stride, pad, groups, W, pad_code = case
    want, mx, ev, aff = naive.conv2d(x.tolist(), w.tolist(), stride, pad, groups, W, overflow,
                                     pad_code)
    got, st_ = model.conv2d(x, w, stride=stride, padding=pad, groups=groups, acc_width=W,
                            overflow=overflow, pad_code=pad_code, stats=True)
    np.testing.assert_array_equal(got, np.array(want, dtype=np.int64))
    assert (st_.max_abs_partial, st_.events, st_.outputs_affected) == (mx, ev, aff)
    plain = model.conv2d(x, w, stride=stride, padding=pad, groups=groups, acc_width=W,
                         overflow=overflow, pad_code=pad_code)
    np.testing.assert_array_equal(plain, got)


@given(case=conv_case())
def test_conv2d_trap_names_the_output(case):
    x, w, stride, pad, groups, W, pad_code = case
    try:
        naive.conv2d(x.tolist(), w.tolist(), stride, pad, groups, W, "trap", pad_code)
    except naive.Trap as t:
        with pytest.raises(OverflowError, match=rf"at output \({', '.join(map(str, t.index))}\), "
                                                rf"term k = {t.k}: partial sum {t.partial} "):
            model.conv2d(x, w, stride=stride, padding=pad, groups=groups, acc_width=W,
                         overflow="trap", pad_code=pad_code)
        return
    model.conv2d(x, w, stride=stride, padding=pad, groups=groups, acc_width=W, overflow="trap",
                 pad_code=pad_code)


@given(case=conv_case())
def test_side_sums_conv2d_match_oracle(case):
    x, w, stride, pad, groups, W, pad_code = case
    sa, sw = model.side_sums_conv2d(x, w, stride=stride, padding=pad, groups=groups,
                                    pad_code=pad_code)
    O, Cg, kh, kw = w.shape
    xl = x.tolist()
    for nb in range(x.shape[0]):
        for g in range(groups):
            for oy in range(sa.shape[2]):
                for ox in range(sa.shape[3]):
                    taps = naive.conv_taps(xl, nb, g * Cg, Cg, oy, ox, kh, kw, stride, pad,
                                           pad_code)
                    assert sa[nb, g, oy, ox] == sum(taps)
    assert sw.tolist() == [int(w[o].sum()) for o in range(O)]


@given(data=st.data(), r=ROUNDINGS)
def test_requantize_matches_oracle(data, r):
    P, C = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 4))
    # magnitudes chosen so that the sum fits the model's exact 63-bit datapath
    acc = data.draw(hnp.arrays(np.int64, (P, C), elements=ints(-(1 << 27), (1 << 27) - 1)))
    sa = data.draw(hnp.arrays(np.int64, (P, C), elements=ints(0, 1 << 20)))
    sw = data.draw(hnp.arrays(np.int64, (C,), elements=ints(-(1 << 20), 1 << 20)))
    consts = []
    for _ in range(C):
        ch = []
        for t in range(4):
            K = data.draw(ints(-(1 << 23), (1 << 23) - 1))
            S = data.draw(st.integers(22, 30))
            ch.append(spec.Constant(K, S))
        consts.append(tuple(ch))
    b_out = data.draw(st.integers(1, 16))
    rq = model.Requant(tuple(consts), r, b_out)
    got = model.requantize(acc, sa, sw, rq)
    lo, hi = naive.code_range(b_out, False)
    for p in range(P):
        for c in range(C):
            KS = [(k.K, k.S) for k in consts[c]]
            assert got[p, c] == naive.requantize(int(acc[p, c]), int(sa[p, c]), int(sw[c]), KS,
                                                 r, lo, hi)


@given(data=st.data(), r=ROUNDINGS)
def test_dqt_add_and_mul_match_oracle(data, r):
    b1, b2, bo = (data.draw(st.integers(1, 8)) for _ in range(3))
    L = data.draw(st.integers(1, 8))
    q1 = data.draw(code_array((L,), b1, False))
    q2 = data.draw(code_array((L,), b2, False))
    # shifts within 10 of each other keep the aligned sum inside the model's 63-bit datapath
    ks = [spec.Constant(data.draw(ints(-(1 << 31), (1 << 31) - 1)), data.draw(st.integers(30, 40)))
          for _ in range(4)]
    lo, hi = naive.code_range(bo, False)
    add = model.dqt_add(q1, q2, ks[:3], rounding=r, b_out=bo)
    mul = model.dqt_mul(q1, q2, ks, rounding=r, b_out=bo)
    for i in range(L):
        x, y = int(q1[i]), int(q2[i])
        assert add[i] == naive.lincomb([x, y, 1], [(k.K, k.S) for k in ks[:3]], r, lo, hi)
        assert mul[i] == naive.lincomb([x * y, x, y, 1], [(k.K, k.S) for k in ks], r, lo, hi)


@given(data=st.data(), r=ROUNDINGS)
def test_pooling_matches_oracle(data, r):
    k = data.draw(st.integers(1, 3))
    stride = data.draw(st.integers(1, 3))
    x = data.draw(code_array((1, 2, data.draw(st.integers(k, 6)), data.draw(st.integers(k, 6))),
                             8, data.draw(st.booleans())))
    np.testing.assert_array_equal(model.max_pool2d(x, kernel=k, stride=stride),
                                  naive.pool(x.tolist(), k, stride, "max"))
    np.testing.assert_array_equal(model.avg_pool2d(x, kernel=k, stride=stride, rounding=r),
                                  naive.pool(x.tolist(), k, stride, "avg", r))


def test_edge_values_cover_powers_of_two():
    ev = edge_values(0, 255)
    assert {0, 1, 2, 126, 127, 128, 129, 130, 253, 254, 255} <= set(ev)


def test_requantize_refuses_a_sum_beyond_63_bits():
    rq = model.Requant(((spec.Constant(-(1 << 31), 40), spec.Constant(1, 0), spec.Constant(0, 0),
                         spec.Constant(0, 0)),), "floor", 8)
    with pytest.raises(ValueError, match=r"^requantization of channel 0: the integer sum can "
                                         r"reach \d+ \(\d+ bits\), beyond the model's exact "
                                         r"63-bit datapath"):
        model.requantize(np.array([[1 << 31]]), np.array([[1]]), np.array([0]), rq)


def test_a_negative_shift_counts_in_the_datapath_bound():
    # S = -62 makes the requantization a left shift by 62: the sum 3 << 62 does not fit
    c = (spec.Constant(1, -62, 32),) + (spec.Constant(0, 0),) * 3
    rq = model.Requant((c,), "floor", 8)
    with pytest.raises(ValueError, match=r"^requantization of channel 0: the integer sum can "
                                         r"reach 13835058055282163712 \(65 bits\)"):
        model.requantize(np.array([[3]]), np.array([[0]]), np.array([0]), rq)
    with pytest.raises(ValueError, match=r"^lincomb: the integer sum can reach 13835058055282163712"):
        model.lincomb([np.array([3])], [c[0]], rounding="floor", lo=0, hi=255)
    # within the datapath a negative S is an exact left shift, as in the spec
    c = (spec.Constant(3, -4, 32),) + (spec.Constant(0, 0),) * 3
    rq = model.Requant((c,), "floor", 8)
    got = model.requantize(np.array([[2], [9]]), np.array([[0], [0]]), np.array([0]), rq)
    assert got.ravel().tolist() == [spec.lincomb([x, 0, 0, 1], c, "floor", 0, 255) for x in (2, 9)]
