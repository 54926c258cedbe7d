"""The fused fast paths (dqt_hw.model.layer.FusedConv, the vectorised requantization and
its bound check, the branch-free rounding, the executor's cached layers and fused add)
against the oracle in tests/naive.py, bit for bit.

Every path is forced: fused conv layers by the pixel split and by the output-channel
split, one and two threads, serial and threaded small-work paths, float32 and float64
chunk plans, every view and requantization rounding, clamps, signed and unsigned
formats; the executor with its fused layers against the executor with them switched off.
"""

from contextlib import contextmanager

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import naive
from dqt_hw import model, spec
from dqt_hw import settings as dsettings
from dqt_hw.model import _simd, runtime, wcache
from dqt_hw.model import _kernels as K
from dqt_hw.model.intops import round_shift
from dqt_hw.model import layer as mlayer
from dqt_hw.net import executor as ex
from dqt_hw.net import network as nw
from dqt_hw.net.graph import resnet_tiny
from strategies import ROUNDINGS, codes, edge_values

ROUND_CODES = ["floor", "half_up", "half_even", "half_away"]


@contextmanager
def num_threads(n):
    old = numba.get_num_threads()
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(old)


@pytest.fixture(params=["serial", "threads", "float"])
def split_mode(request, monkeypatch):
    """Serial: everything in the calling thread; threads: every size handed to the pool
    (and the Numba-free element kernels split too); float: threads, with the VNNI kernel
    switched off, so the float-BLAS paths run on a CPU that has it (on one without it,
    the three modes' conv paths are float anyway)."""
    if request.param == "float":
        monkeypatch.setattr(_simd, "AVAILABLE", False)
    if request.param in ("threads", "float"):
        monkeypatch.setattr(dsettings, "SERIAL_WORK", 0)
        monkeypatch.setattr(dsettings, "PAR_MIN_WORK", 0)
        with num_threads(2):
            yield request.param
    else:
        monkeypatch.setattr(dsettings, "SERIAL_WORK", 1 << 62)
        yield request.param


# ----------------------------------------------------------------------------- rounding


def test_round_shift_equals_the_contract():
    xs = [v for v in edge_values(-(1 << 62) + 3, (1 << 62) - 3)]
    xs += [int(v) for v in np.random.default_rng(0).integers(-(1 << 40), 1 << 40, 300)]

    @numba.njit
    def one(x, s, r):
        return round_shift(x, s, r)

    for r in range(4):
        for s in list(range(-3, 1)) + list(range(1, 63)):
            for x in xs:
                if s < 0 and abs(x) >= 1 << (62 + s):
                    continue  # the left shift would leave int64 (refused by the callers)
                a = one(np.int64(x), np.int64(s), r)
                assert a == naive.round_shift(x, s, ROUND_CODES[r]), (x, s, r)


# ----------------------------------------------------------------------------- requantize


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), r=ROUNDINGS, axis=st.sampled_from([0, 1, -1]))
def test_requantize_vectorised_matches_oracle(data, r, axis, split_mode):
    shape = tuple(data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=4)))
    ax = axis % len(shape)
    C = shape[ax]
    acc = data.draw(hnp.arrays(np.int64, shape, elements=st.integers(-(1 << 24), 1 << 24)))
    sa_shape = tuple(1 if (i == ax or data.draw(st.booleans())) else s
                     for i, s in enumerate(shape))
    sa = data.draw(hnp.arrays(np.int64, sa_shape, elements=st.integers(-(1 << 20), 1 << 20)))
    sw = data.draw(hnp.arrays(np.int64, (C,), elements=st.integers(-(1 << 20), 1 << 20)))
    consts = tuple(tuple(spec.Constant(data.draw(st.integers(-(1 << 15), 1 << 15)),
                                       data.draw(st.integers(0, 30)), 32) for _ in range(4))
                   for _ in range(C))
    b_out = data.draw(st.integers(1, 12))
    rq = model.Requant(consts, r, b_out)
    sab = np.broadcast_to(sa, shape)
    # the exact bound of the contract's 63-bit datapath, from the data, per channel
    first_bad = None
    for c in range(C):
        Ks, Es, _ = spec.align(consts[c])
        sel = [slice(None)] * len(shape)
        sel[ax] = c
        mags = [int(np.abs(acc[tuple(sel)]).max()), int(np.abs(sab[tuple(sel)]).max()),
                abs(int(sw[c])), 1]
        if sum(abs(k) * m << e for k, m, e in zip(Ks, mags, Es)) >= 1 << 62:
            first_bad = c
            break
    if first_bad is not None:
        with pytest.raises(ValueError, match=f"channel {first_bad}:"):
            model.requantize(acc, sa, sw, rq, channel_axis=axis)
        return
    got = model.requantize(acc, sa, sw, rq, channel_axis=axis)
    lo, hi = rq.range
    want = np.empty(shape, np.int64)
    for idx in np.ndindex(shape):
        c = idx[ax]
        KS = [(k.K, k.S) for k in consts[c]]
        want[idx] = naive.requantize(int(acc[idx]), int(sab[idx]), int(sw[c]), KS, r, lo, hi)
    np.testing.assert_array_equal(got, want)


