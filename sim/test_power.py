"""End to end: ``sim.activity.measure`` on the 4x4 tile of the shipped network's
arithmetic (make sim-full; about a minute with the SAIF build): every output row checked,
and the measured multiplier and accumulator toggles per MAC fall with the width (the
nested view zeroes the top n - b bits of each operand); the plain MAC array runs the
8x8 jobs beside it."""

from __future__ import annotations

import pytest

from sim import activity
from sim.matrix import NET_TILE


@pytest.mark.full
def test_power_end_to_end(tmp_path):
    from dqt_hw.design import Design

    design = Design(component="tile", name="power_tile4x4", **NET_TILE)
    rep = activity.measure(design, sources=("resnet18",), pairs=((8, 8), (2, 2)),
                           dynamic=False, max_macs=2048, workdir=tmp_path, say=print)
    r88, r22 = rep["runs"]
    assert (r88["pair"], r22["pair"]) == ("8x8", "2x2")
    assert r88["rows_checked"] == r22["rows_checked"] > 0
    for c in ("multiplier", "accumulator"):
        assert r22["toggles_per_mac"][c] < r88["toggles_per_mac"][c]
    assert r22["energy_pj"]["total"] < r88["energy_pj"]["total"]
    # the plain MAC array on the 8x8 run's jobs: every row exact; its PEs see the very
    # operands of the DQT array's PEs (the view at b = n is the identity), so their
    # multiplier toggles agree (up to the idle steps at the end); it has no views and no
    # side sums
    (plain,) = rep["plain_runs"]
    assert plain["rows_checked"] > 0 and plain["macs"] == r88["macs"]
    assert plain["toggles"]["multiplier"] == pytest.approx(  # toggle counts, not codes or a
        r88["array_toggles"]["multiplier"], rel=0.02)  # float reference: 2 % for idle steps
    assert plain["toggles"]["views"] == plain["toggles"]["side_sums"] == 0
    assert r88["array_toggles"]["views"] > 0 and r88["array_toggles"]["side_sums"] > 0
