"""The hand-written SIMD kernels of dqt_hw.model._simd against the oracle, bit for bit.

- VNNI (``vpdpbusd``, only where the CPU has AVX-512 VNNI; skipped elsewhere, where the
  float paths do the work): conv sums through ``drivers.conv_vnni`` with every admissible
  offset pair (ox, ow), any accumulator width, groups, strides, padding, one and two
  threads and units split down to one micro-tile, against tests/naive.py; the int32
  bound at its limit (65536 terms of the largest products, both signs); the planner's
  choice and its fall-back.
- the register-blocked saturating kernel (any CPU): float32 and float64 lanes, 1, 2 and
  4 vectors of output channels, tails of pixels and channels, unit splits.
"""

import os
import subprocess
import sys

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import naive
from dqt_hw import model, spec
from dqt_hw import settings as dsettings
from dqt_hw.model import _simd, drivers, fused, views
from dqt_hw.model import plan as mplan
from dqt_hw.model.epilogue import GENERAL, SHORT
from test_fast_paths import code_bounds, conv_case, exact_ref, num_threads, wrap

needs_vnni = pytest.mark.skipif(not _simd.AVAILABLE,
                                reason="no integer kernel for this CPU (AVX2 or AVX-512 "
                                       "needed): the float paths do the work")


@pytest.fixture(params=["serial", "units", "image_units"])
def units(request, monkeypatch):
    """serial: one unit in the calling thread; units: two threads, every call split
    into units of one micro-tile's rows (and blocks of weights), or where the batch
    allows (image_units: any number of pixels a unit) into units of whole images."""
    if request.param != "serial":
        monkeypatch.setattr(dsettings, "SERIAL_WORK", 0)
        monkeypatch.setattr(dsettings, "VNNI_BLOCK", 1)
        if request.param == "image_units":
            monkeypatch.setattr(dsettings, "UNIT_PIXELS", 1)
        with num_threads(2):
            yield request.param
    else:
        monkeypatch.setattr(dsettings, "SERIAL_WORK", 1 << 62)
        yield request.param


# ----------------------------------------------------------------------------- VNNI


@needs_vnni
@settings(max_examples=80, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=conv_case(max_b=8), data=st.data())
def test_vnni_conv_any_offsets_matches_oracle(case, data, units):
    """Every offset pair that moves the codes into the instruction's operand ranges
    gives the exact sums (wrapped to any W)."""
    x, w, stride, pad, groups, pad_code = case
    xlo, xhi, wlo, whi = code_bounds(x, w, pad, pad_code)
    ox = data.draw(st.integers(xhi - 255, xlo))
    ow = data.draw(st.integers(whi - 127, wlo + 128))
    W = data.draw(st.integers(2, 48))
    got = drivers.conv_exact(x, w, drivers.ConvArgs(stride, pad, groups, pad_code, W), ("vnni", ox, ow, 1))
    np.testing.assert_array_equal(got, wrap(exact_ref(x, w, stride, pad, groups, pad_code),
                                            W))


@needs_vnni
@pytest.mark.parametrize("O", [1, 16, 17, 64, 100, 130])
def test_vnni_channel_blocks_and_pixel_tails(O, units, rng):
    """Output channels filling 1..4 vectors and several weight blocks; output pixels
    that leave a partial micro-tile; 8-bit codes at the range ends and random."""
    for fill in ("max", "min", "rand"):
        if fill == "max":
            x = np.full((2, 5, 7, 5), 255, np.uint8)
            w = np.full((O, 5, 3, 3), 255, np.uint8)
        elif fill == "min":
            x = np.zeros((2, 5, 7, 5), np.uint8)
            w = np.zeros((O, 5, 3, 3), np.uint8)
            w[0, 0, 0, 0] = 255  # ow = 128: every other weight is -128 after the move
        else:
            x = rng.integers(0, 256, (2, 5, 7, 5)).astype(np.uint8)
            w = rng.integers(0, 256, (O, 5, 3, 3)).astype(np.uint8)
        plan = mplan.plan_conv(5, 3, 3, 0, 255, int(w.min()), int(w.max()))
        assert plan[0] == "vnni"
        got = drivers.conv_exact(x, w, drivers.ConvArgs(1, 1, 1, 7, 32), plan)
        want = model.conv2d(x, w, padding=1, pad_code=7, acc_width=32, overflow="wrap",
                            stats=True)[0]
        np.testing.assert_array_equal(got, want)


