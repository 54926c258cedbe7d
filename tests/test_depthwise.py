"""Depthwise convolutions (dqt_hw.model.depthwise: one input channel per group) against
the oracle, bit for bit: the public conv2d and the fused layer in both layouts, every
accumulator type the ranges can pick, several units per image and two threads, and the
choice of types at its bounds."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import naive
from dqt_hw import model
from dqt_hw import settings as dsettings
from dqt_hw.model import depthwise
from strategies import codes
from test_perf_paths import _forced_fused, layer_case, num_threads, oracle_layer

TYPES = [(np.int16, np.int32), (np.int32, np.int32), (np.int64, np.int64)]


@pytest.fixture(params=["serial", "units"])
def dw_mode(request, monkeypatch):
    """serial: one unit an image, the calling thread; units: a band of one output row
    per unit (each builds its own padded rows), over two of Numba's threads."""
    if request.param == "serial":
        monkeypatch.setattr(dsettings, "DEPTHWISE_SERIAL_WORK", 1 << 62)
        yield request.param
        return
    monkeypatch.setattr(dsettings, "DEPTHWISE_SERIAL_WORK", 0)
    monkeypatch.setattr(dsettings, "DEPTHWISE_BLOCK", 1)
    with num_threads(2):
        yield request.param


@st.composite
def dw_case(draw):
    groups = draw(st.integers(2, 7))
    Og = draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    kh, kw = draw(st.sampled_from([(3, 3), (kh, kw)]))  # 3 x 3 has a path of its own
    pad = draw(st.integers(0, 2))
    stride = draw(st.integers(1, 3))
    H = draw(st.integers(max(1, kh - 2 * pad), 9))
    Wd = draw(st.integers(max(1, kw - 2 * pad), 9))
    bx, sx = draw(st.integers(1, 16)), draw(st.booleans())
    bw, sw = draw(st.integers(2, 16)), draw(st.booleans())
    x = draw(hnp.arrays(np.int64, (draw(st.integers(1, 3)), groups, H, Wd),
                        elements=codes(bx, sx)))
    w = draw(hnp.arrays(np.int64, (groups * Og, 1, kh, kw), elements=codes(bw, sw)))
    pad_code = draw(codes(bx, sx))
    return x, w, stride, pad, groups, pad_code


def _bounds(x, w, pad, pad_code):
    xlo, xhi = int(x.min()), int(x.max())
    if pad:
        xlo, xhi = min(xlo, pad_code), max(xhi, pad_code)
    return max(abs(xlo), abs(xhi)), max(abs(int(w.min())), abs(int(w.max())))


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=dw_case(), W=st.integers(8, 48))
def test_depthwise_conv2d_matches_oracle(case, W, dw_mode, monkeypatch):
    """conv2d takes the depthwise path (wrapping accumulators, sums that overflow W
    too) and gives the oracle's accumulators; so does the kernel in every type wide
    enough for the ranges, in both layouts."""
    x, w, stride, pad, groups, pad_code = case
    A, B = _bounds(x, w, pad, pad_code)
    W = max(W, (A * B).bit_length() + 1)  # (conv2d refuses a W narrower than a product)
    want = np.array(naive.conv2d(x.tolist(), w.tolist(), stride, pad, groups, W, "wrap",
                                 pad_code)[0], dtype=np.int64)
    K = w.shape[2] * w.shape[3]
    calls = []
    orig = depthwise.conv
    monkeypatch.setattr(depthwise, "conv", lambda *a, **k: calls.append(1) or orig(*a, **k))
    got = model.conv2d(x, w, stride=stride, padding=pad, groups=groups, acc_width=W,
                       overflow="wrap", pad_code=pad_code)
    np.testing.assert_array_equal(got, want)
    assert calls  # (every sum fits int64 here: K A B < 2^62)
    cs = model.ConvArgs(stride, pad, groups, pad_code, W)
    need = depthwise.dtypes(A, B, K)
    xl = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    for dts in TYPES:
        if need is None or np.dtype(dts[1]).itemsize < np.dtype(need[1]).itemsize or (
                np.dtype(dts[0]).itemsize < np.dtype(need[0]).itemsize):
            continue
        np.testing.assert_array_equal(orig(x, w, cs, dts), want)
        np.testing.assert_array_equal(orig(xl, w, cs, dts, nhwc=True),
                                      want.transpose(0, 2, 3, 1))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(c=layer_case(depthwise=True), W=st.integers(33, 48),
       overflow=st.sampled_from(["wrap", "saturate"]))
