"""Sweep grids: the JSON document ``{name: [values]}`` that ``dqt-hw sweep --grid`` reads.

A grid is checked in two steps before any point runs (and before any output is written):

1. :func:`check_grid`: the document against :class:`SweepGrid` (published as
   ``schemas/sweep-grid.schema.json``; docs/formats.md): the known keys only (an unknown one
   is refused with the nearest suggested: ``acc_bits`` -> ``acc_width``), every value list
   non-empty and of the right type and range, and the number of points bounded before the
   grid is expanded;
2. :func:`check_grid_values`: what the values name exists and fits: every network loads,
   every layer is a conv/fc layer of every network, every width mix reads and fits every
   network and master width n, every technology table loads.

Either step refuses with one ValueError line naming the file (or ``sweep grid``), the key
and the value.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal, Optional

from pydantic import Field, StringConstraints

from ..cost.energy import STORAGE
from ..design import rules as R
from ..schema import Strict, nearest, read_json, validate
from ..spec import MAX_MASTER_BITS, MIN_MASTER_BITS

__all__ = ["SweepGrid", "check_grid", "check_grid_values", "load_grid", "sweep_grid_schema",
           "MAX_POINTS", "MAX_VALUES", "MAX_SPATIAL"]

MAX_VALUES = 256
"""Most values of one grid key."""

MAX_POINTS = 100_000
"""Most points of a grid (the product of its value counts), checked before expanding."""

MAX_SPATIAL = 4096
"""Largest spatial crop of the measured layer."""

_Text = Annotated[str, StringConstraints(min_length=1, max_length=4096)]


def _values(item, what: str):
    return Annotated[list[item], Field(min_length=1, max_length=MAX_VALUES, description=what)]


class SweepGrid(Strict):
    """A sweep grid: each key a non-empty list of values; the points are every
    combination of them (in the document's key order)."""

    network: _values(_Text, "resnet18_cifar10 | resnet50_imagenet | a JSON network file")
    layer: _values(_Text, "the conv/fc layer whose real codes the bit-exact model runs")
    acc_width: _values(Annotated[int, Field(ge=2, le=R.MAX_ACC_WIDTH)],
                       "accumulator width W (a W that cannot hold one product is kept as "
                       "an invalid point, never chosen)")
    overflow: _values(Literal[R.HW_OVERFLOW_MODES], "accumulator overflow mode")
    mix: _values(_Text, "static width mix: 'b_a x b_w' (e.g. '4x8') or a JSON mix file")
    rows: _values(Annotated[int, Field(ge=1, le=R.MAX_DIM)], "R, rows of the PE array")
    cols: _values(Annotated[int, Field(ge=1, le=R.MAX_DIM)], "C, columns of the PE array")
    tech: _values(_Text, "technology table name or JSON file")
    # optional keys: absent means the default; null is not a list of values
    n: _values(Annotated[int, Field(ge=MIN_MASTER_BITS, le=MAX_MASTER_BITS)],
               "master width n (default: the default design's)") = None
    seed: _values(Annotated[int, Field(ge=0, lt=2**32)],
                  "seed of the measured layer's data (default 0)") = None
    spatial: _values(Optional[Annotated[int, Field(ge=1, le=MAX_SPATIAL)]],
                     "crop of the measured layer's input height/width "
                     "(null: none, the default)") = None
    storage: _values(Literal[STORAGE],
                     "how tensors are stored: master (the default), packed or planes "
                     "(bit-planes, docs/arithmetic.md 2.3)") = None


def sweep_grid_schema() -> dict:
    """The JSON Schema of a sweep grid (``schemas/sweep-grid.schema.json``)."""
    return {**SweepGrid.model_json_schema(), "title": "dqt_hw sweep grid"}


def check_grid(grid, *, source: str = "sweep grid") -> dict:
    """The grid ``grid`` (a mapping) checked against :class:`SweepGrid`: the same mapping
    of lists, in its key order; one ValueError line otherwise."""
    doc = validate(SweepGrid, grid, source=source)
    out = {k: list(getattr(doc, k)) for k in grid}
    count = math.prod(len(v) for v in out.values())
    if count > MAX_POINTS:
        sizes = " x ".join(f"{len(v)} {k}" for k, v in out.items() if len(v) > 1)
        raise ValueError(f"{source}: {sizes} make {count} points, more than the "
                         f"{MAX_POINTS} a sweep takes")
    return out


def load_grid(path) -> dict:
    """The checked grid of the JSON file ``path`` (:func:`check_grid`)."""
    return check_grid(read_json(path, what="sweep grid"), source=f"sweep grid {str(path)!r}")


def check_grid_values(grid: dict, *, source: str = "sweep grid") -> None:
    """Refuse a checked grid whose values name what does not exist or does not fit (see
    the module's docstring), before any point runs."""
    from ..cost.tech import load_tech
    from ..cost.workload import WidthMix, load_network
    from ..design import Design

    def refuse(key, value, err):
        raise ValueError(f"{source}: {key}: {value!r}: {err}") from None

    for tech in grid["tech"]:
        try:
            load_tech(tech)
        except (TypeError, ValueError) as e:
            refuse("tech", tech, e)
    for net in grid["network"]:
        try:
            g = load_network(net)
        except (TypeError, ValueError) as e:
            refuse("network", net, e)
        layers = [nd.name for nd in g.compute_layers()]
        for layer in grid["layer"]:
            if layer not in layers:
                refuse("layer", layer, f"{g.name} has no conv/fc layer {layer!r}"
                                       f"{nearest(layer, layers)}")
        for mix in grid["mix"]:
            try:
                m = WidthMix.parse(mix).check(g)
                widths = tuple(sorted({b for name in layers for b in m.pair(name)}))
                for n in grid.get("n") or [Design().n]:
                    Design(n=n, widths=widths, acc_width=R.MAX_ACC_WIDTH)
            except (TypeError, ValueError) as e:
                refuse("mix", mix, e)
