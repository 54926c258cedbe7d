"""The cocotb regression as pytest nodes (see sim/matrix.py for what each node runs).

    pytest sim -m quick              the representative subset (make sim; also in make test)
    pytest -n 2 sim -m full          everything (make sim-full)
    SIM_SEED=123 WAVES=1 pytest 'sim/test_sim.py::test_full[tile2x2-w32-wrap-u-fl]'

Each node builds its configuration once (cached in sim_build/build/<module>-<hash>), runs
in sim_build/run/<node>/ (results.xml = JUnit XML of the cocotb tests, sim.log, dump.fst
with WAVES=1) and on failure names the seed and the one command that reproduces it.
"""

from __future__ import annotations

import pytest

from sim import matrix, runner


def _run(node, request):
    result = runner.run(node.design(), f"sim.tb.{node.bench}", node=request.node.nodeid,
                        params=dict(node.params))
    print(f"{node.id}: seed={result.seed} {result.seconds:.1f}s {result.summary}")


@pytest.mark.quick
@pytest.mark.parametrize("node", matrix.QUICK, ids=lambda n: n.id)
def test_quick(node, request):
    """The representative subset, with shortened stimulus."""
    _run(node, request)


@pytest.mark.full
@pytest.mark.parametrize("node", matrix.FULL, ids=lambda n: n.id)
def test_full(node, request):
    """The whole matrix with its full stimulus."""
    _run(node, request)
