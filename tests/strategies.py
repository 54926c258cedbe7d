"""Hypothesis strategies shared by the property tests: edge values first, then random."""

from hypothesis import strategies as st

from naive import code_range


def edge_values(lo: int, hi: int) -> list[int]:
    """Every 2^i +- {0, 1, 2} (and its negation) within [lo, hi], plus lo, hi +- 2."""
    vals = {lo, lo + 1, lo + 2, hi, hi - 1, hi - 2, 0, 1, -1}
    i = 0
    while (1 << i) <= max(abs(lo), abs(hi)) + 2:
        for d in (-2, -1, 0, 1, 2):
            vals.add((1 << i) + d)
            vals.add(-(1 << i) + d)
        i += 1
    return sorted(v for v in vals if lo <= v <= hi)


def ints(lo: int, hi: int):
    """Integers in [lo, hi], edge values with high probability."""
    return st.one_of(st.sampled_from(edge_values(lo, hi)), st.integers(lo, hi))


def codes(b: int, signed: bool):
    return ints(*code_range(b, signed))


ROUNDINGS = st.sampled_from(["floor", "half_up", "half_even", "half_away"])
