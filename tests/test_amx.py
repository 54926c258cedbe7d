"""The AMX level of the integer kernel (dqt_hw.model._amx) against the oracle, bit for bit.

``_amx.amx_tiles`` runs the tile instructions where this CPU has AMX-INT8 and the OS
grants the tile state, and elsewhere the emulation of them (``_tile_soft``: the SDM's
pseudo-code at the instructions' own addresses): either way its sums are checked here
against tests/naive.py for every tail (K not a whole tile step, fewer than 16 pixels,
1-4 vectors of channels, a range of pixels and blocks inside C). The whole model at this
level runs in tests/test_kernel_levels.py (``DQT_HW_KERNEL=amx-emulated`` anywhere, the
instructions on an AMX host). What cannot run here is checked as far as it can be: the
tile configuration against the SDM's layout, and the instructions the hardware kernel
compiles to (a child whose Numba target has AMX; it compiles, it does not run).
"""

import os
import re
import struct
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import naive
from dqt_hw import _cpu
from dqt_hw.model import _amx, _simd
from test_simd import _child_env

needs_kernel = pytest.mark.skipif(not _simd.AVAILABLE, reason="no integer kernel (AVX2 "
                                                                 "needed) for this CPU")


def _conv_case(rng, N, C, H, Wd, O, kh, kw, stride, lo_hi_x=(0, 255), lo_hi_w=(-128, 127)):
    xu = rng.integers(lo_hi_x[0], lo_hi_x[1] + 1, size=(N, C, H, Wd))
    ws = rng.integers(lo_hi_w[0], lo_hi_w[1] + 1, size=(O, C, kh, kw))
    return xu, ws


def _amx_sums(xu, ws, stride, m0=None, m1=None, b0=0, b1=None):
    """C of ``amx_tiles`` (int32, rows = output pixels (n, oy, ox)) for codes xu (N, C, H,
    W) in [0, 255] and weights ws (O, C, kh, kw) in [-128, 127], C filled with a sentinel
    outside what the call computes."""
    N, C, H, Wd = xu.shape
    O, _, kh, kw = ws.shape
    Cp = _simd.pad4(C)
    Ho, Wo = (H - kh) // stride + 1, (Wd - kw) // stride + 1
    img = np.zeros((N, H, Wd, Cp), np.uint8)
    img[..., :C] = xu.transpose(0, 2, 3, 1)
    rows = _simd.pixel_offsets(N, H, Wd, Cp, Ho, Wo, stride)
    koff = _simd.tap_offsets(kh, kw, Cp, Wd)
    wp, woff, nvs, Np = _simd.pack_weights(ws, 0)
    M = rows.size
    m0 = 0 if m0 is None else m0
    m1 = M if m1 is None else m1
    b1 = nvs.size if b1 is None else b1
    Cm = np.full((M, Np), -7, np.int32)
    nd = _amx.amx_tiles(img.reshape(-1), rows, koff, wp, woff, nvs, Cm, m0, m1, b0, b1)
    return Cm, (N, Ho, Wo, O), nd


def _direct_groups(N, H, Wd, Cp, Ho, Wo, stride, m0, m1):
    """The groups of 16 pixels from m0 whose windows are equally spaced in the NHWC
    block (16 pixels of one output row; or across rows where nothing lies between them,
    as in an unpadded 1 x 1 conv), where Cp is a multiple of 64: those whose A tiles
    load straight from the block."""
    if Cp % 64:
        return 0
    corner = [((n * H + oy * stride) * Wd + ox * stride) * Cp
              for n in range(N) for oy in range(Ho) for ox in range(Wo)]
    n = 0
    for m in range(m0, m1 - 15, 16):
        gaps = {corner[m + p + 1] - corner[m + p] for p in range(15)}
        n += len(gaps) == 1 and gaps.pop() > 0
    return n


def _oracle(xu, ws, stride):
    acc = naive.conv2d(xu.tolist(), ws.tolist(), stride, 0, 1, 32, "wrap")[0]
    a = np.array(acc, dtype=np.int64)  # (N, O, Ho, Wo)
    return a.transpose(0, 2, 3, 1).reshape(-1, a.shape[1])


