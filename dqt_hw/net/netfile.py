"""The network file's JSON, described by strict pydantic models (docs/networks.md,
``schemas/network.schema.json``), and the topology-only network JSON of the cost models
(``schemas/network-topology.schema.json``), validated by the same node models.

Every op has its own attribute set (:data:`ATTRS`): an unknown attribute (``dilation``)
or a misspelt one is refused with the nearest valid key suggested; types are strict
(``3.0`` is not a kernel, ``"true"`` not a flag); channels, sizes, kernels, strides and
paddings are bounded (:mod:`dqt_hw.net.graph`: ``MAX_CHANNELS``, ``MAX_SPATIAL``, and
when the graph is built, the padding below the kernel, the kernel within the padded
input, every node's output and every layer's weights bounded), so nothing a file
describes is huge. A failure is one ValueError line naming the file, the node and the
field. This module reads no tensors and needs no model (the cost models use it).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import (BeforeValidator, Field, PlainValidator, StringConstraints, TypeAdapter, WithJsonSchema,
                      create_model, field_validator)

from ..design.rules import VIEW_ROUNDINGS
from ..schema import Strict, nearest, parse_json, read_bounded, validate
from ..spec import (MAX_CONST_BITS, MAX_MASTER_BITS, MAX_MODEL_ACC_WIDTH, MIN_MASTER_BITS,
                    OVERFLOW_MODES, ROUNDINGS)
from .graph import MAX_CHANNELS, MAX_CONCAT_INPUTS, MAX_NODES, MAX_SPATIAL, OPS, Graph, Node

__all__ = ["FORMAT_TAG", "FORMAT_VERSION", "VERSIONS", "ATTRS", "NetworkDoc", "NetworkDocV1",
           "TopologyDoc", "check_network_doc", "read_network_json", "graph_of",
           "topology_graph", "network_schema", "network_topology_schema", "MAX_NETWORK_BYTES"]

FORMAT_TAG = "dqt_hw.net"
FORMAT_VERSION = 2
"""Version of the network file format this code writes (it reads 1 too: version 2 names
the accumulator width ``acc_width``, as every part of dqt_hw does; version 1 said
``acc_bits``)."""

VERSIONS = (1, FORMAT_VERSION)

MAX_NETWORK_BYTES = 1 << 22
"""Largest network JSON read (4 MiB; the shipped one has 12 KiB)."""

MAX_NAME = 256
"""Longest node name."""

_Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME)]
_Channels = Annotated[int, Field(ge=1, le=MAX_CHANNELS)]
_Size = Annotated[int, Field(ge=1, le=MAX_SPATIAL)]
_Width = Annotated[int, Field(ge=1, le=MAX_MASTER_BITS)]
_Widths = Annotated[list[_Width], Field(min_length=1, max_length=MAX_MASTER_BITS)]


# ----------------------------------------------------------------------------- nodes


def _chw(v):
    if type(v) is list:  # a JSON array; strict tuples take no list
        if len(v) != 3:
            raise ValueError("must be [C, H, W], three sizes")
        return tuple(v)
    return v


class InputAttrs(Strict):
    shape: Annotated[tuple[_Channels, _Size, _Size], BeforeValidator(_chw),
                     Field(description="(C, H, W) of one input")]


class ConvAttrs(Strict):
    out_channels: _Channels
    kernel: _Size = Field(description="k of the k x k kernel")
    stride: _Size = 1
    padding: Annotated[int, Field(ge=0, lt=MAX_SPATIAL,
                                  description="below the kernel (checked with the graph)")] = 0
    groups: _Channels = Field(default=1, description="dividing the input and output channels")
    relu: bool = False


class FcAttrs(Strict):
    out_features: _Channels
    relu: bool = False


class AddAttrs(Strict):
    relu: bool = False


class PoolAttrs(Strict):
    kernel: _Size
    stride: _Size = Field(default=None, description="default: the kernel")
    padding: Annotated[int, Field(ge=0, lt=MAX_SPATIAL)] = 0


class FlattenAttrs(Strict):
    pass


class ConcatAttrs(Strict):
    pass


ATTRS = {"input": InputAttrs, "conv": ConvAttrs, "fc": FcAttrs, "add": AddAttrs,
         "maxpool": PoolAttrs, "avgpool": PoolAttrs, "flatten": FlattenAttrs,
         "concat": ConcatAttrs}
"""The attributes of each op (its model): the one list both network JSON forms use."""

_INPUTS = {"input": (0, 0), "add": (2, 2), "concat": (2, MAX_CONCAT_INPUTS)}


class FormatDoc(Strict):
    """A tensor format: master width n, minimum m, step delta (docs/arithmetic.md 1)."""

    n: Annotated[int, Field(ge=MIN_MASTER_BITS, le=MAX_MASTER_BITS)]
    signed: bool = False
    m: Annotated[float, Field(allow_inf_nan=False)]
    delta: Annotated[float, Field(gt=0, allow_inf_nan=False)]


def _node_model(op: str, *, topology: bool):
    """The model of one node of ``op``: in the network file (attributes under ``attrs``,
    the output format, the candidate widths) or in the topology form (attributes flat or
    under ``attrs``)."""
    k, most = _INPUTS.get(op, (1, 1))
    inputs = Annotated[list[_Name], Field(min_length=k, max_length=most)]
    fields = {"name": (_Name, ...), "op": (Literal[op], ...),
              "inputs": (inputs, [] if k == 0 else ...)}
    attrs = ATTRS[op]
    if topology:
        optional = {}
        for key, f in attrs.model_fields.items():  # optional here: flat or under attrs
            flat = copy.copy(f)
            flat.default, flat.default_factory = None, None
            optional[key] = (f.annotation, flat)
        fields["attrs"] = (create_model(f"Topology{attrs.__name__}", __base__=Strict,
                                        **optional), None)
        fields.update(optional)
    else:
        needs = any(f.is_required() for f in attrs.model_fields.values())
        fields["attrs"] = (attrs, ... if needs else None)
        if op in ("input", "conv", "fc", "add", "concat"):
            fields["format"] = (FormatDoc, Field(description="the node's output format"))
        if op in ("conv", "fc"):
            fields["widths"] = (_Widths, Field(description="candidate widths, ascending"))
    name = ("Topology" if topology else "") + op.capitalize() + "Node"
    return create_model(name, __base__=Strict, **fields)


NODES = {op: _node_model(op, topology=False) for op in OPS}
TOPOLOGY_NODES = {op: _node_model(op, topology=True) for op in OPS}


def _union(models):
    return Annotated[Union[tuple(dict.fromkeys(models.values()))],
                     Field(discriminator="op")]


def check_node(d, i: int, *, source: str, topology: bool = False):
    """Node ``i`` of a document (a dict) as its op's model; one ValueError line naming
    the node otherwise."""
    if not isinstance(d, dict):
        raise ValueError(f"{source}: nodes[{i}]: must be an object with name, op, inputs, "
                         f"not {d!r:.60}")
    name = d.get("name")
    where = f"{source}: layer {name!r:.80}" if isinstance(name, str) and name else \
        f"{source}: nodes[{i}]"
    op = d.get("op")
    models = TOPOLOGY_NODES if topology else NODES
    if not isinstance(op, str) or op not in models:
        hint = nearest(op, OPS) if isinstance(op, str) else ""
        raise ValueError(f"{where}: op: {op!r:.60} is not an op{hint}; ops: {', '.join(OPS)}")
    return validate(models[op], d, source=where)


# ----------------------------------------------------------------------------- the file


def _opt(tp, what):
    """An optional key: absent means the default (of ``dqt_hw.net.Arith``); null is
    refused."""
    return (tp, Field(default=None, description=f"{what} (default: Arith's)"))


ArithDoc = create_model(
    "ArithDoc", __base__=Strict,
    n=_opt(Annotated[int, Field(ge=MIN_MASTER_BITS, le=MAX_MASTER_BITS)], "master width n"),
    view_rounding=_opt(Literal[VIEW_ROUNDINGS], "nested view rounding"),
    rounding=_opt(Literal[ROUNDINGS], "rounding of requantization and the residual add"),
    pool_rounding=_opt(Literal[ROUNDINGS], "rounding of average pooling"),
    acc_width=_opt(Annotated[int, Field(ge=2, le=MAX_MODEL_ACC_WIDTH)],
                   "accumulator width W (the model takes up to 48)"),
    overflow=_opt(Literal[OVERFLOW_MODES], "accumulator overflow mode"),
    const_bits=_opt(Annotated[int, Field(ge=2, le=MAX_CONST_BITS)], "width of every K"),
)
"""The ``arith`` table (version 2)."""

ArithDocV1 = create_model(
    "ArithDocV1", __base__=Strict,
    **{("acc_bits" if k == "acc_width" else k): (f.annotation, Field(default=None))
       for k, f in ArithDoc.model_fields.items()})
"""The ``arith`` table of version 1 (``acc_bits`` for ``acc_width``)."""

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class TensorsDoc(Strict):
    """The tensors' ``.npz``: a file beside the network file, and its SHA-256."""

    file: Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME)] = Field(
        description="a file name beside the network file (no directory part)")
    sha256: str = Field(description="the SHA-256 of the .npz, 64 lowercase hex digits",
                        json_schema_extra={"pattern": _SHA256.pattern})

    @field_validator("file")
    @classmethod
    def _beside(cls, v):
        if v in (".", "..") or Path(v).name != v or "\\" in v or "/" in v:
            raise ValueError("must name a file beside the network file")
        return v

    @field_validator("sha256")
    @classmethod
    def _digest(cls, v):
        if not _SHA256.fullmatch(v):
            raise ValueError("must be the tensors' SHA-256 (64 lowercase hex digits)")
        return v