def test_depthwise_fused_layer_matches_oracle(c, W, overflow, dw_mode):
    """The fused depthwise layer (nested view, side sums, requantization) in both
    layouts: the oracle's codes."""
    fc = _forced_fused(c, W, overflow)
    if not fc.ok:
        return  # the general path's case (test_perf_paths checks that one)
    assert fc.dw is not None and fc.nhwc
    want = oracle_layer(c, W, overflow)
    np.testing.assert_array_equal(fc.run(c["x"]), want)
    xl = np.ascontiguousarray(c["x"].transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(fc.run_nhwc(xl, True), want.transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(fc.run_nhwc(c["x"], False), want.transpose(0, 2, 3, 1))


def test_depthwise_large_layer_every_mode(dw_mode, rng):
    """A MobileNet-sized 3 x 3 layer at 8 bits (int16 block, int32 sums), strides 1 and
    2, one output per channel and two: the oracle's sums at every output checked by
    NumPy in int64 (the sums of a 3 x 3 window, exact there)."""
    for stride, Og in ((1, 1), (2, 1), (1, 2)):
        x = rng.integers(0, 256, (2, 40, 15, 13)).astype(np.uint8)
        w = rng.integers(-128, 128, (40 * Og, 1, 3, 3)).astype(np.int8)
        got = model.conv2d(x, w, stride=stride, padding=1, groups=40, acc_width=32,
                           overflow="wrap", pad_code=3)
        xp = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=3)
        xp = np.repeat(xp, Og, axis=1)
        Ho, Wo = got.shape[2:]
        want = np.zeros_like(got)
        for ky in range(3):
            for kx in range(3):
                tap = xp[:, :, ky:ky + stride * (Ho - 1) + 1:stride,
                         kx:kx + stride * (Wo - 1) + 1:stride]
                want += tap * w[:, 0, ky, kx].astype(np.int64)[None, :, None, None]
        assert want.min() < 0 < want.max()
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("stride,Og,b_a", [(1, 1, 8), (2, 1, 8), (1, 2, 6), (2, 3, 5)])
def test_depthwise_fused_layer_side_sums_count(stride, Og, b_a, dw_mode, rng):
    """A MobileNet-sized fused 3 x 3 layer whose constants give sum_a a weight of tens
    of output codes (random constants mostly shift it away): run and run_nhwc give the
    general path's codes (``conv_layer`` with ``stats``), spread over the code range."""
    from dqt_hw import spec

    C = 24
    x = rng.integers(0, 256, (3, C, 11, 9))
    w = rng.integers(0, 256, (C * Og, 1, 3, 3))
    # acc (std about 4e4 at 8 bits) about 60 codes of spread, sum_a (about 220) about
    # 30, centred near 128
    consts = tuple((spec.Constant(int(rng.integers(1 << 26, 1 << 27)), 36),
                    spec.Constant(-int(rng.integers(1 << 27, 1 << 28)), 30),
                    spec.Constant(int(rng.integers(-(1 << 10), 1 << 10)), 20),
                    spec.Constant(int(rng.integers(60, 80)) << 20, 20))
                   for _ in range(C * Og))
    kw = dict(a_fmt=spec.Format(8), w_fmt=spec.Format(8), b_a=b_a, b_w=8,
              view_rounding="half_even", acc_width=32, overflow="wrap",
              requant=model.Requant(consts, "half_up", 8),
              geometry=model.ConvGeometry(stride, 1, C, 3))
    want, _ = model.conv_layer(x, w, stats=True, **kw)
    assert len(np.unique(want)) > 16
    fc = model.fused_conv(w, x.shape, **kw)
    assert fc.ok and fc.dw is not None
    np.testing.assert_array_equal(fc.run(x), want)
    xl = np.ascontiguousarray(x.transpose(0, 2, 3, 1).astype(np.uint8))
    np.testing.assert_array_equal(fc.run_nhwc(xl, True), want.transpose(0, 2, 3, 1))


def test_depthwise_types_at_their_bounds():
    """int32 sums up to 2^31 - 1, int16 codes up to 2^15 - 1, int64 below 2^62, and no
    type at all from there: max(A B, A) taps is the bound."""
    assert depthwise.dtypes(255, 128, 9) == (np.int16, np.int32)
    assert depthwise.dtypes(32767, 32767, 1) == (np.int16, np.int32)
    assert depthwise.dtypes(32768, 1, 9) == (np.int32, np.int32)
    m = (1 << 31) - 1  # a prime: A B taps = m only as m x 1 x 1
    assert depthwise.dtypes(m, 1, 1) == (np.int32, np.int32)
    assert depthwise.dtypes(m + 1, 1, 1) == (np.int64, np.int64)
    assert depthwise.dtypes(1 << 31, 1, 2) == (np.int64, np.int64)
    assert depthwise.dtypes(1 << 30, 1 << 30, 3) == (np.int64, np.int64)
    assert depthwise.dtypes(1 << 31, 1 << 31, 1) is None
    assert depthwise.dtypes(5, 0, 3) == (np.int16, np.int32)  # the side sums: A taps


def test_depthwise_applies_to_one_channel_groups_only():
    w = np.zeros((6, 1, 3, 3), np.int8)
    assert depthwise.applies(w, 6) and depthwise.applies(w, 3)
    assert not depthwise.applies(w, 1)  # one group of one channel: the GEMM's case
    assert not depthwise.applies(np.zeros((6, 2, 3, 3), np.int8), 3)


@pytest.mark.parametrize("widths", [8, 4])
def test_executor_runs_depthwise_layers(widths, monkeypatch, tmp_path):
    """An imported MobileNet-like network's depthwise layers go through this path in the
    executor (both layouts), with the codes of the general path (this one switched off
    before a second import of the same file)."""
    import onnx

    import onnx_models as om
    from dqt_hw.net.executor import execute, input_codes
    from dqt_hw.net.onnx_import import from_onnx

    f = tmp_path / "m.onnx"
    onnx.save(om.mobilenet_like(seed=4), f)
    cal = om.inputs(1, 16)
    calls = []
    orig = depthwise.conv
    monkeypatch.setattr(depthwise, "conv", lambda *a, **k: calls.append(k) or orig(*a, **k))
    net = from_onnx(f, calibration=cal)
    x = input_codes(net, om.inputs(2, 7))
    runs = []
    for last in (True, False):
        monkeypatch.setattr(dsettings, "CHANNELS_LAST", last)
        runs.append(execute(net, x, widths=widths, batch_size=7))
    assert {k.get("nhwc", False) for k in calls} == {True, False}
    monkeypatch.setattr(depthwise, "applies", lambda w, groups: False)
    calls.clear()
    want = execute(from_onnx(f, calibration=cal), x, widths=widths, batch_size=7)
    assert not calls
    assert len(np.unique(want.codes)) > 1
    for r in runs:
        np.testing.assert_array_equal(r.codes, want.codes)