@needs_vnni
@pytest.mark.parametrize("shape", [(5, 7, 6, 6), (9, 16, 3, 2), (4, 130, 2, 2)])
def test_vnni_batches_in_every_kind_of_unit(shape, units, rng):
    """Batches of more images than threads: in units of whole images (image_units), of
    output rows x weight blocks (units: too few pixels an image), or serial; narrow and
    8-bit codes; the sequential kernel's sums."""
    N, C, H, Wd = shape
    for xm, wr in ((255, (-128, 128)), (15, (-8, 8))):
        x = rng.integers(0, xm + 1, shape).astype(np.uint8)
        w = rng.integers(*wr, (70, C, 3, 3)).astype(np.int8)
        plan = mplan.plan_conv(C, 3, 3, 0, xm, *(int(v) for v in (w.min(), w.max())))
        for l16 in sorted({0, mplan.int16_steps(xm, 128 if xm == 255 else 8)}):
            got = drivers.conv_exact(x, w, drivers.ConvArgs(1, 1, 1, 3, 32),
                                     plan._replace(l16=l16))
            want = model.conv2d(x, w, padding=1, pad_code=3, acc_width=32, overflow="wrap",
                                stats=True)[0]
            np.testing.assert_array_equal(got, want)


@needs_vnni
@pytest.mark.parametrize("ws", [-128, 127])
def test_vnni_int32_bound_at_its_limit(ws):
    """MAX_K = 65536 terms of 255 x ws: sums of -2,139,095,040 and 2,130,739,200, at the
    edge of the int32 lanes, exact (compared with int64 arithmetic)."""
    K = _simd.MAX_K
    x = np.full((1, K, 1, 1), 255, np.uint8)
    w = np.zeros((20, K, 1, 1), np.uint8)
    w[:, :, 0, 0] = 128 + ws  # ow = 128 (the codes span 0..255)
    w[0, 0, 0, 0], w[1, 0, 0, 0] = 0, 255
    plan = mplan.plan_conv(K, 1, 1, 0, 255, 0, 255)
    assert plan == ("vnni", 0, 128, 1, 0)  # 8-bit products: no int16 chunks
    got = drivers.conv_exact(x, w, drivers.ConvArgs(1, 0, 1, 0, 48), plan)
    want = w.reshape(20, K).astype(np.int64) @ np.full(K, 255, np.int64)
    np.testing.assert_array_equal(got.reshape(20), want)
    assert abs(int(got[0, 2, 0, 0]) - 128 * 255 * K) == abs(ws * 255 * K) < 2 ** 31


@needs_vnni
@settings(max_examples=80, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=conv_case(max_b=8), data=st.data())
def test_narrow_kernel_any_chunk_matches_oracle(case, data, units):
    """The narrow kernel (``vpmaddubsw`` into int16 lanes, ``_simd._maddubs_code``) at
    this level's vector width, with any admissible offsets and any int16 chunk up to the
    bound ``plan.int16_steps`` of the moved codes (down to one step: a chunk per k4),
    gives the exact sums wrapped to any W."""
    x, w, stride, pad, groups, pad_code = case
    xlo, xhi, wlo, whi = code_bounds(x, w, pad, pad_code)
    ox = data.draw(st.integers(xhi - 255, xlo))
    ow = data.draw(st.integers(whi - 127, wlo + 128))
    L = mplan.int16_steps(xhi - ox, max(abs(wlo - ow), abs(whi - ow)))
    assume(L >= 1)
    l16 = data.draw(st.sampled_from(sorted({1, min(2, L), min(L, 1 << 16)})))
    W = data.draw(st.integers(2, 48))
    cs = drivers.ConvArgs(stride, pad, groups, pad_code, W)
    got = drivers.conv_exact(x, w, cs, ("vnni", ox, ow, 1, l16))
    np.testing.assert_array_equal(got, wrap(exact_ref(x, w, stride, pad, groups, pad_code),
                                            W))


