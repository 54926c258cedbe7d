"""Workloads for the cost models: the layer table of a network and the widths it runs at.

The layers come from the one layer graph, :mod:`dqt_hw.net` (``Graph.layer_table``); this
module only adds what the cost models need on top of it: looking a network up by name or
reading it from a file, and width mixes (static per layer, or dynamic per input).

Network file (JSON): ``{"name": ..., "nodes": [{"name", "op", "inputs", ...attrs}, ...]}``
with the ops and attributes of :mod:`dqt_hw.net.graph`; the attributes may also sit under
``"attrs"`` (``dqt_hw.net.graph.graph_to_dicts`` form). It is the topology-only subset of
the network file, checked by the same node models (:mod:`dqt_hw.net.netfile`,
``schemas/network-topology.schema.json``); a whole network file's JSON is read too (its
graph). A width mix file is checked by :data:`WidthMixDoc` (``schemas/width-mix.schema.json``).
"""

from __future__ import annotations

import csv
import io
import math
import operator
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal, Union

import numpy as np
from pydantic import BeforeValidator, Field, StringConstraints, TypeAdapter, WithJsonSchema

from .. import net
from ..net.graph import MAX_NODES
from ..net.netfile import graph_of, read_network_json
from ..schema import (ARRAY_ERRORS, Strict, first_line, nearest, npy_header, read_bounded,
                      read_json, validate)
from ..spec import MAX_MASTER_BITS

__all__ = ["load_network", "WidthMix", "WidthMixDoc", "DynamicWidths", "parse_pair",
           "parse_width", "check_supported", "per_input_widths_schema", "width_mix_schema",
           "NETWORKS"]

NETWORKS = tuple(net.BUILDERS)  # as registered when this module was imported


def load_network(spec) -> "net.Graph":
    """A layer graph: a ``Graph`` as is, a builder name (``resnet18_cifar10``,
    ``resnet50_imagenet``) or the path of a JSON network file: a topology
    (:data:`dqt_hw.net.netfile.TopologyDoc`) or a whole network file's JSON (its graph;
    :data:`dqt_hw.net.netfile.NetworkDoc`), validated by the same node models."""
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
        raise ValueError(f"unknown network {s!r} (known: {known}, or a .json network file)"
                         f"{nearest(s, known)}")
    if not p.exists():
        raise ValueError(f"network file {s!r} does not exist (known networks: {known})")
    source = f"network file {s!r}"
    return graph_of(read_network_json(p, source=source), source=source, default_name=p.stem)


def parse_width(v, what):
    """One width b_a or b_w: an integer (or its decimal digits, as in a CSV cell) in
    [1, 16]; TypeError/ValueError otherwise (a fraction such as 4.7 is never truncated).
    The one check of a width that static mixes and per-input tables share."""
    if isinstance(v, str) and _DIGITS.match(v):
        v = int(v)
    elif isinstance(v, str):
        raise ValueError(f"{what} must be an integer width, not {v!r}")
    if isinstance(v, bool):
        raise TypeError(f"{what} must be an integer width, not {v!r}")
    try:
        v = operator.index(v)
    except TypeError:
        raise TypeError(f"{what} must be an integer width, not {v!r}") from None
    if not 1 <= v <= MAX_MASTER_BITS:
        raise ValueError(f"{what} must be a width in [1, {MAX_MASTER_BITS}], not {v}")
    return v


def check_supported(tile, b_a: int, b_w: int) -> None:
    """Refuse a width pair the tile does not build (its ``widths``)."""
    for what, b in (("b_a", b_a), ("b_w", b_w)):
        if b not in tile.widths:
            raise ValueError(f"{what} = {b} is not a width the tile supports {tile.widths}")


_DIGITS = re.compile(r"^\s*[0-9]{1,6}\s*$")
_PAIR = re.compile(r"^\s*(\d+)\s*(?:[x/,]\s*(\d+))?\s*$")


