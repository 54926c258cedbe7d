"""The representative cocotb-on-Verilator subset inside the main test suite (make test).

The same nodes as ``pytest sim -m quick`` (make sim): sim/matrix.py's QUICK list, each a
cocotb bench on a Verilated model built once per configuration under sim_build/. A failure
names the seed and the one command that reproduces it (with WAVES=1 for an FST).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sim import matrix, runner  # noqa: E402


@pytest.mark.parametrize("node", matrix.QUICK, ids=lambda n: n.id)
def test_sim_quick(node, request):
    result = runner.run(node.design(), f"sim.tb.{node.bench}", node=request.node.nodeid,
                        params=dict(node.params))
    assert result.summary.get("checks", 0) > 0, f"{node.id}: nothing was checked"
