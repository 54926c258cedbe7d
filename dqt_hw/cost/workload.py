"""Workloads for the cost models: the layer table of a network and the widths it runs at.

The layers come from the one layer graph, :mod:`dqt_hw.net` (``Graph.layer_table``); this
module only adds what the cost models need on top of it: looking a network up by name or
reading it from a file, and width mixes (static per layer, or dynamic per input).

Network file (JSON): ``{"name": ..., "nodes": [{"name", "op", "inputs", ...attrs}, ...]}``
with the ops and attributes of :mod:`dqt_hw.net.graph` (the graph validates it); the
attributes may also sit under ``"attrs"`` (``dqt_hw.net.graph.graph_to_dicts`` form).
"""

from __future__ import annotations

import csv
import json
import operator
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import net

__all__ = ["load_network", "WidthMix", "DynamicWidths", "parse_pair", "NETWORKS"]

NETWORKS = tuple(net.BUILDERS)  # as registered when this module was imported


def load_network(spec) -> "net.Graph":
    """A layer graph: a ``Graph`` as is, a builder name (``resnet18_cifar10``,
    ``resnet50_imagenet``) or the path of a JSON network file."""
    if isinstance(spec, net.Graph):
        return spec
    if not isinstance(spec, (str, Path)):
        raise TypeError(f"network must be a name, a file path or a Graph, not {spec!r}")
    s = str(spec)
    if s in net.BUILDERS:
        return net.BUILDERS[s]()
    known = tuple(net.BUILDERS)
    p = Path(s)
    if not p.suffix:
        raise ValueError(f"unknown network {s!r} (known: {known}, or a .json network file)")
    if not p.exists():
        raise ValueError(f"network file {s!r} does not exist (known networks: {known})")
    try:
        doc = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"network file {s!r} is not valid JSON: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("nodes"), list):
        raise ValueError(f"network file {s!r} must hold an object with a 'nodes' list")
    nodes = []
    for i, d in enumerate(doc["nodes"]):
        if not isinstance(d, dict) or "name" not in d or "op" not in d:
            raise ValueError(f"network file {s!r}: node {i} needs 'name' and 'op', not {d!r}")
        attrs = {k: v for k, v in d.items() if k not in ("name", "op", "inputs", "attrs")}
        if isinstance(d.get("attrs"), dict):
            attrs.update(d["attrs"])
        nodes.append(net.Node(d["name"], d["op"], tuple(d.get("inputs", ())), attrs))
    return net.Graph(nodes, name=doc.get("name", p.stem))


def _width(v, what):
    if isinstance(v, bool):
        raise TypeError(f"{what} must be an integer width, not {v!r}")
    try:
        v = operator.index(v)
    except TypeError:
        raise TypeError(f"{what} must be an integer width, not {v!r}") from None
    if not 1 <= v <= 16:
        raise ValueError(f"{what} must be a width in [1, 16], not {v}")
    return v


_PAIR = re.compile(r"^\s*(\d+)\s*(?:[x/,]\s*(\d+))?\s*$")


def parse_pair(text) -> tuple[int, int]:
    """``"4x8"`` / ``"4/8"`` / ``"4,8"`` -> (b_a=4, b_w=8); ``"4"`` -> (4, 4); a pair as is."""
    if isinstance(text, (tuple, list)):
        if len(text) != 2:
            raise ValueError(f"a width pair has two widths (b_a, b_w), not {text!r}")
        return _width(text[0], "b_a"), _width(text[1], "b_w")
    if isinstance(text, int) and not isinstance(text, bool):
        return _width(text, "b_a"), _width(text, "b_w")
    if not isinstance(text, str):
        raise TypeError(f"a width pair must be a string like '4x8' or a pair, not {text!r}")
    m = _PAIR.match(text)
    if not m:
        raise ValueError(f"cannot read the width pair {text!r} (write b_a x b_w, e.g. '4x8', or one width)")
    a = int(m.group(1))
    w = int(m.group(2)) if m.group(2) else a
    return _width(a, "b_a"), _width(w, "b_w")


