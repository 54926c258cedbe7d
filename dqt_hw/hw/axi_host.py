"""A host's view of the AXI shell, from its sidecar's ``regmap`` (plain Python).

:class:`Regmap` reads the ``regmap`` table that ``dqt-hw rtl`` records in the shell's
JSON sidecar (:meth:`dqt_hw.hw.regmap.RegisterMap.to_json`) and encodes / decodes register
words by field name; :func:`lane_writes` and :func:`command_writes` are the register writes
that run one tile job (:class:`dqt_hw.hw.reference.TileJob`): what a driver does, and what
the benches do. Nothing here restates an offset or a field position: all come from the
table.
"""

from __future__ import annotations

from ..spec import ROUNDING_CODES

__all__ = ["Regmap", "command_writes", "lane_writes"]


class Regmap:
    """Register offsets and fields by name, from a sidecar's ``regmap`` table."""

    def __init__(self, table: dict):
        if not isinstance(table, dict) or "registers" not in table:
            raise ValueError("regmap: a table with 'registers' (a sidecar's regmap) expected")
        self.table = table
        self.regs = {r["name"]: r for r in table["registers"]}
        self.banks = table["banks"]

    def __contains__(self, name: str) -> bool:
        return name in self.regs

    def addr(self, name: str) -> int:
        return self.regs[name]["offset"]

    def field(self, reg: str, name: str) -> dict:
        for f in self.regs[reg]["fields"]:
            if f["name"] == name:
                return f
        raise KeyError(f"register {reg} has no field {name!r}")

    def encode(self, reg: str, **values) -> int:
        """The 32-bit word of ``reg`` with its fields set to ``values`` (others 0); a
        value that does not fit its field is a ValueError."""
        word = 0
        for name, v in values.items():
            f = self.field(reg, name)
            w = f["width"]
            lo, hi = (-(1 << (w - 1)), 1 << (w - 1)) if f.get("signed") else (0, 1 << w)
            if not lo <= v < hi:
                raise ValueError(f"{reg}.{name} = {v} does not fit [{lo}, {hi - 1}]")
            word |= (v & ((1 << w) - 1)) << f["lsb"]
        return word

    def decode(self, reg: str, word: int) -> dict:
        """{field: value} of a word read from ``reg`` (signed fields sign-extended)."""
        out = {}
        for f in self.regs[reg]["fields"]:
            v = (word >> f["lsb"]) & ((1 << f["width"]) - 1)
            if f.get("signed") and v >> (f["width"] - 1):
                v -= 1 << f["width"]
            out[f["name"]] = v
        return out

    def lane(self, bank: int, col: int, word: str) -> str:
        """The name of register ``word`` (K1, K1_HI, E, S, ...) of lane ``col`` of
        ``bank``."""
        return f"BANK{bank}_LANE{col}_{word}"

    def value_width(self, reg: str, name: str) -> int:
        f = self.field(reg, name)
        return f.get("part", 0) + f["width"]


def lane_writes(rm: Regmap, bank: int, lanes) -> list[tuple[int, int]]:
    """(address, word) writes that load ``lanes`` (one :class:`LaneConstants` per column,
    columns 0..len - 1) into ``bank``."""
    out = []
    for j, lane in enumerate(lanes):
        consts = lane.as_dict()
        for word in rm.table["lane_words"]:
            reg = rm.lane(bank, j, word)
            fields = {f["name"] for f in rm.regs[reg]["fields"]}
            values = {}
            for name in fields:
                f = rm.field(reg, name)
                v = consts[name] >> f.get("part", 0)
                values[name] = v & ((1 << f["width"]) - 1)
            out.append((rm.addr(reg), _fields_word(rm, reg, values)))
    return out


def _fields_word(rm: Regmap, reg: str, raw: dict) -> int:
    word = 0
    for name, v in raw.items():
        word |= v << rm.field(reg, name)["lsb"]
    return word


def command_writes(rm: Regmap, job, *, bank: int, depth_bits: int) -> list[tuple[int, int]]:
    """(address, word) writes that queue ``job`` with constants from ``bank``: CMD_K,
    CMD_CFG, CMD_SHAPE, then DOORBELL."""
    k = job.k if job.k < (1 << depth_bits) else 0
    return [
        (rm.addr("CMD_K"), rm.encode("CMD_K", k=k)),
        (rm.addr("CMD_CFG"), rm.encode("CMD_CFG", b_a=job.b_a, b_w=job.b_w, b_out=job.b_out,
                                       rounding=ROUNDING_CODES[job.rounding], bank=bank)),
        (rm.addr("CMD_SHAPE"), rm.encode("CMD_SHAPE", m=job.m, ncols=job.ncols)),
        (rm.addr("DOORBELL"), rm.encode("DOORBELL", push=1)),
    ]