class ControllerLayerDoc(Strict):
    name: _Name = Field(description="the tensors' prefix (<name>/w, ...)")
    format: FormatDoc


def _is_width(v) -> bool:
    return type(v) is int and 1 <= v <= MAX_MASTER_BITS


def _static_width(v):
    if _is_width(v) or (type(v) is list and len(v) == 2 and all(map(_is_width, v))):
        return v
    raise ValueError(f"must be a width in [1, {MAX_MASTER_BITS}] or a pair [b_a, b_w] of them")


_WIDTH_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_MASTER_BITS}
_StaticWidth = Annotated[Any, PlainValidator(_static_width), WithJsonSchema(
    {"anyOf": [_WIDTH_SCHEMA, {"type": "array", "items": _WIDTH_SCHEMA, "minItems": 2,
                               "maxItems": 2}]})]


class ControllerDoc(Strict):
    """The per-input width controller (docs/networks.md, "Controller")."""

    features: _Name = Field(description="the node whose average-pooled codes it reads")
    layers: Annotated[list[_Name], Field(min_length=1, max_length=MAX_NODES)]
    widths: _Widths
    static_widths: Annotated[dict[_Name, _StaticWidth], Field(max_length=MAX_NODES)] = {}
    fc1: ControllerLayerDoc
    fc2: ControllerLayerDoc