def test_requantize_bound_check_names_the_first_bad_channel():
    ok = (spec.Constant(1, 0), spec.Constant(1, 0), spec.Constant(0, 0), spec.Constant(0, 0))
    bad = (spec.Constant(1, 62), spec.Constant(1, 0), spec.Constant(0, 0),
           spec.Constant(0, 0))
    rq = model.Requant((ok, bad, bad), "floor", 8)
    acc = np.full((2, 3), 1 << 10, np.int64)
    with pytest.raises(ValueError, match="channel 1:"):
        model.requantize(acc, np.ones((2, 1), np.int64), np.zeros(3, np.int64), rq)
    model.requantize(acc, np.zeros((2, 1), np.int64), np.zeros(3, np.int64), rq)
    # just below the limit passes; zeros with huge shifts are no NaN trap
    big = (spec.Constant((1 << 30), 0), spec.Constant(0, 0), spec.Constant(1, -500),
           spec.Constant(0, 0))
    rq2 = model.Requant((big,), "floor", 8)
    acc = np.array([[(1 << 31) - 1]], np.int64)
    with pytest.raises(ValueError, match="channel 0"):
        model.requantize(acc, np.zeros((1, 1), np.int64), np.ones(1, np.int64), rq2)
    model.requantize(acc, np.zeros((1, 1), np.int64), np.zeros(1, np.int64), rq2)


def test_requant_arrays_cached_and_safe():
    rq = model.Requant(((spec.Constant(3, 2), spec.Constant(5, 1), spec.Constant(0, 0),
                         spec.Constant(-7, 4)),), "half_even", 8)
    a1 = rq.arrays()
    a1[0][0, 0] = 99  # a caller's copy: the cache is untouched
    a2 = rq.arrays()
    assert a2[0][0, 0] == 3
    assert [x.tolist() for x in a2] == [x.tolist() for x in rq._arrays_uncached()]


# ----------------------------------------------------------------------------- conv layer


