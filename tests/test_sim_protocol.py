"""The stream benches' protocol checkers (sim/tb/streams.py, sim/tb/tb_tile.py) on made-up
traces, without a simulator: each violation fails at once, naming the stream and the
cycle (a dropped, duplicated or reordered output row, ``last`` on the wrong row, valid
falling without a handshake, the payload changing while stalled)."""

from __future__ import annotations

import sys
from collections import deque
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sim.tb.streams import ProtocolError, StreamMonitor  # noqa: E402
from sim.tb.tb_tile import TB  # noqa: E402


class _Value(int):
    def to_unsigned(self):
        return int(self)


class _Sig:
    def __init__(self):
        self.value = _Value(0)


class _Dut:
    def __init__(self, name):
        for port in ("valid", "ready", "payload"):
            setattr(self, f"{name}__{port}", _Sig())


def _out_bench(plan):
    """An output monitor whose transfers go through the tile bench's row plan (jobs of
    ``plan`` rows); payload = row | last << 4."""
    dut = _Dut("out")
    mon = StreamMonitor(dut, "out", hold_payload=True)
    tb = TB.__new__(TB)  # only the row plan: no simulator
    tb.row_plan, tb.row_pos, tb.mon = deque(plan), (0, 0), {"out": mon}
    mon.callbacks.append(lambda word: tb.check_row(word & 15, word >> 4))
    return dut, mon


def _beats(plan, drop=None, dup=None):
    out = []
    for j, m in enumerate(plan):
        for i in range(m):
            if (j, i) == drop:
                continue
            out.append(i | (i == m - 1) << 4)
            if (j, i) == dup:
                out.append(out[-1])
    return out


def _run(dut, mon, cycles):
    """``cycles``: (valid, ready, payload) per cycle."""
    for c, (v, r, p) in enumerate(cycles):
        dut.out__valid.value, dut.out__ready.value = _Value(v), _Value(r)
        dut.out__payload.value = _Value(p)
        mon.sample(c)


def test_a_dropped_row_is_named_at_its_cycle():
    plan = [3, 2]
    dut, mon = _out_bench(plan)
    beats = _beats(plan, drop=(0, 1))
    with pytest.raises(ProtocolError, match=r"^tile\.out stream, cycle 1: job 0 row 1 expected, "
                                            r"got row 2: row\(s\) 1\.\.1 of job 0 dropped$"):
        _run(dut, mon, [(1, 1, b) for b in beats])


@pytest.mark.parametrize("kind,match", [
    ("dup", r"cycle 2: job 0 row 2 expected, got row 1: row 1 of job 0 duplicated"),
    ("tail", r"cycle 2: job 0 row 2 expected, got row 0: row 0 again: rows 2\.\.2 of job 0 "
             r"dropped \(the next job began\)"),
    ("extra", r"cycle 5: an extra row \(row 0, last 0\) after the 5 rows of the 2 job\(s\) sent"),
    ("last", r"cycle 1: job 0 row 1 of 3: last = 1, expected 0 \(last flag on the wrong row\)"),
])
def test_other_row_plan_violations(kind, match):
    plan = [3, 2]
    dut, mon = _out_bench(plan)
    beats = {"dup": _beats(plan, dup=(0, 1)), "tail": _beats(plan, drop=(0, 2)),
             "extra": _beats(plan) + [0], "last": [0, 1 | 1 << 4]}[kind]
    with pytest.raises(ProtocolError, match=match):
        _run(dut, mon, [(1, 1, b) for b in beats])


def test_the_plan_passes_with_stalls():
    plan = [3, 1, 2]
    dut, mon = _out_bench(plan)
    trace = []
    for b in _beats(plan):
        trace += [(1, 0, b), (1, 0, b), (1, 1, b), (0, 1, 0)]
    _run(dut, mon, trace)
    assert mon.count == 6 and mon.stalls == 12


def test_valid_falling_and_payload_changing_while_stalled():
    dut, mon = _out_bench([4])
    with pytest.raises(ProtocolError, match=r"^out stream, cycle 2: valid fell without a "
                                            r"handshake \(it was high and ready low in cycle 1\)$"):
        _run(dut, mon, [(1, 1, 0), (1, 0, 1), (0, 1, 1)])
    dut, mon = _out_bench([4])
    with pytest.raises(ProtocolError, match=r"^out stream, cycle 3: payload changed while "
                                            r"stalled \(valid high, ready low in cycle 2\): "
                                            r"0x1 -> 0x2$"):
        _run(dut, mon, [(1, 1, 0), (0, 0, 7), (1, 0, 1), (1, 1, 2)])