@needs_vnni
@pytest.mark.parametrize("xu,ws,L", [(255, -64, 1), (255, 64, 1), (15, -8, 136),
                                     (63, -32, 8), (3, -2, 2730), (255, -8, 8)])
def test_narrow_int16_bound_at_its_limit(xu, ws, L, units):
    """Every product at the bound's extreme (x - ox = xu, w - ow = ws everywhere, K of
    several chunks): chunks of L steps (the bound, worked out by hand: L = 32767 //
    (2 xu |ws|)) are exact; one step more per chunk takes an int16 lane beyond -32768 or
    32767 (every case here but the one with too few steps for L + 1), which the result
    shows: the bound is tight and this test sees a
    wrong one."""
    assert mplan.int16_steps(xu, abs(ws)) == L
    C = 4 * min(L + 1, 600)  # (L + 1) steps of k4 at least, in one tap
    x = np.full((1, C, 7, 7), xu, np.uint8)
    w = np.full((20, C, 1, 1), ws, np.int8)
    want = np.full((1, 20, 7, 7), C * xu * ws, np.int64)
    cs = drivers.ConvArgs(1, 0, 1, 0, 48)
    np.testing.assert_array_equal(drivers.conv_exact(x, w, cs, ("vnni", 0, 0, 1, L)), want)
    over = drivers.conv_exact(x, w, cs, ("vnni", 0, 0, 1, L + 1))
    lane = (L + 1) * 2 * xu * ws  # a lane's sum over a chunk of L + 1 steps
    assert np.array_equal(over, want) == (C < 4 * (L + 1) or -2 ** 15 <= lane < 2 ** 15)


def test_narrow_plan_only_where_faster(monkeypatch):
    """The planner takes the narrow kernel at the levels without VNNI (where it is the
    faster: docs/speed.md) for every range whose bound allows chunks of at least
    NARROW_MIN_STEPS steps, never with VNNI; 8-bit codes by 8-bit weights never."""
    for narrow in (True, False):
        monkeypatch.setattr(_simd, "AVAILABLE", True)
        monkeypatch.setattr(_simd, "NARROW", narrow)
        p44 = mplan.plan_conv(64, 3, 3, 0, 15, -8, 7)
        assert p44.vnni and p44.l16 == (136 if narrow else 0)
        assert mplan.plan_conv(64, 3, 3, 0, 255, -128, 127).l16 == 0
        assert mplan.plan_conv(64, 3, 3, 0, 255, -64, 63).l16 == 0  # L = 1: not worth it
        assert mplan.plan_conv(64, 3, 3, 0, 127, -64, 63).l16 == (2 if narrow else 0)


def test_plan_conv_ranges_and_fallback(monkeypatch):
    """The planner's offsets move any code range of at most 256 values into [0, 255] x
    [-128, 127]; wider ranges, more than MAX_K terms or no VNNI take the float plans."""
    monkeypatch.setattr(_simd, "AVAILABLE", True)
    for xr, wr in [((0, 255), (0, 255)), ((0, 15), (0, 15)), ((-128, 127), (-128, 127)),
                   ((-8, 7), (-3, 250)), ((1000, 1255), (-500, -245)), ((3, 3), (0, 0))]:
        plan = mplan.plan_conv(64, 3, 3, *xr, *wr)
        assert plan[0] == "vnni"
        ox, ow = plan.ox, plan.ow
        assert 0 <= xr[0] - ox and xr[1] - ox <= 255
        assert -128 <= wr[0] - ow and wr[1] - ow <= 127
        # the int16 chunk of the narrow kernel: as long as the moved products allow
        P = 2 * (xr[1] - ox) * max(abs(wr[0] - ow), abs(wr[1] - ow))
        if plan.l16:
            assert plan.l16 * P <= 2 ** 15 - 1 < (plan.l16 + 1) * P or P == 0
        assert plan.l16 == 0 or _simd.NARROW
    assert mplan.plan_conv(64, 3, 3, 0, 256, 0, 255)[0] != "vnni"
    assert mplan.plan_conv(64, 3, 3, 0, 255, -128, 128)[0] != "vnni"
    # channels pad to a multiple of four: 9 * 7280 = 65520 <= MAX_K < 9 * 7284
    assert mplan.plan_conv(7280, 3, 3, 0, 255, 0, 255)[0] == "vnni"
    assert mplan.plan_conv(7281, 3, 3, 0, 255, 0, 255)[0] != "vnni"
    monkeypatch.setattr(_simd, "AVAILABLE", False)
    assert mplan.plan_conv(64, 3, 3, 0, 255, 0, 255) == mplan.plan_exact(576, 0, 255, 0, 255)