def _doc_model(version: int):
    arith = ArithDoc if version == FORMAT_VERSION else ArithDocV1
    return create_model(
        f"NetworkDocV{version}" if version != FORMAT_VERSION else "NetworkDoc",
        __base__=Strict,
        format=(Literal[FORMAT_TAG], ...),
        version=(Literal[version], ...),
        contract=(Optional[Annotated[str, StringConstraints(max_length=32)]], None),
        name=(_Name, Field(default=None, description="default: the file's stem")),
        arith=(arith, Field(default_factory=arith)),
        nodes=(Annotated[list[_union(NODES)], Field(min_length=1, max_length=MAX_NODES)], ...),
        controller=(Optional[ControllerDoc], None),
        tensors=(TensorsDoc, ...),
        provenance=(dict, Field(default={}, description="free-form: command, seed, ...")),
    )


NetworkDoc = _doc_model(FORMAT_VERSION)
"""A network file's JSON (version 2)."""

NetworkDocV1 = _doc_model(1)


def check_network_doc(doc, *, source: str):
    """The parsed network JSON ``doc`` as a :data:`NetworkDoc` (or v1); the format tag and
    version first, then node by node (so a message names the node), then the whole."""
    if not isinstance(doc, dict):
        raise ValueError(f"{source}: must be a JSON object, not {type(doc).__name__}")
    tag = doc.get("format")
    if tag != FORMAT_TAG:
        raise ValueError(f"{source}: format tag {tag!r:.60} is not {FORMAT_TAG!r}")
    version = doc.get("version")
    if isinstance(version, bool) or version not in VERSIONS:
        raise ValueError(f"{source}: format version {version!r:.60} is not supported (this "
                         f"dqt_hw reads versions 1 and {FORMAT_VERSION})")
    _check_nodes(doc.get("nodes"), source, topology=False)
    return validate(NetworkDoc if version == FORMAT_VERSION else NetworkDocV1, doc,
                    source=source)