@st.composite
def layer_case(draw, depthwise=False):
    """A conv layer's operands, formats and constants; ``depthwise``: one input channel
    per group, two groups or more (``model.depthwise``)."""
    groups = draw(st.integers(2, 6) if depthwise else st.integers(1, 2))
    C = groups * (1 if depthwise else draw(st.integers(1, 3)))
    O = groups * draw(st.integers(1, 4))
    k = draw(st.integers(1, 3))
    pad = draw(st.integers(0, 2))
    stride = draw(st.integers(1, 2))
    H = draw(st.integers(max(1, k - 2 * pad), 6))
    Wd = draw(st.integers(max(1, k - 2 * pad), 6))
    na, nw_ = draw(st.integers(2, 10)), draw(st.integers(2, 10))
    sa, sw = draw(st.booleans()), draw(st.booleans())
    a_fmt, w_fmt = spec.Format(na, signed=sa), spec.Format(nw_, signed=sw)
    b_a = draw(st.sampled_from(a_fmt.widths))
    b_w = draw(st.sampled_from(w_fmt.widths))
    x = draw(hnp.arrays(np.int64, (draw(st.integers(1, 3)), C, H, Wd), elements=codes(na, sa)))
    w = draw(hnp.arrays(np.int64, (O, C // groups, k, k), elements=codes(nw_, sw)))
    lo_b, hi_b = naive.code_range(b_a, sa)
    pad_code = draw(st.sampled_from(sorted({0, lo_b, hi_b, 1 if hi_b >= 1 else 0})))
    view_r = draw(ROUNDINGS)
    s_lo = draw(st.sampled_from([0, 20]))  # mostly sums well inside 63 bits
    consts = tuple(tuple(spec.Constant(draw(st.integers(-(1 << 20), 1 << 20)),
                                       draw(st.integers(s_lo, 40)), 32) for _ in range(4))
                   for _ in range(O))
    b_out = draw(st.integers(1, 10))
    osigned = draw(st.booleans()) and b_out >= 2
    clamp = None
    if draw(st.booleans()):
        lo, hi = naive.code_range(b_out, osigned)
        c0 = draw(st.integers(lo, hi))
        clamp = (c0, draw(st.integers(c0, hi)))
    rq = model.Requant(consts, draw(ROUNDINGS), b_out, osigned, clamp)
    dtype = draw(st.sampled_from([np.int64, np.int32, np.int16]))
    return dict(x=x.astype(dtype), w=w.astype(dtype), a_fmt=a_fmt, w_fmt=w_fmt, b_a=b_a,
                b_w=b_w, view_rounding=view_r, requant=rq, stride=stride, padding=pad,
                groups=groups, pad_code=pad_code)


def oracle_layer(c, acc_width, overflow):
    x, w = c["x"].tolist(), c["w"].tolist()
    a_fmt, w_fmt, r = c["a_fmt"], c["w_fmt"], c["view_rounding"]
    nv = np.vectorize(naive.nested_view)
    xv = nv(np.array(x), a_fmt.n, c["b_a"], r, a_fmt.signed).tolist()
    wv = nv(np.array(w), w_fmt.n, c["b_w"], r, w_fmt.signed).tolist()
    acc, *_ = naive.conv2d(xv, wv, c["stride"], c["padding"], c["groups"], acc_width, overflow,
                           c["pad_code"])
    rq = c["requant"]
    lo, hi = rq.range
    O, Cg, kh, kw = np.shape(wv)
    Og = O // c["groups"]
    out = np.empty(np.shape(acc), np.int64)
    for idx in np.ndindex(out.shape):
        nb, o, oy, ox = idx
        taps = naive.conv_taps(xv, nb, (o // Og) * Cg, Cg, oy, ox, kh, kw, c["stride"],
                               c["padding"], c["pad_code"])
        KS = [(k.K, k.S) for k in rq.constants[o]]
        sw = int(np.sum(wv[o]))
        out[idx] = naive.requantize(acc[nb][o][oy][ox], sum(taps), sw, KS, rq.rounding, lo, hi)
    return out


def _forced_fused(c, acc_width, overflow):
    """FusedConv directly (asserting it takes the case), as conv_layer would build it."""
    wv = model.nested_view(c["w"], n=c["w_fmt"].n, b=c["b_w"], rounding=c["view_rounding"],
                           signed=c["w_fmt"].signed)
    fc = mlayer.FusedConv(wv, model.ConvArgs(c["stride"], c["padding"], c["groups"],
                          c["pad_code"], acc_width), a_fmt=c["a_fmt"], b_a=c["b_a"],
                          view_rounding=c["view_rounding"], mode=spec.OVERFLOW_CODES[overflow],
                          rq=c["requant"])
    return fc


@settings(max_examples=70, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(c=layer_case(), W=st.integers(33, 48), overflow=st.sampled_from(["wrap", "saturate"]))
def test_fused_conv_layer_matches_oracle(c, W, overflow, split_mode):
    want = oracle_layer(c, W, overflow)
    fc = _forced_fused(c, W, overflow)
    kw = {k: c[k] for k in ("a_fmt", "w_fmt", "b_a", "b_w", "view_rounding", "requant")}
    kw["geometry"] = model.ConvGeometry(c["stride"], c["padding"], c["groups"], c["pad_code"])
    try:
        got_s, _ = model.conv_layer(c["x"], c["w"], acc_width=W, overflow=overflow,
                                    stats=True, **kw)
    except ValueError as e:  # the model's 63-bit datapath refuses: so must the fused one
        assert "63-bit" in str(e) and not fc.ok
        with pytest.raises(ValueError, match="63-bit"):
            model.conv_layer(c["x"], c["w"], acc_width=W, overflow=overflow, **kw)
        return
    got = model.conv_layer(c["x"], c["w"], acc_width=W, overflow=overflow, **kw)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, want)
    if fc.ok:
        np.testing.assert_array_equal(fc.run(c["x"]), want)
    # the general (unfused) path gives the same codes
    np.testing.assert_array_equal(got_s, want)


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(c=layer_case(), W=st.integers(2, 32), overflow=st.sampled_from(["wrap", "saturate",
                                                                       "trap"]))
def test_conv_layer_narrow_accumulators_match_oracle(c, W, overflow):
    """Narrow W: the fused path where the bounds allow (wrap always, others when nothing
    can overflow), the general path otherwise; same codes or the same error either way."""
    kw = {k: c[k] for k in ("a_fmt", "w_fmt", "b_a", "b_w", "view_rounding", "requant")}
    kw["geometry"] = model.ConvGeometry(c["stride"], c["padding"], c["groups"], c["pad_code"])

    def outcome(**extra):
        try:
            r = model.conv_layer(c["x"], c["w"], acc_width=W, overflow=overflow, **kw, **extra)
        except (ValueError, OverflowError) as e:
            return type(e), str(e)
        return r[0] if extra else r

    fast, general = outcome(), outcome(stats=True)
    if isinstance(general, tuple):  # a refusal or a trap: the very same one
        assert fast == general
        return
    np.testing.assert_array_equal(fast, general)
    np.testing.assert_array_equal(fast, oracle_layer(c, W, overflow))


@pytest.mark.parametrize("split", ["pixels", "channels"])
@pytest.mark.parametrize("widths", [(8, 8), (4, 4), (8, 2)])
def test_fused_conv_unit_splits_worst_case(split, widths, split_mode, monkeypatch, rng):
    """All-255 / all-0 / random 8-bit codes at both unit splits: float32 chunks at their
    2^24 limit, requantized, equal to the general path and to the oracle on a corner."""
    if split == "pixels":
        monkeypatch.setattr(dsettings, "MIN_UNIT_ROWS", 4)
        monkeypatch.setattr(dsettings, "COLS_BLOCK", 64)
    else:
        monkeypatch.setattr(dsettings, "MIN_UNIT_ROWS", 1000)
    b_a, b_w = widths
    f8 = spec.Format(8)
    C, O, H = 40, 48, 5
    for fill in ("max", "zero", "rand"):
        if fill == "max":
            x = np.full((2, C, H, H), 255, np.uint8)
            w = np.full((O, C, 3, 3), 255, np.uint8)
        elif fill == "zero":
            x = np.zeros((2, C, H, H), np.uint8)
            w = np.zeros((O, C, 3, 3), np.uint8)
        else:
            x = rng.integers(0, 256, (2, C, H, H)).astype(np.uint8)
            w = rng.integers(0, 256, (O, C, 3, 3)).astype(np.uint8)
        consts = tuple((spec.Constant(int(rng.integers(1 << 30, 1 << 31)), 56 + o % 5),
                        spec.Constant(-int(rng.integers(1 << 28, 1 << 30)), 56),
                        spec.Constant(int(rng.integers(-(1 << 30), 1 << 30)), 50),
                        spec.Constant(int(rng.integers(-(1 << 30), 1 << 30)), 40))
                       for o in range(O))
        rq = model.Requant(consts, "half_even", 8)
        kw = dict(a_fmt=f8, w_fmt=f8, b_a=b_a, b_w=b_w, view_rounding="half_up",
                  acc_width=32, overflow="wrap", requant=rq,
                  geometry=model.ConvGeometry(padding=1, pad_code=3))
        fc = _forced_fused(dict(kw, w=w, stride=1, groups=1, padding=1, pad_code=3), 32, "wrap")
        assert fc.ok
        got = fc.run(x)
        want, _ = model.conv_layer(x, w, stats=True, **kw)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(model.conv_layer(x, w, **kw), want)
    # the oracle on a small corner of the last case
    c = dict(x=x[:1, :3, :3, :3].astype(np.int64), w=w[:2, :3].astype(np.int64), a_fmt=f8,
             w_fmt=f8, b_a=b_a, b_w=b_w, view_rounding="half_up",
             requant=model.Requant(consts[:2], "half_even", 8), stride=1, padding=1, groups=1,
             pad_code=3)
    kw = {k: c[k] for k in ("a_fmt", "w_fmt", "b_a", "b_w", "view_rounding", "requant")}
    np.testing.assert_array_equal(
        model.conv_layer(c["x"], c["w"], acc_width=32, overflow="wrap",
                         geometry=model.ConvGeometry(1, 1, 1, 3), **kw),
        oracle_layer(c, 32, "wrap"))


def test_fused_conv_declines_what_it_cannot_bound():
    f8 = spec.Format(8)
    w = np.full((2, 3, 3, 3), 255, np.int64)
    huge = (spec.Constant(-(1 << 31), 62), spec.Constant(1 << 30, 0), spec.Constant(0, 0),
            spec.Constant(0, 0))
    rq = model.Requant((huge, huge), "floor", 8)
    fc = mlayer.FusedConv(w, model.ConvArgs(1, 1, 1, 0, 32), a_fmt=f8, b_a=8,
                          view_rounding="floor", mode=0, rq=rq)
    assert not fc.ok
    # saturating W that can overflow: the sequential path, not the fused one
    ok = (spec.Constant(1, 0),) * 4
    rq = model.Requant((ok, ok), "floor", 8)
    fc = mlayer.FusedConv(w, model.ConvArgs(1, 1, 1, 0, 18), a_fmt=f8, b_a=8,
                          view_rounding="floor", mode=1, rq=rq)
    assert not fc.ok
    # the general path still answers (and refuses the sum beyond 63 bits from the data)
    x = np.full((1, 3, 4, 4), 255, np.int64)
    with pytest.raises(ValueError, match="63-bit"):
        model.conv_layer(x, w, a_fmt=f8, w_fmt=f8, b_a=8, b_w=8, view_rounding="floor",
                         acc_width=32, overflow="wrap", geometry=model.ConvGeometry(padding=1),
                         requant=model.Requant((huge, huge), "floor", 8))


def test_conv_layer_errors_unchanged():
    f8 = spec.Format(8)
    x = np.zeros((1, 2, 4, 4), np.uint8)
    w = np.zeros((3, 2, 3, 3), np.uint8)
    ok = (spec.Constant(1, 0),) * 4
    rq = model.Requant((ok,) * 3, "floor", 8)
    kw = dict(a_fmt=f8, w_fmt=f8, b_a=8, b_w=8, view_rounding="floor", acc_width=32,
              overflow="wrap", requant=rq, geometry=model.ConvGeometry(padding=1))
    with pytest.raises(ValueError, match=r"x holds code 300 at index \(0, 1, 2, 3\)"):
        bad = x.astype(np.int16)
        bad[0, 1, 2, 3] = 300
        model.conv_layer(bad, w, **kw)
    with pytest.raises(ValueError, match="w holds code -1"):
        model.conv_layer(x, w.astype(np.int8) - 1, **kw)
    with pytest.raises(ValueError, match="narrower than one product"):
        model.conv_layer(x, w, **dict(kw, acc_width=16))
    with pytest.raises(ValueError, match="shape mismatch"):
        model.conv_layer(np.zeros((1, 3, 4, 4), np.uint8), w, **kw)
    with pytest.raises(ValueError, match="acc has 3 channels on axis 1"):
        model.conv_layer(x, w, **dict(kw, requant=model.Requant((ok,) * 2, "floor", 8)))
    with pytest.raises(TypeError, match="rq must be a Requant"):
        model.conv_layer(x, w, **dict(kw, requant="r"))
    with pytest.raises(ValueError, match="pad_code"):
        model.conv_layer(x, w, **dict(kw, geometry=model.ConvGeometry(pad_code=1 << 20)))
    with pytest.raises(ValueError, match="width 9 is above"):
        model.conv_layer(x, w, **dict(kw, b_a=9))
    with pytest.raises(ValueError, match="rounding must be one of"):
        model.conv_layer(x, w, **dict(kw, view_rounding="nearest"))


# ----------------------------------------------------------------------------- kernels


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), r=ROUNDINGS)
def test_fused_add_matches_oracle(data, r, split_mode):
    n = data.draw(st.integers(1, 300))
    q1 = data.draw(hnp.arrays(np.int64, (n,), elements=codes(9, False)))
    q2 = data.draw(hnp.arrays(np.int64, (n,), elements=codes(9, False)))
    ks = [spec.Constant(data.draw(st.integers(-(1 << 31), (1 << 31) - 1)),
                        data.draw(st.integers(0, 45))) for _ in range(3)]
    Ks, Es, S = spec.align(ks)
    lo, hi = naive.code_range(data.draw(st.integers(1, 12)), False)
    bound = (abs(Ks[0]) * 511 << Es[0]) + (abs(Ks[1]) * 511 << Es[1]) + (abs(Ks[2]) << Es[2])
    if bound >= 1 << 62 or S > 62:
        return
    out = np.empty(n, np.int16)
    model.fused_add(q1.astype(np.uint16), q2, model.AddConsts(Ks[0], Es[0], Ks[1], Es[1],
                                                              Ks[2] << Es[2], S,
                                                              spec.ROUNDING_CODES[r], lo, hi),
                    out)
    KS = [(k.K, k.S) for k in ks]
    want = [naive.lincomb([int(a), int(b), 1], KS, r, lo, hi) for a, b in zip(q1, q2)]
    assert out.tolist() == want
    assert model.dqt_add(q1, q2, ks, rounding=r, b_out=16).tolist() == [
        naive.lincomb([int(a), int(b), 1], KS, r, 0, (1 << 16) - 1) for a, b in zip(q1, q2)]


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), r=ROUNDINGS)
def test_pooling_split_matches_oracle(data, r, split_mode):
    x = data.draw(hnp.arrays(np.int64, (data.draw(st.integers(1, 3)), data.draw(
        st.integers(1, 5)), 5, 5), elements=codes(8, True)))
    k = data.draw(st.integers(1, 3))
    s = data.draw(st.integers(1, 3))
    assert model.avg_pool2d(x, kernel=k, stride=s, rounding=r).tolist() == naive.pool(
        x.tolist(), k, s, "avg", r)
    assert model.max_pool2d(x, kernel=k, stride=s).tolist() == naive.pool(
        x.tolist(), k, s, "max")