def test_vnni_switch_off_by_environment():
    """DQT_HW_VNNI=0 turns the kernel off (the float paths then run)."""
    code = "from dqt_hw.model import _simd; print(_simd.AVAILABLE)"
    env = dict(os.environ, DQT_HW_VNNI="0")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "False"


def _child_env(**env):
    """This environment without the variables that choose Numba's target, plus env."""
    base = {k: v for k, v in os.environ.items()
            if k not in ("NUMBA_CPU_FEATURES", "NUMBA_CPU_NAME", "DQT_HW_WIDE_VECTORS",
                         "DQT_HW_KERNEL", "DQT_HW_VNNI")}
    return dict(base, **env)


def _child(code, **env):
    out = subprocess.run([sys.executable, "-c", code], env=_child_env(**env),
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_numba_target_and_kernel_level():
    """Importing dqt_hw sets Numba's CPU features to the host's plus -prefer-256-bit on
    AVX-512 CPUs (so the int64 loops use 512-bit vectors), even after numba was
    imported first; not with DQT_HW_WIDE_VECTORS=0, nor over a user's own choice.
    The integer kernel's level follows the features Numba compiles for, and
    DQT_HW_KERNEL turns a newer CPU's features down to a level (a bad value is refused)."""
    from llvmlite import binding

    host = binding.get_host_cpu_features()
    avx512 = host.get("avx512f", False)
    show = "import os; print(os.environ.get('NUMBA_CPU_FEATURES', '-'))"
    # (on an AMX host whose OS refuses the tile state, -amx-tile,-amx-int8 follow it)
    got = _child("import dqt_hw; " + show)
    assert "-prefer-256-bit" in got.split(",") if avx512 else got == "-"
    got = _child("import numba; import dqt_hw; from numba.core import config; "
                 "print(config.CPU_FEATURES)")
    assert "-prefer-256-bit" in got.split(",") if avx512 else got == "None"
    assert _child("import dqt_hw; " + show, DQT_HW_WIDE_VECTORS="0") == "-"
    assert _child("import dqt_hw; " + show, NUMBA_CPU_FEATURES="+sse2") == "+sse2"
    level = "from dqt_hw.model import _simd; print(_simd.LEVEL)"
    if avx512 and host.get("avx512bw", False):
        # (-amx-tile: on an AMX host the target would otherwise keep the host's AMX)
        assert _child(level, NUMBA_CPU_FEATURES="+avx512f,+avx512bw,-avx512vnni,"
                                                "-amx-tile") == "avx512bw"
        assert _child(level, DQT_HW_KERNEL="avx512bw") == "avx512bw"
        assert _child(level, DQT_HW_KERNEL="avx2") == "avx2"
        assert _child(level, NUMBA_CPU_FEATURES="+avx512bw,-avx512f,-amx-tile") == "avx2"
    assert _child(level, DQT_HW_VNNI="0") == "None"
    out = subprocess.run([sys.executable, "-c", "import dqt_hw"], capture_output=True,
                         text=True, env=_child_env(DQT_HW_KERNEL="sse"))
    assert out.returncode != 0 and ("DQT_HW_KERNEL must be one of 'vnni', 'avx512bw', "
                                    "'avx2', 'amx-emulated', not 'sse'") in out.stderr
    if host.get("avx2", False):
        assert _child(level, DQT_HW_KERNEL="amx-emulated") == "amx"
        feats = _child("import dqt_hw; " + show, DQT_HW_KERNEL="amx-emulated")
        assert feats.endswith("-amx-tile,-amx-int8,-amx-bf16")
    # a level the CPU cannot reach (an AVX2-only host, simulated)
    fake = ("from llvmlite import binding; from llvmlite.binding.targets import FeatureMap; "
            "m = FeatureMap(); m.update({'avx2': True, 'avx512f': False}); "
            "binding.get_host_cpu_features = lambda: m; import dqt_hw")
    out = subprocess.run([sys.executable, "-c", fake], capture_output=True, text=True,
                         env=_child_env(DQT_HW_KERNEL="avx512bw"))
    assert out.returncode != 0 and ("DQT_HW_KERNEL=avx512bw needs a CPU with avx512f, "
                                    "avx512bw; this one lacks avx512f, avx512bw") in out.stderr


@needs_vnni
def test_fused_layer_same_codes_with_and_without_vnni(monkeypatch, rng):
    """A requantized conv layer (viewed 8-bit codes, per-channel constants) through
    the VNNI kernel and through the float path: the same codes."""
    f8 = spec.Format(8)
    x = rng.integers(0, 256, (3, 24, 6, 6)).astype(np.uint8)
    w = rng.integers(0, 256, (40, 24, 3, 3)).astype(np.uint8)
    consts = tuple((spec.Constant(int(rng.integers(1 << 29, 1 << 30)), 46),
                    spec.Constant(-int(rng.integers(1 << 20, 1 << 22)), 46),
                    spec.Constant(int(rng.integers(-(1 << 20), 1 << 20)), 46),
                    spec.Constant(int(rng.integers(-(1 << 30), 1 << 30)), 46))
                   for o in range(40))
    rq = model.Requant(consts, "half_up", 8)
    outs = []
    for avail in (True, False):
        monkeypatch.setattr(_simd, "AVAILABLE", avail)
        for b_a, b_w in ((8, 8), (5, 3)):
            outs.append(model.conv_layer(x, w, a_fmt=f8, w_fmt=f8, b_a=b_a, b_w=b_w,
                                         view_rounding="half_up", acc_width=32,
                                         overflow="wrap", requant=rq,
                                         geometry=model.ConvGeometry(padding=1)))
    np.testing.assert_array_equal(outs[0], outs[2])
    np.testing.assert_array_equal(outs[1], outs[3])
    assert len(np.unique(outs[0])) > 10  # the constants give codes over the range


# ----------------------------------------------------------------------------- saturate


@pytest.mark.parametrize("W,O", [(18, 5), (18, 20), (18, 40), (18, 70), (30, 5), (30, 12),
                                 (30, 40)])
def test_saturating_kernel_vectors_and_tails(W, O, units, rng):
    """float32 (W <= 24) and float64 lanes, 1, 2 and 4 vectors, partial blocks and
    micro-tiles, products that drive the accumulators into both limits and back."""
    A = int(np.sqrt((1 << (W - 1)) - 1))
    x = rng.integers(-A, A + 1, (2, 3, 5, 4))
    x[0, 0] = A
    w = rng.integers(-A, A + 1, (O, 3, 3, 2))
    w[0] = A
    w[-1] = -A
    for stride, pad in ((1, 1), (2, 0)):
        got = drivers.conv_saturate_driver(x, w, drivers.ConvArgs(stride, pad, 1, -A, W))
        want = naive.conv2d(x.tolist(), w.tolist(), stride, pad, 1, W, "saturate", -A)[0]
        np.testing.assert_array_equal(got, np.array(want, dtype=np.int64))
        assert (got == (1 << (W - 1)) - 1).any() and (got == -(1 << (W - 1))).any()


def test_saturating_kernel_groups(units, rng):
    x = rng.integers(0, 256, (1, 6, 4, 4))
    w = rng.integers(-128, 128, (9, 2, 3, 3))
    got = drivers.conv_saturate_driver(x, w, drivers.ConvArgs(1, 1, 3, 0, 17))
    want = naive.conv2d(x.tolist(), w.tolist(), 1, 1, 3, 17, "saturate", 0)[0]
    np.testing.assert_array_equal(got, np.array(want, dtype=np.int64))


@needs_vnni
@pytest.mark.parametrize("rounding", ["floor", "half_up", "half_even", "half_away"])
@pytest.mark.parametrize("shift", [1, 2, 5])
def test_fused_short_finish_on_ties(rounding, shift, rng):
    """The short requantizing finish (one shift plus a correction per rounding) on sums
    full of ties (K1 = +-1, S = 1, 2, 5; negative and positive values), against the
    general path (``stats=True``) and the channels-first fused path."""
    f8 = spec.Format(8)
    x = rng.integers(0, 8, (2, 8, 5, 5)).astype(np.uint8)
    w = rng.integers(0, 8, (20, 8, 3, 3)).astype(np.uint8)
    x[0, :, 0, 0], w[0, :, 0, 0] = 7, 7  # some sums at the largest products
    consts = tuple((spec.Constant((-1) ** o * (1 + o % 3), shift),
                    spec.Constant(-(o % 2), shift),
                    spec.Constant(o - 10, shift),
                    spec.Constant(int(rng.integers(-(1 << 14), 1 << 14)), shift))
                   for o in range(20))
    lo = -(1 << 15)
    rq = model.Requant(consts, rounding, 16, True)
    kw = dict(a_fmt=f8, w_fmt=f8, b_a=8, b_w=8, view_rounding="half_up", acc_width=32,
              overflow="wrap", requant=rq, geometry=model.ConvGeometry(padding=1, pad_code=3))
    want = model.conv_layer(x, w, stats=True, **kw)[0]
    assert lo < want.min() and want.max() < -lo - 1  # no clamp: the rounding decides
    from dqt_hw.model import layer as mlayer

    fc = mlayer.FusedConv(w, model.ConvArgs(1, 1, 1, 3, 32), a_fmt=f8, b_a=8,
                          view_rounding="half_up", mode=spec.OVERFLOW_CODES["wrap"], rq=rq)
    assert fc.nhwc and fc.rq.form != GENERAL
    got = fc.run_nhwc(x, False).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(got, want)
    fc.rq = fc.rq._replace(form=SHORT)  # the 32-bit channels-last finish
    np.testing.assert_array_equal(fc.run_nhwc(x, False).transpose(0, 3, 1, 2), want)
    fc.rq = fc.rq._replace(K1=fc.rq.K1.astype(np.int64), K2=fc.rq.K2.astype(np.int64),
                           form=GENERAL)  # the general channels-last finish
    np.testing.assert_array_equal(fc.run_nhwc(x, False).transpose(0, 3, 1, 2), want)
    np.testing.assert_array_equal(fc.run(x), want)


@pytest.mark.parametrize("shape", [(5, 8, 8, 1, 1, 0, 1), (4, 8, 8, 16, 16, 0, 1),
                                   (3, 7, 7, 16, 16, 0, 1), (3, 7, 5, 8, 8, 0, 2),
                                   (2, 3, 3, 128, 128, 0, 1), (4, 5, 5, 12, 6, 6, 2),
                                   (2, 4, 4, 32, 32, 0, 0), (2, 6, 6, 12, 12, 0, 1),
                                   (2, 5, 3, 64, 64, 0, 0), (2, 3, 4, 192, 192, 0, 2)])
@pytest.mark.parametrize("view", [(0, 1, 0), (4, 1, 0), (3, 0, 0), (4, 2, 0), (2, 2, 3),
                                  (1, 3, 0)])
@pytest.mark.parametrize("use64", [True, False])
def test_padded_view_block_and_pixel_sums(shape, view, use64, rng):
    """``views.nhwc_to_padded_view`` against NumPy: the padded channels-last block of
    the viewed codes (border code 7) and each pixel's sum, by every way it has (one
    channel; whole padded images with the byte kernel and psadbw sums, their tails
    past a multiple of 64 bytes; rows of unpadded channels; padded channels; a channel
    offset for groups; whole pixels of 64-byte pieces, padded or not) for the identity,
    floor / half_up, table and moved views, with and without AVX-512."""
    N, H, W, C, cg, c0, pad = shape
    d, r, off = view
    use64 = use64 and _simd.BYTES64
    x = rng.integers(0, 256, (N, H, W, C)).astype(np.uint8)
    x[0, 0, :, :] = 255
    vlo, vhi = 0, 255 >> d
    tab = views.view_table(0, 255, d, r, vlo, vhi, off, np.uint8)
    ident = bool((tab == np.arange(256)).all())
    Cp, Hp, Wp = _simd.pad4(cg), H + 2 * pad, W + 2 * pad
    want = np.full((N, Hp, Wp, cg), 7, np.int64)
    want[:, pad:pad + H, pad:pad + W] = tab[x[..., c0:c0 + cg]]
    xp = np.zeros((N, Hp, Wp, Cp), np.uint8)
    plane = np.empty((N, Hp, Wp), np.int64)
    g = views.Block(H, W, C, Hp, Wp, Cp, 1, 1, 1, Hp, Wp)  # the kernel's fields unused
    v = views.View(pad, np.uint8(7), off, d, r, vlo, vhi, tab, 0, ident, use64)
    views.nhwc_to_padded_view(x.reshape(-1), 0, N, c0, cg, g, v, xp.reshape(-1),
                              plane.reshape(-1))
    np.testing.assert_array_equal(xp[..., :cg], want)
    np.testing.assert_array_equal(plane, want.sum(axis=3))


@needs_vnni
@pytest.mark.parametrize("b_a", [8, 5, 2])
@pytest.mark.parametrize("dtype", [np.uint8, np.int64])
@pytest.mark.parametrize("vr", ["half_up", "floor", "half_even"])
@pytest.mark.parametrize("C", [1, 12, 16, 128])
def test_channels_last_views_equal_channels_first(b_a, dtype, vr, C, rng):
    """The channels-last input block of a fused layer by each of its ways (byte copy for
    the identity view, usat(q + h) >> d on 64 bytes at a time for floor / half_up views
    of 8-bit codes in multiples of 64 channels, (q + h) >> d per byte otherwise, a byte
    table for the other roundings, branch-free arithmetic for other dtypes; one channel
    padded to four; pixel sums by psadbw where C is a multiple of 8, with a row of
    7 x 16 = 112 bytes, not a multiple of 64) gives the codes of the channels-first path;
    channels-last input and output. Codes 255 and 254 (q + h past 255) in every channel
    of some pixels."""
    f8 = spec.Format(8)
    from dqt_hw.model import layer as mlayer

    x = rng.integers(0, 256, (3, C, 6, 7)).astype(dtype)
    x[0, :, 0, 0] = 255
    x[0, :, 0, 1] = 0
    x[1, :, 2, 2] = 254
    w = rng.integers(0, 256, (24, C, 3, 3)).astype(np.uint8)
    S = 34 + b_a + (C > 64) * 4  # outputs over the code range at every width
    consts = tuple((spec.Constant(int(rng.integers(1 << 29, 1 << 30)), S),
                    spec.Constant(-int(rng.integers(1 << 20, 1 << 22)), S),
                    spec.Constant(int(rng.integers(-(1 << 20), 1 << 20)), S),
                    spec.Constant(int(rng.integers(-(1 << 30), 1 << 30)), S))
                   for o in range(24))
    rq = model.Requant(consts, "half_even", 8)
    wv = model.nested_view(w, n=8, b=6, rounding="half_up")
    fc = mlayer.FusedConv(wv, model.ConvArgs(1, 1, 1, 0, 32), a_fmt=f8, b_a=b_a, view_rounding=vr,
                          mode=spec.OVERFLOW_CODES["wrap"], rq=rq, out_dtype=np.uint8)
    assert fc.nhwc
    want = fc.run(x)
    got = fc.run_nhwc(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), True)
    np.testing.assert_array_equal(got.transpose(0, 3, 1, 2), want)
    np.testing.assert_array_equal(fc.run_nhwc(x, False).transpose(0, 3, 1, 2), want)
    assert want.min() < want.max()  # not one clamped code


