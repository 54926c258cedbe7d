"""Sweep points: the grid, the key of a point, and the evaluation of one point.

A point is a flat dict::

    network   resnet18_cifar10 | resnet50_imagenet | a JSON network file
    layer     the layer whose real codes the bit-exact model runs (overflow measurement)
    acc_width accumulator width W
    overflow  wrap | saturate
    mix       static width mix, 'b_a x b_w' (e.g. '4x4') or a JSON mix file
    rows, cols  PE array size
    tech      technology table
    n, seed, spatial (optional): master width, data seed, spatial crop of the measured layer
    storage   (optional) master (the default) | packed | planes: how tensors are stored
              (the SRAM and DRAM energy, ``dqt_hw.cost.energy.MemoryConfig``)

The grid is checked by :mod:`dqt_hw.sweep.grid` (schema and values) before it is expanded.
``evaluate(point)`` returns area, energy, cycles and BitOPs from :mod:`dqt_hw.cost` and the
overflow the reference model measures on the layer's codes (``dqt_hw.golden.cases.
layer_inputs``: ReLU-like activations, He-initialized weights, quantized at n bits, viewed
at the point's widths), next to the worst-case bound b_a + b_w + ceil(log2 N) + 1.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from functools import lru_cache

import numpy as np

from ..design import Design
from .grid import check_grid

__all__ = ["expand_grid", "point_key", "evaluate", "measure_layer", "DEFAULT_GRID"]

DEFAULT_GRID = {
    "network": ["resnet18_cifar10"],
    "layer": ["layer3.0.conv2"],
    "acc_width": [16, 18, 20, 22, 24, 32],
    "overflow": ["wrap", "saturate"],
    "mix": ["8x8", "6x6", "4x8", "4x4"],
    "rows": [8, 16],
    "cols": [8, 16],
    "tech": ["horowitz45"],
}

_DEFAULTS = {"n": Design().n, "seed": 0, "spatial": None}


def expand_grid(grid: dict, *, source: str = "sweep grid") -> list[dict]:
    """Every combination of the grid's value lists, in a fixed order (the grid checked
    first: :func:`dqt_hw.sweep.grid.check_grid`)."""
    grid = check_grid(grid, source=source)
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*grid.values())]


def point_key(point: dict) -> str:
    """A stable key of a point (its parameters, sorted): finished points are found by it."""
    text = json.dumps({**_DEFAULTS, **point}, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


@lru_cache(maxsize=32)
def _layer_codes(network: str, layer: str, n: int, seed: int, spatial):
    from ..cost.workload import load_network
    from ..golden.cases import LayerShape, layer_inputs

    g = load_network(network)
    names = [nd.name for nd in g.compute_layers()]
    if layer not in names:
        raise ValueError(f"{g.name} has no conv/fc layer {layer!r} (has {names[:5]}...)")
    info = g.layer_info(g[layer])
    C, H, W = info["in_shape"]
    O = info["out_shape"][0]
    k = info["kernel"]
    if spatial:
        H, W = min(H, int(spatial)), min(W, int(spatial))
    if info["op"] == "fc":
        x, w, *_ = layer_inputs(np.random.default_rng(seed),
                                LayerShape(layer, "dense_layer", C, O), n=n)
    else:
        x, w, *_ = layer_inputs(np.random.default_rng(seed),
                                LayerShape(layer, "conv_layer", C, O, H, W, k,
                                           groups=info["groups"]), n=n)
    return info, x, w


def measure_layer(network, layer, *, b_a, b_w, acc_width, overflow, n=Design().n, seed=0,
                  spatial=None) -> dict:
    """Run the layer's real codes through the bit-exact model at (b_a, b_w) with a W-bit
    accumulator: overflow rate, events, bits the data needs, and the worst-case bound.
    ValueError (from the model) when W cannot hold one product."""
    from .. import model

    info, x, w = _layer_codes(str(network), layer, n, seed, spatial)
    xv = model.nested_view(x, n=n, b=b_a, rounding="floor")
    wv = model.nested_view(w, n=n, b=b_w, rounding="floor")
    _, st = model.conv2d(xv, wv, stride=info["stride"], padding=info["padding"],
                         groups=info["groups"], acc_width=acc_width, overflow=overflow,
                         stats=True)
    N = info["taps"]
    return {"overflow_rate": st.overflow_rate, "overflow_events": st.events,
            "outputs_affected": st.outputs_affected, "bits_needed": st.bits_needed,
            "bound_bits": b_a + b_w + math.ceil(math.log2(N)) + 1, "taps": N}


_measure = lru_cache(maxsize=256)(measure_layer)  # the same for every storage of a point


def evaluate(point: dict) -> dict:
    """All figures of one point (a flat dict, ready for a table row)."""
    from ..cost.area import load_area_model
    from ..cost.bitops import static_bitops
    from ..cost.cycles import network_cycles
    from ..cost.energy import MemoryConfig, network_energy
    from ..design import Design
    from ..cost.workload import WidthMix, load_network

    p = {**_DEFAULTS, **point}
    g = load_network(p["network"])
    mix = WidthMix.parse(p["mix"]).check(g)
    from ..design.rules import depth_bits_for, min_acc_width

    # the tile supports the widths the mix uses; a W narrower than one of their products is
    # refused by the design (and by the model below): such a point gets the area, energy
    # and cycles of the narrowest valid tile, and is never chosen
    widths = tuple(sorted({b for nd in g.compute_layers() for b in mix.pair(nd.name)}))
    W = int(p["acc_width"])
    deep = depth_bits_for(max(info["taps"] for info in g.layer_table()))
    kw = dict(rows=int(p["rows"]), cols=int(p["cols"]), n=int(p["n"]), overflow=p["overflow"],
              depth_bits=max(Design().depth_bits, deep), widths=widths)
    try:
        tile = Design(acc_width=W, **kw)
    except ValueError as err:
        if "narrower than one product" not in str(err):
            raise
        tile = Design(acc_width=min_acc_width(int(p["n"]), widths=widths), **kw)
    area_cfg = tile
    memory = MemoryConfig(storage=point.get("storage", "master"))
    _, e = network_energy(g, tile, mix, tech=p["tech"], memory=memory)
    _, cyc = network_cycles(g, tile, mix)
    _, bitops = static_bitops(g, mix)
    b_a, b_w = mix.pair(p["layer"])
    try:
        meas = dict(_measure(p["network"], p["layer"], b_a=b_a, b_w=b_w,
                             acc_width=W, overflow=p["overflow"],
                             n=int(p["n"]), seed=int(p["seed"]), spatial=p["spatial"]))
        meas["valid"], meas["note"] = True, ""
    except ValueError as err:
        if "narrower than one product" not in str(err):
            raise
        # the contract refuses a W that cannot hold one product (docs/arithmetic.md 6.1):
        # not a design point, kept in the table but never chosen
        meas = {"overflow_rate": None, "overflow_events": None, "outputs_affected": None,
                "bits_needed": None, "bound_bits": None, "taps": None, "valid": False,
                "note": str(err)}
    area = load_area_model().area_um2(area_cfg)
    return {**{k: v for k, v in point.items()}, "key": point_key(point),
            "area_um2": area, "energy_pj": e["total_pj"], "energy_compute_pj": e["compute_pj"],
            "energy_sram_pj": e["sram_pj"], "energy_dram_pj": e["dram_pj"],
            "cycles": cyc["cycles"], "utilization_pct": cyc["overall_util_pct"],
            "bitops": bitops, "b_a": b_a, "b_w": b_w, **meas}
