"""Precision-switch cost: what changing a layer's widths costs, counted per tensor element.

- DQT (nested codes): the b-bit view of a stored n-bit code is one right shift
  (``q >> (n - b)``), so a switch costs **one shift per element** of every tensor whose
  width changes, and no constant is recomputed (docs/arithmetic.md section 7).
- Dequantize/requantize (non-nested dynamic quantization): each element goes back to a real
  value and onto the new grid, ``r = m + Delta_old q`` then ``q' = (r - m') / Delta_new``:
  **two floating-point multiply-accumulates per element** (one FMA each, the division
  being a multiplication by a precomputed reciprocal; rounding and int/float conversion
  not counted).
- Integer rescale (what :class:`dqt_hw.hw.RescaleUnit` does): one integer
  multiply-add per element, ``round_shift(K q + Z, S)``.

Counted tensors, per conv/fc layer of the graph (``tensors=``):

- ``weights``: the layer's weight tensor, O x (C/g) x k x k elements;
- ``activations``: the layer's input activation tensor, C x H x W elements (batch 1);
- ``outputs``: the layer's output tensor (normally produced at the new width directly by
  the requantizer, so not counted by default).

Residual adds, pooling and the controller are not counted.
"""

from __future__ import annotations

from .workload import load_network

__all__ = ["TENSORS", "switch_cost", "PAPER_RESNET50", "paper_comparison"]

TENSORS = ("weights", "activations", "outputs")
_KEYS = {"weights": "weights", "activations": "in_activations", "outputs": "out_activations"}

PAPER_RESNET50 = {"shifts": 28.3e6, "fp_macs": 56.6e6}
"""Shalby et al. (AAAI 2026): ResNet-50 on ImageNet, the bit-width transition cost."""

FP_MACS_PER_ELEMENT = 2
INT_MACS_PER_ELEMENT = 1


def _check_tensors(tensors):
    if isinstance(tensors, str):
        tensors = tuple(t for t in tensors.split(",") if t)
    tensors = tuple(tensors)
    bad = [t for t in tensors if t not in TENSORS]
    if bad or not tensors:
        raise ValueError(f"counted tensors must be a non-empty subset of {TENSORS}, not {tensors}")
    return tensors


def switch_cost(network, *, tensors=("weights", "activations"), layers=None):
    """(rows, totals). Each row: layer name, the element count of each counted tensor,
    ``elements``, ``shifts`` (DQT), ``fp_macs`` (dequantize/requantize) and ``int_macs``
    (integer rescale). ``layers`` restricts the count to the layers that switch."""
    g = load_network(network)
    tensors = _check_tensors(tensors)
    table = g.layer_table()
    if layers is not None:
        names = {r["name"] for r in table}
        unknown = sorted(set(layers) - names)
        if unknown:
            raise ValueError(f"{g.name} has no conv/fc layers {unknown}")
        table = [r for r in table if r["name"] in set(layers)]
    rows = []
    for r in table:
        row = {"name": r["name"]}
        for t in tensors:
            row[t] = r[_KEYS[t]]
        e = sum(row[t] for t in tensors)
        row.update(elements=e, shifts=e, fp_macs=FP_MACS_PER_ELEMENT * e,
                   int_macs=INT_MACS_PER_ELEMENT * e)
        rows.append(row)
    totals = {k: sum(r[k] for r in rows) for k in (*tensors, "elements", "shifts", "fp_macs",
                                                  "int_macs")}
    totals["tensors"] = ",".join(tensors)
    return rows, totals


def paper_comparison(network="resnet50_imagenet") -> list[dict]:
    """Our counts for each choice of counted tensors next to the paper's 28.3 M shifts /
    56.6 M FP MACs (ratio = ours / paper's)."""
    out = []
    for tensors in (("weights",), ("activations",), ("weights", "activations"),
                    ("weights", "outputs"), ("weights", "activations", "outputs")):
        _, tot = switch_cost(network, tensors=tensors)
        out.append({
            "tensors": "+".join(tensors),
            "shifts": tot["shifts"],
            "fp_macs": tot["fp_macs"],
            "shifts_vs_paper": tot["shifts"] / PAPER_RESNET50["shifts"],
            "fp_macs_vs_paper": tot["fp_macs"] / PAPER_RESNET50["fp_macs"],
        })
    return out
