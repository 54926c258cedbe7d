"""Generic valid/ready stream driver, sink and monitor (``amaranth.lib.stream`` ports:
``<name>__valid``, ``<name>__ready``, ``<name>__payload``), stepped by
:class:`sim.tb.common.CycleLoop`.

A transfer happens at a rising edge where valid and ready are both high. The monitor
samples after the falling edge (everything that decides the next edge is settled) and
reports each transfer's payload (an int) to its callbacks. The source raises valid without
waiting for ready and holds valid and payload until its monitor has seen the transfer; it
may insert idle cycles (valid low) between transfers with probability ``p_idle``.

Every monitor is also a protocol checker (docs/hardware.md, "Port protocol"): once
``valid`` is high it must stay high until the transfer, and the payload must not change
while ``valid`` is high and ``ready`` low. The first violation raises
:class:`ProtocolError` at once, naming the stream and the cycle (no time-out, no
scoreboard mismatch further on). ``hold_payload=False`` leaves the payload rule out.
"""

from __future__ import annotations

from .coverage import cov


class ProtocolError(AssertionError):
    """A valid/ready rule broken on a stream (raised at the first violation)."""


class StreamMonitor:
    def __init__(self, dut, name: str, cover_backpressure: bool = False,
                 hold_payload: bool = True):
        self.name = name
        self.hold_payload = hold_payload
        self.cover_backpressure = cover_backpressure
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.callbacks = []
        self.fire = False
        self.count = 0
        self.stalls = 0  # valid high, ready low (back-pressure)
        self.cycle = 0  # the cycle of the last sample (callbacks read it)
        self.held = None  # after a stalled cycle: the payload that must still be there

    def sample(self, cycle):
        self.cycle = cycle
        v = int(self.valid.value)
        r = int(self.ready.value)
        if self.held is not None:  # the previous cycle was stalled: valid and payload hold
            if not v:
                raise ProtocolError(f"{self.name} stream, cycle {cycle}: valid fell without a "
                                    f"handshake (it was high and ready low in cycle {cycle - 1})")
            if self.hold_payload and self.held is not True:
                word = self.payload.value.to_unsigned()
                if word != self.held:
                    raise ProtocolError(
                        f"{self.name} stream, cycle {cycle}: payload changed while stalled "
                        f"(valid high, ready low in cycle {cycle - 1}): {self.held:#x} -> {word:#x}")
            self.held = None
        self.fire = bool(v and r)
        if self.fire:
            self.count += 1
            word = self.payload.value.to_unsigned()
            for cb in self.callbacks:
                cb(word)
        elif v:
            self.held = self.payload.value.to_unsigned() if self.hold_payload else True
            self.stalls += 1
            if self.cover_backpressure and not r:
                cov.stall(self.name)


class StreamSource:
    """Sends integer payloads in order; ``p_idle``: chance of an idle cycle before each."""

    def __init__(self, dut, name: str, monitor: StreamMonitor, rng, p_idle: float = 0.0):
        self.name = name
        self.valid = getattr(dut, f"{name}__valid")
        self.payload = getattr(dut, f"{name}__payload")
        self.monitor = monitor
        self.rng = rng
        self.p_idle = p_idle
        self.items = []
        self.pos = 0
        self.active = False  # valid is high, waiting for its transfer
        self.idle_cycles = 0
        self.valid.value = 0

    def send(self, word: int):
        self.items.append(word)

    def busy(self) -> bool:
        return self.pos < len(self.items)

    def drive(self, cycle):
        if self.active and self.monitor.fire:
            self.active = False
            self.pos += 1
        if self.active:
            return  # hold valid and payload until the transfer
        if self.pos < len(self.items):
            if self.p_idle and self.rng.random() < self.p_idle:
                self.valid.value = 0
                self.idle_cycles += 1
                cov.stall(self.name)
                return
            self.payload.value = self.items[self.pos]
            self.valid.value = 1
            self.active = True
        else:
            self.valid.value = 0


class StreamSink:
    """Drives ``ready``: low with probability ``p_stall`` in each cycle."""

    def __init__(self, dut, name: str, monitor: StreamMonitor, rng, p_stall: float = 0.0):
        self.name = name
        self.ready = getattr(dut, f"{name}__ready")
        self.valid = getattr(dut, f"{name}__valid")
        self.monitor = monitor
        self.rng, self.p_stall = rng, p_stall
        self.stall_cycles = 0
        self.ready.value = 1

    def drive(self, cycle):
        r = not (self.p_stall and self.rng.random() < self.p_stall)
        self.ready.value = int(r)
        if not r:
            self.stall_cycles += 1
