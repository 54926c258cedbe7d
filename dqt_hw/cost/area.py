"""Area: an analytic model per component, fitted to synthesis.

Each generator of :mod:`dqt_hw.hw` is described by counts of six primitive bits, derived
from its parameters the way the generator builds it:

- ``ff``: flip-flop bits (with their enable / reset gating);
- ``fa``: two-operand adder / comparator bits (one full-adder cell per bit);
- ``hc``: bits of increments and compares against constants (half-adder-like: rounding
  increments, saturation bounds, counters);
- ``pp``: unsigned multiplier partial-product bits (b_a x b_w for a b_a x b_w multiplier,
  its reduction tree included);
- ``spp``: the same for signed multipliers (the requantizer's K x acc, the rescale unit's
  K x q), counted as Yosys builds them: operands sign-extended to the product width;
- ``mux``: 2:1 multiplexer bits (shifters, width selects, output selects).

The transistor estimate is ``sum_k coeff_k * count_k``; the six coefficients are fitted
(non-negative least squares on relative error) to the Yosys transistor counts of the
synthesized configurations (``dqt-hw synth --fit`` writes them to
``data/area_coeffs.json`` with the remaining error of every configuration). Area in um^2
is transistors times ``um2_per_transistor``, fitted from the calibration adders and
multipliers against Horowitz's 45 nm areas of the same.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from ..design import Design, as_design
from ..design.rules import pack_modes

__all__ = ["FEATURES", "features", "design_features", "AreaModel", "load_area_model", "fit_area",
           "component_breakdown", "accumulator_area_per_bit"]

FEATURES = ("ff", "fa", "hc", "pp", "spp", "mux")


def _add(a, b, k=1):
    for key in FEATURES:
        a[key] = a.get(key, 0) + k * b.get(key, 0)
    return a


def _tri(y):
    return y * (y + 1) // 2


def _view(d):
    n, ws = d.n, d.widths
    # output bit i selects among the widths that keep it (b > i): c_i - 1 two-input
    # multiplexers, plus one zero-default gate per bit
    mux = sum(max(0, sum(1 for b in ws if b > i) - 1) for i in range(n))
    f = {"mux": mux + n}
    if d.view_rounding == "half_up":
        # per narrower width: a constant increment (q + 2^(d-1)) and the clamp compare
        f["hc"] = sum(2 * n for b in ws if b < n)
    return f


def _pe(d):
    n, W = d.n, d.acc_width
    f = {"pp": n * n, "fa": W, "ff": 2 * W, "mux": W}
    if d.overflow == "saturate":
        _add(f, {"hc": 2 * W, "mux": 2 * W})  # compares with the constant bounds, clamp
    if d.views:
        _add(f, _view(d.sub("view")), 2)
    return f


def _scalable_pe(d):
    """dqt_hw.hw.ScalableMACPE: P = max_pack slots, each with its two views; the n x n
    brick multiplier (the same n^2 partial products, with sign controls and the packed
    operand words); the P products accumulated one after the other in one cycle."""
    n, W, P = d.n, d.acc_width, d.max_pack
    modes = len(pack_modes(P))
    f = {"pp": n * n, "fa": P * W, "ff": 2 * W, "mux": P * W + 2 * n * (modes - 1) + n * n // P}
    if d.overflow == "saturate":
        _add(f, {"hc": 2 * W * P, "mux": 2 * W * P})
    _add(f, _view(d.sub("view")), 2 * P)
    return f


def _array(d):
    R, C, n, W = d.rows, d.cols, d.n, d.acc_width
    sw = d.side_sum_width
    f = {}
    _add(f, _pe(d.sub("pe", views=False)), R * C)
    _add(f, _view(d.sub("view")), R + C)
    regs = ((R + C) * n + 3 + n * (R * (R - 1) // 2 + C * (C - 1) // 2) + 3 * R * (R - 1) // 2
            + R * (C - 1) * n + (R - 1) * C * n + 3 * R * C)
    _add(f, {"ff": regs + (R + C) * 2 * sw + C * sw, "fa": (R + C) * sw,
             "mux": C * R * W + R * sw + C * sw})
    return f


def _requant(d):
    n, W, sw = d.n, d.acc_width, d.side_sum_width
    kb, eb, sb = d.kbits, d.ebits, d.sbits
    emax = (1 << eb) - 1
    sum_bits = d.requant_sum_bits
    left = ((kb + W + emax) + 2 * (kb + sw + emax) + (kb + emax)) * eb  # four left shifters
    right = sum_bits * sb + sum_bits  # the right shift and the half-bit select
    # signed x signed: Yosys sign-extends both operands to the product width y = a + b and
    # keeps the low half of the y x y array, y (y + 1) / 2 partial products
    return {"spp": _tri(kb + W) + 2 * _tri(kb + sw),
            # three adders of the four terms; the clamp's two compares with n-bit bounds
            "fa": 3 * sum_bits + 2 * n,
            # the compares' upper bits, the rounding increment, the sticky bits
            "hc": 2 * (sum_bits - n) + sum_bits + min(sum_bits, (1 << sb) - 2),
            "mux": left + right + n + n * len(d.widths)}


def _tile(d):
    R, C, n = d.rows, d.cols, d.n
    f = _array(d)
    L, G = d.requant_lanes, d.row_cycles
    _add(f, _requant(d.sub("requant")), L)
    if G > 1:  # each lane's inputs selected among G columns; the held codes; the counter
        lane_in = d.acc_width + d.side_sum_width + 4 * d.kbits + 4 * d.ebits + d.sbits
        _add(f, {"mux": L * (G - 1) * lane_in + (G - 1) * L * n,
                 "ff": (G - 1) * L * n + (G - 1).bit_length(), "hc": (G - 1).bit_length()})
    S = d.rq_stages
    if S:  # pipelined lanes: the exact sum (and the four shifted terms) with the late
        # constants (S, rounding, b_out) per rank; the row control (valid, row, emit,
        # last, ncols) per rank
        late = d.sbits + 2 + d.width_bits
        lane = d.requant_sum_bits + late
        if S == 2:
            emax, kb, sw = (1 << d.ebits) - 1, d.kbits, d.side_sum_width
            lane += (kb + d.acc_width + emax) + 2 * (kb + sw + emax) + (kb + emax) + late
        ctrl = 3 + max(1, (R - 1).bit_length()) + C.bit_length()
        _add(f, {"ff": C * lane + S * ctrl})
    db = d.depth_bits
    _add(f, {"ff": C * n + max(1, (R - 1).bit_length()) + 2 + db + d.min_period.bit_length(),
             "hc": 2 * db, "mux": C * n})
    return f


def _rescale(d):
    n, m, sb = d.n, d.mult_bits, d.sbits
    w = m + n + 2
    # the rounding mode is a constant here: floor needs no rounding logic, half_up the
    # half bit and an increment, half_even / half_away the sticky bits too
    rnd = {"floor": {}, "half_up": {"mux": w, "hc": w}}.get(
        d.rounding, {"mux": w, "hc": w + min(w, (1 << sb) - 2)})
    # the offset adder and the clamp's two compares with n-bit bounds (upper bits: hc)
    # signed K x unsigned q: K sign-extended to the m + n + 1 product bits times n bits of
    # q (its extension is zero), less the truncated corner
    f = {"spp": (m + n + 1) * n - n * (n - 1) // 2, "fa": w + 2 * n, "hc": 2 * (w - n),
         "mux": w * sb + n + n * len(d.widths)}
    return _add(f, rnd)


def _cal(component, p):
    w = p["width"]
    return {"fa": w} if component == "cal_add" else {"pp": w * w}


_BUILDERS = {"view": _view, "pe": _pe, "scalable_pe": _scalable_pe, "array": _array, "requant": _requant, "tile": _tile,
             "rescale": _rescale}


CALIBRATION_COMPONENTS = ("cal_add", "cal_mul")
"""The synthesized calibration primitives (an adder, a multiplier of ``width`` bits)."""


def features(component: str, params: dict) -> dict:
    """Primitive bit counts of a component with its generator parameters (a sidecar's or
    a synthesis result's ``parameters``; a calibration primitive's ``width``)."""
    if component in CALIBRATION_COMPONENTS:
        f = _cal(component, params)
    elif component in _BUILDERS:
        f = _BUILDERS[component](Design.from_mapping({"component": component, **params}))
    else:
        raise ValueError(f"no area model for component {component!r} (known: "
                         f"{sorted(_BUILDERS)})")
    return {k: int(f.get(k, 0)) for k in FEATURES}


def design_features(design: Design) -> dict:
    """Primitive bit counts of a design."""
    f = _BUILDERS[design.component](design)
    return {k: int(f.get(k, 0)) for k in FEATURES}


def _as_design(config) -> Design:
    """The design of a Design, a dqt_hw.hw component or a (component, params) pair."""
    if isinstance(config, tuple) and len(config) == 2:
        return Design.from_mapping({"component": config[0], **config[1]})
    return as_design(config)


@dataclass(frozen=True)
class AreaModel:
    coeffs: dict  # transistors per primitive bit
    um2_per_transistor: float
    fit: dict  # the fit report (per-configuration error)

    def transistors(self, config) -> float:
        f = design_features(_as_design(config))
        return sum(self.coeffs[k] * f[k] for k in FEATURES)

    def area_um2(self, config) -> float:
        return self.transistors(config) * self.um2_per_transistor


def _coeff_path():
    return resources.files("dqt_hw.cost") / "data" / "area_coeffs.json"


def load_area_model(path=None) -> AreaModel:
    p = Path(path) if path else _coeff_path()
    if not p.is_file():
        raise ValueError(f"no fitted area coefficients at {p} (run dqt-hw synth --fit)")
    d = json.loads(p.read_text())
    return AreaModel(d["coeffs"], float(d["um2_per_transistor"]), d)


def _nnls(A, b):
    """Non-negative least squares by elimination (a handful of unknowns: plain lstsq on
    the columns left after dropping the most negative one, repeated)."""
    active = list(range(A.shape[1]))
    while True:
        x, *_ = np.linalg.lstsq(A[:, active], b, rcond=None)
        if (x >= 0).all() or len(active) == 1:
            out = np.zeros(A.shape[1])
            out[active] = np.maximum(x, 0)
            return out
        active.pop(int(np.argmin(x)))


def fit_area(results, tech=None) -> dict:
    """Fit the coefficients to synthesis results (dicts with component, params,
    transistors). Returns the coefficient document with the per-configuration error."""
    from .tech import load_tech

    rows = [r for r in results]
    F = np.array([[features(r["component"], r["params"])[k] for k in FEATURES] for r in rows],
                 dtype=float)
    t = np.array([r["transistors"] for r in rows], dtype=float)
    x = _nnls(F / t[:, None], np.ones(len(rows)))  # relative error
    coeffs = {k: float(v) for k, v in zip(FEATURES, x)}
    pred = F @ x
    per = [{"name": r["name"], "component": r["component"], "measured_transistors": int(tt),
            "model_transistors": round(float(pp), 1), "error_pct": round(float(100 * (pp - tt) / tt), 2)}
           for r, tt, pp in zip(rows, t, pred)]
    errs = np.array([abs(p["error_pct"]) for p in per])
    # um^2 per transistor: Horowitz's adder/multiplier areas over their synthesized counts
    tech = load_tech(tech or "horowitz45")
    cal = []
    for r in rows:
        if r["component"] in ("cal_add", "cal_mul"):
            key = "int_add_um2" if r["component"] == "cal_add" else "int_mul_um2"
            area = tech.data.get(key, {}).get(str(r["params"]["width"]))
            if area:
                cal.append((r["name"], float(area), r["transistors"]))
    if cal:
        a = np.array([c[1] for c in cal])
        tt = np.array([c[2] for c in cal], dtype=float)
        um2 = float(np.exp(np.mean(np.log(a / tt))))  # geometric mean of the ratios
        cal_rep = [{"name": n, "horowitz_um2": ar, "transistors": int(tr),
                    "um2_per_transistor": round(ar / tr, 4)} for n, ar, tr in cal]
    else:
        um2, cal_rep = float("nan"), []
    return {
        "coeffs": coeffs,
        "um2_per_transistor": um2,
        "calibration": cal_rep,
        "error_pct_max": round(float(errs.max()), 2),
        "error_pct_mean": round(float(errs.mean()), 2),
        "per_config": per,
        "tech": tech.name,
    }


def component_breakdown(tile, model: AreaModel | None = None) -> dict:
    """Area (um^2) of a tile by component: PEs, edge views, side sums and pipeline
    registers (the rest of the array), requantizer lanes, tile control."""
    model = model or load_area_model()
    d = _as_design(tile)
    if d.component != "tile":
        raise ValueError(f"component_breakdown takes a tile, not a {d.component}")
    R, C = d.rows, d.cols

    def um2(part: Design) -> float:
        return model.area_um2(part)

    pe = um2(d.sub("pe", views=False)) * R * C
    views = um2(d.sub("view")) * (R + C)
    array = um2(d.sub("array"))
    lanes = um2(d.sub("requant")) * C
    total = um2(d)
    return {"pe_array_um2": pe, "edge_views_um2": views,
            "array_other_um2": array - pe - views, "requant_lanes_um2": lanes,
            "control_um2": total - array - lanes, "total_um2": total}


def accumulator_area_per_bit(model: AreaModel | None = None, overflow="wrap") -> float:
    """um^2 one more accumulator bit costs in one PE (adder bit, two register bits, the
    first-term gating; saturate adds its comparators)."""
    model = model or load_area_model()
    pe = Design(component="pe", overflow=overflow, views=False)
    return model.area_um2(pe.replace(acc_width=pe.acc_width + 1)) - model.area_um2(pe)