# ----------------------------------------------------------------------------- executor


def _unfused(monkeypatch):
    monkeypatch.setattr(ex, "_run_layer", lambda net, nd, L, x, b_a, b_w, stats:
                        ex._compute_layer(net, nd, L, x, b_a, b_w, stats))
    monkeypatch.setattr(ex, "_fused_add", lambda net, nd, x1, x2: None)


@pytest.mark.parametrize("widths", [8, 4, 2, "mix", "dynamic"])
def test_executor_fused_equals_unfused(widths, split_mode, monkeypatch, rng):
    net = nw.random_controller(nw.random_network(resnet_tiny(), seed=3), seed=4)
    x = rng.integers(0, 256, (7,) + tuple(net.graph[next(iter(net.graph)).name].shape))
    names = net.compute_layers()
    w = ([(int(rng.choice(net.layers[n].widths)), int(rng.choice(net.layers[n].widths)))
          for n in names] if widths == "mix" else widths)
    fused = ex.execute(net, x, widths=w, batch_size=3)
    again = ex.execute(net, x, widths=w, batch_size=7)
    with monkeypatch.context() as m:
        _unfused(m)
        plain = ex.execute(net, x, widths=w, batch_size=3)
    assert fused.codes.dtype == np.int64
    np.testing.assert_array_equal(fused.codes, plain.codes)
    np.testing.assert_array_equal(again.codes, plain.codes)
    np.testing.assert_array_equal(fused.widths, plain.widths)


