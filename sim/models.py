"""Transaction-level models of the benches: plain Python / NumPy, never simulator types.

Every number comes from the reference model :mod:`dqt_hw.model` (Numba) or, where the model
refuses a configuration that the hardware accepts, from the contract primitives
:mod:`dqt_hw.spec` through :func:`dqt_hw.hw.reference.tile_reference` (e.g. an accumulator
of exactly 2n bits with unsigned codes, where one product can already overflow, or
requantizer constants whose exact sum passes the model's 63-bit datapath). Each model
counts how often it fell back (``fallbacks``) so the summary shows it.
"""

from __future__ import annotations

import functools
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from dqt_hw import model, spec
from dqt_hw.hw.reference import LaneConstants, TileJob, tile_reference


class Scoreboard:
    """In-order scoreboard: the model pushes expected transactions (``expect``), the output
    monitor pushes what came out (``got``); they are compared in order as soon as both
    sides have one. ``finish()`` asserts every comparison passed and nothing is left on
    either side."""

    def __init__(self, name: str, *, max_report: int = 10):
        self.name = name
        self.expected = deque()
        self.received = deque()
        self.checked = 0
        self.errors = []
        self.max_report = max_report

    def expect(self, item, info=None):
        self.expected.append((item, info))
        self._match()

    def got(self, item):
        self.received.append(item)
        self._match()

    def _match(self):
        while self.expected and self.received:
            (exp, info), item = self.expected.popleft(), self.received.popleft()
            self.checked += 1
            if exp != item:
                self.errors.append(f"{self.name}: mismatch{'' if info is None else f' at {info}'}:"
                                   f" expected {exp!r}, got {item!r}")

    def finish(self):
        errs = list(self.errors)
        if self.expected:
            errs.append(f"{self.name}: {len(self.expected)} expected transaction(s) never came,"
                        f" first {self.expected[0]!r}")
        if self.received:
            errs.append(f"{self.name}: {len(self.received)} unexpected output(s),"
                        f" first {self.received[0]!r}")
        if errs:
            more = f" (+{len(errs) - self.max_report} more)" if len(errs) > self.max_report else ""
            raise AssertionError(f"{len(errs)} error(s) after {self.checked} checks{more}:\n"
                                 + "\n".join(errs[:self.max_report]))
        return self.checked


# ----------------------------------------------------------------------------- view


@functools.lru_cache(maxsize=None)
def _view_table(n, signed, rounding, widths):
    lo, hi = spec.code_range(n, signed)
    q = np.arange(lo, hi + 1, dtype=np.int64)
    return {b: model.nested_view(q, n=n, b=b, rounding=rounding, signed=signed) for b in widths}


def view_table(*, n: int, signed: bool, rounding: str, widths) -> dict[int, np.ndarray]:
    """{b: views of every master code (in code order lo..hi)} from ``dqt_hw.model``."""
    return _view_table(n, bool(signed), rounding, tuple(widths))


# ----------------------------------------------------------------------------- PE


@dataclass
class PEJob:
    """One accumulation: b_a, b_w and the master codes a[k], w[k]."""

    b_a: int
    b_w: int
    a: list
    w: list


@dataclass
class PEModel:
    n: int
    signed: bool
    acc_width: int
    overflow: str
    view_rounding: str
    fallbacks: int = 0
    events: int = 0  # additions where wrap/saturate changed the value

    widths: tuple | None = None  # the built widths (None: all); others view to 0

    def _view(self, codes, b):
        codes = np.array(codes, np.int64)
        if self.widths is not None and b not in self.widths:
            # a width register value that is not built gives the view 0 (docs/hardware.md)
            return np.zeros_like(codes)
        return model.nested_view(codes, n=self.n, b=b, rounding=self.view_rounding,
                                 signed=self.signed)

    def views(self, job: PEJob):
        return self._view(job.a, job.b_a), self._view(job.w, job.b_w)

    TRI_MAX = 512  # longest job whose partials come from one K x K model call
    spec_partials: int = 0  # long jobs: partials from the contract primitives

    def partials(self, job: PEJob) -> list[int]:
        """The accumulator after each term (ascending k, ``overflow`` at every addition)."""
        va, vw = self.views(job)
        K = len(va)
        try:
            if K <= self.TRI_MAX:
                # row r of the lower-triangular operand holds terms 0..r and zeros after
                # them: adding a zero product changes no accumulator, wrap or saturate,
                # so row r's result is the partial sum after term r (one model call)
                tri = np.tril(np.broadcast_to(va, (K, K)))
                acc = model.gemm(tri, vw[:, None], acc_width=self.acc_width,
                                 overflow=self.overflow)
                return acc[:, 0].tolist()
            # a long climb (overflow tests, up to ~50k terms: a K x K operand would not
            # fit in memory): every partial from the contract primitives (dqt_hw.spec),
            # the final accumulator from the model, and the two must agree
            final = int(model.gemm(va[None, :], vw[:, None], acc_width=self.acc_width,
                                   overflow=self.overflow)[0, 0])
        except ValueError:
            return self._partials_spec(va, vw, fallback=True)
        out = self._partials_spec(va, vw, fallback=False)
        self.spec_partials += 1
        if out[-1] != final:
            raise AssertionError(f"dqt_hw.model ({final}) and dqt_hw.spec ({out[-1]}) disagree "
                                 f"on a {K}-term accumulation")
        return out

    def _partials_spec(self, va, vw, fallback=True):
        # where the model refuses (e.g. one product wider than W), the contract
        # primitives give the value; counted
        self.fallbacks += fallback
        ovf = spec.wrap if self.overflow == "wrap" else spec.saturate
        acc, out = 0, []
        for x, y in zip(va.tolist(), vw.tolist()):
            new = ovf(acc + x * y, self.acc_width)
            self.events += new != acc + x * y
            acc = new
            out.append(acc)
        return out


