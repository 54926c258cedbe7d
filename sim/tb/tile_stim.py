"""Structured stimulus of the tile bench (``sim.tb.tb_tile``): jobs whose output codes are
decided by one requantizer term per column, so a wrong side sum, a swapped constant or a
wrong accumulator moves codes by many steps.

The requantizer computes ``round_shift(K1 acc << E1 + K2 sum_a << E2 + K3 sum_w << E3 +
K4 << E4, S)`` (docs/arithmetic.md 6.3). A *term lane* keeps one K_t non-zero (with its E_t
and S) and scales it so that the values that term takes in the job (the exact accumulators
of its column, the row sums, the column sums, or 1) spread over the whole output code
range. Rows and columns get codes around different levels (a random permutation of a
ramp over the code range), so the row sums, the column sums and the accumulators differ
from row to row and column to column by many output steps.
"""

from __future__ import annotations

import numpy as np

from dqt_hw import model, spec
from dqt_hw.hw.reference import LaneConstants, TileJob

TERMS = (1, 2, 3, 4)  # K1 (acc), K2 (sum_a), K3 (sum_w), K4 (constant)


def ramp_codes(rng, count: int, K: int, lo: int, hi: int, *, first_extreme=False):
    """``count`` lists of K master codes; list r lies around its own level (the levels a
    random permutation of a ramp over [lo, hi]). ``first_extreme``: element 0 of every list
    is lo or hi (never 0), so a tile's first element carries a large value."""
    levels = [lo + (hi - lo) * (r + 1) // (count + 1) for r in range(count)]
    rng.shuffle(levels)
    spread = max(1, (hi - lo) // (4 * count))
    out = []
    for r in range(count):
        row = [min(hi, max(lo, levels[r] + rng.randint(-spread, spread))) for _ in range(K)]
        if first_extreme:
            row[0] = rng.choice([v for v in (lo, hi) if v != 0])
        out.append(row)
    return out


def term_values(job_a, job_w, *, n, b_a, b_w, rounding, signed):
    """(exact accumulators M x N, row sums M, column sums N) of the viewed codes."""
    a = np.array(job_a, np.int64)
    w = np.array(job_w, np.int64)
    va = model.nested_view(a, n=n, b=b_a, rounding=rounding, signed=signed)
    vw = model.nested_view(w, n=n, b=b_w, rounding=rounding, signed=signed)
    return va @ vw, va.sum(axis=1), vw.sum(axis=0)


def term_lane(rng, term: int, values, *, signed: bool, b_out: int, kbits: int, ebits: int,
              sbits: int) -> LaneConstants:
    """A lane whose only non-zero constant is K_term, scaled so that ``values`` (what the
    term takes in this column) map onto about the whole ``b_out``-bit code range. E_term
    and S are drawn with the extremes (0 and the largest field value) favoured; a draw
    the fields cannot hold (K out of range or too coarse) is retried, the last resort
    E = 0 with the smallest S that holds the scale."""
    lo, hi = spec.code_range(b_out, signed)
    top = max(abs(int(v)) for v in values) if len(values) else 0
    klo, khi = spec.signed_range(kbits)
    emax, smax = (1 << ebits) - 1, (1 << sbits) - 1
    if term == 4:  # a constant: any code of the range (both clamps now and then)
        target = rng.randint(lo - 2, hi + 2) or 1
        scale = float(target)
    else:
        scale = (max(abs(lo), hi) * rng.uniform(0.7, 1.3)) / max(1, top)
        if signed and rng.random() < 0.5:
            scale = -scale
    k = [0, 0, 0, 0]
    e = [0, 0, 0, 0]
    for attempt in range(40):
        E = rng.choice((0, emax, rng.randint(0, emax)))
        S = rng.choice((0, smax, rng.randint(0, smax)))
        if attempt == 39:
            E, S = 0, next((s for s in range(smax + 1)
                            if abs(scale) * 2 ** s >= 64 or s == smax), smax)
        K = round(scale * 2.0 ** (S - E))
        if not klo <= K <= khi or K == 0:
            continue
        if abs(K * 2.0 ** (E - S) - scale) > 0.25 * abs(scale):  # too coarse
            continue
        k[term - 1], e[term - 1] = K, E
        return LaneConstants(tuple(k), tuple(e), S)
    K = max(klo, min(khi, round(scale))) or 1
    k[term - 1] = K
    return LaneConstants(tuple(k), tuple(e), 0)


def term_job(tb, rng, *, pair, K, b_out=None, rounding=None, offset=0, first_extreme=False,
             full=False, terms=TERMS) -> TileJob:
    """A job of ramped codes (``ramp_codes``) whose column j has a term lane of term
    ``terms[(j + offset) % len(terms)]``; ``full``: M = R and N = C."""
    lo, hi = spec.code_range(tb.n, tb.signed)
    m, ncols = (tb.R, tb.C) if full or rng.random() < 0.6 else (
        rng.randint(1, tb.R), rng.randint(1, tb.C))
    b_a, b_w = pair
    b_out = b_out or rng.choice(tb.widths)
    rounding = rounding or rng.choice(spec.ROUNDINGS)
    a = ramp_codes(rng, m, K, lo, hi, first_extreme=first_extreme)
    cols = ramp_codes(rng, ncols, K, lo, hi, first_extreme=first_extreme)
    w = [[cols[j][k] for j in range(ncols)] for k in range(K)]
    acc, sum_a, sum_w = term_values(a, w, n=tb.n, b_a=b_a, b_w=b_w,
                                    rounding=tb.view_rounding, signed=tb.signed)
    lanes = []
    for j in range(ncols):
        t = terms[(j + offset) % len(terms)]
        values = {1: acc[:, j], 2: sum_a, 3: sum_w, 4: [1]}[t]
        lanes.append(term_lane(rng, t, values, signed=tb.signed, b_out=b_out, kbits=tb.kbits,
                               ebits=tb.ebits, sbits=tb.sbits))
    return TileJob(a=a, w=w, b_a=b_a, b_w=b_w, b_out=b_out, rounding=rounding, lanes=lanes)


def _by_pack(design):
    """{pack factor: the width pairs with it} of a design's built widths."""
    out = {}
    for a in design.widths:
        for w in design.widths:
            out.setdefault(design.pack_factor(a, w), []).append((a, w))
    return out


def balanced_pairs(rng, design, count: int):
    """``count`` width pairs of a packed design taking turns over its pack factors (4, 2, 1
    at max_pack 4), so every packing mode runs and changes between tiles."""
    groups = _by_pack(design)
    order = sorted(groups)
    rng.shuffle(order)
    return [rng.choice(groups[order[i % len(order)]]) for i in range(count)]


def switch_pairs(rng, design, count: int):
    """``count`` width pairs, consecutive ones always different: far apart as often as near
    (both widths moving, one moving, the largest moves); on a packed design the pack factor
    changes at every switch where it can."""
    widths = list(design.widths)
    pairs = [(a, w) for a in widths for w in widths]
    groups = _by_pack(design)
    out = [rng.choice(pairs)]
    lo_w, hi_w = min(widths), max(widths)
    mid = (lo_w + hi_w) // 2
    while len(out) < count:
        pa, pw = out[-1]
        if len(groups) > 1:
            now = design.pack_factor(pa, pw)
            p = rng.choice([q for q in groups if q != now])
            out.append(rng.choice(groups[p]))
            continue
        far = (hi_w if pa <= mid else lo_w, hi_w if pw <= mid else lo_w)
        nxt = far if rng.random() < 0.4 else rng.choice([p for p in pairs if p != out[-1]])
        out.append(nxt)
    return out