def test_executor_cache_follows_replaced_weights(rng, monkeypatch):
    net = nw.random_network(resnet_tiny(), seed=5)
    x = rng.integers(0, 256, (4,) + tuple(net.graph[next(iter(net.graph)).name].shape))
    first = ex.execute(net, x, widths=8).codes
    L = net.layers[net.compute_layers()[1]]
    old = L.w
    L.w = np.ascontiguousarray(255 - L.w)  # a new array: the cached views must not serve
    changed = ex.execute(net, x, widths=8).codes
    with monkeypatch.context() as m:
        _unfused(m)
        np.testing.assert_array_equal(ex.execute(net, x, widths=8).codes, changed)
    assert not np.array_equal(changed, first)
    L.w = old
    np.testing.assert_array_equal(ex.execute(net, x, widths=8).codes, first)


# ----------------------------------------------------------------------------- tuner


def test_tuner_times_both_ways_then_keeps_the_faster():
    """After the warm-up, TUNER_SAMPLES calls each way, alternating; the way of the
    faster best call is kept (one delayed call does not decide: here the serial way's
    first call was the slowest of all) until TUNER_RETUNE calls."""
    n = dsettings.TUNER_SAMPLES
    t = runtime.Tuner()
    assert t.pick() is False  # warm-up, not timed
    t.record(False, 100.0)
    serial_times = iter([9.0] + [2.0] * (n - 1))  # one delayed call, then the fast ones
    ways = []
    for _ in range(2 * n):
        way = t.pick()
        ways.append(way)
        t.record(way, next(serial_times) if way else 3.0)
    assert ways.count(True) == ways.count(False) == n
    assert all(a != b for a, b in zip(ways, ways[1:]))  # alternating
    assert t.choice is True  # serial's best call (2.0) beat threaded's (3.0)
    for _ in range(dsettings.TUNER_RETUNE - 2 * n - 2):
        assert t.pick() is True
    assert t.pick() in (True, False) and t.choice is None  # retuning


