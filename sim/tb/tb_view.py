"""cocotb bench of the nested view unit (combinational): q (master code), b (width) -> v.

Exhaustive: every master code at every built width, plus every width register value that
is not built (the unit gives 0). The model is ``dqt_hw.model.nested_view`` and, where the
configuration matches one, the canonical golden set ``golden/view_n8_*``.
"""

from __future__ import annotations

from pathlib import Path

import cocotb

from dqt_hw import spec

from .. import models
from .common import Config, settle, write_summary
from .coverage import cov

ROOT = Path(__file__).resolve().parents[2]


class ViewDriver:
    """Drives one (q, b) transaction and tells the model what went in."""

    def __init__(self, dut, cfg: Config, on_input):
        self.q, self.b = getattr(dut, "q"), getattr(dut, "b")
        self.signed = cfg.hw["signed"]
        self.n = cfg.hw["n"]
        self.on_input = on_input

    async def send(self, q: int, b: int):
        self.q.value = q & ((1 << self.n) - 1)
        self.b.value = b
        self.on_input(q, b)
        await settle()


class ViewMonitor:
    def __init__(self, dut, cfg: Config, on_output):
        self.v = getattr(dut, "v")
        self.signed = cfg.hw["signed"]
        self.on_output = on_output

    def sample(self):
        val = self.v.value
        self.on_output(val.to_signed() if self.signed else val.to_unsigned())


class TB:
    def __init__(self, dut):
        self.dut = dut
        self.cfg = Config()
        hw = self.cfg.hw
        self.n, self.signed, self.rounding = hw["n"], hw["signed"], hw["view_rounding"]
        self.widths = list(hw["widths"])
        self.table = models.view_table(n=self.n, signed=self.signed, rounding=self.rounding,
                                       widths=self.widths)
        self.lo, _ = spec.code_range(self.n, self.signed)
        self.sb = models.Scoreboard("view")
        self.driver = ViewDriver(dut, self.cfg, self.model_input)
        self.monitor = ViewMonitor(dut, self.cfg, self.sb.got)
        self.bbits = self.cfg.ports["b"]["width"]

    def model_input(self, q: int, b: int):
        v = int(self.table[b][q - self.lo]) if b in self.table else 0
        self.sb.expect(v, info=f"q={q} b={b}")
        cov.view(self.n, b, self.rounding, self.signed)

    async def check(self, q: int, b: int):
        await self.driver.send(q, b)
        self.monitor.sample()


@cocotb.test()
async def test_exhaustive(dut):
    """Every master code at every width register value (built or not)."""
    tb = TB(dut)
    lo, hi = spec.code_range(tb.n, tb.signed)
    for b in range(1 << tb.bbits):
        for q in range(lo, hi + 1):
            await tb.check(q, b)
    n = tb.sb.finish()
    write_summary(checks=n)


@cocotb.test()
async def test_golden(dut):
    """The canonical golden view set of this configuration, if there is one."""
    from dqt_hw.golden import read_case

    tb = TB(dut)
    name = {("floor", False): "view_n8_floor", ("half_up", False): "view_n8_half_up",
            ("floor", True): "view_n8_signed_floor"}.get((tb.rounding, tb.signed))
    path = ROOT / "golden" / str(name)
    if tb.n != 8 or name is None or not path.exists():
        write_summary(golden="none for this configuration")
        return
    case = read_case(path)
    q, v = case["q"], case["v"]
    tb.driver.on_input = lambda q, b: cov.view(tb.n, b, tb.rounding, tb.signed)  # golden, not model
    widths = case.params["widths"]
    for wi, b in enumerate(widths):
        if b not in tb.widths:
            continue
        for qq, vv in zip(q.tolist(), v[wi].tolist()):
            tb.sb.expect(int(vv), info=f"golden {name} q={qq} b={b}")
            await tb.driver.send(int(qq), b)
            tb.monitor.sample()
    n = tb.sb.finish()
    write_summary(golden_checks=n, golden=name)
