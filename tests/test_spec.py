"""dqt_hw.spec primitives against the oracle (tests/naive.py), and their error messages."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

import naive
from dqt_hw import spec
from strategies import ROUNDINGS, codes, ints

BIG = 1 << 70


@given(x=ints(-BIG, BIG), s=st.integers(-8, 80), r=ROUNDINGS)
def test_round_shift_matches_oracle(x, s, r):
    assert spec.round_shift(x, s, r) == naive.round_shift(x, s, r)


@given(x=ints(-BIG, BIG), d=st.integers(1, 1000), r=ROUNDINGS)
def test_round_div_matches_oracle(x, d, r):
    assert spec.round_div(x, d, r) == naive.round_div(x, d, r)


def test_round_shift_ties_by_mode():
    # -2.5, -1.5, 1.5, 2.5 at s = 1: the four modes differ exactly on ties
    xs = [-5, -3, 3, 5]
    assert [spec.round_shift(x, 1, "floor") for x in xs] == [-3, -2, 1, 2]
    assert [spec.round_shift(x, 1, "half_up") for x in xs] == [-2, -1, 2, 3]
    assert [spec.round_shift(x, 1, "half_even") for x in xs] == [-2, -2, 2, 2]
    assert [spec.round_shift(x, 1, "half_away") for x in xs] == [-3, -2, 2, 3]


@given(data=st.data(), n=st.integers(2, 16), signed=st.booleans(), r=ROUNDINGS)
def test_nested_view_matches_oracle(data, n, signed, r):
    b = data.draw(st.integers(2 if signed else 1, n))
    q = data.draw(codes(n, signed))
    assert spec.nested_view(q, n, b, r, signed=signed) == naive.nested_view(q, n, b, r, signed)


def test_nested_view_floor_is_a_shift_and_half_up_is_eq4():
    for q in range(256):
        for b in range(1, 9):
            assert spec.nested_view(q, 8, b, "floor") == q >> (8 - b)
            if b < 8:
                eq4 = min((q + (1 << (7 - b))) >> (8 - b), (1 << b) - 1)
            else:
                eq4 = q
            assert spec.nested_view(q, 8, b, "half_up") == eq4


@given(x=ints(-BIG, BIG), w=st.integers(1, 80))
def test_wrap_saturate_match_oracle(x, w):
    assert spec.wrap(x, w) == naive.wrap(x, w)
    assert spec.saturate(x, w) == naive.saturate(x, w)


@given(k=st.floats(-1e12, 1e12, allow_nan=False), bits=st.integers(2, 48))
def test_quantize_constant_is_normalized_and_accurate(k, bits):
    c = spec.quantize_constant(k, bits=bits)
    if k == 0:
        assert (c.K, c.S) == (0, 0)
        return
    assert 1 << (bits - 2) <= abs(c.K) <= 1 << (bits - 1)
    # float reference: relative error at most half an ulp of a bits-1 mantissa
    assert c.rel_error <= 2.0 ** -(bits - 2)


@given(k=st.floats(1e-9, 1e9), d=st.integers(-40, 40), neg=st.booleans())
def test_width_switch_changes_only_the_shift(k, d, neg):
    k = -k if neg else k
    c = spec.quantize_constant(k)
    fresh = spec.quantize_constant(math.ldexp(k, d))
    assert fresh == c.scaled_pow2(d)
    assert fresh.K == c.K and fresh.S == c.S - d


@given(data=st.data(), r=ROUNDINGS)
def test_lincomb_matches_oracle(data, r):
    t = data.draw(st.integers(1, 4))
    terms = data.draw(st.lists(ints(-(1 << 40), 1 << 40), min_size=t, max_size=t))
    Ks = data.draw(st.lists(ints(-(1 << 31), (1 << 31) - 1), min_size=t, max_size=t))
    Ss = data.draw(st.lists(st.integers(-10, 60), min_size=t, max_size=t))
    cs = [spec.Constant(K, S) for K, S in zip(Ks, Ss)]
    lo, hi = -(1 << 20), 1 << 20
    assert spec.lincomb(terms, cs, r, lo, hi) == naive.lincomb(terms, list(zip(Ks, Ss)), r, lo, hi)


# ---------------------------------------------------------------------------- errors


def test_format_validates():
    with pytest.raises(ValueError, match=r"^master width n must be in \[2, 16\], not 17$"):
        spec.Format(17)
    with pytest.raises(TypeError, match=r"^master width n must be an integer, not 8\.0$"):
        spec.Format(8.0)
    with pytest.raises(ValueError, match=r"^step delta must be positive, not -1\.0$"):
        spec.Format(8, delta=-1.0)
    with pytest.raises(ValueError, match=r"^a signed \(symmetric\) format has m = 0, not m = 0\.5$"):
        spec.Format(8, signed=True, m=0.5)
    with pytest.raises(ValueError, match=r"width 9 in widths \(4, 9\) is outside \[1, 8\]"):
        spec.Format(8, widths=(4, 9))
    f = spec.Format(8, widths=(2, 4, 8))
    with pytest.raises(ValueError, match=r"^width 3 is not in the format's widths \(2, 4, 8\)$"):
        f.check_width(3)
    with pytest.raises(ValueError, match=r"^width 9 is above the master width n = 8$"):
        f.check_width(9)


def test_nested_view_validates():
    with pytest.raises(ValueError, match=r"^width b = 9 is above the master width n = 8$"):
        spec.nested_view(3, 8, 9, "floor")
    with pytest.raises(ValueError, match=r"^code q = 256 is outside \[0, 255\] for master width n = 8$"):
        spec.nested_view(256, 8, 4, "floor")
    with pytest.raises(ValueError, match=r"^code q = 128 is outside \[-128, 127\]"):
        spec.nested_view(128, 8, 4, "floor", signed=True)
    with pytest.raises(ValueError, match=r"^width b = 1 is below 2, the narrowest signed view$"):
        spec.nested_view(1, 8, 1, "floor", signed=True)
    with pytest.raises(ValueError, match=r"^rounding must be one of \('floor', 'half_up', 'half_even', 'half_away'\), not 'nearest'$"):
        spec.nested_view(1, 8, 4, "nearest")
    with pytest.raises(TypeError, match=r"^rounding must be a string"):
        spec.round_shift(1, 1, None)
    with pytest.raises(TypeError, match=r"^code q must be an integer, not 1\.5$"):
        spec.nested_view(1.5, 8, 4, "floor")


def test_constant_validates():
    with pytest.raises(ValueError, match=r"^constant K = 128 does not fit its declared width of 8 bits \(\[-128, 127\]\)$"):
        spec.Constant(128, 0, bits=8)
    with pytest.raises(ValueError, match=r"^constant must be finite, not inf$"):
        spec.quantize_constant(math.inf)
    with pytest.raises(ValueError, match=r"^constant width must be in \[2, 48\] bits, not 64$"):
        spec.quantize_constant(1.0, bits=64)
    with pytest.raises(ValueError, match=r"^overflow must be one of \('wrap', 'saturate', 'trap'\), not 'clip'$"):
        spec.check_overflow("clip")
