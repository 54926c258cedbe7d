"""An independent implementation checks the model: at W = 32 on uint8 codes, conv2d equals
onnxruntime's ConvInteger exactly, over random shapes, strides and paddings."""

import numpy as np
import pytest

from dqt_hw import model
from dqt_hw.peers import conv_integer_session


@pytest.mark.parametrize("w_signed", [False, True])
def test_conv2d_equals_conv_integer(rng, w_signed):
    for trial in range(25):
        N, C, O = rng.integers(1, 3), rng.integers(1, 20), rng.integers(1, 12)
        kh = kw = int(rng.choice([1, 3, 5]))
        pad = int(rng.integers(0, 3))
        stride = int(rng.integers(1, 3))
        H, W = (int(v) for v in rng.integers(max(1, kh - 2 * pad), 12, 2))
        x = rng.integers(0, 256, (N, C, H, W)).astype(np.uint8)
        if w_signed:
            w = rng.integers(-128, 128, (O, C, kh, kw)).astype(np.int8)
        else:
            w = rng.integers(0, 256, (O, C, kh, kw)).astype(np.uint8)
        sess = conv_integer_session(x.shape, w, stride=stride, padding=pad, threads=1,
                                    w_dtype=w.dtype)
        want = sess.run(None, {"x": x})[0]
        got = model.conv2d(x, w, stride=stride, padding=pad, acc_width=32, overflow="wrap")
        assert got.shape == want.shape, (trial, got.shape, want.shape)
        np.testing.assert_array_equal(got, want.astype(np.int64), err_msg=f"trial {trial}")
