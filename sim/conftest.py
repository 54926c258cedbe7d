"""pytest glue of the cocotb regression: markers, the coverage directory of the session,
and the merged functional-coverage report at its end (once, on the xdist controller)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

COV_DIR = Path(os.environ.setdefault("SIM_COVERAGE_DIR", str(ROOT / "sim_build" / "coverage")))


def pytest_configure(config):
    config.addinivalue_line("markers", "sim: a cocotb simulation on Verilator")
    config.addinivalue_line("markers", "quick: the representative subset (make sim, make test)")
    config.addinivalue_line("markers", "full: the whole matrix (make sim-full)")
    config.addinivalue_line("markers", "faults: deliberate generator bugs the quick benches "
                                       "must catch (make mutate)")
    if not hasattr(config, "workerinput"):  # the controller (or a run without xdist)
        shutil.rmtree(COV_DIR, ignore_errors=True)
        COV_DIR.mkdir(parents=True, exist_ok=True)


def pytest_sessionfinish(session, exitstatus):
    if hasattr(session.config, "workerinput"):
        return
    from sim.coverage_report import merge_dir

    text, covered, total = merge_dir(COV_DIR)
    if total:
        tr = session.config.pluginmanager.get_plugin("terminalreporter")
        out = tr.write if tr else sys.stdout.write
        out("\n" + text + f"coverage report: {COV_DIR / 'report.txt'}\n")