def test_tuned_conv_same_codes_either_way(monkeypatch, rng):
    """Whatever the tuner picks, conv2d and a fused layer give the same integers."""
    monkeypatch.setattr(dsettings, "SERIAL_WORK", 1)
    x = rng.integers(0, 256, (3, 32, 9, 9)).astype(np.uint8)
    w = rng.integers(-128, 128, (64, 32, 3, 3)).astype(np.int8)
    assert w.size >= dsettings.CACHE_MIN_SIZE  # cached weights: their entry holds the tuners
    want = None
    with num_threads(2):
        for i in range(2 + 2 * dsettings.TUNER_SAMPLES):
            got = model.conv2d(x, w, padding=1, acc_width=32, overflow="wrap")
            sat = model.conv2d(x, w, padding=1, acc_width=18, overflow="saturate")
            if want is None:
                want = got
                want_sat, _ = model.conv2d(x, w, padding=1, acc_width=18, overflow="saturate",
                                           stats=True)
            np.testing.assert_array_equal(got, want)
            np.testing.assert_array_equal(sat, want_sat)
    entry = wcache.weight_entry(w)
    tuners = [v for k, v in entry["prep"].items() if k[0] in ("tune", "tune-saturate")]
    assert len(tuners) == 2 and all(t.choice is not None for t in tuners)
    np.testing.assert_array_equal(
        want, model.conv2d(x.astype(np.int64), w.astype(np.int64), padding=1, acc_width=32,
                           overflow="wrap", stats=True)[0])


