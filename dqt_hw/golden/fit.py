"""Which golden case fits which design, and which cases verify nothing.

:func:`fits` is the one rule the golden writer (``dqt-hw golden write`` refuses a set that
does not fit its own design), ``dqt-hw golden verify --design`` and ``dqt-hw sim`` apply:
it returns the reasons a case cannot run on a design (an empty list: it fits).
:func:`degenerate` is the one rule for a case whose expected outputs verify nothing
(too few distinct codes, or every accumulator saturated); the writer refuses such a set
(:func:`check_meaningful`).

A case runs on a design's hardware as follows (``sim.golden`` does it):

- ``nested_view`` cases on a ``view`` unit (every master code at every width of the case);
- ``gemm`` cases on a ``tile``: the master codes at b = n (the view is the identity),
  one job per output row, "window" lanes K1 = 1, K4 = c - acc (c the middle of the code
  range, S = 0) so that the output code is c exactly when the accumulator is the golden
  one (:func:`gemm_window_k4`);
- ``dense_layer`` / ``conv_layer`` cases on a ``tile``: the layer as its im2col GEMM in
  R x C blocks, the case's constants as lane fields (``dqt_hw.hw.reference.lane_constants``);
  the conv's padding is applied to the master codes before the tile views them.
"""

from __future__ import annotations

import numpy as np

from .. import spec
from ..design import Design, as_design

__all__ = ["MIN_DISTINCT", "check_meaningful", "degenerate", "fits", "gemm_window_k4",
           "expected_name", "fit_table", "saturated_fraction", "summary", "taps"]

MIN_DISTINCT = 8
"""Fewest distinct expected output values a meaningful case has."""


def expected_name(kind: str) -> str:
    """The array of a case that holds its expected outputs."""
    return {"nested_view": "v", "gemm": "acc"}.get(kind, "out")


def taps(case) -> int:
    """K of one dot product of a gemm / dense / conv case (the tile's depth)."""
    p = case.params
    if case.kind == "conv_layer":
        w = case["w"]
        return int(w.shape[1] * w.shape[2] * w.shape[3])
    if case.kind in ("gemm", "dense_layer"):
        return int(case["w"].shape[0])
    raise ValueError(f"a {case.kind} case has no dot products (params {p})")


def gemm_window_k4(acc, n: int, signed: bool) -> np.ndarray:
    """K4 = c - acc of the window lanes that run a gemm case on a tile (c the middle of
    the n-bit code range): the output is c exactly when the accumulator equals acc."""
    lo, hi = spec.code_range(n, signed)
    return (lo + hi + 1) // 2 - np.asarray(acc, np.int64)


def _signedness(s: bool) -> str:
    return "signed" if s else "unsigned"


def _name(case) -> str:
    return case.manifest.get("case", "?")


def fits(design, case) -> list[str]:
    """Why ``case`` (a ``GoldenCase``) cannot run on ``design`` (a :class:`Design`, or a
    generated component); ``[]`` when it fits."""
    d = as_design(design)
    kind, p = case.kind, case.params
    if kind == "nested_view":
        return _fits_view(d, p)
    if kind not in ("gemm", "dense_layer", "conv_layer"):
        return [f"unknown case kind {kind!r}"]
    if d.component != "tile":
        return [f"a {kind} case runs on a tile, not on a {d.component}"]
    why = []
    if kind == "gemm":
        n = max(p["a_bits"], p["w_bits"])
        if p["a_bits"] != p["w_bits"]:
            why.append(f"activation codes of {p['a_bits']} bits and weight codes of "
                       f"{p['w_bits']} bits: the tile has one master width n = {d.n}")
        elif n != d.n:
            why.append(f"master width n = {n}, the design's n = {d.n}")
        for what, s in (("activations", p["a_signed"]), ("weights", p["w_signed"])):
            if s != d.signed:
                why.append(f"{_signedness(s)} {what}, the design has {_signedness(d.signed)} "
                           f"codes")
        pairs = [(n, n, n)]
    else:
        af, wf = p["a_format"], p["w_format"]
        for what, f in (("activations", af), ("weights", wf)):
            if f["n"] != d.n:
                why.append(f"{what} of master width n = {f['n']}, the design's n = {d.n}")
            if f["signed"] != d.signed:
                why.append(f"{_signedness(f['signed'])} {what}, the design has "
                           f"{_signedness(d.signed)} codes")
        if p["out_signed"] != d.signed:
            why.append(f"{_signedness(p['out_signed'])} output codes, the design has "
                       f"{_signedness(d.signed)} codes")
        pairs = [(p["b_a"], p["b_w"], p["b_out"])]
        below = [f"{w} = {p[w]}" for w, f in (("b_a", af), ("b_w", wf)) if p[w] < f["n"]]
        if below and p["view_rounding"] != d.view_rounding:
            why.append(f"{p['view_rounding']} views at {', '.join(below)} < n, the design "
                       f"has {d.view_rounding} views")
        if kind == "conv_layer":
            if p["groups"] != 1:
                why.append(f"grouped conv (groups = {p['groups']}): the tile runs one group")
            if p["padding"] and p["pad_code"] and p["b_a"] < af["n"]:
                why.append(f"pad_code {p['pad_code']} at b_a = {p['b_a']} < n: the tile views "
                           f"the padded master codes, so only pad_code 0 maps")
    for b_a, b_w, b_out in pairs:
        for w, b in (("b_a", b_a), ("b_w", b_w), ("b_out", b_out)):
            if b not in d.widths:
                why.append(f"{w} = {b} is not one of the design's widths {list(d.widths)}")
    if p["acc_width"] != d.acc_width or p["overflow"] != d.overflow:
        why.append(f"accumulator W = {p['acc_width']} {p['overflow']}, the design has "
                   f"W = {d.acc_width} {d.overflow}")
    k = taps(case)
    if k > d.max_depth:
        why.append(f"K = {k} taps is deeper than a tile (2^depth_bits = {d.max_depth})")
    why += _constant_reasons(d, case)
    return why


