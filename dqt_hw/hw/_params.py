"""Validation of generator parameters (plain Python, at construction time).

Every public generator validates its keyword-only parameters through these helpers, so the
messages have one shape: ``<what> must be <rule>, not <value>``.
"""

from __future__ import annotations

import operator

from ..spec import MAX_MASTER_BITS, MIN_MASTER_BITS, OVERFLOW_MODES, ROUNDINGS

VIEW_ROUNDINGS = ("floor", "half_up")
"""Roundings the nested view unit implements (docs/arithmetic.md, "Nested view")."""

HW_OVERFLOW_MODES = ("wrap", "saturate")
"""Accumulator overflow modes the hardware implements (``trap`` is model-only)."""


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
        out.add(b)
    if not out:
        raise ValueError("widths must name at least one width, not an empty sequence")
    return tuple(sorted(out))


def width_field_bits(n: int) -> int:
    """Bits of a run-time width register holding b in [0, n]."""
    return n.bit_length()


def validated_init(init):
    """Decorate a component's ``__init__``: a constructor that refuses its parameters does
    not leave an "elaboratable created but never used" warning behind."""
    import functools

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        try:
            init(self, *args, **kwargs)
        except BaseException:
            self._MustUse__silence = True
            raise

    return wrapper
