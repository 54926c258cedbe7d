"""An AXI4-Stream protocol and order checker for one port, sampled once per cycle.

:class:`AxisChecker` watches ``<prefix>_tvalid/tready/tdata/tlast[/tuser]`` after every
falling edge of the clock (everything that decides the next rising edge is settled; the
bench convention of :mod:`sim.tb.common`) and reports, at the first occurrence, naming
the stream and the cycle:

- ``tvalid`` falling without a handshake (valid was high and ready low at the previous
  edge, and valid is low now);
- ``tdata`` / ``tlast`` / ``tuser`` changing while stalled (the same, with valid still
  high and the beat different);
- a beat dropped, duplicated, reordered or different, against the beats it expects in
  order (:meth:`expect`: for an input, what the bench meant to send; for the output,
  the reference model's rows: the checker is the output's scoreboard).

By default a violation raises :class:`StreamViolation` at once (it fails the cocotb test
in the cycle it happens); ``record=True`` collects them in :attr:`violations` instead
(the checker's own tests inject faults and read them).
"""

from __future__ import annotations

from collections import deque

from cocotb.utils import get_sim_time

__all__ = ["AxisChecker", "StreamViolation"]


class StreamViolation(AssertionError):
    pass


def _fmt(beat) -> str:
    data, last, user = beat
    s = f"tdata={data:#x} tlast={last}"
    return s + (f" tuser={user}" if user is not None else "")


class AxisChecker:
    """Checks one AXI4-Stream port; ``sample(cycle)`` once per cycle, after the falling
    edge."""

    def __init__(self, dut, prefix: str, *, user: bool = False, record: bool = False):
        self.name = prefix
        self.tvalid = getattr(dut, f"{prefix}_tvalid")
        self.tready = getattr(dut, f"{prefix}_tready")
        self.tdata = getattr(dut, f"{prefix}_tdata")
        self.tlast = getattr(dut, f"{prefix}_tlast")
        self.tuser = getattr(dut, f"{prefix}_tuser") if user else None
        self.record = record
        self.expected = deque()  # (beat, info)
        self.violations = []  # (cycle, message)
        self.beats = 0  # handshakes seen
        self.stalls = 0  # cycles with tvalid high and tready low
        self.handshake_cycles = []
        self._prev = None  # (valid, ready, beat) of the previous cycle
        self._last_beat = None

    def expect(self, beat, info: str = "") -> None:
        """Queue the next expected beat: (tdata, tlast, tuser or None)."""
        self.expected.append((tuple(beat), info))

    def _beat(self):
        user = int(self.tuser.value) if self.tuser is not None else None
        return (self.tdata.value.to_unsigned(), int(self.tlast.value), user)

    def _violate(self, cycle: int, what: str) -> None:
        msg = f"{self.name}: {what} at cycle {cycle} (t = {get_sim_time('ns'):.0f} ns)"
        self.violations.append((cycle, msg))
        if not self.record:
            raise StreamViolation(msg)

    def sample(self, cycle: int) -> None:
        valid, ready = int(self.tvalid.value), int(self.tready.value)
        beat = self._beat() if valid else None
        prev = self._prev
        if prev is not None and prev[0] and not prev[1]:  # stalled at the last edge
            if not valid:
                self._violate(cycle, f"tvalid fell without a handshake (beat {self.beats}, "
                                     f"{_fmt(prev[2])})")
            elif beat != prev[2]:
                self._violate(cycle, f"beat changed while stalled: {_fmt(prev[2])} -> "
                                     f"{_fmt(beat)}")
        if valid and not ready:
            self.stalls += 1
        if valid and ready:
            self._check(cycle, beat)
            self.beats += 1
            self.handshake_cycles.append(cycle)
            self._last_beat = beat
        self._prev = (valid, ready, beat)

    def _check(self, cycle: int, beat) -> None:
        i = self.beats
        if not self.expected:
            self._violate(cycle, f"beat {i} not expected ({_fmt(beat)}): a duplicate or an "
                                 f"extra beat")
            return
        (want, info) = self.expected[0]
        if beat == want:
            self.expected.popleft()
            return
        later = [b for b, _ in self.expected]
        where = f" ({info})" if info else ""
        if len(later) > 1 and beat == later[1]:
            self._violate(cycle, f"beat {i} dropped{where}: expected {_fmt(want)}, got the "
                                 f"next one {_fmt(beat)}")
            self.expected.popleft()
            self.expected.popleft()
        elif beat == self._last_beat:
            self._violate(cycle, f"beat {i - 1} duplicated: got {_fmt(beat)} again where "
                                 f"beat {i}{where} {_fmt(want)} was expected")
        elif beat in later[2:]:
            self._violate(cycle, f"beats reordered: got expected beat {i + later.index(beat)} "
                                 f"where beat {i}{where} {_fmt(want)} was expected")
        else:
            self._violate(cycle, f"beat {i} differs{where}: expected {_fmt(want)}, got "
                                 f"{_fmt(beat)}")
            self.expected.popleft()

    def finish(self) -> int:
        """Assert that every expected beat came (and nothing was violated); the count."""
        if self.expected:
            beat, info = self.expected[0]
            raise StreamViolation(f"{self.name}: {len(self.expected)} expected beat(s) never "
                                  f"came, first {_fmt(beat)} {info}")
        if self.violations:
            raise StreamViolation(self.violations[0][1])
        return self.beats