def _check_nodes(nodes, source, *, topology):
    if isinstance(nodes, list) and len(nodes) <= MAX_NODES:
        for i, d in enumerate(nodes):
            check_node(d, i, source=source, topology=topology)


def node_attrs(nd) -> dict:
    """The attributes a node model gives (only those the file has)."""
    attrs = getattr(nd, "attrs", None)
    out = {k: getattr(attrs, k) for k in attrs.model_fields_set} if attrs is not None else {}
    for key in ATTRS[nd.op].model_fields:  # the topology form's flat attributes
        if key in nd.model_fields_set and key in type(nd).model_fields and key != "attrs":
            out[key] = getattr(nd, key)
    return out


def _graph(nodes, name, source) -> Graph:
    try:
        return Graph([Node(nd.name, nd.op, tuple(nd.inputs), node_attrs(nd)) for nd in nodes],
                     name=name)
    except (TypeError, ValueError) as e:
        raise type(e)(f"{source}: {e}") from None


# ----------------------------------------------------------------------------- topology


class _TopologyBase(Strict):
    name: _Name = Field(default=None, description="default: the file's stem")


TopologyDoc = create_model(
    "TopologyDoc", __base__=_TopologyBase,
    nodes=(Annotated[list[_union(TOPOLOGY_NODES)], Field(min_length=1, max_length=MAX_NODES)],
           ...))
"""The topology-only network JSON (``dqt-hw cost --net``): ``name`` and ``nodes`` with
the attributes flat in the node or under ``attrs`` (the graph form), never both."""


def topology_graph(doc, *, source: str, default_name: str) -> Graph:
    """The graph of a parsed topology document (:data:`TopologyDoc`)."""
    if isinstance(doc, dict):
        _check_nodes(doc.get("nodes"), source, topology=True)
    d = validate(TopologyDoc, doc, source=source)
    for nd in d.nodes:
        flat = set(nd.model_fields_set) & set(ATTRS[nd.op].model_fields)
        if nd.attrs is not None and flat:
            raise ValueError(f"{source}: layer {nd.name!r}: attributes {sorted(flat)} given "
                             f"flat and 'attrs' given too (one form per node)")
    return _graph(d.nodes, d.name or default_name, source)


def read_network_json(path, *, source: str):
    """The parsed JSON of a network file (either form), its size bounded."""
    return parse_json(read_bounded(path, what="network", max_bytes=MAX_NETWORK_BYTES),
                      source=source)


def graph_of(doc, *, source: str, default_name: str) -> Graph:
    """The graph of a parsed network JSON of either form: a network file (``format``
    ``dqt_hw.net``: :func:`check_network_doc`, the tensors not read) or a topology."""
    if isinstance(doc, dict) and "format" in doc:
        d = check_network_doc(doc, source=source)
        return _graph(d.nodes, d.name or default_name, source)
    return topology_graph(doc, source=source, default_name=default_name)


# ----------------------------------------------------------------------------- schemas


def _no_null_defaults(doc):
    for d in [doc, *doc.get("$defs", {}).values()]:
        for prop in d.get("properties", {}).values():
            if "default" in prop and prop["default"] is None:
                del prop["default"]
    return doc


def network_schema() -> dict:
    """The JSON Schema of a network file's JSON (``schemas/network.schema.json``)."""
    doc = _no_null_defaults(TypeAdapter(NetworkDoc).json_schema())
    return {**doc, "title": "dqt_hw network",
            "description": "A network file's JSON (format version 2; docs/networks.md), "
                           "beside its .npz of tensors. The graph's rules (shapes, padding "
                           "below the kernel, sizes) and the tensors are checked by "
                           "dqt_hw.net.load."}


def network_topology_schema() -> dict:
    """The JSON Schema of a topology-only network JSON
    (``schemas/network-topology.schema.json``)."""
    doc = _no_null_defaults(TypeAdapter(TopologyDoc).json_schema())
    return {**doc, "title": "dqt_hw network topology",
            "description": "A layer graph for the cost models (dqt-hw cost --net): the "
                           "nodes of a network file without formats, widths or tensors; "
                           "attributes flat in the node or under attrs. A network file "
                           "is read there too."}
