"""Float <-> code helpers (float side: the one place tolerances belong, stated per test)."""

import numpy as np
import pytest

from dqt_hw import spec


def test_per_tensor_round_trip_within_half_a_step(rng):
    x = rng.normal(0, 3, (4, 5, 6))
    for signed in (False, True):
        q, f = spec.quantize_per_tensor(x, 8, signed=signed)
        lo, hi = f.code_range()
        assert q.dtype == np.int64 and lo <= q.min() and q.max() <= hi
        # float reference: rounding to the nearest code errs by at most half a step
        assert np.abs(spec.dequantize(q, f) - x).max() <= f.delta / 2 * (1 + 1e-9)
    q, f = spec.quantize_per_tensor(x, 8)
    assert q.min() == 0 and q.max() == 255  # the range is used end to end


def test_per_channel_formats_follow_each_channel(rng):
    w = rng.normal(0, 1, (3, 4, 3, 3)) * np.array([0.1, 1.0, 10.0])[:, None, None, None]
    q, fmts = spec.quantize_per_channel(w, 8, axis=0)
    assert len(fmts) == 3 and q.shape == w.shape
    for c in range(3):
        assert fmts[c].m == pytest.approx(w[c].min())  # float reference, exact up to rounding
        # float reference: within half a step of the channel's own scale
        assert np.abs(fmts[c].real(q[c]) - w[c]).max() <= fmts[c].delta / 2 * (1 + 1e-9)


def test_nested_views_of_quantized_data_use_the_nested_step(rng):
    x = rng.uniform(-1, 1, 1000)
    q, f = spec.quantize_per_tensor(x, 8)
    from dqt_hw import model

    for b in range(1, 9):
        v = model.nested_view(q, n=8, b=b, rounding="half_up")
        # float reference: a half_up view errs by at most half its step, plus the master
        # rounding, except where the top code clamps
        err = np.abs(f.real(v, b) - x)
        top = v == (1 << b) - 1
        assert err[~top].max() <= f.delta_at(b) / 2 + f.delta / 2 + 1e-12


def test_fit_format_refuses_a_reversed_range():
    with pytest.raises(ValueError, match=r"^range minimum 2\.0 is above its maximum 1\.0$"):
        spec.fit_format(2.0, 1.0, 8)
