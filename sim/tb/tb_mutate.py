"""cocotb side of the mutation check: one simulation of the design holding every mutant
(yosys ``mutate -ctrl mutsel``), the unit's own benches run once per mutant.

``SIM_PARAMS``: ``bench`` (the unit's module under sim.tb), ``mutants`` (ids; 0 is the
original design, which must pass), plus the bench's own knobs. Writes ``mutants.json``:
{id: "killed" | "survived", first failure message}.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import cocotb

from .common import Config


@cocotb.test()
async def test_mutants(dut):
    cfg = Config()
    mod = importlib.import_module(f"sim.tb.{cfg.get('bench')}")
    tests = [getattr(mod, name) for name in cfg.get("tests")]
    verdicts = {}
    for mid in [0] + list(cfg.get("mutants")):
        dut.mutsel.value = mid
        verdict = ("survived", "")
        for t in tests:
            try:
                await t.func(dut)
            except AssertionError as e:
                verdict = ("killed", f"{t.name}: {str(e).splitlines()[0][:200]}")
                break
        verdicts[mid] = verdict
        dut._log.info("mutant %d: %s %s", mid, *verdict)
    Path("mutants.json").write_text(json.dumps(verdicts, indent=1))
    if verdicts[0][0] != "survived":
        raise AssertionError(f"the original design fails its own bench: {verdicts[0][1]}")
