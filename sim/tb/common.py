"""What every bench shares: the configuration it was built from, payload packing from the
sidecar's field offsets, a cycle loop that steps drivers and monitors, and the summary.

Port names and field offsets come from the JSON sidecar (``SIM_SIDECAR``), never retyped.
Timing convention of every bench: drivers change inputs just after a rising edge of
``clk``; monitors sample just after the falling edge, when everything that decides the
next rising edge is settled (``valid``, ``ready`` and payloads), and count a transfer
where ``valid`` and ``ready`` are both high.
"""

from __future__ import annotations

import json
import os
import random
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge, Timer

__all__ = ["Config", "Field", "Packer", "CycleLoop", "write_summary", "bench_rng"]


class Config:
    """The sidecar, the design it records (``dqt_hw.design.Design.from_sidecar``) and the
    bench parameters of this simulation (plain Python values)."""

    def __init__(self):
        from dqt_hw.design import Design
        from dqt_hw.design.core import read_sidecar

        self.sidecar = read_sidecar(os.environ["SIM_SIDECAR"])
        self.params = json.loads(os.environ.get("SIM_PARAMS", "{}"))
        self.design = Design.from_sidecar(self.sidecar)
        self.hw = self.sidecar["parameters"]
        self.ports = {p["name"]: p for p in self.sidecar["ports"]}
        self.timing = self.sidecar.get("timing", {})
        self.node = os.environ.get("SIM_NODE", "")

    def packer(self, port: str) -> "Packer":
        return Packer(self.ports[port])

    def get(self, key, default=None):
        return self.params.get(key, default)


def bench_rng(tag: str = "") -> random.Random:
    """A random generator seeded from cocotb's seed (the runner's ``SIM_SEED``)."""
    return random.Random(f"{cocotb.RANDOM_SEED}-{tag}")


class Field:
    __slots__ = ("name", "offset", "width", "signed", "mask")

    def __init__(self, d):
        self.name, self.offset, self.width = d["name"], d["offset"], d["width"]
        self.signed = bool(d.get("signed", False))
        self.mask = (1 << self.width) - 1


class Packer:
    """Packs {field name: int} into a port's integer and back, from the sidecar's
    ``fields`` (little-endian, as Amaranth lays out a struct or array)."""

    def __init__(self, port: dict):
        self.name, self.width = port["name"], port["width"]
        self.fields = {f["name"]: Field(f) for f in port.get("fields", [])}

    def pack(self, values: dict) -> int:
        word = 0
        for name, v in values.items():
            f = self.fields[name]
            lo, hi = ((-(1 << (f.width - 1)), (1 << (f.width - 1)) - 1) if f.signed
                      else (0, f.mask))
            if not lo <= v <= hi:
                raise ValueError(f"{self.name}.{name} = {v} does not fit [{lo}, {hi}]")
            word |= (v & f.mask) << f.offset
        return word

    def unpack(self, word: int) -> dict:
        out = {}
        for name, f in self.fields.items():
            v = (word >> f.offset) & f.mask
            if f.signed and v >> (f.width - 1):
                v -= 1 << f.width
            out[name] = v
        return out

    def array(self, word: int, prefix: str, count: int, signed: bool) -> list[int]:
        """Elements ``prefix[0..count-1]`` (e.g. ``codes``) as ints, with the given
        signedness (array elements of code type carry the code's signedness)."""
        out = []
        for i in range(count):
            f = self.fields[f"{prefix}[{i}]"]
            v = (word >> f.offset) & f.mask
            if signed and v >> (f.width - 1):
                v -= 1 << f.width
            out.append(v)
        return out

    def pack_array(self, prefix: str, values) -> int:
        word = 0
        for i, v in enumerate(values):
            f = self.fields[f"{prefix}[{i}]"]
            word |= (int(v) & f.mask) << f.offset
        return word

    def pack_elements(self, elements, max_pack: int, p: int, pad) -> list[int]:
        """The words of an ``act``/``wgt`` stream that carries ``elements`` (one list of
        codes per element k): ``p`` elements per transfer, element p t + s in slot s of
        transfer t (docs/hardware.md, "Precision-scalable PE, array and tile"); the slots
        past them take ``pad()`` (any value: the tile ignores them)."""
        words = []
        for t0 in range(0, len(elements), p):
            word = 0
            for s in range(max_pack):
                used = s < p and t0 + s < len(elements)
                word |= self.pack_array(slot_prefix(max_pack, s),
                                        elements[t0 + s] if used else pad())
            words.append(word)
        return words

    def unpack_elements(self, words, K: int, max_pack: int, p: int, count: int,
                        signed: bool) -> list[list[int]]:
        """The K elements (``count`` codes each) that ``words`` carry, ``p`` per transfer
        (the inverse of :meth:`pack_elements`)."""
        out = []
        for t, word in enumerate(words):
            for s in range(min(p, K - p * t)):
                out.append(self.array(word, slot_prefix(max_pack, s), count, signed))
        return out


