"""Technology tables (data files) and the scaling laws that extend them.

A table is a JSON file (``dqt_hw/cost/data/<name>.json``, default ``horowitz45``: Horowitz,
ISSCC 2014, 45 nm). It gives energies at a few widths; the scaling laws give every other
width:

- adder: linear in the width (``add_pj(w)``), through the table's points, extended along
  the nearest segment;
- multiplier: linear in the bit product ``b_a * b_w`` (``mul_pj(b_a, b_w)``), through the
  points ``b * b`` of the table;
- shifter / multiplexer tree: ``n * s`` 2:1 multiplexer bits for n bits and s stages
  (``shift_pj(n, s)``; a barrel shifter over n positions has s = ceil(log2 n): n log n);
- SRAM: the energy of a 64-bit read, interpolated log-log in the size (8 KB .. 1 MB),
  divided by 64 per bit (``sram_pj_per_bit(kb)``); a write costs a read;
- DRAM: a fixed energy per 64 bits (the table's low or high corner).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

__all__ = ["TechTable", "load_tech", "TECH_TABLES"]

_REQUIRED = ("name", "int_add_pj", "int_mul_pj", "fp_add_pj", "fp_mul_pj", "sram_read_64b_pj",
             "dram_64b_pj", "dram_corner", "mux2_pj_per_bit")


def _data_dir():
    return resources.files("dqt_hw.cost") / "data"


def _tables():
    return tuple(sorted(p.name[:-5] for p in _data_dir().iterdir()
                        if p.name.endswith(".json") and "int_add_pj" in p.read_text()))


TECH_TABLES = ("horowitz45",)


def _points(d, what):
    try:
        pts = sorted((float(k), float(v)) for k, v in d.items())
    except (TypeError, ValueError, AttributeError):
        raise ValueError(f"technology table entry {what!r} must map numbers to numbers, not {d!r}") from None
    if len(pts) < 1:
        raise ValueError(f"technology table entry {what!r} needs at least one point")
    return tuple(pts)


def _piecewise(pts, x):
    """Linear through the points, extended along the first/last segment (one point:
    proportional)."""
    if len(pts) == 1:
        x0, y0 = pts[0]
        return y0 * x / x0
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if x <= x1 or (x1, y1) == pts[-1]:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    raise AssertionError  # pragma: no cover


@dataclass(frozen=True)
class TechTable:
    name: str
    data: dict

    # ---------------------------------------------------------------- scaling laws
    def add_pj(self, width: int) -> float:
        """One addition of ``width``-bit integers (linear in the width)."""
        if width < 1:
            raise ValueError(f"adder width must be at least 1, not {width}")
        return max(0.0, _piecewise(_points(self.data["int_add_pj"], "int_add_pj"), width))

    def mul_pj(self, b_a: int, b_w: int | None = None) -> float:
        """One b_a x b_w integer multiplication (linear in b_a * b_w)."""
        b_w = b_a if b_w is None else b_w
        if b_a < 1 or b_w < 1:
            raise ValueError(f"multiplier widths must be at least 1, not {b_a} x {b_w}")
        pts = tuple((k * k, v) for k, v in _points(self.data["int_mul_pj"], "int_mul_pj"))
        return max(0.0, _piecewise(pts, b_a * b_w))

    def mac_pj(self, b_a: int, b_w: int, acc_bits: int) -> float:
        """One multiply-accumulate: a b_a x b_w product into an acc_bits adder."""
        return self.mul_pj(b_a, b_w) + self.add_pj(acc_bits)

    def mux_pj(self, bits: int) -> float:
        return float(self.data["mux2_pj_per_bit"]) * bits

    def shift_pj(self, n: int, stages: int) -> float:
        """A shifter / multiplexer tree of n bits and ``stages`` 2:1 levels."""
        return self.mux_pj(n * max(0, stages))

    def fp_pj(self, op: str, fmt: str = "fp32") -> float:
        table = {"add": "fp_add_pj", "mul": "fp_mul_pj"}[op]
        d = self.data[table]
        if fmt not in d:
            raise ValueError(f"technology table {self.name!r} has no {fmt} entry in {table} (has {sorted(d)})")
        return float(d[fmt])

    def fp_mac_pj(self, fmt: str = "fp32") -> float:
        return self.fp_pj("mul", fmt) + self.fp_pj("add", fmt)

    def sram_pj_per_bit(self, size_kb: float) -> float:
        """Read (or write) energy of one bit of an SRAM of ``size_kb`` KB."""
        if size_kb <= 0:
            raise ValueError(f"SRAM size must be positive, not {size_kb} KB")
        pts = tuple((math.log(k), math.log(v))
                    for k, v in _points(self.data["sram_read_64b_pj"], "sram_read_64b_pj"))
        return math.exp(_piecewise(pts, math.log(size_kb))) / 64.0

    def dram_pj_per_bit(self, corner: str | None = None) -> float:
        corner = corner or self.data["dram_corner"]
        d = self.data["dram_64b_pj"]
        if corner not in d:
            raise ValueError(f"technology table {self.name!r}: DRAM corner must be one of {sorted(d)}, not {corner!r}")
        return float(d[corner]) / 64.0

    # ---------------------------------------------------------------- area
    def um2_per_transistor(self) -> float | None:
        v = self.data.get("um2_per_transistor")
        return None if v is None else float(v)


def load_tech(spec="horowitz45") -> TechTable:
    """A technology table by name (a file in dqt_hw/cost/data) or path of a JSON file."""
    if isinstance(spec, TechTable):
        return spec
    if not isinstance(spec, (str, Path)):
        raise TypeError(f"technology table must be a name or a path, not {spec!r}")
    return _load(str(spec))


@lru_cache(maxsize=None)
def _load(spec: str) -> TechTable:
    p = Path(spec)
    if p.suffix == ".json":
        if not p.exists():
            raise ValueError(f"technology table file {spec!r} does not exist")
        text = p.read_text()
    else:
        f = _data_dir() / f"{spec}.json"
        if not f.is_file():
            raise ValueError(f"unknown technology table {spec!r} (known: {_tables()}, or a .json file)")
        text = f.read_text()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"technology table {spec!r} is not valid JSON: {e}") from None
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise ValueError(f"technology table {spec!r} lacks the entries {missing}")
    t = TechTable(str(data["name"]), data)
    for key in ("int_add_pj", "int_mul_pj", "sram_read_64b_pj"):
        _points(data[key], key)
    t.dram_pj_per_bit()
    return t