# ----------------------------------------------------------------------------- requantizer


def lane_constants_of(lane: LaneConstants, kbits: int) -> tuple:
    """The four ``spec.Constant`` of one lane's aligned fields: constant i is
    K_i 2^-(S - E_i) (``spec.align`` of these gives back the value of every term)."""
    return tuple(spec.Constant(k, lane.s - e, max(kbits, 2)) if k else spec.Constant(0, 0)
                 for k, e in zip(lane.k, lane.e))


class ModelRefused(ValueError):
    pass


def lane_requant(lane: LaneConstants, *, kbits: int, rounding: str, b_out: int,
                 signed: bool) -> model.Requant:
    """The model's Requant of one lane.

    Raises :class:`ModelRefused` when the aligned S is negative (every non-zero E_i > S):
    ``dqt_hw.model.requantize`` leaves the net left shift out of its 63-bit bound check
    and overflows silently there (reported: ``model.requantize`` of acc = 3 with
    ``Constant(1, -62)`` gives 0, ``spec.lincomb`` 255); the caller then uses
    ``dqt_hw.spec``."""
    consts = lane_constants_of(lane, kbits)
    if spec.align(consts)[2] < 0:
        raise ModelRefused("negative aligned S")
    return model.Requant((consts,), rounding, b_out, signed)


@dataclass
class RequantModel:
    kbits: int
    signed: bool
    fallbacks: int = 0

    def code(self, acc: int, sum_a: int, sum_w: int, lane: LaneConstants, rounding: str,
             b_out: int) -> int:
        try:
            rq = lane_requant(lane, kbits=self.kbits, rounding=rounding, b_out=b_out,
                              signed=self.signed)
            return int(model.requantize(np.array([[acc]]), np.array([[sum_a]]),
                                        np.array([sum_w]), rq)[0, 0])
        except ValueError:
            # the exact sum passes the model's 63-bit datapath: the contract's lincomb
            self.fallbacks += 1
            consts = lane_constants_of(lane, self.kbits)
            lo, hi = spec.code_range(b_out, self.signed)
            return spec.lincomb([acc, sum_a, sum_w, 1], consts, rounding, lo, hi)


# ----------------------------------------------------------------------------- tile


@dataclass
class TileModel:
    """Output codes of a tile job: the model's layer pipeline (views, gemm, side sums,
    requantize) on the job's master codes."""

    n: int
    signed: bool
    acc_width: int
    overflow: str
    view_rounding: str
    kbits: int
    fallbacks: int = 0
    events: int = 0
    wrap_events: int = 0
    sat_events: int = 0

    def __call__(self, job: TileJob) -> list[list[int]]:
        a = np.array(job.a, np.int64).reshape(job.m, job.k)
        w = np.array(job.w, np.int64).reshape(job.k, job.ncols)
        va = model.nested_view(a, n=self.n, b=job.b_a, rounding=self.view_rounding,
                               signed=self.signed)
        vw = model.nested_view(w, n=self.n, b=job.b_w, rounding=self.view_rounding,
                               signed=self.signed)
        try:
            acc, st = model.gemm(va, vw, acc_width=self.acc_width, overflow=self.overflow,
                                 stats=True)
            self.events += st.events
            if self.overflow == "wrap":
                self.wrap_events += st.events
            else:
                self.sat_events += st.events
            sa, sw = model.side_sums_gemm(va, vw)
            out = np.empty((job.m, job.ncols), np.int64)
            for j, lane in enumerate(job.lanes):
                rq = lane_requant(lane, kbits=self.kbits, rounding=job.rounding,
                                  b_out=job.b_out, signed=self.signed)
                out[:, j] = model.requantize(acc[:, j:j + 1], sa[:, None], sw[j:j + 1], rq)[:, 0]
            return out.tolist()
        except ValueError:
            self.fallbacks += 1
            return tile_reference(job, n=self.n, signed=self.signed, acc_width=self.acc_width,
                                  overflow=self.overflow, view_rounding=self.view_rounding)