def parse_pair(text) -> tuple[int, int]:
    """``"4x8"`` / ``"4/8"`` / ``"4,8"`` -> (b_a=4, b_w=8); ``"4"`` -> (4, 4); a pair as is."""
    if isinstance(text, (tuple, list)):
        if len(text) != 2:
            raise ValueError(f"a width pair has two widths (b_a, b_w), not {text!r}")
        return parse_width(text[0], "b_a"), parse_width(text[1], "b_w")
    if isinstance(text, (int, float)) and not isinstance(text, bool):  # 4.7 is refused
        return parse_width(text, "b_a"), parse_width(text, "b_w")
    if not isinstance(text, str):
        raise TypeError(f"a width pair must be a string like '4x8' or a pair, not {text!r}")
    m = _PAIR.match(text)
    if not m:
        raise ValueError(f"cannot read the width pair {text!r} (write b_a x b_w, e.g. '4x8', or one width)")
    a = int(m.group(1))
    w = int(m.group(2)) if m.group(2) else a
    return parse_width(a, "b_a"), parse_width(w, "b_w")


MAX_MIX_BYTES = 1 << 20
"""Largest width mix file read (1 MiB)."""


def _mix_pair(v):
    try:
        return list(parse_pair(v))
    except TypeError as e:  # pydantic turns ValueErrors only into validation errors
        raise ValueError(str(e)) from None


_PAIR_SCHEMA = {"anyOf": [
    {"type": "string", "pattern": _PAIR.pattern, "description": "'b_a x b_w' ('4x8', "
     "'4/8', '4,8') or one width ('4')"},
    {"type": "integer", "minimum": 1, "maximum": MAX_MASTER_BITS, "description": "b_a = b_w"},
    {"type": "array", "minItems": 2, "maxItems": 2,
     "items": {"type": "integer", "minimum": 1, "maximum": MAX_MASTER_BITS},
     "description": "[b_a, b_w]"}]}

MixPair = Annotated[list[int], BeforeValidator(_mix_pair), WithJsonSchema(_PAIR_SCHEMA)]
"""One (b_a, b_w), read by :func:`parse_pair` as a static ``--widths`` is: each width an
integer in [1, 16] (``4.7`` refused, never truncated)."""

WidthMixDoc = Annotated[
    dict[Annotated[str, StringConstraints(min_length=1, max_length=256)], MixPair],
    Field(min_length=1, max_length=MAX_NODES + 1,
          description="layer name -> (b_a, b_w); '*' the default of the layers not named "
                      "(8x8 without it)")]
"""A width mix file (JSON): ``{"*": "4x4", "conv1": "8x8", "fc": [8, 8]}``."""


def width_mix_schema() -> dict:
    """The JSON Schema of a width mix file (``schemas/width-mix.schema.json``)."""
    return {**TypeAdapter(WidthMixDoc).json_schema(), "title": "dqt_hw width mix",
            "description": "A static width mix (dqt-hw cost --widths FILE, a sweep grid's "
                           "mix): layer name -> b_a x b_w, '*' the default. Each width is "
                           "checked like a static --widths (an integer in [1, 16], then one "
                           "the tile builds); every layer named must be a conv/fc layer of "
                           "the network."}