@dataclass(frozen=True)
class WidthMix:
    """A static width mix: (b_a, b_w) per layer name; ``default`` for the layers not named.

    ``WidthMix.parse("4x4")``: every layer at 4/4. A JSON file maps layer names to pairs,
    with ``"*"`` as the default: ``{"*": "4x4", "conv1": "8x8", "fc": [8, 8]}``.
    """

    default: tuple[int, int] = (8, 8)
    per_layer: tuple = ()  # ((name, (b_a, b_w)), ...)
    label: str = ""

    def pair(self, layer: str) -> tuple[int, int]:
        return dict(self.per_layer).get(layer, self.default)

    def check(self, graph) -> "WidthMix":
        names = {nd.name for nd in graph.compute_layers()}
        unknown = [n for n, _ in self.per_layer if n not in names]
        if unknown:
            raise ValueError(
                f"width mix names layers that {graph.name} does not have: {unknown} "
                f"(its conv/fc layers: {sorted(names)[:6]}...)"
            )
        return self

    @classmethod
    def parse(cls, spec) -> "WidthMix":
        if isinstance(spec, WidthMix):
            return spec
        if isinstance(spec, dict):
            per, default = [], (8, 8)
            for k, v in spec.items():
                if k == "*":
                    default = parse_pair(v)
                else:
                    per.append((str(k), parse_pair(v)))
            return cls(default, tuple(per), label="per-layer")
        if isinstance(spec, (str, Path)) and str(spec).endswith(".json"):
            p = Path(spec)
            if not p.exists():
                raise ValueError(f"width mix file {str(spec)!r} does not exist")
            doc = json.loads(p.read_text())
            if not isinstance(doc, dict):
                raise ValueError(f"width mix file {str(spec)!r} must map layer names to pairs")
            mix = cls.parse(doc)
            return WidthMix(mix.default, mix.per_layer, label=p.stem)
        a, w = parse_pair(spec)
        return cls((a, w), (), label=f"{a}x{w}")

    def describe(self) -> str:
        return self.label or f"{self.default[0]}x{self.default[1]}"


@dataclass(frozen=True)
class DynamicWidths:
    """Per-input widths: ``widths[i, l] = (b_a, b_w)`` for input i at compute layer l (the
    controller's choice), layers in the graph's order.

    Files: ``.npy`` / ``.npz`` (array ``widths`` of shape (inputs, layers, 2)) or CSV with
    columns ``input, layer, b_a, b_w`` (layer names; a layer not listed for an input runs
    at ``default``).
    """

    layers: tuple
    widths: np.ndarray  # (inputs, layers, 2) int

    def __post_init__(self):
        w = np.asarray(self.widths)
        if w.ndim != 3 or w.shape[2] != 2 or w.shape[1] != len(self.layers):
            raise ValueError(
                f"per-input widths must have shape (inputs, {len(self.layers)} layers, 2), "
                f"not {w.shape}")
        if w.shape[0] == 0:
            raise ValueError("per-input widths need at least one input")
        if w.min() < 1 or w.max() > 16:
            raise ValueError(f"per-input widths must lie in [1, 16], not [{w.min()}, {w.max()}]")

    @property
    def inputs(self) -> int:
        return int(np.asarray(self.widths).shape[0])

    @classmethod
    def load(cls, path, graph, default=(8, 8)) -> "DynamicWidths":
        p = Path(path)
        layers = tuple(nd.name for nd in graph.compute_layers())
        if not p.exists():
            raise ValueError(f"per-input widths file {str(path)!r} does not exist")
        if p.suffix in (".npy", ".npz"):
            try:
                arr = np.load(p, allow_pickle=False)
                if p.suffix == ".npz":
                    arr = arr["widths"]
            except (ValueError, KeyError, OSError, EOFError) as e:
                raise ValueError(f"per-input widths file {str(path)!r} is not a plain "
                                 f"integer array{' with a widths array' if p.suffix == '.npz' else ''}: "
                                 f"{e}") from None
            return cls(layers, np.asarray(arr, np.int64))
        if p.suffix != ".csv":
            raise ValueError(f"per-input widths file must be .csv, .npy or .npz, not {p.name!r}")
        rows = list(csv.DictReader(p.open()))
        need = {"input", "layer", "b_a", "b_w"}
        if not rows or not need <= set(rows[0]):
            raise ValueError(f"{p.name}: CSV needs the columns {sorted(need)}")
        ids = sorted({r["input"] for r in rows}, key=lambda s: (len(s), s))
        index = {name: j for j, name in enumerate(layers)}
        arr = np.empty((len(ids), len(layers), 2), np.int64)
        arr[:] = default
        pos = {i: k for k, i in enumerate(ids)}
        for r in rows:
            if r["layer"] not in index:
                raise ValueError(f"{p.name}: unknown layer {r['layer']!r} for {graph.name}")
            arr[pos[r["input"]], index[r["layer"]]] = (int(r["b_a"]), int(r["b_w"]))
        return cls(layers, arr)
