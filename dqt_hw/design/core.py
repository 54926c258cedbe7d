"""The one design description: every parameter of a datapath, validated once.

A :class:`Design` names a component (``tile`` by default: the accelerator tile) and
holds every parameter the generators, the reference model's configuration, the cost
models, the golden writer and the cocotb benches read. Its defaults are the only defaults
of the toolkit; its derived quantities (side-sum width, latency, minimum period, cycles
per width pair, ...) are computed here and nowhere else. It reads and writes a flat TOML
table, and its :meth:`Design.parameters` are exactly what the Verilog's JSON sidecar
records, so ``Design.from_sidecar(sidecar) == design``.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import Field, StringConstraints

from ..schema import Strict, nearest, read_json, validate
from ..spec import DEFAULT_CONST_BITS, ROUNDINGS, planes_read
from . import rules as R

__all__ = ["COMPONENTS", "PARAMETERS", "Design", "Sidecar", "as_design", "read_toml",
           "read_sidecar"]

COMPONENTS = ("view", "pe", "scalable_pe", "array", "requant", "tile", "rescale", "axi",
              "plain_pe", "plain_array", "planes", "plane_tile")
"""The generators a design can name (``dqt_hw.hw.config.GENERATORS`` maps them)."""

PARAMETERS = {
    "view": ("n", "view_rounding", "signed", "widths"),
    "pe": ("n", "acc_width", "overflow", "view_rounding", "signed", "widths", "views"),
    "scalable_pe": ("n", "acc_width", "overflow", "view_rounding", "signed", "widths",
                    "max_pack", "views"),
    "array": ("rows", "cols", "n", "acc_width", "overflow", "view_rounding", "signed",
              "widths", "depth_bits", "max_pack"),
    "requant": ("n", "acc_width", "sum_width", "kbits", "ebits", "sbits", "signed", "widths"),
    "tile": ("rows", "cols", "n", "acc_width", "overflow", "view_rounding", "signed",
             "widths", "depth_bits", "kbits", "ebits", "sbits", "max_pack", "rq_lanes",
             "rq_stages"),
    "rescale": ("n", "rounding", "signed", "mult_bits", "sbits", "widths"),
    "axi": ("rows", "cols", "n", "acc_width", "overflow", "view_rounding", "signed",
            "widths", "depth_bits", "kbits", "ebits", "sbits", "max_pack", "queue_depth"),
    # the plain MAC PE / array (no views, no width selects, no side sums, overflow wraps):
    # the reference against which DQT's precision switching is costed (docs/cost.md)
    "plain_pe": ("n", "acc_width", "signed"),
    "plain_array": ("rows", "cols", "n", "acc_width", "signed"),
    # bit-plane storage (docs/hardware.md, "Bit-plane storage"): the buffer alone, and the
    # tile that runs from it
    "planes": ("rows", "cols", "n", "signed", "depth_bits"),
    "plane_tile": ("rows", "cols", "n", "acc_width", "overflow", "view_rounding", "signed",
                   "widths", "depth_bits", "kbits", "ebits", "sbits"),
}
"""The parameters of each component, in documentation (and sidecar) order."""

QUIET_DEFAULTS = {"array": {"max_pack": 1}, "tile": {"max_pack": 1, "rq_stages": 0}}
"""Parameters left out of the sidecar at their default (the sidecars of designs made
before the parameter existed stay byte-identical)."""

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
"""A module name: a Verilog identifier."""

_NAME_RE = re.compile(NAME_PATTERN)

INT_RANGES = {
    "rows": ("rows R", 1, R.MAX_DIM),
    "cols": ("columns C", 1, R.MAX_DIM),
    "depth_bits": ("depth_bits", 1, R.MAX_DEPTH_BITS),
    "sum_width": ("side-sum width", 2, R.MAX_ACC_WIDTH),
    "kbits": ("constant width kbits", 2, R.MAX_CONST_BITS),
    "ebits": ("shift width ebits", 1, R.MAX_E_BITS),
    "mult_bits": ("multiplier width mult_bits", 2, R.MAX_MULT_BITS),
    "sbits": ("shift width sbits", 1, R.MAX_S_BITS),
    "acc_width": ("accumulator width W", 2, R.MAX_ACC_WIDTH),
    "rq_lanes": ("requantizer lanes rq_lanes", 1, R.MAX_DIM),
    "rq_stages": ("requantizer pipeline stages rq_stages", 0, R.MAX_RQ_STAGES),
}
"""(what, lo, hi) of every integer parameter checked by range alone (acc_width: of a
standalone requantizer; elsewhere it must also hold one product). The checks below and
the published schema (:mod:`dqt_hw.design.schema`) read this table."""


def _ranged(key, value):
    what, lo, hi = INT_RANGES[key]
    return R.check_int(what, value, lo, hi)
_CLOCKED = ("pe", "scalable_pe", "array", "tile", "axi", "plain_pe", "plain_array", "planes",
            "plane_tile")


@dataclass(frozen=True)
class Design:
    """One datapath design (keyword arguments; the defaults are the toolkit's defaults).

    component : str
        The generator: one of :data:`COMPONENTS` (default ``"tile"``).
    name : str
        The Verilog module name (also the file stem); default ``dqt_<component>``.
    n : int
        Master width of activations, weights and output codes, 2..16.
    signed : bool
        Two's-complement codes instead of unsigned offset codes.
    widths : sequence of int
        The view (and output) widths built; default every width from 1 (2 signed) to n.
    acc_width : int
        Accumulator width W (at least one product of the built widths, at most 64).
    overflow : str
        Accumulator overflow, ``"wrap"`` or ``"saturate"``.
    view_rounding : str
        Nested view rounding, ``"floor"`` or ``"half_up"``.
    rows, cols : int
        R x C of the PE array, 1..64.
    depth_bits : int
        K field width: tiles of 1..2^depth_bits steps (``planes``, ``plane_tile``: also
        the words of each plane memory, at most 2^12).
    kbits, ebits, sbits : int
        Widths of the requantizer constants K, left shifts E and right shift S.
    max_pack : int
        1, 2 or 4 elements per step at narrow widths (precision-scalable PEs).
    views : bool
        A PE with its own view units (``False``: the array's edge views them).
    sum_width : int
        Side-sum width of a standalone requantizer (derived from n and depth_bits
        everywhere else).
    rounding : str
        Rounding of the baseline rescale unit (any of ``dqt_hw.spec.ROUNDINGS``).
    mult_bits : int
        Multiplier constant width of the baseline rescale unit.
    queue_depth : int
        Tile commands the AXI shell's command queue holds (2, 4, 8 or 16).
    rq_lanes : int, optional
        Requantizer lanes of a tile, dividing ``cols`` (default, ``None``: one per column,
        = cols). With fewer, each output row takes cols / rq_lanes cycles (one lane group
        per cycle, the array frozen meanwhile: :attr:`row_cycles`). A value equal to
        ``cols`` is stored as ``None`` (the same design).

    A parameter that the component does not have must stay at its default.
    """

    component: str = "tile"
    name: str | None = None
    n: int = 8
    signed: bool = False
    widths: tuple | None = None
    acc_width: int = 32
    overflow: str = "wrap"
    view_rounding: str = "floor"
    rows: int = 8
    cols: int = 8
    depth_bits: int = 12
    kbits: int = DEFAULT_CONST_BITS
    ebits: int = 5
    sbits: int = 6
    max_pack: int = 1
    views: bool = True
    sum_width: int | None = None
    rounding: str = "half_up"
    mult_bits: int = 16
    queue_depth: int = 4
    rq_lanes: int | None = None
    rq_stages: int = 0

    def __post_init__(self):
        comp = self.component
        if not isinstance(comp, str):
            raise TypeError(f"component must be a string, not {comp!r}")
        if comp not in COMPONENTS:
            raise ValueError(f"component must be one of {COMPONENTS}, not {comp!r}")
        name = f"dqt_{comp}" if self.name is None else self.name
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ValueError(f"module name must be a Verilog identifier "
                             f"([A-Za-z_][A-Za-z0-9_]*), not "
                             f"{name[:60] if isinstance(name, str) else name!r}")
        if name in R.VERILOG_KEYWORDS:
            raise ValueError(f"module name {name!r} is a reserved word of Verilog / "
                             f"SystemVerilog")
        if len(name) > R.MAX_NAME_LENGTH:
            raise ValueError(f"module name must have at most {R.MAX_NAME_LENGTH} characters, "
                             f"not {len(name)} ({name[:20]!r}...)")
        params = PARAMETERS[comp]
        for f in dataclasses.fields(self):
            if f.name in ("component", "name", "sum_width") or f.name in params:
                continue
            if getattr(self, f.name) != f.default:
                raise ValueError(f"parameter {f.name!r} is not one of the {comp} "
                                 f"parameters {params}")
        if self.sum_width is not None and "sum_width" not in params:
            raise ValueError(f"sum_width is derived for a {comp} (n + depth_bits + 1); it is "
                             f"a parameter of the requant component only")
        v = {"name": name}
        if "rows" in params:
            v["rows"] = _ranged("rows", self.rows)
            v["cols"] = _ranged("cols", self.cols)
        v["n"] = n = R.check_master_width(self.n)
        v["signed"] = signed = R.check_bool("signed", self.signed)
        widths = R.check_widths(self.widths, n, signed)
        if "widths" in params:  # (a component without widths keeps the default: replace()
            v["widths"] = widths  # must not find a parameter it does not have)
        if comp in ("requant",):
            v["acc_width"] = _ranged("acc_width", self.acc_width)
        elif "acc_width" in params:
            v["acc_width"] = R.check_acc_width(self.acc_width, n, signed=signed,
                                               widths=widths)
        if "overflow" in params:
            v["overflow"] = R.check_overflow(self.overflow)
        if "view_rounding" in params:
            v["view_rounding"] = R.check_view_rounding(self.view_rounding)
        if "depth_bits" in params:
            v["depth_bits"] = _ranged("depth_bits", self.depth_bits)
            if comp in ("planes", "plane_tile"):  # 2^depth_bits words per plane memory
                v["depth_bits"] = R.check_int("depth_bits of a plane buffer", self.depth_bits,
                                              1, R.MAX_PLANE_DEPTH_BITS)
        if "sum_width" in params:
            sw = R.side_sum_width(n, self.depth_bits) if self.sum_width is None \
                else self.sum_width
            v["sum_width"] = _ranged("sum_width", sw)
        if "kbits" in params:
            v["kbits"] = _ranged("kbits", self.kbits)
            v["ebits"] = _ranged("ebits", self.ebits)
        if "rounding" in params:
            v["rounding"] = R.check_choice("rounding", self.rounding, ROUNDINGS)
        if "mult_bits" in params:
            v["mult_bits"] = _ranged("mult_bits", self.mult_bits)
        if "sbits" in params:
            v["sbits"] = _ranged("sbits", self.sbits)
        if "max_pack" in params:
            v["max_pack"] = R.check_max_pack(self.max_pack, n, signed)
        if "views" in params:
            v["views"] = R.check_bool("views", self.views)
        if "queue_depth" in params:
            v["queue_depth"] = R.check_queue_depth(self.queue_depth)
        if "rq_lanes" in params and self.rq_lanes is not None:
            lanes = R.check_rq_lanes(self.rq_lanes, v["cols"])
            v["rq_lanes"] = None if lanes == v["cols"] else lanes
        if "rq_stages" in params:
            v["rq_stages"] = R.check_rq_stages(self.rq_stages, v.get("rq_lanes"), v["cols"])
        for k, val in v.items():
            object.__setattr__(self, k, val)

    # ------------------------------------------------------------------ construction

    def replace(self, **changes) -> "Design":
        """A copy with ``changes`` (validated again)."""
        return dataclasses.replace(self, **changes)

    def sub(self, component: str, **changes) -> "Design":
        """The design of a part: ``component``'s parameters taken from this design (a
        tile's ``sub("array")`` is the PE array built inside it), then ``changes``."""
        if component not in COMPONENTS:
            raise ValueError(f"component must be one of {COMPONENTS}, not {component!r}")
        kw = {k: getattr(self, k) for k in PARAMETERS[component]
              if k in PARAMETERS[self.component] and k != "sum_width"}
        if component == "requant":
            kw["sum_width"] = self.side_sum_width
        kw.update(changes)
        return Design(component=component, name=self.name, **kw)

    @classmethod
    def of(cls, component: str, design: "Design | None" = None, params: dict | None = None
           ) -> "Design":
        """What a generator of ``component`` builds from ``design`` (or the defaults)
        with keyword ``params`` on top."""
        _check_keys(component, params or {}, "generator")
        if design is None:
            return cls(component=component, **(params or {}))
        if not isinstance(design, cls):
            raise TypeError(f"design must be a dqt_hw.design.Design, not {design!r}")
        d = design if design.component == component else design.sub(component)
        return d.replace(**params) if params else d

    @classmethod
    def from_mapping(cls, table, *, source: str = "design") -> "Design":
        """A design from a TOML-like table: ``component``, ``name`` and the parameters as
        keys (or under a ``params`` sub-table, or the whole under a ``design`` table).
        An unknown key is refused with the nearest valid one suggested."""
        if not isinstance(table, dict):
            raise TypeError(f"{source}: a design must be a table, not {table!r}")
        table = dict(table)
        if set(table) == {"design"} and isinstance(table["design"], dict):
            table = dict(table["design"])
        params = table.pop("params", {})
        if not isinstance(params, dict):  # "", 0 or false are not an empty table
            raise TypeError(f"{source}: params must be a table, not {params!r}")
        twice = sorted(set(table) & set(params))
        if twice:  # one would silently override the other
            raise ValueError(f"{source}: {twice} given both in the table and under params")
        table.update(params)
        known = [f.name for f in dataclasses.fields(cls)]
        for key in table:
            if key not in known:
                raise ValueError(f"{source}: unknown design key {key!r}{nearest(key, known)}; "
                                 f"known keys: {', '.join(known)}")
        comp = table.get("component", "tile")
        if comp in COMPONENTS:
            _check_keys(comp, {k: v for k, v in table.items() if k not in ("component", "name")},
                        source)
        if isinstance(table.get("widths"), list):
            table["widths"] = tuple(table["widths"])
        try:
            return cls(**table)
        except (TypeError, ValueError) as e:
            raise type(e)(f"{source}: {e}") from None

    @classmethod
    def from_toml(cls, path) -> "Design":
        """Read a design TOML file (one flat table, see :meth:`to_toml`)."""
        return cls.from_mapping(read_toml(path), source=str(path))

    @classmethod
    def from_sidecar(cls, sidecar: dict, *, source: str = "sidecar") -> "Design":
        """The design a JSON sidecar (``dqt_hw.hw.verilog.generate``) records, the sidecar
        checked against :class:`Sidecar` first; one ValueError line naming ``source``."""
        doc = validate(Sidecar, sidecar, source=source)
        return cls.from_mapping({"component": doc.component, "name": doc.module,
                                 **doc.parameters}, source=source)

    # ------------------------------------------------------------------ views of it

    def parameters(self) -> dict:
        """The component's parameters with their values (JSON types; what the sidecar
        records): every one of :data:`PARAMETERS`, less the quiet defaults."""
        quiet = QUIET_DEFAULTS.get(self.component, {})
        out = {}
        for key in PARAMETERS[self.component]:
            v = getattr(self, key)
            if (key in quiet and v == quiet[key]) or (key == "rq_lanes" and v is None):
                continue
            out[key] = list(v) if isinstance(v, tuple) else v
        return out

    def to_dict(self) -> dict:
        """``component``, ``name`` and :meth:`parameters` in one flat table."""
        return {"component": self.component, "name": self.name, **self.parameters()}

    def to_toml(self) -> str:
        """The design as a flat TOML table (``Design.from_toml`` reads it back equal)."""
        lines = ["# dqt_hw design (docs/design.md)"]
        for k, v in self.to_dict().items():
            if isinstance(v, bool):
                s = "true" if v else "false"
            elif isinstance(v, str):
                s = f'"{v}"'
            elif isinstance(v, list):
                s = "[" + ", ".join(str(x) for x in v) + "]"
            else:
                s = str(v)
            lines.append(f"{k} = {s}")
        return "\n".join(lines) + "\n"

    @property
    def clocked(self) -> bool:
        """Whether the component has registers (a clock and a synchronous reset)."""
        return self.component in _CLOCKED

    @property
    def width_bits(self) -> int:
        """Bits of a run-time width register (b in [0, n])."""
        return R.width_field_bits(self.n)

    @property
    def side_sum_width(self) -> int:
        """Width of the signed side sums (a requantizer's own ``sum_width``)."""
        if self.component == "requant":
            return self.sum_width
        return R.side_sum_width(self.n, self.depth_bits)

    @property
    def requant_sum_bits(self) -> int:
        """Width of the requantizer's exact internal sum."""
        return R.requant_sum_bits(kbits=self.kbits, ebits=self.ebits,
                                  acc_width=self.acc_width, sum_width=self.side_sum_width)

    @property
    def min_period(self) -> int:
        """Fewest steps between the last steps of consecutive tiles: max(R, C)."""
        return max(self.rows, self.cols)

    @property
    def array_latency(self) -> int:
        """PE-array steps from a tile's last element at the edge to its row 0 on the
        array's ``row_*`` outputs: 1 + C (the edge register, then C PEs)."""
        return 1 + self.cols

    @property
    def requant_lanes(self) -> int:
        """Requantizer lanes of the tile: ``rq_lanes``, or one per column (C)."""
        return self.cols if self.rq_lanes is None else self.rq_lanes

    @property
    def row_cycles(self) -> int:
        """Cycles per emitted output row: C / requant_lanes lane groups, one per cycle (1
        with a lane per column). The array is frozen for the other row_cycles - 1."""
        return R.row_cycles(self.cols, self.requant_lanes)

    @property
    def latency(self) -> int:
        """Clock edges from the edge that transfers a tile's last step to the one that
        transfers its first ``out`` row, without back-pressure: the array's latency, the
        row's lane groups, the requantizer's pipeline registers and the output register,
        C + 1 + row_cycles + rq_stages (C + 2 with a combinational lane per column)."""
        return self.array_latency + self.row_cycles + self.rq_stages

    @property
    def max_depth(self) -> int:
        """The longest tile: 2^depth_bits steps."""
        return 1 << self.depth_bits

    def pack_factor(self, b_a: int, b_w: int) -> int:
        """Elements per step at widths (b_a, b_w) (:func:`rules.pack_factor`)."""
        return R.pack_factor(self.n, b_a, b_w, self.max_pack)

    def cycles_per_width_pair(self) -> dict[str, float]:
        """Steps per element for every built (b_a, b_w), keyed ``"b_a x b_w"``."""
        return R.cycles_per_width_pair(self.n, self.widths, self.max_pack)

    def planes_read(self, b: int) -> int:
        """Bit planes a step of a plane tile reads for an operand of width ``b`` at this
        design's view rounding (:func:`dqt_hw.spec.planes_read`)."""
        return planes_read(self.n, b, self.view_rounding, signed=self.signed)

    def min_acc_width(self) -> int:
        """The narrowest accumulator these widths allow (one full product)."""
        return R.min_acc_width(self.n, signed=self.signed, widths=self.widths)


def as_design(obj, component: str | None = None) -> Design:
    """The design of ``obj``: a :class:`Design`, or a generated component (its
    ``design``); with ``component``, that part of it (``Design.sub``)."""
    d = obj if isinstance(obj, Design) else getattr(obj, "design", None)
    if not isinstance(d, Design):
        raise TypeError(f"expected a dqt_hw.design.Design or a generated component, "
                        f"not {obj!r}")
    if component is not None and d.component != component:
        d = d.sub(component)
    return d


MAX_TOML_BYTES = 1 << 16
"""Largest design file read (64 KiB)."""


def read_toml(path) -> dict:
    """The table of a TOML file; a missing, over-large (> 64 KiB) or badly nested file or
    bad TOML is a ValueError naming it."""
    import tomllib

    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_TOML_BYTES + 1)
    except OSError as e:
        raise ValueError(f"{path}: cannot read the design file ({e.strerror})") from None
    if len(data) > MAX_TOML_BYTES:
        raise ValueError(f"{path}: a design file must be at most {MAX_TOML_BYTES} bytes")
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: not valid TOML ({e})") from None
    except RecursionError:
        raise ValueError(f"{path}: not valid TOML (nested too deeply)") from None


def _check_keys(component: str, params: dict, source: str) -> None:
    """Every key of ``params`` must be a parameter of ``component``."""
    allowed = PARAMETERS[component]
    for key in params:
        if key not in allowed:
            raise ValueError(f"{source}: parameter {key!r} is not one of the {component} "
                             f"parameters {allowed}{nearest(key, allowed)}")


# ----------------------------------------------------------------------------- sidecars

SIDECAR_FORMAT = 1
"""Version of the JSON sidecar (``dqt_hw.hw.verilog``)."""

MAX_SIDECAR_BYTES = 1 << 20
"""Largest sidecar read (1 MiB; the 8x8 tile's has 16 KiB)."""

_PortName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_$]*$",
                                             max_length=256)]