@pytest.mark.parametrize("C,O,kh,HW,stride", [
    (20, 70, 3, 7, 1),   # K4 = 45: 3 tile steps, the last partial; blocks of 4 and 1 vectors
    (64, 32, 1, 5, 1),   # K4 = 16: one whole step; 25 pixels = 16 + 9
    (3, 16, 3, 6, 2),    # K4 = 9 (less than a step), stride 2, one vector
    (130, 48, 1, 4, 1),  # K4 = 33: 3 steps; 3 vectors
    (8, 130, 2, 9, 1),   # 64 pixels, blocks of 4, 4 and 1 vectors
    (64, 40, 3, 18, 1),  # output rows of 16 pixels, Cp = 64: every A tile loaded straight
    (128, 20, 1, 33, 2),  # stride 2, rows of 17: straight where a group is in one row
    (60, 16, 3, 18, 1),  # rows of 16 but Cp = 60: steps cross taps, so the panel
])
def test_amx_tiles_match_oracle(C, O, kh, HW, stride, rng):
    xu, ws = _conv_case(rng, 2, C, HW, HW, O, kh, kh, stride)
    # the edges of both ranges in every case
    xu.reshape(-1)[:4] = [0, 255, 254, 1]
    ws.reshape(-1)[:4] = [-128, 127, -127, 0]
    got, (N, Ho, Wo, _), nd = _amx_sums(xu, ws, stride)
    np.testing.assert_array_equal(got[:, :O], _oracle(xu, ws, stride))
    assert nd == _direct_groups(N, HW, HW, _simd.pad4(C), Ho, Wo, stride, 0, N * Ho * Wo)
    if (C, HW) in ((64, 18), (128, 33)):  # the cases meant for straight loads
        assert nd > 0


def test_amx_tiles_range_of_pixels_and_blocks_only(rng):
    """A call for pixels [m0, m1) and blocks [b0, b1) writes exactly those sums."""
    xu, ws = _conv_case(rng, 1, 12, 8, 8, 150, 3, 3, 1)
    want = _oracle(xu, ws, 1)
    got, _, _ = _amx_sums(xu, ws, 1, m0=6, m1=29, b0=1, b1=2)
    np.testing.assert_array_equal(got[6:29, 64:128], want[6:29, 64:128])
    untouched = np.ones(got.shape, bool)
    untouched[6:29, 64:128] = False
    assert (got[untouched] == -7).all()


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_amx_tiles_any_shape_matches_oracle(data):
    C = data.draw(st.integers(1, 40))
    O = data.draw(st.integers(1, 80))
    kh = data.draw(st.integers(1, 3))
    stride = data.draw(st.integers(1, 2))
    H = data.draw(st.integers(kh, 7))
    seed = data.draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    xlo = data.draw(st.sampled_from([0, 0, 200, 255]))
    wlo = data.draw(st.sampled_from([-128, -128, 0, 127]))
    xu, ws = _conv_case(rng, 1, C, H, H, O, kh, kh, stride, (xlo, 255), (wlo, 127))
    got, _, _ = _amx_sums(xu, ws, stride)
    np.testing.assert_array_equal(got[:, :O], _oracle(xu, ws, stride))


@pytest.mark.parametrize("w", [-128, 127])
def test_amx_int32_bound_at_its_limit(w):
    """MAX_K terms of the largest products (255 x -128, 255 x 127): the sums stay below
    2^31 in magnitude and come out exact (the bound the module notes prove)."""
    C = _simd.MAX_K  # a 1 x 1 conv over MAX_K channels: K = MAX_K
    xu = np.full((1, C, 1, 1), 255)
    ws = np.full((16, C, 1, 1), w)
    got, _, _ = _amx_sums(xu, ws, 1)
    assert (got[:, :16] == 255 * w * C).all() and abs(255 * w * C) < 2 ** 31


def test_tile_config_is_the_sdm_layout():
    """64 bytes: palette 1, start row 0, 14 reserved bytes, 16 colsb (uint16, little
    endian) and 16 rows (uint8), tiles 0-7 of 16 rows x 64 bytes, the rest zero."""
    want = struct.pack("<BB14x16H16B", 1, 0, *([64] * 8 + [0] * 8), *([16] * 8 + [0] * 8))
    assert _amx.tile_config().tobytes() == want


def test_pack_weights_pads_each_block_to_tile_steps(rng):
    ws = rng.integers(-128, 128, size=(80, 20, 3, 3))
    wp, woff, nvs, Np = _simd.pack_weights(ws, 0)
    K4 = 3 * 3 * 20 // 4  # 45 rows of four k: 3 steps of 16, 3 zero rows
    assert list(nvs) == [4, 1] and Np == 80
    rows = 3 * 16
    assert list(woff) == [0, rows * 256] and wp.size == rows * 256 + rows * 64
    blk0 = wp[:rows * 256].reshape(rows, 64, 4)
    assert (blk0[K4:] == 0).all() and (blk0[:K4] != 0).any()
    # row k4 of block 0, channel 5: the four k of that group, (ky, kx, c) order
    k4 = 17  # tap 3 (ky 1, kx 0), channels 8..11
    np.testing.assert_array_equal(blk0[k4, 5], ws[5, 8:12, 1, 0])


