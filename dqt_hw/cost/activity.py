"""Energy from measured switching activity: SAIF toggle counts, signal groups, pJ.

A SAIF file (IEEE 1801 / Synopsys SAIF 2.0, as written by ``verilator --trace-saif``)
gives, for every net bit of every instance, its toggle count TC over the run
(:func:`read_saif`). The tile's nets are put in component classes (:func:`classify`):

- ``multiplier``: in each PE, the viewed operands ``a``, ``w`` and the product nets
  (width 2n);
- ``accumulator``: every other multi-bit net of a PE (the adder, the first-step
  multiplexer, the ``acc`` and ``result`` registers);
- ``side_sums``: every net of the side-sum units (``sum_a*``, ``sum_w*``);
- ``views``: every net of the edge view units (``view_a*``, ``view_w*``);
- ``requantizer``: every net of the output lanes (``lane*``);
- ``registers``: every other net of the tile (stream registers, command and constant
  registers, row counters, control), 1-bit PE controls included.

Clock nets are left out (the clock tree is not modelled), and so is everything outside
the tile (the stimulus wrapper is the test bench, not the design).

**Energy.** A net of capacitance C charged from 0 to V draws C V^2 from the supply, half
of it dissipated then, half at the next discharge: a bit toggle (either direction) costs
on average E_t = C V^2 / 2. The model is

    E = sum over classes c of  TC_c * E_t(c),       E_t(c) = C_c V^2 / 2,

with TC_c the toggles of the class's nets and C_c its effective switched capacitance per
observed toggle (the observed nets stand for the internal nodes of their cone). C_c is
not in Horowitz's table; it is calibrated (:func:`calibrate`) so that on uniformly random
codes at the master width (n x n, every bit of every operand a fair coin) the class's
activity energy equals its per-operation energy in the table (:mod:`dqt_hw.cost.energy`):

    E_t(c) = E_op(c) * ops_c / TC_c(random n x n)

with E_op per MAC slot: ``multiplier`` mul(n, n), ``accumulator`` add(W); per step
(R + C) x add(side-sum width) for ``side_sums``, (R + C) x the view unit for ``views``;
per output row C x the requantizer of ``energy.layer_energy`` for ``requantizer``. The
``registers`` class has no operation energy in the table: a flip-flop bit toggle is taken
as two 2:1 multiplexer bits (a master-slave pair of latches), 2 x ``mux2_pj_per_bit``. A
technology table may give any class's E_t directly (``toggle_pj``, pJ per bit toggle),
which then replaces the calibration.

So at n x n on random data the activity model and the per-operation model agree by
construction; what the activity adds is how the energy *moves* with the data and the
width: real activations (many zeros after a ReLU, correlated neighbours) and nested views
(the top n - b bits of a viewed operand are zero) change the toggles, not the
capacitance. Assumptions: switched capacitance does not depend on the data (no glitches:
the SAIF counts zero-delay, cycle-level toggles, so the real multiplier's glitching, which
grows with its width, is not seen); leakage and the clock tree are not counted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .tech import TOGGLE_CLASSES, load_tech

__all__ = ["CLASSES", "SaifNet", "parse_saif", "read_saif", "classify", "class_toggles",
           "Counts", "op_energy_pj", "calibrate", "register_toggle_pj", "activity_energy", "toggle_energy_pj",
           "capacitance_ff"]

CLASSES = TOGGLE_CLASSES

MAX_SAIF_BYTES = 1 << 30
"""Largest SAIF file read (1 GiB)."""


@dataclass(frozen=True)
class SaifNet:
    """One net bit of a SAIF file: instance path (tuple of names), net name without the bit
    index, bit index (None for a scalar) and toggle count."""

    path: tuple
    name: str
    bit: int | None
    tc: int


# ----------------------------------------------------------------------------- SAIF

_TOKEN = re.compile(r'\s*(?:(\()|(\))|("(?:[^"\\]|\\.)*")|((?:[^\s()\\"]|\\.)+))')


def _tokens(text: str, source: str):
    pos, n = 0, len(text)
    while pos < n:
        if text.startswith("//", pos):
            nl = text.find("\n", pos)
            pos = n if nl < 0 else nl + 1
            continue
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            if text[pos:].strip() == "":
                return
            raise ValueError(f"{source}: cannot read SAIF at character {pos}: "
                             f"{text[pos:pos + 40]!r}")
        pos = m.end()
        if m.group(1):
            yield "("
        elif m.group(2):
            yield ")"
        else:
            yield m.group(3) or m.group(4)


def _tree(text: str, source: str) -> list:
    stack: list[list] = [[]]
    for tok in _tokens(text, source):
        if tok == "(":
            stack.append([])
        elif tok == ")":
            if len(stack) == 1:
                raise ValueError(f"{source}: unbalanced ')' in SAIF")
            done = stack.pop()
            stack[-1].append(done)
        else:
            stack[-1].append(tok)
    if len(stack) != 1:
        raise ValueError(f"{source}: SAIF ends inside {len(stack) - 1} open '('")
    return stack[0]


_BIT = re.compile(r"^(.*?)\\?\[(\d+)\\?\]$")


def _net(path, entry, source) -> SaifNet:
    raw = entry[0]
    tc = None
    for item in entry[1:]:
        if isinstance(item, list) and len(item) == 2 and item[0] == "TC":
            tc = item[1]
    if tc is None or not str(tc).isdigit():
        raise ValueError(f"{source}: net {raw!r} of instance {'/'.join(path)!r} has no "
                         f"toggle count (TC)")
    m = _BIT.match(raw)
    name, bit = (m.group(1), int(m.group(2))) if m else (raw, None)
    return SaifNet(tuple(path), name.replace("\\", ""), bit, int(tc))


def _walk(node, path, out, source):
    for item in node:
        if not isinstance(item, list) or not item:
            continue
        head = item[0]
        if head == "INSTANCE":
            # (INSTANCE [design_name] instance_name ...): the last plain token is the name
            names = [x for x in item[1:3] if isinstance(x, str)]
            if not names:
                raise ValueError(f"{source}: an INSTANCE without a name under "
                                 f"{'/'.join(path) or 'the top'!r}")
            _walk(item[1 + len(names):], path + [names[-1].strip('"')], out, source)
        elif head in ("NET", "PORT"):
            for entry in item[1:]:
                if isinstance(entry, list) and entry and isinstance(entry[0], str):
                    out.append(_net(path, entry, source))
        elif head == "SAIFILE":
            _walk(item[1:], path, out, source)


def parse_saif(text: str, *, source: str = "SAIF") -> list[SaifNet]:
    """Every net bit of a SAIF text with its toggle count, in file order."""
    tree = _tree(text, source)
    if not any(isinstance(x, list) and x and x[0] == "SAIFILE" for x in tree):
        raise ValueError(f"{source}: not a SAIF file (no SAIFILE form)")
    out: list[SaifNet] = []
    _walk(tree, [], out, source)
    return out


def read_saif(path) -> list[SaifNet]:
    """:func:`parse_saif` of a file."""
    p = Path(path)
    size = p.stat().st_size
    if size > MAX_SAIF_BYTES:
        raise ValueError(f"SAIF file {str(p)!r} is {size} bytes, more than {MAX_SAIF_BYTES}")
    return parse_saif(p.read_text(), source=f"SAIF file {str(p)!r}")


# ----------------------------------------------------------------------------- classes

_PE = re.compile(r"^pe_\d+_\d+$")


def classify(nets, *, tile_path: tuple, n: int) -> dict[str, int]:
    """Toggles per class (:data:`CLASSES`) of the nets under the instance ``tile_path``
    (the tile's instance in the SAIF hierarchy); nets outside it and clock nets are left
    out. ``n``: the master width (the product nets are 2n bits wide)."""
    widths: dict = {}
    for s in nets:
        key = (s.path, s.name)
        widths[key] = max(widths.get(key, 0), (s.bit if s.bit is not None else 0) + 1)
    k = len(tile_path)
    out = dict.fromkeys(CLASSES, 0)
    for s in nets:
        if s.path[:k] != tuple(tile_path) or s.name == "clk":
            continue
        sub = s.path[k:]
        leaf = sub[-1] if sub else ""
        width = widths[(s.path, s.name)]
        if _PE.match(leaf):
            if s.name in ("a", "w") or width == 2 * n:
                c = "multiplier"
            elif width == 1:
                c = "registers"
            else:
                c = "accumulator"
        elif leaf.startswith(("sum_a", "sum_w")):
            c = "side_sums"
        elif leaf.startswith(("view_a", "view_w")):
            c = "views"
        elif leaf.startswith("lane"):
            c = "requantizer"
        else:
            c = "registers"
        out[c] += s.tc
    return out


def class_toggles(saif, *, tile_path: tuple, n: int) -> dict[str, int]:
    """:func:`classify` of a SAIF file."""
    return classify(read_saif(saif), tile_path=tile_path, n=n)


# ----------------------------------------------------------------------------- energy


@dataclass(frozen=True)
class Counts:
    """What a run did: tile MAC slots (R C K per job), steps (K per job), output rows."""

    macs: int
    steps: int
    rows: int


def op_energy_pj(tile, counts: Counts, tech="horowitz45", *, b_a: int | None = None,
                 b_w: int | None = None) -> dict[str, float]:
    """The per-operation model's energy (pJ) of each class for ``counts`` on ``tile`` (a
    tile :class:`dqt_hw.design.Design`) at (b_a, b_w) (default n x n): the terms of
    ``dqt_hw.cost.energy.layer_energy`` (compute split into multiplier and accumulator),
    per MAC slot, step and output row."""
    from .energy import _view_pj

    tech = load_tech(tech)
    n, W, R, C = tile.n, tile.acc_width, tile.rows, tile.cols
    sw = tile.side_sum_width
    rq = (tech.mul_pj(tile.kbits, W) + 2 * tech.mul_pj(tile.kbits, sw)
          + 3 * tech.add_pj(tile.requant_sum_bits)
          + tech.shift_pj(tile.requant_sum_bits, tile.sbits))
    b_a, b_w = b_a or n, b_w or n
    return {"multiplier": counts.macs * tech.mul_pj(b_a, b_w),
            "accumulator": counts.macs * tech.add_pj(W),
            "side_sums": counts.steps * (R + C) * tech.add_pj(sw),
            "views": counts.steps * (R + C) * _view_pj(tech, tile),
            "requantizer": counts.rows * C * rq}


def register_toggle_pj(tech="horowitz45") -> float:
    """A flip-flop bit toggle: two 2:1 multiplexer bits (see the module's text)."""
    return 2.0 * load_tech(tech).mux_pj(1)


def calibrate(toggles: dict, tile, counts: Counts, tech="horowitz45") -> dict[str, float]:
    """E_t (pJ per bit toggle) of each class from a calibration run on uniformly random
    n x n codes (``toggles`` per class, ``counts`` of that run): the per-operation energy
    over the measured toggles; ``registers`` from :func:`register_toggle_pj`; a class in
    the table's ``toggle_pj`` takes that value instead."""
    t = load_tech(tech)
    ops = op_energy_pj(tile, counts, t)
    given = t.data.get("toggle_pj", {})
    out = {}
    for c in CLASSES:
        if c in given:
            out[c] = float(given[c])
        elif c == "registers":
            out[c] = register_toggle_pj(t)
        else:
            if toggles.get(c, 0) <= 0:
                raise ValueError(f"calibration run: class {c!r} has no toggles (its nets "
                                 f"were not found in the SAIF file)")
            out[c] = ops[c] / toggles[c]
    return out


def toggle_energy_pj(capacitance_ff: float, voltage_v: float) -> float:
    """E_t = C V^2 / 2 of one bit toggle, pJ (C in fF, V in volts)."""
    if not capacitance_ff >= 0 or not voltage_v > 0:
        raise ValueError(f"capacitance must be >= 0 fF and voltage > 0 V, not "
                         f"{capacitance_ff} fF, {voltage_v} V")
    return 0.5 * capacitance_ff * 1e-15 * voltage_v ** 2 * 1e12


def capacitance_ff(e_toggle_pj: float, voltage_v: float) -> float:
    """C = 2 E_t / V^2 (fF) of a per-toggle energy E_t (pJ): the inverse of
    :func:`toggle_energy_pj`."""
    if not voltage_v > 0:
        raise ValueError(f"voltage must be > 0 V, not {voltage_v} V")
    return 2.0 * e_toggle_pj * 1e-12 / voltage_v ** 2 * 1e15


def activity_energy(toggles: dict, e_toggle: dict) -> dict[str, float]:
    """E_c = TC_c x E_t(c) (pJ) of each class, and ``total``."""
    missing = [c for c in CLASSES if c not in e_toggle]
    if missing:
        raise ValueError(f"per-toggle energies lack the classes {missing}")
    e = {c: toggles.get(c, 0) * e_toggle[c] for c in CLASSES}
    e["total"] = sum(e.values())
    return e

