"""The tile with pipelined requantizer lanes (``rq_stages`` = 1 or 2) in Amaranth's simulator.

Its codes are the reference's (``dqt_hw.hw.reference.tile_reference``) and the
combinational tile's bit for bit, under random valid gaps and back-pressure; its timing is
the design's: the first row ``latency`` = C + 2 + rq_stages cycles after a tile's last step,
one row per cycle, and tiles still stream back to back (the pipeline adds latency, never a
frozen cycle without back-pressure). The handshake model and the dependency table are in
tests/test_hw_protocol.py, the cycle model in tests/test_cost_cycles_sim.py.
"""

from __future__ import annotations

import random

import pytest

from dqt_hw.design import Design
from dqt_hw.hw import Tile
from dqt_hw.hw.requant import PipelinedRequantizer
from dqt_hw.hw.reference import TileJob
from test_hw_tile import random_job, reference, run_tile

BASE = dict(n=8, acc_width=20, kbits=16, ebits=3, sbits=5, depth_bits=6)


@pytest.mark.parametrize("params", [
    dict(rows=3, cols=2, rq_stages=1, overflow="wrap", view_rounding="floor"),
    dict(rows=2, cols=3, rq_stages=2, overflow="saturate", view_rounding="half_up",
         signed=True),
    dict(rows=1, cols=2, rq_stages=2, overflow="wrap", view_rounding="half_up"),
    dict(rows=2, cols=2, rq_stages=1, max_pack=4, overflow="saturate", view_rounding="floor"),
], ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items()))
def test_pipelined_tile_equals_reference(params):
    """Random jobs (short ones padded, M < R and N < C, any lane constants, K = 1) with
    valid gaps and back-pressure: the reference's codes, and the combinational tile's."""
    params = dict(BASE, **params)
    dut = Tile(**params)
    seed = "pipe-" + "-".join(f"{k}{v}" for k, v in sorted(params.items()))
    rng = random.Random(seed)
    jobs = [random_job(rng, dut) for _ in range(6)]
    jobs += [random_job(rng, dut, k=1), random_job(rng, dut, k=1),
             random_job(rng, dut, lanes="any"),
             random_job(rng, dut, m=dut.rows, ncols=dut.cols, codes="extreme")]
    got, _ = run_tile(dut, jobs, seed=seed, p_gap=0.3, p_stall=0.3)
    for job, rows in zip(jobs, got):
        assert rows == reference(dut, job), f"seed {seed!r}"
    plain = Tile(**{k: v for k, v in params.items() if k != "rq_stages"})
    got_plain, _ = run_tile(plain, jobs, seed=seed, p_gap=0.3, p_stall=0.3)
    assert got_plain == got


@pytest.mark.parametrize("S", [1, 2])
def test_pipelined_tile_timing(S):
    """Inputs always valid, out always ready: the first row leaves ``latency`` = C + 2 + S
    cycles after the first tile's last step, the rows of a tile one cycle apart, and the
    act stream moves on every cycle across tiles of K = 1 (padded to max(R, C)), K = P and
    longer ones: the pipeline is never a frozen cycle."""
    dut = Tile(rows=3, cols=4, rq_stages=S, n=4, acc_width=12, kbits=12, ebits=3, sbits=5,
               depth_bits=5)
    assert dut.latency == 4 + 2 + S == Design(rows=3, cols=4).latency + S
    rng = random.Random(f"pipe-timing-{S}")
    jobs = [random_job(rng, dut, m=3, k=k) for k in (9, 4, 6, 5, 7)]
    got, act = run_tile(dut, jobs, seed=f"pipe-timing-{S}")
    for job, rows in zip(jobs, got):
        assert rows == reference(dut, job)
    out = run_tile.out_cycles
    assert act == list(range(act[0], act[0] + len(act)))  # no frozen input cycle
    lasts = [act[sum(j.k for j in jobs[:i + 1]) - 1] for i in range(len(jobs))]
    want = [last + dut.latency + r for last in lasts for r in range(3)]
    assert out == want


def test_pipelined_rows_of_consecutive_tiles_keep_their_constants():
    """R = 4 > C = 1, K = 1 tiles back to back: rows of the next tile enter the lanes
    while the previous tile's last rows are still in them, each with its own tile's
    constants (K1, S, rounding, b_out, m, ncols all differ from tile to tile)."""
    from dqt_hw.hw.reference import LaneConstants

    dut = Tile(rows=4, cols=1, rq_stages=2, **BASE)
    jobs = []
    for t in range(6):
        m = 4 - t % 3
        jobs.append(TileJob(a=[[17 * (t + 1) + 5 * i] for i in range(m)], w=[[3 + t]],
                            b_a=8, b_w=8, b_out=(8, 4, 6)[t % 3],
                            rounding=("floor", "half_up", "half_even")[t % 3],
                            lanes=[LaneConstants((1 + t, 0, 0, 0), (0, 0, 0, 0), t % 4)]))
    got, _ = run_tile(dut, jobs, seed="constants")
    assert [len(r) for r in got] == [j.m for j in jobs]
    for job, rows in zip(jobs, got):
        assert rows == reference(dut, job)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(rq_stages=3), ValueError,
     r"^requantizer pipeline stages rq_stages must be in \[0, 2\], not 3$"),
    (dict(rq_stages=True), TypeError,
     r"^requantizer pipeline stages rq_stages must be an integer, not True$"),
    (dict(rq_stages=1, rq_lanes=2), ValueError,
     r"^requantizer pipeline stages rq_stages = 1 need a lane per column \(rq_lanes = cols "
     r"= 8\), not rq_lanes = 2$"),
])
def test_pipelined_tile_validation(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        Tile(**kwargs)
    with pytest.raises(exc, match=match):
        Design(**kwargs)


def test_rq_stages_is_a_tile_parameter_only():
    """Not a parameter of the array, the standalone lane or the AXI shell; 0 is left out of
    the sidecar and the TOML (the designs made before it stay byte-identical); the lane
    itself takes 1 or 2."""
    with pytest.raises(ValueError, match=r"^parameter 'rq_stages' is not one of the array "):
        Design(component="array", rq_stages=1)
    assert "rq_stages" not in Design().parameters() and "rq_stages" not in Design().to_toml()
    d = Design(rq_stages=2)
    assert d.parameters()["rq_stages"] == 2 and Design.from_mapping(d.to_dict()) == d
    with pytest.raises(ValueError, match=r"^requantizer pipeline stages must be 1 or 2, not 0$"):
        PipelinedRequantizer(d, 0)
