"""Bit-plane form (docs/arithmetic.md section 2.3): the spec, the numpy model and the
oracle in tests/naive.py agree bit for bit, a plane array round-trips, and a view read
from the prefix of planes_read rows equals the nested view of the full codes, for every
n in 2..16, every b, all four roundings, signed and unsigned."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

import naive
from dqt_hw import model, spec
from strategies import codes, edge_values

ROUNDINGS = ("floor", "half_up", "half_even", "half_away")
NS = range(2, 17)


def _widths(n, signed):
    return range(2 if signed else 1, n + 1)


def _code_lists(n, signed):
    # up to 130 elements: one word, a full word, and a partial third word
    return st.lists(codes(n, signed), min_size=0, max_size=130)


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("n", NS)
@settings(max_examples=12, deadline=None)
@given(data=st.data())
def test_round_trip_and_views(n, signed, data):
    q = data.draw(_code_lists(n, signed))
    rows = naive.to_planes(q, n)
    assert spec.to_planes(q, n, signed=signed) == rows
    P = model.to_planes(np.array(q, np.int64), n=n, signed=signed)
    assert P.dtype == np.uint64 and P.shape == (n, -(-len(q) // 64))
    assert P.tolist() == rows
    assert spec.from_planes(rows, n, len(q), signed=signed) == q
    assert naive.from_planes(rows, n, len(q), signed) == q
    assert_array_equal(model.from_planes(P, n=n, shape=(len(q),), signed=signed),
                       np.array(q, np.int64))
    for rounding in ROUNDINGS:
        for b in _widths(n, signed):
            k = spec.planes_read(n, b, rounding, signed=signed)
            want = [naive.nested_view(v, n, b, rounding, signed) for v in q]
            # the oracle's own proof: the codes rebuilt from k rows have the same view
            part = naive.from_planes(rows[:k], n, len(q), signed)
            assert [naive.nested_view(v, n, b, rounding, signed) for v in part] == want
            assert spec.view_from_planes(rows[:k], n, b, rounding, len(q),
                                         signed=signed) == want
            got = model.view_from_planes(P[:k], n=n, b=b, rounding=rounding,
                                         shape=(len(q),), signed=signed)
            assert_array_equal(got, np.array(want, np.int64).reshape(len(q)))


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("n", NS)
def test_edge_values_every_width(n, signed):
    """Every 2^i +- {0, 1, 2}, min and max +- 2 of the code range, in one array (2-D, so
    the C-order flattening is exercised)."""
    lo, hi = naive.code_range(n, signed)
    q = edge_values(lo, hi)
    q = q + q[::-1]
    if len(q) % 2:
        q.append(lo)
    a = np.array(q, np.int64).reshape(2, -1)
    P = model.to_planes(a, n=n, signed=signed)
    assert P.tolist() == naive.to_planes(a.ravel().tolist(), n)
    assert_array_equal(model.from_planes(P, n=n, shape=a.shape, signed=signed), a)
    for rounding in ROUNDINGS:
        for b in _widths(n, signed):
            k = model.planes_read(n, b, rounding, signed=signed)
            want = np.array([[naive.nested_view(int(v), n, b, rounding, signed) for v in r]
                             for r in a], np.int64)
            assert_array_equal(model.view_from_planes(P[:k], n=n, b=b, rounding=rounding,
                                                      shape=a.shape, signed=signed), want)
            assert_array_equal(model.view_from_planes(P, n=n, b=b, rounding=rounding,
                                                      shape=a.shape, signed=signed), want)


def test_planes_read_is_the_oracles():
    for n in NS:
        for signed in (False, True):
            for b in _widths(n, signed):
                for r in ROUNDINGS:
                    assert spec.planes_read(n, b, r, signed=signed) == \
                        naive.planes_read(n, b, r)
    assert model.planes_read is spec.planes_read


def _fewest_rows(n, b, r, signed):
    """The fewest prefix rows from which every code's view is right (exhaustive)."""
    lo, hi = naive.code_range(n, signed)
    q = list(range(lo, hi + 1))
    rows = naive.to_planes(q, n)
    want = [naive.nested_view(v, n, b, r, signed) for v in q]
    return next(k for k in range(n + 1)
                if [naive.nested_view(v, n, b, r, signed)
                    for v in naive.from_planes(rows[:k], n, len(q), signed)] == want)


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("n", [2, 3, 5, 6])
def test_planes_read_is_tight(n, signed):
    """planes_read is the fewest rows that give every code's view, except where the
    contract reads more than it must: unsigned half_away with b < n - 1 (on codes >= 0
    it is half_up: b + 1 rows would do) and the 1-bit unsigned half_even view of n = 2
    (its clamp hides the low plane)."""
    for r in ROUNDINGS:
        for b in _widths(n, signed):
            k, fewest = spec.planes_read(n, b, r, signed=signed), _fewest_rows(n, b, r, signed)
            if not signed and r == "half_away" and b < n - 1:
                assert (k, fewest) == (n, b + 1)
            elif (n, b, r, signed) == (2, 1, "half_even", False):
                assert (k, fewest) == (2, 1)
            else:
                assert k == fewest, (n, b, r)