_Bits = Annotated[int, Field(ge=1, le=1 << 20)]
_Text = Annotated[str, StringConstraints(max_length=4096)]


class SidecarField(Strict):
    """One field of a stream payload: its bits [offset, offset + width)."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    offset: Annotated[int, Field(ge=0, lt=1 << 20)]
    width: _Bits
    signed: bool


class SidecarPort(Strict):
    name: _PortName
    direction: Literal["input", "output"]
    width: _Bits
    signed: bool
    fields: Optional[Annotated[list[SidecarField], Field(max_length=1 << 16)]] = None


class RegField(Strict):
    """A field of a register of the AXI shell's map (dqt_hw/hw/regmap.py)."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    lsb: Annotated[int, Field(ge=0, le=31)]
    width: Annotated[int, Field(ge=1, le=32)]
    access: Literal["ro", "rw", "w1c", "w1p"]
    value: Annotated[str, StringConstraints(max_length=64)]
    doc: _Text
    signed: Optional[bool] = None
    const: Optional[Annotated[int, Field(ge=0, lt=1 << 32)]] = None


class Register(Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    offset: Annotated[int, Field(ge=0, lt=1 << 32, multiple_of=4)]
    group: Annotated[str, StringConstraints(max_length=64)]
    doc: _Text
    fields: Annotated[list[RegField], Field(min_length=1, max_length=32)]


class RegMap(Strict):
    """The register map of an AXI shell, as its sidecar records it."""

    version: Annotated[int, Field(ge=1, le=1)]
    data_width: Literal[32]
    addr_width: Annotated[int, Field(ge=2, le=32)]
    banks: Annotated[int, Field(ge=1, le=64)]
    bank_stride: Annotated[int, Field(ge=4, lt=1 << 32)]
    lane_stride: Annotated[int, Field(ge=4, lt=1 << 32)]
    bank_base: Annotated[list[Annotated[int, Field(ge=0, lt=1 << 32)]], Field(max_length=64)]
    lane_words: Annotated[list[Annotated[str, StringConstraints(max_length=16)]],
                          Field(max_length=64)]
    access: dict[Literal["ro", "rw", "w1c", "w1p"], _Text]
    registers: Annotated[list[Register], Field(min_length=1, max_length=1 << 14)]


class Sidecar(Strict):
    """The JSON sidecar of a generated Verilog file: the design it was made from
    (``component``, ``module``, ``parameters``, read back by :meth:`Design.from_sidecar`),
    its ports and, for a tile or a scalable PE, its timing."""

    format: Literal[SIDECAR_FORMAT]
    contract_version: Annotated[str, StringConstraints(max_length=32)]
    generator: Annotated[str, StringConstraints(max_length=256)]
    component: Literal[COMPONENTS]
    module: Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=256)]
    parameters: Annotated[dict[Annotated[str, StringConstraints(max_length=64)], Any],
                          Field(max_length=64, description="the Design's parameters (it "
                                                           "checks them)")]
    encoding: dict[_Text, Union[_Text, dict[_Text, int]]]
    ports: Annotated[list[SidecarPort], Field(min_length=1, max_length=4096)]
    timing: Optional[dict[_Text, Union[int, float, _Text, dict[_Text, Union[int, float]]]]] = None
    streams: Optional[Annotated[dict[_PortName, _Text], Field(max_length=64)]] = None
    regmap: Optional[RegMap] = None


def read_sidecar(path) -> dict:
    """The sidecar of the file ``path``, read within 1 MiB and checked against
    :class:`Sidecar` (and the design it records, :meth:`Design.from_sidecar`); one
    ValueError line naming the file otherwise."""
    source = f"sidecar {str(path)!r}"
    doc = read_json(path, what="sidecar", max_bytes=MAX_SIDECAR_BYTES)
    Design.from_sidecar(doc, source=source)
    return doc