def slot_prefix(max_pack: int, s: int) -> str:
    """Field prefix of slot ``s`` of a packed ``act``/``wgt`` payload ('' unpacked)."""
    return "" if max_pack == 1 else f"[{s}]"


def to_signed(v: int, width: int) -> int:
    return v - (1 << width) if v >> (width - 1) else v


class CycleLoop:
    """One clock, one loop: after each rising edge ``drive(cycle)`` of every driver,
    after each falling edge ``sample(cycle)`` of every monitor. (One coroutine for the
    whole bench is several times faster than one per driver.)"""

    def __init__(self, dut, period_ns: int = 10):
        self.dut = dut
        self.clk = dut.clk
        self.period = period_ns
        self.drivers = []
        self.monitors = []
        self.cycle = 0

    _clocks = {}

    def start_clock(self):
        """Start the clock unless it already runs in this test (benches may build several
        TBs in one test; cocotb stops a test's clock task when the test ends)."""
        key = id(self.clk._handle) if hasattr(self.clk, "_handle") else id(self.clk)
        task = CycleLoop._clocks.get(key)
        if task is not None and not task.done():
            return
        CycleLoop._clocks[key] = Clock(self.clk, self.period, unit="ns").start()

    async def reset(self, rst, cycles: int = 2):
        rst.value = 1
        for _ in range(cycles):
            await RisingEdge(self.clk)
        rst.value = 0
        await RisingEdge(self.clk)

    async def run_until(self, done, *, max_cycles: int):
        rise, fall = RisingEdge(self.clk), FallingEdge(self.clk)
        drivers, monitors = self.drivers, self.monitors
        while not done():
            for d in drivers:
                d.drive(self.cycle)
            await fall
            for m in monitors:
                m.sample(self.cycle)
            await rise
            self.cycle += 1
            if self.cycle >= max_cycles:
                raise AssertionError(f"no progress: {max_cycles} cycles without finishing")


async def settle():
    await Timer(1, unit="ns")


class Timer_:
    def __init__(self):
        self.t0 = time.perf_counter()

    def seconds(self) -> float:
        return time.perf_counter() - self.t0


def write_summary(**kw) -> None:
    """Merge ``kw`` into the run's summary JSON (the runner reads it back) and export the
    coverage database of this simulation so far."""
    from .coverage import cov

    cov.export()
    path = os.environ.get("SIM_SUMMARY")
    if not path:
        return
    data = {}
    if os.path.exists(path):
        with open(path) as fh:
            data = json.load(fh)
    for k, v in kw.items():
        if isinstance(v, (int, float)) and isinstance(data.get(k), (int, float)):
            data[k] = data[k] + v
        else:
            data[k] = v
    with open(path, "w") as fh:
        json.dump(data, fh, indent=1)
