"""The AXI4-Lite register map of the AXI shell (docs/axi.md), described once, from a design.

:func:`register_map` turns a :class:`dqt_hw.design.Design` of component ``axi`` into a
:class:`RegisterMap`: every register with its offset and fields. Everything else is
generated from that one object: the RTL decode (:mod:`dqt_hw.hw.axi`), the sidecar's
``regmap`` (:meth:`RegisterMap.to_json`, which the benches read), the Markdown table, the C
header and the SystemRDL text (:mod:`dqt_hw.hw.regmap_text`).

A field names the hardware value it shows or sets (``value``): a storage register
(``cmd.k``, ``bank1.lane2.k3``), a live status value (``status.busy``, ``count.out_beats``),
a sticky error bit (``error.push_full``), a pulse (``doorbell.push``) or, for the
identification and capability registers, a constant (``const``). Wide values (a K of more
than 32 bits) span two registers: ``part`` is the bit of the value at the field's ``lsb``.

Plain Python (no Amaranth): the register map of a design can be read without building it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..design import Design
from ..spec import CONTRACT_VERSION

__all__ = ["ACCESS", "BANKS", "COUNTERS", "ERRORS", "ID_VALUE", "REGMAP_VERSION", "Field",
           "Register", "RegisterMap", "register_map"]

REGMAP_VERSION = 1
"""Version of the register map's layout (the VERSION register's low byte)."""

ID_VALUE = 0x44515441
"""The ID register: ASCII "DQTA"."""

BANKS = 2
"""Constant banks (ping-pong): a tile command names the bank its requantizer reads."""

ACCESS = {
    "ro": "read only: a constant or a live hardware value; a write is refused (SLVERR)",
    "rw": "read/write storage; a write honours wstrb byte by byte",
    "w1c": "sticky bit set by the hardware; writing 1 clears it",
    "w1p": "writing 1 makes a one-cycle pulse (the action); reads 0",
}
"""Field access kinds (and what each means)."""

COUNTERS = (
    ("cycles_busy", "clock cycles with a tile queued and not retired, or a row waiting on "
                    "m_axis_out"),
    ("tiles_done", "tiles retired: every row requantized (the last one may still wait on "
                   "m_axis_out)"),
    ("act_beats", "s_axis_act transfers"),
    ("wgt_beats", "s_axis_wgt transfers"),
    ("out_beats", "m_axis_out transfers"),
    ("act_stall", "cycles with s_axis_act_tvalid high and s_axis_act_tready low"),
    ("wgt_stall", "cycles with s_axis_wgt_tvalid high and s_axis_wgt_tready low"),
    ("out_stall", "cycles with m_axis_out_tvalid high and m_axis_out_tready low"),
    ("act_starve", "cycles with a command at the tile and no act beat ready for it"),
    ("wgt_starve", "cycles with a command at the tile and no wgt beat ready for it"),
)
"""The 32-bit wrapping counters (CTRL.clear_counters zeroes them), in register order."""

ERRORS = (
    ("push_full", "a DOORBELL push found the command queue full (refused: SLVERR)"),
    ("bank_in_use", "a write to a constant of a bank that a queued tile references "
                    "(refused: SLVERR)"),
    ("bad_shape", "a DOORBELL push with m > R or ncols > C (refused: SLVERR)"),
    ("act_tlast", "an s_axis_act beat whose tlast disagrees with the command (tlast must "
                  "be high exactly on a tile's last beat); the beat is used as the command "
                  "says"),
    ("wgt_tlast", "the same on s_axis_wgt"),
)
"""The sticky error bits of the ERROR register, in bit order."""

LANE_CONSTANTS = ("k1", "k2", "k3", "k4")


@dataclass(frozen=True)
class Field:
    """One field of a register: bits [lsb, lsb + width) of the 32-bit word."""

    name: str
    lsb: int
    width: int
    access: str
    value: str  # the hardware value (or "const")
    doc: str = ""
    part: int = 0  # the value's bit at lsb (values wider than a word span registers)
    signed: bool = False  # read back sign-extended up to bit 31
    const: int = 0  # the value of a "const" field

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.lsb

    def to_json(self) -> dict:
        d = {"name": self.name, "lsb": self.lsb, "width": self.width, "access": self.access,
             "value": self.value}
        if self.part:
            d["part"] = self.part
        if self.signed:
            d["signed"] = True
        if self.value == "const":
            d["const"] = self.const
        if self.doc:
            d["doc"] = self.doc
        return d


@dataclass(frozen=True)
class Register:
    """A 32-bit register at byte ``offset``."""

    name: str
    offset: int
    fields: tuple
    doc: str = ""
    group: str = "control"

    @property
    def writable(self) -> bool:
        return any(f.access != "ro" for f in self.fields)

    @property
    def access(self) -> str:
        kinds = sorted({f.access for f in self.fields})
        return "/".join(kinds)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"register {self.name} has no field {name!r}")

    def to_json(self) -> dict:
        return {"name": self.name, "offset": self.offset, "group": self.group,
                "doc": self.doc, "fields": [f.to_json() for f in self.fields]}


@dataclass(frozen=True)
class RegisterMap:
    """The registers of one AXI shell (a design of component ``axi``)."""

    module: str
    registers: tuple
    addr_width: int
    lane_stride: int  # bytes between the lanes of a bank
    bank_stride: int  # bytes between banks (bank b at (b + 1) * bank_stride)
    lane_words: tuple  # register suffixes of a lane, in offset order
    cols: int
    version: int = REGMAP_VERSION

    data_width = 32

    def __getitem__(self, name: str) -> Register:
        for r in self.registers:
            if r.name == name:
                return r
        raise KeyError(f"{self.module}: no register {name!r}")

    def bank_base(self, bank: int) -> int:
        return (bank + 1) * self.bank_stride

    def lane_base(self, bank: int, col: int) -> int:
        return self.bank_base(bank) + col * self.lane_stride

    def lane_register(self, bank: int, col: int, word: str) -> Register:
        """The register ``word`` (``K1``, ``K1_HI``, ``E``, ``S``) of lane ``col``, bank
        ``bank``."""
        return self[f"BANK{bank}_LANE{col}_{word}"]

    def control(self) -> list[Register]:
        return [r for r in self.registers if r.group != "lane"]

    def lane_template(self) -> list[Register]:
        """The registers of lane 0 of bank 0 (every lane has the same, at its base)."""
        return [r for r in self.registers if r.name.startswith("BANK0_LANE0_")]

    def to_json(self) -> dict:
        """What the sidecar records (``regmap``): every register with its fields."""
        return {"version": self.version, "data_width": self.data_width,
                "addr_width": self.addr_width, "banks": BANKS,
                "bank_stride": self.bank_stride, "lane_stride": self.lane_stride,
                "bank_base": [self.bank_base(b) for b in range(BANKS)],
                "lane_words": list(self.lane_words),
                "access": dict(ACCESS),
                "registers": [r.to_json() for r in self.registers]}


def _pow2_at_least(x: int) -> int:
    return 1 << max(0, (x - 1).bit_length())


def _const(name, lsb, width, value, doc=""):
    return Field(name, lsb, width, "ro", "const", doc, const=value)


def _capabilities(d: Design) -> list[Register]:
    enc = {"overflow": ("wrap", "saturate"), "view_rounding": ("floor", "half_up")}
    widths = sum(1 << b for b in d.widths)
    return [
        Register("CAP0", 0x08, (
            _const("rows", 0, 8, d.rows, "R, rows of the PE array"),
            _const("cols", 8, 8, d.cols, "C, columns of the PE array"),
            _const("n", 16, 5, d.n, "master width n of the codes"),
            _const("signed", 24, 1, int(d.signed), "1: two's-complement codes"),
            _const("overflow", 25, 1, enc["overflow"].index(d.overflow),
                   "accumulator overflow: 0 wrap, 1 saturate"),
            _const("view_rounding", 26, 1, enc["view_rounding"].index(d.view_rounding),
                   "nested view rounding: 0 floor, 1 half_up"),
            _const("max_pack", 28, 3, d.max_pack, "elements per act/wgt beat at most"),
        ), "the tile's shape and arithmetic"),
        Register("CAP1", 0x0C, (
            _const("acc_width", 0, 7, d.acc_width, "accumulator width W"),
            _const("depth_bits", 8, 5, d.depth_bits, "K field width: tiles of up to "
                                                     "2^depth_bits steps"),
            _const("kbits", 16, 6, d.kbits, "width of the constants K1..K4"),
            _const("ebits", 24, 3, d.ebits, "width of the left shifts E1..E4"),
            _const("sbits", 28, 4, d.sbits, "width of the right shift S"),
        ), "accumulator and requantizer field widths"),
        Register("CAP2", 0x10, (
            _const("widths", 0, 17, widths, "bit b set: view / output width b is built"),
        ), "the widths built"),
        Register("CAP3", 0x14, (
            _const("queue_depth", 0, 8, d.queue_depth, "command-queue entries"),
            _const("banks", 8, 8, BANKS, "constant banks"),
        ), "command queue and banks"),
    ]


def _control(d: Design) -> list[Register]:
    major, minor = (int(x) for x in CONTRACT_VERSION.split("."))
    qbits = d.queue_depth.bit_length()  # 0..depth
    regs = [
        Register("ID", 0x00, (_const("id", 0, 32, ID_VALUE, 'ASCII "DQTA"'),),
                 "identifies the shell"),
        Register("VERSION", 0x04, (
            _const("regmap", 0, 8, REGMAP_VERSION, "register map version"),
            _const("contract_minor", 16, 8, minor, "arithmetic contract version, minor"),
            _const("contract_major", 24, 8, major, "arithmetic contract version, major"),
        ), "register map and arithmetic contract versions"),
        *_capabilities(d),
        Register("CTRL", 0x20, (
            Field("clear_counters", 0, 1, "w1p", "ctrl.clear_counters",
                  "write 1: every counter to 0"),
        ), "control"),
        Register("STATUS", 0x24, (
            Field("busy", 0, 1, "ro", "status.busy",
                  "a tile queued and not retired, or a row waiting on m_axis_out"),
            Field("queue_full", 1, 1, "ro", "status.queue_full",
                  "queue_used = queue_depth: a DOORBELL push would be refused"),
            Field("queue_used", 8, qbits, "ro", "status.queue_used",
                  "commands queued and not retired (their rq not yet taken)"),
            Field("cmd_pending", 16, qbits, "ro", "status.cmd_pending",
                  "commands whose act/wgt steps have not all been taken"),
            Field("bank_busy", 24, BANKS, "ro", "status.bank_busy",
                  "bit b: a command not yet retired names bank b (do not rewrite it)"),
        ), "status (live)"),
        Register("ERROR", 0x28, tuple(
            Field(name, i, 1, "w1c", f"error.{name}", doc) for i, (name, doc) in
            enumerate(ERRORS)), "sticky error bits; write 1 to clear"),
    ]
    for i, (name, doc) in enumerate(COUNTERS):
        regs.append(Register(name.upper(), 0x40 + 4 * i,
                             (Field("count", 0, 32, "ro", f"count.{name}", doc),),
                             doc, group="counter"))
    wb = d.width_bits
    regs += [
        Register("CMD_K", 0x80, (
            Field("k", 0, d.depth_bits, "rw", "cmd.k",
                  "K, steps of the tile (0 means 2^depth_bits)"),
        ), "the next command: K", group="command"),
        Register("CMD_CFG", 0x84, (
            Field("b_a", 0, wb, "rw", "cmd.b_a", "activation view width"),
            Field("b_w", 8, wb, "rw", "cmd.b_w", "weight view width"),
            Field("b_out", 16, wb, "rw", "cmd.b_out", "output code width"),
            Field("rounding", 24, 2, "rw", "cmd.rounding",
                  "requantizer rounding: 0 floor, 1 half_up, 2 half_even, 3 half_away"),
            Field("bank", 28, 1, "rw", "cmd.bank", "constant bank of the tile"),
        ), "the next command: widths, rounding, bank", group="command"),
        Register("CMD_SHAPE", 0x88, (
            Field("m", 0, d.rows.bit_length(), "rw", "cmd.m", "M, rows emitted (0..R)"),
            Field("ncols", 16, d.cols.bit_length(), "rw", "cmd.ncols",
                  "N, columns computed (0..C; codes of columns >= N are 0)"),
        ), "the next command: rows and columns", group="command"),
        Register("DOORBELL", 0x8C, (
            Field("push", 0, 1, "w1p", "doorbell.push",
                  "write 1: queue the command held in CMD_K, CMD_CFG, CMD_SHAPE"),
        ), "queue the next command", group="command"),
    ]
    return regs


def _lanes(d: Design, bank: int, lane_stride: int, bank_stride: int) -> list[Register]:
    kwords = -(-d.kbits // 32)
    regs = []
    for j in range(d.cols):
        base = (bank + 1) * bank_stride + j * lane_stride
        off = 0
        pre = f"BANK{bank}_LANE{j}_"
        val = f"bank{bank}.lane{j}"
        for c in LANE_CONSTANTS:
            for w in range(kwords):
                width = min(32, d.kbits - 32 * w)
                name = c.upper() + ("_HI" if w else "")
                regs.append(Register(pre + name, base + off, (
                    Field(c, 0, width, "rw", f"{val}.{c}",
                          f"{c.upper()} (signed, kbits = {d.kbits})"
                          + (f", bits {32 * w + width - 1}..{32 * w}" if kwords > 1 else ""),
                          part=32 * w, signed=(w == kwords - 1)),),
                    f"column {j}: constant {c.upper()}", group="lane"))
                off += 4
        regs.append(Register(pre + "E", base + off, tuple(
            Field(f"e{t}", 8 * (t - 1), d.ebits, "rw", f"{val}.e{t}",
                  f"left shift E{t}") for t in range(1, 5)),
            f"column {j}: left shifts E1..E4", group="lane"))
        regs.append(Register(pre + "S", base + off + 4, (
            Field("s", 0, d.sbits, "rw", f"{val}.s", "right shift S"),),
            f"column {j}: right shift S", group="lane"))
    return regs


def register_map(design: Design) -> RegisterMap:
    """The register map of an AXI shell design (component ``axi``)."""
    if not isinstance(design, Design):
        raise TypeError(f"design must be a dqt_hw.design.Design, not {design!r}")
    if design.component != "axi":
        raise ValueError(f"a register map belongs to an axi design, not a "
                         f"{design.component}")
    d = design
    kwords = -(-d.kbits // 32)
    lane_words = tuple(c.upper() + ("_HI" if w else "") for c in LANE_CONSTANTS
                       for w in range(kwords)) + ("E", "S")
    lane_stride = _pow2_at_least(4 * len(lane_words))
    bank_stride = max(0x100, _pow2_at_least(d.cols * lane_stride))
    regs = _control(d)
    for b in range(BANKS):
        regs += _lanes(d, b, lane_stride, bank_stride)
    top = (BANKS + 1) * bank_stride
    return RegisterMap(d.name, tuple(regs), (top - 1).bit_length(), lane_stride,
                       bank_stride, lane_words, d.cols)
