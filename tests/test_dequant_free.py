"""The dequantization-free property (docs/arithmetic.md, "Width switch").

A layer run at widths (b_a, b_w, b_out) with constants derived from the master-width
constants by changing S alone gives exactly the codes obtained with constants computed
afresh at the nested scales delta_b = delta_n 2^(n - b).
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dqt_hw import model, spec
from dqt_hw.golden.cases import LayerShape, layer_inputs


@pytest.mark.parametrize("w_signed", [False, True])
def test_layer_codes_equal_with_shifted_or_fresh_constants(rng, w_signed):
    x, w, _, _, f = layer_inputs(rng, LayerShape("conv", "conv_layer", 16, 8, 6, 6, 3),
                                 w_signed=w_signed)
    a_fmt, w_fmts, out_fmt = f["a"], f["w"], f["out"]
    master = model.Requant.from_formats(
        a_fmt=a_fmt, b_a=8, w_fmts=w_fmts, b_w=8, out_fmt=out_fmt, b_out=8, taps=144,
        rounding="half_even", bias=f["bias"])
    checked = 0
    for b_a in range(2, 9):
        for b_w in range(2, 9):
            for b_out in (8, 6, 4):
                fresh = model.Requant.from_formats(
                    a_fmt=a_fmt, b_a=b_a, w_fmts=w_fmts, b_w=b_w, out_fmt=out_fmt, b_out=b_out,
                    taps=144, rounding="half_even", bias=f["bias"])
                shifted = master.switched(d_a=8 - b_a, d_w=8 - b_w, d_out=8 - b_out)
                # the same K everywhere, only the shifts moved
                for ch_f, ch_s, ch_m in zip(fresh.constants, shifted.constants, master.constants):
                    assert [k.K for k in ch_f] == [k.K for k in ch_m]
                    assert ch_f == ch_s
                wf = spec.Format(8, signed=w_signed)
                args = dict(a_fmt=spec.Format(8), w_fmt=wf, b_a=b_a, b_w=b_w,
                            view_rounding="floor", acc_width=32, overflow="wrap",
                            geometry=model.ConvGeometry(padding=1))
                np.testing.assert_array_equal(
                    model.conv_layer(x, w, requant=fresh, **args),
                    model.conv_layer(x, w, requant=shifted, **args))
                checked += 1
    assert checked == 7 * 7 * 3


# real formats: minima of magnitude 0 or >= 1e-6 keep every float intermediate normal (a
# subnormal intermediate loses mantissa bits, the one case the property does not cover)
@given(m=st.one_of(st.just(0.0), st.floats(1e-6, 10), st.floats(-10, -1e-6)),
       delta=st.floats(1e-6, 10), n=st.integers(2, 16), data=st.data())
def test_every_operator_constant_moves_by_its_own_power_of_two(m, delta, n, data):
    f1 = spec.Format(n, m=m, delta=delta)
    f2 = spec.Format(n, m=-m / 3, delta=delta * 1.7)
    fo = spec.Format(n, m=m / 2, delta=delta * 0.3)
    b1, b2, bo = (data.draw(st.integers(1, n)) for _ in range(3))
    d1, d2, do = n - b1, n - b2, n - bo
    for op, fn, extra in (("add", spec.add_constants, ()), ("mul", spec.mul_constants, ()),
                          ("requant", spec.requant_constants, (9, 0.25))):
        base = [spec.quantize_constant(k) for k in fn(f1, n, f2, n, fo, n, *extra)]
        fresh = [spec.quantize_constant(k) for k in fn(f1, b1, f2, b2, fo, bo, *extra)]
        moved = [c.scaled_pow2(e) for c, e in zip(base, spec.switch_shifts(op, d1, d2, do))]
        assert fresh == moved, op
