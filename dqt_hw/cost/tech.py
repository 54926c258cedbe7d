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

Every table is checked against :class:`TechTableDoc` (published as
``schemas/tech-table.schema.json``; docs/formats.md) before any figure is read: every energy
and area a finite number > 0, keys canonical integers, no unknown entry; a bad table is one
ValueError line naming the file, the entry and the value.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
import math
from pathlib import Path
from typing import Annotated, Literal, Optional

from pydantic import Field, StringConstraints, field_validator

from ..schema import PositiveFloat, Strict, parse_json, read_bounded, validate

__all__ = ["TechTable", "TechTableDoc", "load_tech", "TECH_TABLES", "tech_table_schema"]

MAX_TABLE_BYTES = 1 << 16
"""Largest technology table file read (64 KiB; the shipped one has 2)."""

MAX_POINTS = 64
"""Most entries of one table of points (widths, sizes, formats, corners)."""

_WIDTH_KEY = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{0,2}$")]  # 1..999 bits
_SIZE_KEY = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{0,6}$")]  # 1 KB..~10 GB
_NAME_KEY = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,31}$")]
_TEXT = Annotated[str, StringConstraints(max_length=4000)]
TOGGLE_CLASSES = ("multiplier", "accumulator", "side_sums", "views", "requantizer",
                  "registers")
"""The component classes of the activity model (dqt_hw/cost/activity.py)."""
_TOGGLE_CLASS = Literal[TOGGLE_CLASSES]


MAX_PJ = 1e6
"""Largest energy of one operation or access (1 uJ; a 64-bit DRAM access is ~2000 pJ):
a larger one is a unit error, and totals stay finite."""

MAX_UM2 = 1e9
"""Largest area (1000 mm^2)."""

Energy = Annotated[float, Field(gt=0, le=MAX_PJ, allow_inf_nan=False)]
Area = Annotated[float, Field(gt=0, le=MAX_UM2, allow_inf_nan=False)]


def _table(key, what, value=Energy):
    return Annotated[dict[key, value],
                     Field(min_length=1, max_length=MAX_POINTS, description=what)]


class TechTableDoc(Strict):
    """A technology table (JSON): energies in pJ (each in (0, 1e6]) and areas in um^2
    (each in (0, 1e9]); points keyed by a width in bits or an SRAM size in KB (canonical decimal
    integers, so two keys never name the same point)."""

    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    node_nm: Optional[PositiveFloat] = None
    voltage_v: Optional[PositiveFloat] = None
    source: Optional[_TEXT] = None
    int_add_pj: _table(_WIDTH_KEY, "one w-bit integer addition, pJ, by w (linear in w)")
    int_mul_pj: _table(_WIDTH_KEY, "one b x b integer multiplication, pJ, by b (linear in "
                                   "the bit product)")
    fp_add_pj: _table(_NAME_KEY, "one floating-point addition, pJ, by format (fp16, fp32)")
    fp_mul_pj: _table(_NAME_KEY, "one floating-point multiplication, pJ, by format")
    sram_read_64b_pj: _table(_SIZE_KEY, "a 64-bit SRAM read, pJ, by SRAM size in KB "
                                        "(log-log interpolation)")
    dram_64b_pj: _table(_NAME_KEY, "64 bits from DRAM, pJ, by corner")
    dram_corner: _NAME_KEY = Field(description="the corner of dram_64b_pj used by default")
    mux2_pj_per_bit: Energy
    int_add_um2: Optional[_table(_WIDTH_KEY, "adder area, um^2, by width", Area)] = None
    int_mul_um2: Optional[_table(_WIDTH_KEY, "multiplier area, um^2, by width", Area)] = None
    fp_add_um2: Optional[_table(_NAME_KEY, "floating-point adder area, um^2", Area)] = None
    fp_mul_um2: Optional[_table(_NAME_KEY, "floating-point multiplier area, um^2", Area)] = None
    um2_per_transistor: Optional[Area] = None
    toggle_pj: Optional[_table(_TOGGLE_CLASS, "energy of one observed bit toggle, pJ, by "
                               "component class (dqt_hw/cost/activity.py); a class given "
                               "here replaces its calibration on random codes")] = None
    notes: Annotated[dict[_NAME_KEY, _TEXT], Field(max_length=MAX_POINTS)] = {}

    @field_validator("dram_corner")
    @classmethod
    def _corner_listed(cls, v, info):
        corners = info.data.get("dram_64b_pj")
        if corners is not None and v not in corners:
            raise ValueError(f"must be one of the corners of dram_64b_pj {sorted(corners)}")
        return v


def tech_table_schema() -> dict:
    """The JSON Schema of a technology table (``schemas/tech-table.schema.json``)."""
    return {**TechTableDoc.model_json_schema(), "title": "dqt_hw technology table"}


def _data_dir():
    return resources.files("dqt_hw.cost") / "data"


def _tables():
    return tuple(sorted(p.name[:-5] for p in _data_dir().iterdir()
                        if p.name.endswith(".json") and "int_add_pj" in p.read_text()))


TECH_TABLES = ("horowitz45",)


def _points(d):
    """The (x, y) points of a validated table, sorted by x."""
    return tuple(sorted((float(k), float(v)) for k, v in d.items()))


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

    def __post_init__(self):
        doc = validate(TechTableDoc, self.data, source=f"technology table {self.name!r}")
        object.__setattr__(self, "data", doc.model_dump(exclude_none=True))

    # ---------------------------------------------------------------- scaling laws
    def add_pj(self, width: int) -> float:
        """One addition of ``width``-bit integers (linear in the width)."""
        if width < 1:
            raise ValueError(f"adder width must be at least 1, not {width}")
        return max(0.0, _piecewise(_points(self.data["int_add_pj"]), width))

    def mul_pj(self, b_a: int, b_w: int | None = None) -> float:
        """One b_a x b_w integer multiplication (linear in b_a * b_w)."""
        b_w = b_a if b_w is None else b_w
        if b_a < 1 or b_w < 1:
            raise ValueError(f"multiplier widths must be at least 1, not {b_a} x {b_w}")
        pts = tuple((k * k, v) for k, v in _points(self.data["int_mul_pj"]))
        return max(0.0, _piecewise(pts, b_a * b_w))

    def mac_pj(self, b_a: int, b_w: int, acc_width: int) -> float:
        """One multiply-accumulate: a b_a x b_w product into an acc_width adder."""
        return self.mul_pj(b_a, b_w) + self.add_pj(acc_width)

    def mux_pj(self, bits: int) -> float:
        return float(self.data["mux2_pj_per_bit"]) * bits

    def shift_pj(self, n: int, stages: int) -> float:
        """A shifter / multiplexer tree of n bits and ``stages`` 2:1 levels."""
        return self.mux_pj(n * max(0, stages))

    def fp_pj(self, op: str, fmt: str = "fp32") -> float:
        if op not in ("add", "mul"):
            raise ValueError(f"floating-point operation must be 'add' or 'mul', not {op!r}")
        table = f"fp_{op}_pj"
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
                    for k, v in _points(self.data["sram_read_64b_pj"]))
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
        data = read_bounded(p, what="technology table", max_bytes=MAX_TABLE_BYTES)
        source = f"technology table {spec!r}"
    else:
        f = _data_dir() / f"{spec}.json"
        if not f.is_file():
            raise ValueError(f"unknown technology table {spec!r} (known: {_tables()}, or a .json file)")
        data, source = f.read_bytes(), f"technology table {spec!r}"
    doc = validate(TechTableDoc, parse_json(data, source=source), source=source)
    return TechTable(doc.name, doc.model_dump(exclude_none=True))