@pytest.mark.parametrize("widths", [8, "dynamic"])
def test_executor_layouts_same_codes(widths, monkeypatch, rng):
    """Channels-last activations between fused VNNI layers (fc and the controller's
    layers as 1x1 convs): the same codes and widths as channels-first; where the CPU has
    VNNI the channels-last path really runs."""
    monkeypatch.setattr(dsettings, "PROGRAM", False)  # the layer-by-layer path
    net = nw.random_controller(nw.random_network(resnet_tiny(), seed=6), seed=7)
    x = rng.integers(0, 256, (9,) + tuple(net.graph[next(iter(net.graph)).name].shape))
    calls = []
    orig = mlayer.FusedConv.run_nhwc

    def counted(self, *a):
        calls.append(1)
        return orig(self, *a)

    monkeypatch.setattr(mlayer.FusedConv, "run_nhwc", counted)
    runs = []
    for last in (True, False):
        monkeypatch.setattr(dsettings, "CHANNELS_LAST", last)
        with num_threads(2):
            runs.append(ex.execute(net, x, widths=widths, batch_size=9))
    np.testing.assert_array_equal(runs[1].codes, runs[0].codes)
    np.testing.assert_array_equal(runs[1].widths, runs[0].widths)
    if _simd.AVAILABLE:
        assert calls  # the channels-last layers ran (in the first run)


