"""cocotb bench of the plane buffer alone (``planes``, docs/hardware.md, "Bit-plane
storage").

Every word of both operands is loaded with random codes as planes (``planes_of`` of
``sim.tb.tb_plane_tile``: the bench's own statement of the layout), then read at every
width register value 0..n (and one past n) and every rounding code at random addresses:
the enables must be the contract's prefix of rows (b floor, b + 1 half_up, n otherwise),
the codes one cycle later the master codes with the unread planes zeroed and their nested
view at that width and rounding the master code's; they must hold while ``rd_en`` is low.
"""

from __future__ import annotations

import cocotb
from cocotb.triggers import FallingEdge, RisingEdge

from dqt_hw import spec

from .common import Config, CycleLoop, bench_rng, write_summary
from .streams import StreamMonitor, StreamSource
from .tb_plane_tile import planes_of


def rows_read(n: int, b: int, rounding: str) -> int:
    """The contract: floor b, half_up b + 1, half_even / half_away n (all capped at n)."""
    return min(b, n) if rounding == "floor" else min(b + 1, n) if rounding == "half_up" else n


@cocotb.test()
async def test_reads(dut):
    cfg = Config()
    hw = cfg.hw
    R, C, n, signed = hw["rows"], hw["cols"], hw["n"], hw["signed"]
    depth = 1 << hw["depth_bits"]
    rng = bench_rng("planes")
    lo, hi = spec.code_range(n, signed)
    loop = CycleLoop(dut)
    mon = StreamMonitor(dut, "load")
    src = StreamSource(dut, "load", mon, bench_rng("planes-load"), cfg.get("p_idle", 0.0))
    loop.drivers.append(src)
    loop.monitors.append(mon)
    dut.rd_en.value = 0
    loop.start_clock()
    await loop.reset(dut.rst)
    loadp = cfg.packer("load__payload")
    data = [[[rng.randint(lo, hi) for _ in range(size)] for _ in range(depth)]
            for size in (R, C)]
    for sel in (0, 1):
        for addr in range(depth):
            data[sel][addr][0] = rng.choice((lo, hi))
            for row, word in enumerate(planes_of(data[sel][addr], n, signed)):
                src.send(loadp.pack({"sel": sel, "addr": addr, "row": row, "word": word}))
    await loop.run_until(lambda: not src.busy(), max_cycles=loop.cycle + 20 * len(src.items))
    a_port, w_port = cfg.packer("a"), cfg.packer("w")
    checks = 0
    for _ in range(cfg.get("rounds", 2)):
        for b in range(n + 2):
            for rounding in spec.ROUNDINGS:
                ai, wi = rng.randrange(depth), rng.randrange(depth)
                dut.rd_en.value = 1
                dut.a_addr.value, dut.w_addr.value = ai, wi
                dut.b_a.value, dut.b_w.value = b, b
                dut.rounding.value = spec.ROUNDING_CODES[rounding]
                await FallingEdge(dut.clk)
                rows = rows_read(n, b, rounding)
                en = (int(dut.en_a.value), int(dut.en_w.value))
                where = f"b={b} {rounding}"
                assert en == ((1 << rows) - 1,) * 2, f"{where}: enables {en}, rows {rows}"
                await RisingEdge(dut.clk)  # the read
                dut.rd_en.value = 0
                for _ in range(2):  # the cycle after the read, and one more (held)
                    await FallingEdge(dut.clk)
                    assert (int(dut.en_a.value), int(dut.en_w.value)) == (0, 0), where
                    for sel, addr, port, size in ((0, ai, a_port, R), (1, wi, w_port, C)):
                        word = getattr(dut, "aw"[sel]).value.to_unsigned()
                        got = port.array(word, "", size, signed)
                        low = n - rows
                        for q, g in zip(data[sel][addr], got):
                            v = (q & ((1 << n) - 1)) >> low << low
                            want = v - (1 << n) if signed and v >> (n - 1) else v
                            assert g == want, f"{where}: code {q} read as {g}, expected {want}"
                            if 1 <= b <= n and not (signed and b < 2):
                                assert spec.nested_view(g, n, b, rounding, signed=signed) == \
                                    spec.nested_view(q, n, b, rounding, signed=signed), where
                            checks += 1
                    await RisingEdge(dut.clk)
    write_summary(checks=checks)
