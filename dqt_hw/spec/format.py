"""The tensor format: master width, signedness, and the real mapping of codes."""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

MIN_MASTER_BITS = 2
MAX_MASTER_BITS = 16


def code_range(b: int, signed: bool) -> tuple[int, int]:
    """(lowest, highest) code of a ``b``-bit view."""
    if signed:
        return -(1 << (b - 1)), (1 << (b - 1)) - 1
    return 0, (1 << b) - 1


@dataclass(frozen=True)
class Format:
    """A DQT tensor format.

    Codes are stored once at the master width ``n``. A ``b``-bit view (``b <= n``) of code
    ``q`` is ``nested_view(q, n, b, rounding)`` and stands for the real value
    ``m + delta_at(b) * q_b`` with ``delta_at(b) = delta * 2^(n - b)``: every width
    shares the minimum ``m`` (the paper's nested scales).

    - ``signed=False`` (the paper's form): codes in [0, 2^b - 1]; ``m`` is the real minimum.
    - ``signed=True``: two's-complement codes in [-2^(b-1), 2^(b-1) - 1], symmetric,
      ``m`` must be 0 (real value ``delta_at(b) * q_b``); views use arithmetic shifts.

    ``widths`` is the set of widths the tensor may be viewed at (default: every width,
    1..n unsigned, 2..n signed).
    """

    n: int
    signed: bool = False
    m: float = 0.0
    delta: float = 1.0
    widths: tuple[int, ...] | None = None

    def __post_init__(self):
        if isinstance(self.n, bool):
            raise TypeError(f"master width n must be an integer, not {self.n!r}")
        try:
            n = operator.index(self.n)
        except TypeError:
            raise TypeError(f"master width n must be an integer, not {self.n!r}") from None
        if not MIN_MASTER_BITS <= n <= MAX_MASTER_BITS:
            raise ValueError(
                f"master width n must be in [{MIN_MASTER_BITS}, {MAX_MASTER_BITS}], not {n}"
            )
        object.__setattr__(self, "n", n)
        if not isinstance(self.signed, bool):
            raise TypeError(f"signed must be a bool, not {self.signed!r}")
        for name in ("m", "delta"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise TypeError(f"{name} must be a real number, not {v!r}")
            if not math.isfinite(v):
                raise ValueError(f"{name} must be finite, not {v!r}")
            object.__setattr__(self, name, float(v))
        if not self.delta > 0:
            raise ValueError(f"step delta must be positive, not {self.delta!r}")
        if self.signed and self.m != 0.0:
            raise ValueError(f"a signed (symmetric) format has m = 0, not m = {self.m!r}")
        low = 2 if self.signed else 1
        widths = tuple(range(low, n + 1)) if self.widths is None else self.widths
        try:
            widths = tuple(sorted(set(operator.index(b) for b in widths)))
        except TypeError:
            raise TypeError(f"widths must be integers, not {self.widths!r}") from None
        if not widths:
            raise ValueError("widths must name at least one width")
        for b in widths:
            if not low <= b <= n:
                raise ValueError(
                    f"width {b} in widths {widths} is outside [{low}, {n}] for master width n = {n}"
                )
        object.__setattr__(self, "widths", widths)

    def check_width(self, b) -> int:
        """Return ``b`` if it is one of this format's widths, else raise ValueError."""
        if isinstance(b, bool):
            raise TypeError(f"width must be an integer, not {b!r}")
        try:
            b = operator.index(b)
        except TypeError:
            raise TypeError(f"width must be an integer, not {b!r}") from None
        if b > self.n:
            raise ValueError(f"width {b} is above the master width n = {self.n}")
        if b not in self.widths:
            raise ValueError(f"width {b} is not in the format's widths {self.widths}")
        return b

    def code_range(self, b: int | None = None) -> tuple[int, int]:
        """(lowest, highest) code at width ``b`` (default: the master width)."""
        return code_range(self.n if b is None else self.check_width(b), self.signed)

    def delta_at(self, b: int) -> float:
        """Step of the ``b``-bit view: delta * 2^(n - b) (exact in floating point)."""
        return math.ldexp(self.delta, self.n - self.check_width(b))

    def real(self, q, b: int | None = None):
        """Real value(s) of code(s) ``q`` at width ``b`` (default: master)."""
        b = self.n if b is None else b
        return self.m + self.delta_at(b) * q