@pytest.mark.parametrize("widths", [4, "dynamic"])
def test_executor_batch_parts_same_codes(widths, monkeypatch, rng):
    """A batch cut into parts that run side by side (each part's layers serial in its
    thread, ``runtime.serial_scope``): the same codes, widths and statistics as whole."""
    monkeypatch.setattr(dsettings, "PROGRAM", False)  # the layer-by-layer path
    net = nw.random_controller(nw.random_network(resnet_tiny(), seed=8), seed=9)
    x = rng.integers(0, 256, (11,) + tuple(net.graph[next(iter(net.graph)).name].shape))
    with num_threads(2):
        monkeypatch.setattr(dsettings, "SPLIT_WORK", 1 << 62)
        whole = ex.execute(net, x, widths=widths, batch_size=11)
        monkeypatch.setattr(dsettings, "SPLIT_WORK", 0)
        assert len(ex._batch_parts(net, 11)) == 2
        parts = ex.execute(net, x, widths=widths, batch_size=11)
    np.testing.assert_array_equal(parts.codes, whole.codes)
    np.testing.assert_array_equal(parts.widths, whole.widths)
    assert not runtime._LOCAL.__dict__.get("serial", False)  # the scope is left


def test_serial_scope_makes_one_thread():
    with num_threads(2):
        n = runtime.threads().count()
        with runtime.serial_scope():
            assert runtime.threads().count() == 1
            with runtime.serial_scope():
                assert runtime.threads().count() == 1
            assert runtime.threads().count() == 1
        assert runtime.threads().count() == n


@pytest.mark.parametrize("r", ROUND_CODES)
def test_gap_channels_last_equals_avg_pool(r, rng):
    """The controller's global average pool of channels-last codes (``gap_nhwc``)
    equals ``avg_pool2d`` on the same codes channels-first, ties included (4x4 and 3x3
    planes: sums at every remainder), and the controller chooses the same widths."""
    for H in (4, 3):
        x = rng.integers(0, 256, (20, 5, H, H))
        x[0] = 0
        x[1, :, 0, 0] = H * H // 2  # remainders of half a count
        want = model.avg_pool2d(x, kernel=H, rounding=r).reshape(20, 5)
        got = K.gap_nhwc(np.ascontiguousarray(x.transpose(0, 2, 3, 1)),
                         spec.ROUNDING_CODES[r], np.empty((20, 5), np.int64))
        np.testing.assert_array_equal(got, want)
    net = nw.random_controller(nw.random_network(resnet_tiny(), seed=10), seed=11)
    feat = rng.integers(0, 256, (9, net.graph[net.controller.features].shape[0], 4, 4))
    np.testing.assert_array_equal(
        ex.controller_widths(net, ex._NHWC(np.ascontiguousarray(feat.transpose(0, 2, 3, 1)))),
        ex.controller_widths(net, feat))


@pytest.mark.parametrize("r", ROUND_CODES)
@pytest.mark.parametrize("S", [1, 2, 5])
def test_fused_add_short_rounding_on_ties(r, S, rng):
    """The residual add's short rounding (32-bit constants, S >= 1) on sums full of
    ties, negative and positive, against the oracle."""
    q1 = rng.integers(0, 256, 600)
    q2 = rng.integers(0, 256, 600)
    for k1, k2, k3 in ((1, -1, 0), (3, 1, -700), (-2, 1, 5), (-(1 << 31), (1 << 31) - 1, 7)):
        ks = [spec.Constant(k1, S), spec.Constant(k2, S), spec.Constant(k3, S)]
        Ks, Es, S_ = spec.align(ks)
        out = np.empty(600, np.int64)
        lo, hi = -(1 << 40), 1 << 40
        model.fused_add(q1.astype(np.uint8), q2.astype(np.uint8),
                        model.AddConsts(Ks[0], Es[0], Ks[1], Es[1], Ks[2] << Es[2], S_,
                                        spec.ROUNDING_CODES[r], lo, hi), out)
        want = [naive.lincomb([int(a), int(b), 1], [(k.K, k.S) for k in ks], r, lo, hi)
                for a, b in zip(q1, q2)]
        assert out.tolist() == want
