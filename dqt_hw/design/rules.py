"""The rules of a design: limits, parameter checks and every derived quantity.

Plain Python (no Amaranth), so the cost models, the golden writer and the command line
read the same rules as the generators. Every check raises with one message shape,
``<what> must be <rule>, not <value>``: ``TypeError`` for a wrong type, ``ValueError`` for
a bad value.
"""

from __future__ import annotations

import operator

from ..spec import (
    MAX_CONST_BITS,
    MAX_MASTER_BITS,
    MIN_MASTER_BITS,
    OVERFLOW_MODES,
    ROUNDINGS,
    signed_bits_for_magnitude,
)

__all__ = [
    "HW_OVERFLOW_MODES", "MAX_ACC_WIDTH", "MAX_DEPTH_BITS", "MAX_DIM", "MAX_E_BITS",
    "MAX_PLANE_DEPTH_BITS", "MAX_MULT_BITS", "MAX_RQ_STAGES", "MAX_S_BITS", "PACK_FACTORS",
    "QUEUE_DEPTHS", "VIEW_ROUNDINGS",
    "check_acc_width", "check_bool", "check_choice", "check_int", "check_master_width",
    "check_max_pack", "check_overflow", "check_queue_depth", "check_rq_lanes", "check_rq_stages",
    "check_view_rounding",
    "check_widths",
    "cycles_per_width_pair", "depth_bits_for", "max_product", "min_acc_width", "min_view_width",
    "pack_factor", "pack_modes", "requant_sum_bits", "row_cycles", "side_sum_width",
    "width_field_bits",
]

VIEW_ROUNDINGS = ("floor", "half_up")
"""Roundings the nested view unit implements (docs/arithmetic.md, "Nested view")."""

HW_OVERFLOW_MODES = ("wrap", "saturate")
"""Accumulator overflow modes the hardware implements (``trap`` is model-only)."""

MAX_DIM = 64
"""Largest R or C of a PE array."""

MAX_RQ_STAGES = 2
"""Most register ranks in a requantizer lane (after the shifted terms, after the sum)."""

MAX_DEPTH_BITS = 24
"""Widest K field of a tile (tiles of up to 2^24 steps)."""

MAX_ACC_WIDTH = 64
"""Widest accumulator (and side sum) the generators build."""

MAX_PLANE_DEPTH_BITS = 12
"""Deepest plane memory of a plane buffer: 2^12 words (one per step of a tile)."""

MAX_E_BITS = 7
"""Widest left-shift field E of a requantizer lane."""

MAX_S_BITS = 8
"""Widest right-shift field S of a requantizer lane (or of the rescale unit)."""

MAX_MULT_BITS = 32
"""Widest multiplier constant of the baseline rescale unit."""

PACK_FACTORS = (1, 2, 4)

VERILOG_KEYWORDS = frozenset((
    "accept_on", "alias", "always", "always_comb", "always_ff", "always_latch", "and",
    "assert", "assign", "assume", "automatic", "before", "begin", "bind", "bins", "binsof",
    "bit", "break", "buf", "bufif0", "bufif1", "byte", "case", "casex", "casez", "cell",
    "chandle", "checker", "class", "clocking", "cmos", "config", "const", "constraint",
    "context", "continue", "cover", "covergroup", "coverpoint", "cross", "deassign",
    "default", "defparam", "design", "disable", "dist", "do", "edge", "else", "end",
    "endcase", "endchecker", "endclass", "endclocking", "endconfig", "endfunction",
    "endgenerate", "endgroup", "endinterface", "endmodule", "endpackage", "endprimitive",
    "endprogram", "endproperty", "endspecify", "endsequence", "endtable", "endtask",
    "enum", "event", "eventually", "expect", "export", "extends", "extern", "final",
    "first_match", "for", "force", "foreach", "forever", "fork", "forkjoin", "function",
    "generate", "genvar", "global", "highz0", "highz1", "if", "iff", "ifnone",
    "ignore_bins", "illegal_bins", "implements", "implies", "import", "incdir", "include",
    "initial", "inout", "input", "inside", "instance", "int", "integer", "interconnect",
    "interface", "intersect", "join", "join_any", "join_none", "large", "let", "liblist",
    "library", "local", "localparam", "logic", "longint", "macromodule", "matches",
    "medium", "modport", "module", "nand", "negedge", "nettype", "new", "nexttime", "nmos",
    "nor", "noshowcancelled", "not", "notif0", "notif1", "null", "or", "output", "package",
    "packed", "parameter", "pmos", "posedge", "primitive", "priority", "program",
    "property", "protected", "pull0", "pull1", "pulldown", "pullup", "pulsestyle_ondetect",
    "pulsestyle_onevent", "pure", "rand", "randc", "randcase", "randsequence", "rcmos",
    "real", "realtime", "ref", "reg", "reject_on", "release", "repeat", "restrict",
    "return", "rnmos", "rpmos", "rtran", "rtranif0", "rtranif1", "s_always",
    "s_eventually", "s_nexttime", "s_until", "s_until_with", "scalared", "sequence",
    "shortint", "shortreal", "showcancelled", "signed", "small", "soft", "solve",
    "specify", "specparam", "static", "string", "strong", "strong0", "strong1", "struct",
    "super", "supply0", "supply1", "sync_accept_on", "sync_reject_on", "table", "tagged",
    "task", "this", "throughout", "time", "timeprecision", "timeunit", "tran", "tranif0",
    "tranif1", "tri", "tri0", "tri1", "triand", "trior", "trireg", "type", "typedef",
    "union", "unique", "unique0", "unsigned", "until", "until_with", "untyped", "use",
    "uwire", "var", "vectored", "virtual", "void", "wait", "wait_order", "wand", "weak",
    "weak0", "weak1", "while", "wildcard", "wire", "with", "within", "wor", "xnor", "xor",
))
"""Reserved words of Verilog and SystemVerilog (IEEE 1800-2017, Annex B): not a module
name."""

