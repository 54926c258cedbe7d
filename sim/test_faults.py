"""The quick regression catches realistic bugs by itself (``make mutate``).

Each fault of :mod:`dqt_hw.hw.faults` (a deliberate bug in the tile or array generator:
a side sum from the wrong row, a full-depth tile one element short, the first element
viewed at the previous tile's widths, ``last`` on the wrong row, a row dropped under
back-pressure, a plane reader that reads one plane too few at half_up, a pipelined
requantizer whose row control runs one rank ahead of its data, a sidecar whose latency is
one cycle short) is built into the tile of a QUICK node (``sim.matrix.QUICK``, its
generator parameters and its bench knobs unchanged), and the node's quick bench must
fail on it; where the fault is in code of both the packed and the unpacked tile, both
kinds of node. Some faults must also fail with a named protocol violation (the row
plan of ``sim.tb.tb_tile``), not a time-out.

One Verilator build per (fault, node): about 4 minutes on 2 cores, so it is not in
``make sim``/``make test``; ``make mutate`` runs it.

    pytest sim/test_faults.py            # or with -n 2
"""

from __future__ import annotations

import pytest

from dqt_hw.design import Design
from dqt_hw.hw import faults
from sim import matrix, runner

UNPACKED = "tile2x2-w16-satu-s-hu-d3"
PACKED = "tile2x2-p4-w17-satu-u-hu-d3"
PLANES = "plane_tile2x2-w20-wrap-u-hu-d4"
PIPELINED = "tile3x2-rs2-w20-wrap-s-hu-d4"

CASES = [
    # (fault, QUICK node, text the failure must contain)
    ("side_sum_row", UNPACKED, "mismatch"),
    ("side_sum_row", PACKED, "mismatch"),
    ("full_depth_short", UNPACKED, "cmd taken after 7 act / 7 wgt transfers, its k is 8"),
    ("full_depth_short", PACKED, "cmd stream, cycle"),
    ("widths_step_late", UNPACKED, "mismatch"),
    ("widths_step_late", PACKED, ""),
    ("last_row", UNPACKED, "(last flag on the wrong row)"),
    ("drop_on_stall", UNPACKED, "payload changed while stalled"),
    ("planes_half_up_short", PLANES, "plane reads of tile 1"),
    ("drop_on_stall", PIPELINED, "payload changed while stalled"),
    ("rq_ctrl_early", PIPELINED, "mismatch"),
    ("latency_short", PIPELINED, "the sidecar's latency_cycles = 5"),
]


def _node(node_id):
    return next(n for n in matrix.QUICK if n.id == node_id)


@pytest.mark.faults
@pytest.mark.parametrize("fault,node_id,text", CASES, ids=[f"{f}-{n}" for f, n, _ in CASES])
def test_quick_bench_fails_on_fault(fault, node_id, text):
    node = _node(node_id)
    name = f"sim_fault_{fault}_{node_id.replace('-', '_')}"
    with faults.inject(fault):
        d = runner.generated(Design(component=node.component, name=name, **dict(node.hw)))
    with pytest.raises(runner.SimFailure) as err:
        runner.run(d, f"sim.tb.{node.bench}", node=f"fault-{fault}-{node_id}",
                   params=dict(node.params), reproduce=f"pytest 'sim/test_faults.py' -k "
                   f"'{fault}-{node_id}'")
    msg = str(err.value)
    assert "no progress" not in msg, f"{fault}: a time-out, not a named failure:\n{msg}"
    assert text in msg, f"{fault}: {text!r} not in the failure:\n{msg}"


def test_faults_leave_generated_verilog_alone():
    """With no fault switched on the generators are unchanged (the same Verilog as with a
    fault switched on and off again), and an unknown fault is refused."""
    from dqt_hw.hw.verilog import render

    d = Design(component="tile", name="sim_fault_probe", **dict(_node(PACKED).hw))
    before = render(d)
    with faults.inject("drop_on_stall"):
        assert render(d) != before
    assert render(d) == before
    with pytest.raises(ValueError, match=r"faults.py: unknown fault 'nope'"):
        with faults.inject("nope"):
            pass