def test_tap_runs_cover_koff_and_break_where_taps_jump():
    for kh, kw, Cp, Wp in [(3, 3, 4, 10), (3, 3, 64, 10), (1, 1, 8, 5), (2, 3, 12, 3)]:
        koff = _simd.tap_offsets(kh, kw, Cp, Wp)
        st_, ln = _amx.tap_runs(koff)
        assert ln.sum() == koff.size and st_[0] == 0
        for s, n in zip(st_, ln):
            assert (np.diff(koff[s:s + n]) == 4).all()
            if s + n < koff.size:
                assert koff[s + n] != koff[s + n - 1] + 4


def test_hardware_kernel_compiles_to_tile_instructions(tmp_path):
    """In a child whose Numba target has AMX-TILE and AMX-INT8, ``amx_tiles`` compiles
    with the tile instructions: ldtilecfg, the C tiles zeroed, A and B loaded, tdpbusd
    into the C tiles, the C tiles stored, tilerelease. (Here it only compiles; it runs in
    the tests of every level on an AMX host.)"""
    host = _cpu.host_features()
    if host is None or not host.get("avx2", False):
        pytest.skip("no x86 feature map")
    feats = ",".join([f"{'+' if on else '-'}{k}" for k, on in sorted(host.items())]
                     + ["+amx-tile", "+amx-int8"])
    code = ("from numba import types; from dqt_hw.model import _amx; "
            "assert _amx.HARDWARE; "
            "A = types.Array; i8, u8, i32, i64 = types.int8, types.uint8, types.int32, "
            "types.int64; "
            "sig = (A(u8, 1, 'C'), A(i64, 1, 'C'), A(i64, 1, 'C'), A(i8, 1, 'C'), "
            "A(i64, 1, 'C'), A(i64, 1, 'C'), A(i32, 2, 'C'), i64, i64, i64, i64); "
            "_amx.amx_tiles.compile(sig); print(_amx.amx_tiles.inspect_asm(sig))")
    env = {k: v for k, v in os.environ.items() if k not in ("DQT_HW_KERNEL", "NUMBA_CPU_NAME")}
    env.update(NUMBA_CPU_FEATURES=feats, NUMBA_CACHE_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    asm = out.stdout
    ops = re.findall(r"^\s*(ldtilecfg|tilezero|tileloadd|tdpbusd|tilestored|tilerelease)"
                     r"\s*([^\n]*)$", asm, re.M)
    names = [o for o, _ in ops]
    assert names.count("ldtilecfg") == 1 and names.count("tilerelease") == 1
    # LLVM unrolls the step loop and may rename a B tile to any tile the kernel leaves
    # free (every tile is configured alike), so the check is on roles, not numbers:
    # tdpbusd's destinations (AT&T: the last operand) are the four C tiles, zeroed and
    # stored, and its two sources are other tiles
    dps = [[r.strip() for r in a.split(",")] for o, a in ops if o == "tdpbusd"]
    cs = {f"%tmm{j}" for j in range(4)}
    assert dps and {d[2] for d in dps} == cs, dps
    assert all(len(set(d)) == 3 for d in dps)
    assert {a.strip() for o, a in ops if o == "tilezero"} == cs
    assert {a.split(",")[0].strip() for o, a in ops if o == "tilestored"} == cs
    assert "%tmm4" in {a.split(",")[-1].strip() for o, a in ops if o == "tileloadd"}


def test_amx_request_answers_in_words():
    """The OS request gives (granted, why); on a CPU without AMX it is refused and says
    by what (the fallback's message names it)."""
    ok, why = _cpu.request_amx()
    assert isinstance(ok, bool) and why
    host = _cpu.host_features() or {}
    if not _cpu.host_has_amx(host):
        assert not ok and "arch_prctl" in why


@needs_kernel
def test_amx_refused_falls_back_and_says_why():
    """A host whose features show AMX (simulated) but whose OS refuses the tile state
    (this one, which has no AMX): AMX is turned off in Numba's target, the vector level
    runs, and ``describe`` says why AMX is not used."""
    host = _cpu.host_features() or {}
    if _cpu.host_has_amx(host) and _cpu.request_amx()[0]:
        pytest.skip("this host's OS grants AMX: nothing refuses it here")
    fake = ("from llvmlite import binding; from llvmlite.binding.targets import FeatureMap; "
            "real = binding.get_host_cpu_features(); m = FeatureMap(); m.update(real); "
            "m.update({'amx-tile': True, 'amx-int8': True}); "
            "binding.get_host_cpu_features = lambda: m; import dqt_hw, os; "
            "from dqt_hw.model import _simd, _amx; "
            "print(_simd.LEVEL, _amx.HARDWARE, '-amx-tile' in os.environ['NUMBA_CPU_FEATURES']); "
            "print(_simd.describe())")
    out = subprocess.run([sys.executable, "-c", fake], capture_output=True, text=True,
                         env=_child_env())
    assert out.returncode == 0, out.stderr[-2000:]
    first, desc = out.stdout.strip().splitlines()
    assert first == f"{_simd.VECTOR_LEVEL} False True"
    assert "AMX not used: arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) refused" in desc


def test_amx_host_runs_the_amx_level():
    """On a CPU with AMX-INT8 whose OS grants the tile state the suite must run the
    instructions, not fall back silently: the level is "amx", or this test fails with
    the reason (a failed self-check, say). Where the OS refuses (a kernel before Linux
    5.16, a sandbox) nothing here can run them: a skip that gives the OS's answer."""
    host = _cpu.host_features() or {}
    if not _cpu.host_has_amx(host):
        pytest.skip("this CPU has no AMX-INT8")
    if os.environ.get("DQT_HW_KERNEL") or os.environ.get("NUMBA_CPU_FEATURES"):
        pytest.skip("a level was chosen by the environment")
    granted, why = _cpu.request_amx()
    if not granted:
        pytest.skip(f"this CPU has AMX-INT8 but the OS refuses its tile state, so the "
                    f"VNNI level runs: {why}")
    assert _simd.LEVEL == "amx" and _amx.HARDWARE, _simd.AMX_WHY


def test_self_check_passes_and_names_a_wrong_sum():
    """The check run before the instructions are trusted (on an AMX host: the
    instructions; here: the emulation) passes, and one wrong sum makes it fail with the
    pixel, channel and both values."""
    assert _amx.self_check() is None

    def one_off(*args):
        n = _amx.amx_tiles(*args)
        args[6][3, 70] += 1  # C: pixel 3, channel 70 (the 64-channel case's second block)
        return n

    msg = _amx.self_check(one_off)
    head = "1 of 20480 sums differ on a 64-channel 3x3 conv of 18x18 (pixel 3, channel 70: "
    assert msg.startswith(head), msg
    got, exact = msg[len(head):-1].split(", exact ")
    assert int(got) == int(exact) + 1


def test_amx_decision_in_every_case():
    """The AMX level's decision from its facts (the OS's answer and the self-check
    replaced): emulated; the instructions granted and checked; a failed self-check,
    which warns and leaves the vector level; the OS's refusal; AMX turned off by
    DQT_HW_KERNEL; no AMX."""
    amx = {"amx-tile": True, "amx-int8": True}
    granted = lambda: (True, "granted")  # noqa: E731
    refused = lambda: (False, "refused: errno 95")  # noqa: E731

    def check_never():
        raise AssertionError("the self-check ran without the OS's grant")

    F = _simd.AmxFacts
    assert _simd.amx_decision(F("vnni", True, False, refused, check_never, {}, ""))[0]
    assert _simd.amx_decision(F(None, True, True, granted, check_never, amx, "")) == (
        False, "no integer kernel")
    assert _simd.amx_decision(F("vnni", False, True, granted, lambda: None, amx, "")) == (
        True, "granted")
    with pytest.warns(RuntimeWarning, match=r"the AMX tile kernel failed its self-check "
                                            r"\(3 of 9 sums differ\); the vnni kernel runs "
                                            r"instead"):
        got = _simd.amx_decision(F("vnni", False, True, granted,
                                   lambda: "3 of 9 sums differ", amx, ""))
    assert got == (False, "the tile kernel failed its self-check: 3 of 9 sums differ")
    assert _simd.amx_decision(F("vnni", False, True, refused, check_never, amx, "")) == (
        False, "refused: errno 95")
    assert _simd.amx_decision(F("vnni", False, False, granted, check_never, amx, "vnni")) == (
        False, "turned off by DQT_HW_KERNEL=vnni")
    assert _simd.amx_decision(F("avx2", False, False, granted, check_never, {}, "")) == (
        False, "this CPU has no AMX-INT8")