def _fits_view(d: Design, p: dict) -> list[str]:
    if d.component != "view":
        return [f"a nested_view case runs on a view unit, not on a {d.component}"]
    why = []
    if p["n"] != d.n:
        why.append(f"master width n = {p['n']}, the design's n = {d.n}")
    if p["signed"] != d.signed:
        why.append(f"{_signedness(p['signed'])} codes, the design has "
                   f"{_signedness(d.signed)} codes")
    if any(b < p["n"] for b in p["widths"]) and p["rounding"] != d.view_rounding:
        why.append(f"{p['rounding']} views, the design has {d.view_rounding} views")
    missing = [b for b in p["widths"] if b not in d.widths]
    if missing:
        why.append(f"widths {missing} are not among the design's widths {list(d.widths)}")
    return why


def _constant_reasons(d: Design, case) -> list[str]:
    """Constants that do not fit the design's kbits / ebits / sbits lane fields."""
    from ..hw.reference import lane_constants

    if case.kind == "gemm":
        k4 = gemm_window_k4(case["acc"], d.n, d.signed)
        lo, hi = spec.signed_range(d.kbits)
        if k4.size and (int(k4.min()) < lo or int(k4.max()) > hi):
            return [f"window constants K4 = c - acc in [{int(k4.min())}, {int(k4.max())}] do "
                    f"not fit kbits = {d.kbits} ([{lo}, {hi}])"]
        return []
    K, S, bits = case["K"], case["S"], int(case.params["const_bits"])
    for c in range(K.shape[1]):
        try:
            lane_constants([spec.Constant(int(K[t, c]), int(S[t, c]), bits) for t in range(4)],
                           kbits=d.kbits, ebits=d.ebits, sbits=d.sbits)
        except ValueError as e:
            return [f"output channel {c}: {e}"]
    return []


# ----------------------------------------------------------------------------- degenerate


def saturated_fraction(case) -> float | None:
    """Fraction of the outputs whose accumulation saturated at least once (saturate
    cases with statistics), else None."""
    st = (case.manifest.get("extra") or {}).get("stats")
    if case.params.get("overflow") != "saturate" or not st or not st.get("outputs"):
        return None
    return st["outputs_affected"] / st["outputs"]


def degenerate(case) -> list[str]:
    """Why ``case``'s expected outputs verify (next to) nothing; ``[]`` when meaningful:
    fewer than :data:`MIN_DISTINCT` distinct expected values, or (saturate) every
    accumulator saturated."""
    why = []
    out = case[expected_name(case.kind)]
    vals = np.unique(out)
    if vals.size < MIN_DISTINCT:
        shown = ", ".join(str(int(v)) for v in vals[:MIN_DISTINCT])
        why.append(f"{vals.size} distinct expected output value(s) ({shown}) among {out.size}, "
                   f"fewer than {MIN_DISTINCT}")
    frac = saturated_fraction(case)
    if frac is not None and frac >= 1.0:
        st = case.manifest["extra"]["stats"]
        why.append(f"every accumulator saturated ({st['outputs_affected']} of {st['outputs']} "
                   f"outputs, W = {case.params['acc_width']})")
    return why


def summary(case) -> str:
    """One line: the case, its kind, its expected outputs, distinct codes, saturation."""
    out = case[expected_name(case.kind)]
    frac = saturated_fraction(case)
    sat = "" if frac is None else f", {100 * frac:.1f} % of accumulators saturated"
    return (f"{_name(case):40s} {case.kind:11s} {out.size} outputs, "
            f"{np.unique(out).size} distinct codes{sat}")


def check_meaningful(case) -> None:
    """Raise ValueError naming the case and the numbers when :func:`degenerate` finds it
    verifies nothing."""
    why = degenerate(case)
    if why:
        raise ValueError(f"golden case {_name(case)!r} is degenerate: {'; '.join(why)} "
                         f"(a set that expects this verifies nothing)")


# ----------------------------------------------------------------------------- table


def fit_table(cases, designs) -> str:
    """The markdown table of which case fits which design (golden/README.md holds it for
    the canonical set and the reference tiles and view units; a test keeps it current),
    then why each case does not fit each design of the kind it runs on."""
    designs = [as_design(d) for d in designs]
    lines = ["| case | " + " | ".join(f"`{d.name}`" for d in designs) + " |",
             "|---|" + "---|" * len(designs)]
    notes = []
    for case in cases:
        cells = []
        for d in designs:
            why = fits(d, case)
            cells.append("fits" if not why else "-")
            unit = "view" if case.kind == "nested_view" else "tile"
            if why and d.component == unit:
                notes.append(f"- `{_name(case)}` on `{d.name}`: {'; '.join(why)}")
        lines.append(f"| `{_name(case)}` | " + " | ".join(cells) + " |")
    return "\n".join(lines + [""] + notes) + "\n"