MAX_NAME_LENGTH = 128
"""Longest module name (also the stem of every file written for it)."""
"""Elements per step a precision-scalable PE can take."""

QUEUE_DEPTHS = (2, 4, 8, 16)
"""Command-queue depths of the AXI shell (powers of two: its pointers wrap)."""


# ----------------------------------------------------------------------------- checks


def check_int(name: str, value, lo: int | None = None, hi: int | None = None) -> int:
    """Return ``value`` as an int in [lo, hi]; TypeError/ValueError otherwise."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, not {value!r}") from None
    if lo is not None and hi is not None and not lo <= value <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], not {value}")
    if lo is not None and value < lo:
        raise ValueError(f"{name} must be at least {lo}, not {value}")
    if hi is not None and value > hi:
        raise ValueError(f"{name} must be at most {hi}, not {value}")
    return value


def check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {value!r}")
    return value


def check_master_width(n) -> int:
    return check_int("master width n", n, MIN_MASTER_BITS, MAX_MASTER_BITS)


def check_choice(name: str, value, choices: tuple[str, ...], all_choices=None) -> str:
    """``value`` must be one of ``choices``; names from ``all_choices`` that the hardware
    does not implement get a message saying so."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {choices}, not {value!r}")
    if value not in choices:
        if all_choices is not None and value in all_choices:
            raise ValueError(
                f"{name} must be one of {choices} in hardware, not {value!r} "
                f"(supported by the reference model only)"
            )
        raise ValueError(f"{name} must be one of {choices}, not {value!r}")
    return value


def check_view_rounding(rounding) -> str:
    return check_choice("view rounding", rounding, VIEW_ROUNDINGS, ROUNDINGS)


def check_overflow(overflow) -> str:
    return check_choice("overflow", overflow, HW_OVERFLOW_MODES, OVERFLOW_MODES)


def min_view_width(signed: bool) -> int:
    """The narrowest view: 1 bit unsigned, 2 bits signed (a sign and one magnitude bit)."""
    return 2 if signed else 1


def check_widths(widths, n: int, signed: bool) -> tuple[int, ...]:
    """The supported view widths: a non-empty set of ints in [1 or 2, n], sorted."""
    low = min_view_width(signed)
    if widths is None:
        return tuple(range(low, n + 1))
    if isinstance(widths, (str, bytes)):
        raise TypeError(f"widths must be a sequence of integers, not {widths!r}")
    try:
        items = list(widths)
    except TypeError:
        raise TypeError(f"widths must be a sequence of integers, not {widths!r}") from None
    out = set()
    for b in items:
        if isinstance(b, bool):
            raise TypeError(f"widths must be a sequence of integers, not {widths!r}")
        try:
            b = operator.index(b)
        except TypeError:
            raise TypeError(f"widths must be a sequence of integers, not {widths!r}") from None
        if not low <= b <= n:
            kind = "signed" if signed else "unsigned"
            raise ValueError(
                f"width {b} in widths {tuple(items)} is outside [{low}, {n}] for {kind} codes "
                f"at master width n = {n}"
            )
        if b in out:
            raise ValueError(f"widths {tuple(items)} name width {b} twice")
        out.add(b)
    if not out:
        raise ValueError("widths must name at least one width, not an empty sequence")
    return tuple(sorted(out))


def max_product(widths, signed: bool) -> int:
    """The largest product of two viewed codes of at most ``max(widths)`` bits:
    (2^b - 1)^2 unsigned, (-2^(b-1))^2 = 2^(2b-2) signed."""
    b = max(widths)
    return ((1 << b) - 1) ** 2 if not signed else 1 << (2 * b - 2)


def min_acc_width(n: int, *, signed: bool = False, widths=None) -> int:
    """The narrowest accumulator the generators accept: the signed width of the largest
    product of two viewed codes of ``max(widths)`` bits (default: n)."""
    b = max(widths) if widths is not None else n
    return signed_bits_for_magnitude(max_product((b,), signed))


