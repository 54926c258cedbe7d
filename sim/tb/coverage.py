"""Functional coverage (cocotb-coverage): what the benches must have exercised.

Cover points (bins):

- ``view.<sign>.<rounding>.b``: every view width register value that is built;
- ``pe.<sign>.pair``: the (b_a, b_w) cross of the PE's product;
- ``pe.event``: wrap above / below and saturate at hi / lo, in the PE's accumulator;
- ``rq.rounding_x_clamp``: every rounding mode x (clamped low, inside, clamped high);
- ``rq.edge``: S = 0, S = max, K = min, K = max, E = max;
- ``tile.<sign>.pair``: the (b_a, b_w) cross of tiles through the whole tile;
- ``tile.transition``: how b_a and b_w move from one tile to the next (up/down/same each);
- ``tile.event``: wrap and saturate events inside tiles;
- ``tile.stall``: idle cycles on cmd, act, wgt, rq and back-pressure on out;
- ``tile.feature``: a full-depth tile (K = 2^depth_bits, cmd k field 0), packed tiles
  (pack factor 2, 4), lanes where one term alone decides the codes (K1..K4), extreme
  shifts of such a lane (S = 0, S = max, E = max), a width switch whose tile has a
  non-zero first element (sampled from what the input monitors saw).

Each simulation writes its database (YAML) to ``SIM_COVERAGE_FILE``; ``sim/coverage_report.py``
merges them (across configurations and pytest-xdist workers) and lists what is missing.
"""

from __future__ import annotations

import os

from cocotb_coverage.coverage import CoverCross, CoverPoint, coverage_db

N = 8  # the matrix's master width: every configuration of the regression has n = 8
UWIDTHS = list(range(1, N + 1))
SWIDTHS = list(range(2, N + 1))
ROUNDINGS = ["floor", "half_up", "half_even", "half_away"]
VIEW_ROUNDINGS = ["floor", "half_up"]
MOVES = ["up", "down", "same"]
STREAMS = ["cmd", "act", "wgt", "rq", "out"]


def _view_points():
    fns = {}
    for sign, widths in (("unsigned", UWIDTHS), ("signed", SWIDTHS)):
        for r in VIEW_ROUNDINGS:
            @CoverPoint(f"dqt.view.{sign}.{r}.b", xf=lambda b: b, bins=widths)
            def f(b):
                pass
            fns[(sign, r)] = f
    return fns


def _pair_points(unit):
    fns = {}
    for sign, widths in (("unsigned", UWIDTHS), ("signed", SWIDTHS)):
        @CoverPoint(f"dqt.{unit}.{sign}.b_a", xf=lambda a, w: a, bins=widths)
        @CoverPoint(f"dqt.{unit}.{sign}.b_w", xf=lambda a, w: w, bins=widths)
        @CoverCross(f"dqt.{unit}.{sign}.pair",
                    items=[f"dqt.{unit}.{sign}.b_a", f"dqt.{unit}.{sign}.b_w"])
        def f(a, w):
            pass
        fns[sign] = f
    return fns


_VIEW = _view_points()
_PE = _pair_points("pe")
_TILE = _pair_points("tile")


@CoverPoint("dqt.pe.event", xf=lambda e: e,
            bins=["wrap_over", "wrap_under", "saturate_hi", "saturate_lo"])
def _pe_event(e):
    pass


@CoverPoint("dqt.rq.rounding", xf=lambda r, c: r, bins=ROUNDINGS)
@CoverPoint("dqt.rq.clamp", xf=lambda r, c: c, bins=["low", "inside", "high"])
@CoverCross("dqt.rq.rounding_x_clamp", items=["dqt.rq.rounding", "dqt.rq.clamp"])
def _rq(r, c):
    pass


@CoverPoint("dqt.rq.edge", xf=lambda e: e, bins=["s_zero", "s_max", "k_min", "k_max", "e_max"])
def _rq_edge(e):
    pass


@CoverPoint("dqt.tile.move_a", xf=lambda a, w: a, bins=MOVES)
@CoverPoint("dqt.tile.move_w", xf=lambda a, w: w, bins=MOVES)
@CoverCross("dqt.tile.transition", items=["dqt.tile.move_a", "dqt.tile.move_w"])
def _tile_move(a, w):
    pass


@CoverPoint("dqt.tile.event", xf=lambda e: e, bins=["wrap", "saturate"])
def _tile_event(e):
    pass


@CoverPoint("dqt.tile.stall", xf=lambda s: s, bins=STREAMS)
def _tile_stall(s):
    pass


FEATURES = ["full_depth", "pack2", "pack4", "term_k1", "term_k2", "term_k3", "term_k4",
            "s_zero", "s_max", "e_max", "switch_first_nonzero"]


@CoverPoint("dqt.tile.feature", xf=lambda f: f, bins=FEATURES)
def _tile_feature(f):
    pass


def _move(prev, new):
    return "same" if prev == new else ("up" if new > prev else "down")


class _Cov:
    """Sampling functions called by the benches (plain Python values)."""

    def view(self, n, b, rounding, signed):
        f = _VIEW.get(("signed" if signed else "unsigned", rounding))
        if f is not None and n == N:
            f(b)

    def pe_pair(self, signed, b_a, b_w):
        _PE["signed" if signed else "unsigned"](b_a, b_w)

    def pe_event(self, e):
        _pe_event(e)

    def rq(self, rounding, clamp):
        _rq(rounding, clamp)

    def rq_edge(self, e):
        _rq_edge(e)

    def tile_pair(self, signed, b_a, b_w):
        _TILE["signed" if signed else "unsigned"](b_a, b_w)

    def tile_transition(self, prev, new):
        _tile_move(_move(prev[0], new[0]), _move(prev[1], new[1]))

    def tile_event(self, e):
        _tile_event(e)

    def tile_feature(self, f):
        _tile_feature(f)

    def stall(self, stream):
        _tile_stall(stream)

    def export(self):
        path = os.environ.get("SIM_COVERAGE_FILE")
        if path:
            coverage_db.export_to_yaml(filename=path)


cov = _Cov()