@needs_vnni
@pytest.mark.parametrize("O", [16, 40, 130])
def test_vnni_one_image_blocks_over_numba_threads(O, monkeypatch, rng):
    """One image, serial work, several weight blocks: the blocks shared out over
    Numba's threads (``gemm_tiles_par``) give the sequential kernel's sums."""
    monkeypatch.setattr(dsettings, "PAR_BLOCKS_WORK", 0)
    monkeypatch.setattr(dsettings, "SERIAL_WORK", 1 << 62)
    x = rng.integers(0, 256, (1, 24, 7, 9)).astype(np.uint8)
    w = rng.integers(0, 256, (O, 24, 3, 3)).astype(np.uint8)
    calls = []
    orig = _simd.gemm_tiles_par
    monkeypatch.setattr(_simd, "gemm_tiles_par", lambda *a: (calls.append(1), orig(*a)))
    with num_threads(2):
        got = drivers.conv_exact(x, w, drivers.ConvArgs(1, 1, 1, 5, 32), mplan.plan_conv(24, 3, 3, 0, 255, 0, 255))
    want = model.conv2d(x, w, padding=1, pad_code=5, acc_width=32, overflow="wrap",
                        stats=True)[0]
    np.testing.assert_array_equal(got, want)
    assert calls or O <= _simd.NB