@dataclass(frozen=True)
class WidthMix:
    """A static width mix: (b_a, b_w) per layer name; ``default`` for the layers not named.

    ``WidthMix.parse("4x4")``: every layer at 4/4. A JSON file maps layer names to pairs,
    with ``"*"`` as the default: ``{"*": "4x4", "conv1": "8x8", "fc": [8, 8]}``
    (:data:`WidthMixDoc`).
    """

    default: tuple[int, int] = (8, 8)
    per_layer: tuple = ()  # ((name, (b_a, b_w)), ...)
    label: str = ""
    source: str = field(default="width mix", compare=False)

    def pair(self, layer: str) -> tuple[int, int]:
        return dict(self.per_layer).get(layer, self.default)

    def check(self, graph) -> "WidthMix":
        """Refuse a layer name that is not a conv/fc layer of ``graph``."""
        names = [nd.name for nd in graph.compute_layers()]
        unknown = [n for n, _ in self.per_layer if n not in names]
        if unknown:
            more = f" (and {len(unknown) - 1} more unknown layers)" if len(unknown) > 1 else ""
            raise ValueError(
                f"{self.source}: {unknown[0]!r:.80}: {graph.name} has no conv/fc layer "
                f"{unknown[0]!r:.80}{nearest(unknown[0], names)}{more}")
        return self

    @classmethod
    def parse(cls, spec, *, source: str = "width mix") -> "WidthMix":
        """A mix from ``"b_a x b_w"``, a mapping (:data:`WidthMixDoc`) or the path of a
        JSON mix file; one ValueError line naming ``source`` (or the file) otherwise."""
        if isinstance(spec, WidthMix):
            return spec
        if isinstance(spec, dict):
            return cls._of(spec, source, "per-layer")
        if isinstance(spec, (str, Path)) and str(spec).endswith(".json"):
            return cls._of(read_json(spec, what="width mix", max_bytes=MAX_MIX_BYTES),
                           f"width mix {str(spec)!r}", Path(spec).stem)
        a, w = parse_pair(spec)
        return cls((a, w), (), label=f"{a}x{w}")

    @classmethod
    def _of(cls, doc, source, label) -> "WidthMix":
        d = validate(WidthMixDoc, doc, source=source)
        per = tuple((k, tuple(v)) for k, v in d.items() if k != "*")
        return cls(tuple(d.get("*", (8, 8))), per, label=label, source=source)

    def describe(self) -> str:
        return self.label or f"{self.default[0]}x{self.default[1]}"


# ----------------------------------------------------------------------------- per input

MAX_INPUTS = 1_000_000
"""Most inputs of a per-input width table."""

MAX_LAYERS = 4096
"""Most layers of a per-input width table."""

MAX_ELEMENTS = 1 << 24
"""Most widths (inputs x layers x 2) of a per-input width table, checked before the
array is allocated (134 MB as int64)."""

MAX_CSV_BYTES = 1 << 28
"""Largest per-input width CSV file read (256 MiB)."""

MAX_ARRAY_BYTES = 8 * MAX_ELEMENTS + (1 << 16)
"""Largest .npy/.npz file read (MAX_ELEMENTS int64 and a header)."""


def _cell_width(v, info):
    try:
        return parse_width(v, info.field_name)
    except TypeError as e:  # pydantic turns ValueErrors only into validation errors
        raise ValueError(str(e)) from None


Width = Annotated[int, Field(ge=1, le=MAX_MASTER_BITS), BeforeValidator(_cell_width)]
"""One width b_a or b_w (:func:`parse_width`)."""


class WidthRow(Strict):
    """One row of a per-input width CSV: input ``input`` runs layer ``layer`` at
    (``b_a``, ``b_w``)."""

    input: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    layer: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    b_a: Width
    b_w: Width


