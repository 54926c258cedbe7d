"""Bad input gets a clear ValueError/TypeError naming the values (one test per message)."""

import numpy as np
import pytest

from dqt_hw import model, spec

A = np.zeros((2, 3), np.int64)
W8 = np.zeros((3, 4), np.int64)


def test_view_width_above_master():
    with pytest.raises(ValueError, match=r"^width b = 9 is above the master width n = 8$"):
        model.nested_view(A, n=8, b=9, rounding="floor")


def test_view_codes_out_of_range_name_index_and_value():
    q = np.array([[0, 5], [300, 1]])
    with pytest.raises(ValueError, match=r"^codes holds code 300 at index \(1, 0\), outside \[0, 255\]$"):
        model.nested_view(q, n=8, b=4, rounding="floor")


def test_codes_of_the_wrong_dtype():
    with pytest.raises(TypeError, match=r"^codes must have an integer dtype, not float64$"):
        model.nested_view(np.zeros(3), n=8, b=4, rounding="floor")
    with pytest.raises(TypeError, match=r"^a must have an integer dtype, not bool$"):
        model.gemm(np.zeros((2, 2), bool), W8[:2], acc_width=32, overflow="wrap")
    with pytest.raises(TypeError, match=r"^a must be an integer array, not dict$"):
        model.gemm({}, W8, acc_width=32, overflow="wrap")


def test_accumulator_narrower_than_one_product():
    a = np.full((1, 2), 255)
    w = np.full((2, 1), 255)
    with pytest.raises(ValueError, match=r"^acc_width = 16 is narrower than one product: \|a\| up "
                                         r"to 255 times \|w\| up to 255 gives 65025, which needs 17 bits$"):
        model.gemm(a, w, acc_width=16, overflow="wrap")
    with pytest.raises(ValueError, match=r"^acc_width must be in \[2, 48\], not 64$"):
        model.gemm(a, w, acc_width=64, overflow="wrap")


def test_layer_accumulator_narrower_than_the_widths_product():
    f = spec.Format(8)
    rq = model.Requant(((spec.Constant(1, 0),) * 4,) * 4, "floor", 8)
    with pytest.raises(ValueError, match=r"^acc_width = 12 is narrower than one product of a 8-bit "
                                         r"by a 6-bit code \(16065 needs 15 bits\)$"):
        model.dense_layer(A, W8, a_fmt=f, w_fmt=f, b_a=8, b_w=6, view_rounding="floor",
                          acc_width=12, overflow="wrap", requant=rq)


def test_layer_width_outside_the_format_set():
    f = spec.Format(8, widths=(4, 8))
    rq = model.Requant(((spec.Constant(1, 0),) * 4,) * 4, "floor", 8)
    with pytest.raises(ValueError, match=r"^width 6 is not in the format's widths \(4, 8\)$"):
        model.dense_layer(A, W8, a_fmt=f, w_fmt=f, b_a=8, b_w=6, view_rounding="floor",
                          acc_width=32, overflow="wrap", requant=rq)


def test_shape_mismatches():
    with pytest.raises(ValueError, match=r"^shape mismatch: a is \(2, 3\), w is \(4, 4\) \(K 3 != 4\)$"):
        model.gemm(A, np.zeros((4, 4), np.int64), acc_width=32, overflow="wrap")
    with pytest.raises(ValueError, match=r"^shape mismatch: w has 3 input channels per group, x has "
                                         r"4 channels / 1 groups = 4$"):
        model.conv2d(np.zeros((1, 4, 5, 5), np.int64), np.zeros((2, 3, 3, 3), np.int64),
                     acc_width=32, overflow="wrap")
    with pytest.raises(ValueError, match=r"^groups = 3 must divide the 4 input and 6 output channels$"):
        model.conv2d(np.zeros((1, 4, 5, 5), np.int64), np.zeros((6, 1, 3, 3), np.int64),
                     groups=3, acc_width=32, overflow="wrap")
    with pytest.raises(ValueError, match=r"^kernel 7x7 does not fit the 5x5 input with padding 0$"):
        model.conv2d(np.zeros((1, 1, 5, 5), np.int64), np.zeros((1, 1, 7, 7), np.int64),
                     acc_width=32, overflow="wrap")
    rq = model.Requant(((spec.Constant(1, 0),) * 4,) * 3, "floor", 8)
    with pytest.raises(ValueError, match=r"^acc has 4 channels on axis 1, the requantization 3$"):
        model.requantize(np.zeros((2, 4), np.int64), np.zeros((2, 1), np.int64),
                         np.zeros(4, np.int64), rq)


def test_bad_modes():
    with pytest.raises(ValueError, match=r"^overflow must be one of \('wrap', 'saturate', 'trap'\), not 'none'$"):
        model.gemm(A, W8, acc_width=32, overflow="none")
    with pytest.raises(ValueError, match=r"^rounding must be one of"):
        model.avg_pool2d(np.zeros((1, 1, 2, 2), np.int64), kernel=2, rounding="round")


def test_requant_validates_constants_and_clamp():
    with pytest.raises(TypeError, match=r"^channel 0 must have 4 dqt_hw\.spec\.Constant \(k1\.\.k4\)"):
        model.Requant(((1, 2, 3, 4),), "floor", 8)
    with pytest.raises(ValueError, match=r"^clamp \(0, 300\) must lie within the 8-bit code range \[0, 255\]"):
        model.Requant(((spec.Constant(1, 0),) * 4,), "floor", 8, clamp=(0, 300))
    with pytest.raises(ValueError, match=r"^lincomb: the integer sum can reach \d+ \(\d+ bits\), beyond"):
        model.lincomb([np.array([1 << 40])], [spec.Constant(1 << 30, -20)], rounding="floor",
                      lo=0, hi=1)
