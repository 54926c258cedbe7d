"""Plain-Python model of one accelerator tile job, built from the dqt_hw.spec primitives.

Test benches (Amaranth here, cocotb on the generated Verilog) use it as the scoreboard. It
restates nothing: every number comes from :func:`dqt_hw.spec.nested_view`,
:func:`dqt_hw.spec.wrap` / :func:`dqt_hw.spec.saturate` and :func:`dqt_hw.spec.round_shift`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..spec import align, clamp, code_range, nested_view, round_shift, saturate, signed_range, wrap

__all__ = ["LaneConstants", "TileJob", "lane_constants", "tile_reference"]


@dataclass(frozen=True)
class LaneConstants:
    """Aligned requantizer constants of one output column (:func:`dqt_hw.spec.align`)."""

    k: tuple[int, int, int, int]
    e: tuple[int, int, int, int]
    s: int

    def as_dict(self) -> dict:
        return {"k1": self.k[0], "k2": self.k[1], "k3": self.k[2], "k4": self.k[3],
                "e1": self.e[0], "e2": self.e[1], "e3": self.e[2], "e4": self.e[3],
                "s": self.s}


def lane_constants(constants, *, kbits: int, ebits: int, sbits: int) -> LaneConstants:
    """The requantizer fields of one output channel from its four ``dqt_hw.spec.Constant``
    (for acc, sum_a, sum_w and the constant term): :func:`dqt_hw.spec.align` gives
    (K, E, S); a negative S (a net left shift) is folded into the E_i, since
    ``round_shift(x, S) == x << -S`` for S <= 0. Raises ValueError when a value does not
    fit its field (then build the hardware with wider ``kbits``/``ebits``/``sbits``)."""
    constants = list(constants)
    if len(constants) != 4:
        raise ValueError(f"a lane takes 4 constants (acc, sum_a, sum_w, 1), not {len(constants)}")
    K, E, S = align(constants)
    if S < 0:
        E, S = tuple(e - S if k else 0 for k, e in zip(K, E)), 0
    lo, hi = signed_range(kbits)
    for i, k in enumerate(K):
        if not lo <= k <= hi:
            raise ValueError(f"constant K{i + 1} = {k} does not fit kbits = {kbits} ([{lo}, {hi}])")
    emax, smax = (1 << ebits) - 1, (1 << sbits) - 1
    for i, e in enumerate(E):
        if e > emax:
            raise ValueError(f"left shift E{i + 1} = {e} does not fit ebits = {ebits} (at most {emax})")
    if S > smax:
        raise ValueError(f"right shift S = {S} does not fit sbits = {sbits} (at most {smax})")
    return LaneConstants(tuple(K), tuple(E), S)


@dataclass(frozen=True)
class TileJob:
    """One GEMM tile: ``a`` is M x K master codes, ``w`` is K x N, one lane per column."""

    a: list
    w: list
    b_a: int
    b_w: int
    b_out: int
    rounding: str
    lanes: list

    @property
    def m(self) -> int:
        return len(self.a)

    @property
    def k(self) -> int:
        return len(self.w)

    @property
    def ncols(self) -> int:
        return len(self.w[0])


def tile_reference(job: TileJob, *, n: int, signed: bool, acc_width: int, overflow: str,
                   view_rounding: str) -> list[list[int]]:
    """The M x N output codes of ``job``: accumulation in ascending k with ``overflow`` at
    every addition, exact side sums, then the requantizer of each column."""
    ovf = wrap if overflow == "wrap" else saturate
    va = [[nested_view(q, n, job.b_a, view_rounding, signed=signed) for q in row]
          for row in job.a]
    vw = [[nested_view(q, n, job.b_w, view_rounding, signed=signed) for q in row]
          for row in job.w]
    lo, hi = code_range(job.b_out, signed)
    sum_w = [sum(vw[k][j] for k in range(job.k)) for j in range(job.ncols)]
    out = []
    for i in range(job.m):
        sum_a = sum(va[i])
        row = []
        for j in range(job.ncols):
            acc = 0
            for k in range(job.k):
                acc = ovf(acc + va[i][k] * vw[k][j], acc_width)
            c = job.lanes[j]
            total = sum((kk * x) << e for kk, x, e in zip(c.k, (acc, sum_a, sum_w[j], 1), c.e))
            row.append(clamp(round_shift(total, c.s, job.rounding), lo, hi))
        out.append(row)
    return out
