"""cocotb side of the bulk path (sim/bulk.py): start the wrapper, wait for ``done``, check
``out.hex`` against the expected rows (``expected.json``, from the model) in bulk.

The clock runs in the HDL (``--timing``): Python takes part only at the start and the end.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import cocotb
from cocotb.triggers import RisingEdge
from cocotb.utils import get_sim_time

from .. import bulk
from .common import Config, write_summary


@cocotb.test()
async def test_bulk(dut):
    cfg = Config()
    here = Path.cwd()
    expected = [(tuple(c), r, lst) for c, r, lst in json.loads((here / "expected.json").read_text())]
    t0 = time.perf_counter()
    dut.start.value = 1
    await RisingEdge(dut.done)
    t1 = time.perf_counter()
    rows = bulk.check_out(here, cfg.sidecar, expected)
    t2 = time.perf_counter()
    write_summary(checks=rows, sim_seconds=t1 - t0, check_seconds=t2 - t1,
                  sim_time_ns=get_sim_time("ns"))
