"""Data-driven accumulator sizing: the narrowest W with no overflow on the data, per layer,
against the worst-case bound b_a + b_w + ceil(log2 N) + 1 (unsigned codes, signed
accumulator), and the area that saves.

For each conv/fc layer the reference model runs the layer's realistic codes
(:func:`dqt_hw.golden.cases.layer_inputs`, viewed at the layer's widths) with an
accumulator wide enough never to overflow; the largest |partial sum| gives the bits the
data needs (``AccStats.bits_needed``): any narrower W overflows on this data, any W at
least that wide never does. One accumulator width serves the whole array, so the array's
W is the maximum over layers, for the data as for the bound.
"""

from __future__ import annotations

__all__ = ["size_accumulators"]


def size_accumulators(network, mix, *, design=None, seed=0, spatial=None,
                      area_model=None) -> tuple[list[dict], dict]:
    """(per-layer rows, summary) for ``network`` at width ``mix`` on a tile like ``design``
    (a tile :class:`dqt_hw.design.Design`; default: the default tile): its R x C, n and
    overflow mode, its W sized from the data and from the bound."""
    from ..cost.area import load_area_model
    from ..design import Design
    from ..design.rules import depth_bits_for, min_acc_width
    from ..cost.workload import WidthMix, load_network
    from .points import measure_layer

    base = Design() if design is None else design
    rows, cols, n, overflow = base.rows, base.cols, base.n, base.overflow
    g = load_network(network)
    mix = WidthMix.parse(mix).check(g)
    rows_out = []
    for nd in g.compute_layers():
        b_a, b_w = mix.pair(nd.name)
        m = measure_layer(network, nd.name, b_a=b_a, b_w=b_w, acc_width=48, overflow="wrap",
                          n=n, seed=seed, spatial=spatial)
        rows_out.append({"layer": nd.name, "b_a": b_a, "b_w": b_w, "taps": m["taps"],
                         "bound_bits": m["bound_bits"], "data_bits": m["bits_needed"],
                         "saved_bits": m["bound_bits"] - m["bits_needed"]})
    am = area_model or load_area_model()
    w_bound = max(r["bound_bits"] for r in rows_out)
    w_data = max(r["data_bits"] for r in rows_out)

    widths = sorted({b for r in rows_out for b in (r["b_a"], r["b_w"])})
    hw_min = min_acc_width(n, widths=widths)
    deep = max(base.depth_bits, depth_bits_for(max(r["taps"] for r in rows_out)))

    def tile_um2(W):
        # the fitted analytic model on a tile built for the mix's widths (W no narrower
        # than one of their products: the narrowest accumulator the hardware takes)
        return am.area_um2(base.replace(acc_width=max(W, hw_min), widths=widths,
                                        depth_bits=deep))

    a_bound, a_data = tile_um2(w_bound), tile_um2(w_data)
    summary = {"network": g.name, "width_mix": mix.describe(), "rows": rows, "cols": cols,
               "W_bound": w_bound, "W_data": w_data, "area_bound_um2": a_bound,
               "area_data_um2": a_data, "area_saved_um2": a_bound - a_data,
               "area_saved_pct": 100.0 * (a_bound - a_data) / a_bound,
               "hw_min_W": hw_min}
    return rows_out, summary