class WidthArrayHeader(Strict):
    """The header of a per-input width array (.npy, or ``widths`` of an .npz): an integer
    array of shape (inputs, layers, 2)."""

    dtype: Literal["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
    shape: tuple[Annotated[int, Field(ge=1, le=MAX_INPUTS)],
                 Annotated[int, Field(ge=1, le=MAX_LAYERS)], Literal[2]]


def per_input_widths_schema() -> dict:
    """The JSON Schema of a per-input width table (``schemas/per-input-widths.schema.json``):
    the CSV's rows as objects, or the array's values as nested lists."""
    array = Annotated[list[Annotated[list[tuple[Width, Width]],
                                     Field(min_length=1, max_length=MAX_LAYERS)]],
                      Field(min_length=1, max_length=MAX_INPUTS,
                            description="the .npy array (or the .npz's 'widths'): "
                                        "[input][layer] = [b_a, b_w], layers in the "
                                        "network's order; an integer dtype"),
                      ]
    rows = Annotated[list[WidthRow], Field(min_length=1,
                                           description="the CSV's rows (columns input, "
                                                       "layer, b_a, b_w; a layer not listed "
                                                       "for an input runs at 8x8)")]
    doc = TypeAdapter(Union[array, rows]).json_schema()
    return {**doc, "title": "dqt_hw per-input widths",
            "description": "Per-input widths (the controller's choices): the array of a "
                           ".npy/.npz file or the rows of a CSV file (every cell a string "
                           "there; widths as decimal integers). Each width must also be one "
                           "the tile builds."}


@dataclass(frozen=True)
class DynamicWidths:
    """Per-input widths: ``widths[i, l] = (b_a, b_w)`` for input i at compute layer l (the
    controller's choice), layers in the graph's order.

    Files (docs/formats.md, ``schemas/per-input-widths.schema.json``): ``.npy`` / ``.npz``
    (an integer array ``widths`` of shape (inputs, layers, 2)) or CSV with columns
    ``input, layer, b_a, b_w`` (layer names; a layer not listed for an input runs at
    ``default``). Every width is checked by :func:`parse_width`, as a static mix's, and
    against the tile by :meth:`check` (:func:`check_supported`), as a static mix's.
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
        if w.dtype.kind not in "iu":
            raise TypeError(f"per-input widths must be integers, not {w.dtype} "
                            f"(a fraction is never truncated)")
        for (b_a, b_w), (i, layer) in self._pairs(w):
            try:
                parse_width(int(b_a), "b_a"), parse_width(int(b_w), "b_w")
            except ValueError as e:
                raise ValueError(f"per-input widths, input {i}, layer {layer!r}: {e}") from None
        object.__setattr__(self, "widths", w.astype(np.int64, copy=False))

    def _pairs(self, w=None):
        """((b_a, b_w), (first input, its layer)) of every distinct pair, in order."""
        w = np.asarray(self.widths if w is None else w).reshape(-1, 2)
        if w.size and -2**31 <= w.min() and w.max() < 2**31:  # one int64 key per pair: fast
            key = (w[:, 0].astype(np.int64) << 32) + (w[:, 1].astype(np.int64) + 2**31)
            _, first = np.unique(key, return_index=True)
            pairs = w[first]
        else:
            pairs, first = np.unique(w, axis=0, return_index=True)
        nl = len(self.layers)
        return [(tuple(p), (int(k) // nl, self.layers[int(k) % nl]))
                for p, k in sorted(zip(pairs.tolist(), first), key=lambda t: t[1])]

    def check(self, tile) -> "DynamicWidths":
        """Refuse a width the tile does not build (the check of a static mix)."""
        for (b_a, b_w), (i, layer) in self._pairs():
            try:
                check_supported(tile, b_a, b_w)
            except ValueError as e:
                raise ValueError(f"per-input widths, input {i}, layer {layer!r}: {e}") from None
        return self

    @property
    def inputs(self) -> int:
        return int(np.asarray(self.widths).shape[0])

    @classmethod
    def load(cls, path, graph, default=(8, 8), *, tile=None) -> "DynamicWidths":
        """The table of the file ``path`` for ``graph`` (and, given ``tile``, checked
        against it: :meth:`check`); one ValueError line naming the file otherwise."""
        p = Path(path)
        layers = tuple(nd.name for nd in graph.compute_layers())
        source = f"per-input widths file {str(path)!r}"
        if p.suffix not in (".csv", ".npy", ".npz"):
            raise ValueError(f"per-input widths file must be .csv, .npy or .npz, not {p.name!r}")
        if p.suffix == ".csv":
            arr = _read_csv(p, source, layers, graph.name, default)
        else:
            arr = _read_array(p, source, layers)
        try:
            dyn = cls(layers, arr)
            return dyn if tile is None else dyn.check(tile)
        except (TypeError, ValueError) as e:
            raise type(e)(f"{source}: {e}") from None


def _array_header(f, source, layers):
    """Check the .npy header at ``f`` (shape, dtype) before anything is allocated."""
    shape, dtype, _ = npy_header(f, source=source, what="a plain integer array")
    validate(WidthArrayHeader, {"dtype": dtype.name, "shape": shape}, source=source)
    if shape[1] != len(layers):
        raise ValueError(f"{source}: per-input widths must have shape (inputs, "
                         f"{len(layers)} layers, 2), not {shape}")
    if math.prod(shape) > MAX_ELEMENTS:
        raise ValueError(f"{source}: shape {shape} holds more than the "
                         f"{MAX_ELEMENTS} widths a table may")


def _read_array(p, source, layers):
    data = io.BytesIO(read_bounded(p, what="per-input widths", max_bytes=MAX_ARRAY_BYTES))
    try:
        if p.suffix == ".npy":
            _array_header(data, source, layers)
            data.seek(0)
            return np.lib.format.read_array(data, allow_pickle=False)
        with zipfile.ZipFile(data) as z:
            names = [n[:-4] if n.endswith(".npy") else n for n in z.namelist()]
            if names != ["widths"]:
                other = [n for n in names if n != "widths"] or [""]
                raise ValueError(f"{source} must hold one array 'widths', not {names}"
                                 f"{nearest(other[0], ['widths'])}")
            with z.open("widths.npy") as f:  # the header first: nothing allocated yet
                _array_header(f, source, layers)
            with z.open("widths.npy") as f:
                return np.lib.format.read_array(f, allow_pickle=False)
    except ARRAY_ERRORS as e:
        if isinstance(e, ValueError) and str(e).startswith(source):
            raise
        raise ValueError(f"{source} is not a plain integer array"
                         f"{' with a widths array' if p.suffix == '.npz' else ''}: "
                         f"{first_line(e)}") from None


def _read_csv(p, source, layers, net_name, default):
    data = read_bounded(p, what="per-input widths", max_bytes=MAX_CSV_BYTES)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{source}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    index = {name: j for j, name in enumerate(layers)}
    max_rows = MAX_ELEMENTS // 2
    try:
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{source}: empty; the CSV needs the columns input, layer, b_a, b_w")
        dups = sorted({h for h in header if header.count(h) > 1})
        if dups:
            raise ValueError(f"{source}: the header repeats the columns {dups}")
        rows, seen = [], set()
        for cells in reader:
            line = reader.line_num
            if not cells:
                continue
            if len(cells) != len(header):
                raise ValueError(f"{source}, line {line}: {len(cells)} cells, the header "
                                 f"has {len(header)}")
            if len(rows) >= max_rows:
                raise ValueError(f"{source}: more than the {max_rows} rows a table may have")
            r = validate(WidthRow, dict(zip(header, cells)), source=f"{source}, line {line}")
            if r.layer not in index:
                raise ValueError(f"{source}, line {line}: layer: {net_name} has no conv/fc "
                                 f"layer {r.layer!r}{nearest(r.layer, layers)}")
            if (r.input, r.layer) in seen:
                raise ValueError(f"{source}, line {line}: a second row for input {r.input!r} "
                                 f"at layer {r.layer!r}")
            seen.add((r.input, r.layer))
            rows.append(r)
    except csv.Error as e:
        raise ValueError(f"{source}: not a valid CSV file: {e}") from None
    if not rows:
        raise ValueError(f"{source}: no rows; the CSV needs the columns input, layer, b_a, b_w")
    ids = sorted({r.input for r in rows}, key=lambda s: (len(s), s))
    if len(ids) * len(layers) * 2 > MAX_ELEMENTS:
        raise ValueError(f"{source}: {len(ids)} inputs x {len(layers)} layers are more than "
                         f"the {MAX_ELEMENTS // 2} width pairs a table may hold")
    arr = np.empty((len(ids), len(layers), 2), np.int64)
    arr[:] = default
    pos = {i: k for k, i in enumerate(ids)}
    for r in rows:
        arr[pos[r.input], index[r.layer]] = (r.b_a, r.b_w)
    return arr