def check_acc_width(acc_width, n: int, *, signed: bool = False, widths=None) -> int:
    """W must hold one full product of the built widths (docs/arithmetic.md 6.1: the
    signed width of the largest product, e.g. 17 bits for 8-bit x 8-bit unsigned codes),
    and be at most 64. ``widths`` default: all widths up to n."""
    W = check_int("accumulator width W", acc_width)
    b = max(widths) if widths is not None else n
    prod = max_product((b,), signed)
    need = signed_bits_for_magnitude(prod)
    if W < need:
        kind = "signed" if signed else "unsigned"
        raise ValueError(
            f"accumulator width W = {W} is narrower than one product: {b}-bit x {b}-bit "
            f"{kind} codes reach {prod}, which needs {need} bits"
        )
    if W > MAX_ACC_WIDTH:
        raise ValueError(f"accumulator width W must be at most {MAX_ACC_WIDTH}, not {W}")
    return W


def check_max_pack(max_pack, n: int, signed: bool) -> int:
    """``max_pack`` in (1, 2, 4), dividing n, with at least 2 bits per packed signed view."""
    if isinstance(max_pack, bool) or max_pack not in PACK_FACTORS:
        raise ValueError(f"max_pack must be one of {PACK_FACTORS}, not {max_pack!r}")
    if n % max_pack:
        raise ValueError(f"master width n = {n} must be a multiple of max_pack = {max_pack}")
    if signed and n // max_pack < 2:
        raise ValueError(
            f"signed codes need n / max_pack >= 2 bits per packed view, "
            f"not n = {n} with max_pack = {max_pack}"
        )
    return max_pack


def check_rq_lanes(rq_lanes, cols: int) -> int:
    """The tile's requantizer lanes: an int in 1..cols that divides cols (the columns are
    requantized in cols / rq_lanes groups of rq_lanes, one group per cycle)."""
    rq_lanes = check_int("requantizer lanes rq_lanes", rq_lanes, 1, cols)
    if cols % rq_lanes:
        divisors = [d for d in range(1, cols + 1) if cols % d == 0]
        raise ValueError(f"requantizer lanes rq_lanes must divide cols = {cols} (one of "
                         f"{divisors}), not {rq_lanes}")
    return rq_lanes


def check_rq_stages(rq_stages, rq_lanes, cols: int) -> int:
    """Register ranks in the tile's requantizer lanes: an int in 0..MAX_RQ_STAGES, above 0
    only with a lane per column (``rq_lanes`` None or equal to cols)."""
    rq_stages = check_int("requantizer pipeline stages rq_stages", rq_stages, 0, MAX_RQ_STAGES)
    if rq_stages and rq_lanes is not None and rq_lanes != cols:
        raise ValueError(f"requantizer pipeline stages rq_stages = {rq_stages} need a lane per "
                         f"column (rq_lanes = cols = {cols}), not rq_lanes = {rq_lanes}")
    return rq_stages


def check_queue_depth(depth) -> int:
    """The AXI shell's command-queue depth: one of :data:`QUEUE_DEPTHS`."""
    if isinstance(depth, bool) or depth not in QUEUE_DEPTHS:
        raise ValueError(f"queue_depth must be one of {QUEUE_DEPTHS}, not {depth!r}")
    return depth


# ----------------------------------------------------------------------------- derived


def width_field_bits(n: int) -> int:
    """Bits of a run-time width register holding b in [0, n]."""
    return n.bit_length()


def depth_bits_for(taps: int) -> int:
    """The narrowest K field that holds a tile of ``taps`` steps (K = 0 means 2^depth_bits)."""
    return max(1, (taps - 1).bit_length())


def side_sum_width(n: int, depth_bits: int) -> int:
    """Signed width that holds the exact sum of up to 2^depth_bits n-bit codes."""
    return n + depth_bits + 1


def requant_sum_bits(*, kbits: int, ebits: int, acc_width: int, sum_width: int) -> int:
    """Width of the exact sum of the four requantizer terms: each K_i * x_i needs
    kbits + width(x_i) bits (the product of two most-negative values included), the left
    shift adds up to 2^ebits - 1, and the sum of four terms two more."""
    return kbits + max(acc_width, sum_width) + (1 << ebits) - 1 + 2


def row_cycles(cols: int, rq_lanes: int) -> int:
    """Cycles the tile spends on one emitted output row: cols / rq_lanes lane groups, one
    per cycle (1 with a lane per column)."""
    return cols // rq_lanes


def pack_modes(max_pack: int) -> list[int]:
    """The packing modes a ``max_pack`` datapath has: [1], [1, 2] or [1, 2, 4]."""
    return [p for p in PACK_FACTORS if p <= max_pack]


def pack_factor(n: int, b_a: int, b_w: int, max_pack: int) -> int:
    """Products per cycle for views of b_a and b_w bits: the largest p in {1, 2, 4},
    p <= max_pack, with max(b_a, b_w) <= n / p."""
    b = max(b_a, b_w)
    for p in (4, 2):
        if p <= max_pack and b * p <= n:
            return p
    return 1


def cycles_per_width_pair(n: int, widths, max_pack: int) -> dict[str, float]:
    """Cycles per element for every (b_a, b_w) in ``widths``, keyed "b_a x b_w"."""
    return {f"{ba}x{bw}": 1 / pack_factor(n, ba, bw, max_pack) for ba in widths for bw in widths}