def test_layout_by_hand():
    """The layout in words: codes 5 (0b101) and 2 (0b010) at n = 3: row 0 (plane 2) has
    element 0's bit, row 1 (plane 1) element 1's, row 2 (plane 0) element 0's."""
    P = model.to_planes(np.array([5, 2]), n=3)
    assert P.tolist() == [[0b01], [0b10], [0b01]]
    # signed -1 at n = 4 is 0b1111: every plane; element 65 sits in word 1, bit 1
    q = np.zeros(66, np.int64)
    q[65] = -1
    P = model.to_planes(q, n=4, signed=True)
    assert P.tolist() == [[0, 2]] * 4


def test_large_array_against_spec():
    rng = np.random.default_rng(7)
    q = rng.integers(-2**11, 2**11, (3, 5, 67))
    P = model.to_planes(q, n=12, signed=True)
    assert P.tolist() == spec.to_planes(q.ravel().tolist(), 12, signed=True)
    assert_array_equal(model.from_planes(P, n=12, shape=q.shape, signed=True), q)


def test_spec_word_width_is_a_parameter():
    q = [3, 0, 1, 2, 3, 1, 0, 2, 1]
    for W in (1, 4, 8, 64):
        rows = spec.to_planes(q, 2, word_bits=W)
        assert rows == naive.to_planes(q, 2, W)
        assert spec.from_planes(rows, 2, len(q), word_bits=W) == q


# ----------------------------------------------------------------------------- refusals


def test_model_refusals():
    P = model.to_planes(np.arange(70), n=8)
    with pytest.raises(ValueError, match=r"^codes holds code 256 at index \(1,\), outside \[0, 255\]$"):
        model.to_planes(np.array([0, 256]), n=8)
    with pytest.raises(TypeError, match=r"^codes must have an integer dtype, not float64$"):
        model.to_planes(np.zeros(3), n=8)
    with pytest.raises(TypeError, match=r"^plane array must have dtype uint64, not int64$"):
        model.from_planes(P.astype(np.int64), n=8, shape=(70,))
    with pytest.raises(TypeError, match=r"^plane array must be a numpy uint64 array, not list$"):
        model.from_planes(P.tolist(), n=8, shape=(70,))
    with pytest.raises(ValueError, match=r"^plane array has shape \(8, 2\); 129 codes take "
                                         r"\(8, 3\) \(8 rows of ceil\(129 / 64\) words\)$"):
        model.from_planes(P, n=8, shape=(129,))
    with pytest.raises(ValueError, match=r"^plane array has shape \(7, 2\); 70 codes take \(8, 2\)"):
        model.from_planes(P[1:], n=8, shape=(70,))
    bad = P.copy()
    bad[3, 1] |= np.uint64(1) << np.uint64(6)  # element 70: padding
    with pytest.raises(ValueError, match=r"^plane row 3 has padding bit 70 set \(word 1; "
                                         r"only the first 70 bits of a row are elements\)$"):
        model.from_planes(bad, n=8, shape=(70,))
    with pytest.raises(ValueError, match=r"^plane rows of the 4-bit half_up view has shape "
                                         r"\(4, 2\); 70 codes take \(5 to 8, 2\)"):
        model.view_from_planes(P[:4], n=8, b=4, rounding="half_up", shape=(70,))
    with pytest.raises(ValueError, match=r"^width b = 9 is above the master width n = 8$"):
        model.view_from_planes(P, n=8, b=9, rounding="floor", shape=(70,))
    with pytest.raises(ValueError, match=r"^width b = 0 is below 1, the narrowest unsigned view$"):
        model.planes_read(8, 0, "floor")
    with pytest.raises(ValueError, match=r"^width b = 1 is below 2, the narrowest signed view$"):
        model.planes_read(8, 1, "floor", signed=True)
    with pytest.raises(ValueError, match=r"^rounding must be one of"):
        model.planes_read(8, 4, "nearest")
    with pytest.raises(ValueError, match=r"^master width n must be in \[2, 16\], not 17$"):
        model.to_planes(np.arange(3), n=17)
    with pytest.raises(TypeError, match=r"^shape must be a tuple of integers, not 'x'$"):
        model.from_planes(P, n=8, shape="x")


def test_spec_refusals():
    with pytest.raises(ValueError, match=r"^code 1 = -1 is outside \[0, 3\] for master width n = 2$"):
        spec.to_planes([0, -1], 2)
    with pytest.raises(ValueError, match=r"^a plane array of master width n = 3 has 3 rows, not 2$"):
        spec.from_planes([[0], [0]], 3, 1)
    with pytest.raises(ValueError, match=r"^plane row 0 word 0 = 0x2 has padding bits set "
                                         r"\(only its low 1 bits are elements\)$"):
        spec.from_planes([[2], [0]], 2, 1)
    with pytest.raises(ValueError, match=r"^plane row 1 has 2 words, 3 elements take 1 of 64 bits$"):
        spec.from_planes([[0], [0, 0]], 2, 3)
    with pytest.raises(ValueError, match=r"^the 2-bit floor view of n = 4 codes reads 2 plane "
                                         r"rows; 1 given \(between 2 and 4\)$"):
        spec.view_from_planes([[0]], 4, 2, "floor", 1)
    with pytest.raises(ValueError, match=r"^plane row 0 word 0 = 256 is not a 8-bit word$"):
        spec.from_planes([[256], [0]], 2, 8, word_bits=8)
    with pytest.raises(TypeError, match=r"^code 0 must be an integer, not 1.5$"):
        spec.to_planes([1.5], 4)
    with pytest.raises(ValueError, match=r"^word width word_bits must be at least 1, not 0$"):
        spec.to_planes([1], 4, word_bits=0)