@needs_vnni
@pytest.mark.parametrize("par", [True, False])
@pytest.mark.parametrize("b_a", [8, 3])
def test_whole_layer_call_equals_driver(par, b_a, monkeypatch, rng):
    """The one-call channels-last layer (``fused.layer_nhwc``: chunks of images
    over Numba's threads, or one chunk) gives the Python driver's codes (the same
    steps, one by one) and the channels-first path's."""
    monkeypatch.setattr(dsettings, "LAYER_PAR_WORK", 0 if par else 1 << 62)
    f8 = spec.Format(8)
    from dqt_hw.model import layer as mlayer

    x = rng.integers(0, 256, (13, 6, 5, 6)).astype(np.uint8)  # 6 channels: padded to 8
    w = rng.integers(0, 256, (70, 6, 3, 3)).astype(np.uint8)
    S = 34 + b_a
    consts = tuple((spec.Constant(int(rng.integers(1 << 29, 1 << 30)), S),
                    spec.Constant(-int(rng.integers(1 << 20, 1 << 22)), S),
                    spec.Constant(int(rng.integers(-(1 << 20), 1 << 20)), S),
                    spec.Constant(int(rng.integers(-(1 << 30), 1 << 30)), S))
                   for o in range(70))
    rq = model.Requant(consts, "half_away", 8)
    fc = mlayer.FusedConv(w, model.ConvArgs(2, 1, 1, 0, 32), a_fmt=f8, b_a=b_a,
                          view_rounding="half_up", mode=spec.OVERFLOW_CODES["wrap"], rq=rq,
                          out_dtype=np.uint8)
    assert fc.rq.form != GENERAL
    calls = []
    orig = fused.layer_nhwc
    monkeypatch.setattr(fused, "layer_nhwc", lambda *a: (calls.append(1), orig(*a))[1])
    xl = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    with num_threads(2):
        got = fc.run_nhwc(xl, True)
    assert calls
    want = fc.run(x)
    np.testing.assert_array_equal(got.transpose(0, 3, 1, 2), want)
    # the Python driver with the general finish (int64 constants)
    fc.rq = fc.rq._replace(K1=fc.rq.K1.astype(np.int64), K2=fc.rq.K2.astype(np.int64),
                           form=GENERAL)
    np.testing.assert_array_equal(fc.run_nhwc(xl, True), got)
    assert want.min() < want.max()
