"""The layer graph: one description of a network that the executor, the cost models and
the sweeps all read.

A ``Graph`` is an ordered list of ``Node``s in topological order. Each node names its
inputs; shapes are inferred and checked when the graph is built, so a dangling edge or a
shape mismatch is refused with the node's name. Batch norm is folded into a layer's
constants and ReLU/PACT is the requantization clamp, so they are attributes, not nodes.

Ops:

| op | attrs | output shape (C, H, W) |
| --- | --- | --- |
| ``input`` | shape | shape |
| ``conv`` | out_channels, kernel, stride, padding, groups, relu | conv arithmetic |
| ``fc`` | out_features, relu | (out_features, 1, 1) |
| ``add`` | relu (residual add, the DQT (+) operator) | both inputs' shape |
| ``maxpool`` / ``avgpool`` | kernel, stride, padding | pooling arithmetic |
| ``flatten`` | — | (C*H*W, 1, 1) |
| ``concat`` | — (2 to ``MAX_CONCAT_INPUTS`` inputs along the channels) | (sum of C, H, W) |
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field

OPS = ("input", "conv", "fc", "add", "maxpool", "avgpool", "flatten", "concat")
COMPUTE_OPS = ("conv", "fc")

MAX_CHANNELS = 1 << 16
"""Most channels of a tensor (input C, out_channels, out_features, groups)."""

MAX_SPATIAL = 1 << 13
"""Largest height or width of an input, and largest kernel and stride."""

MAX_ACTIVATIONS = 1 << 24
"""Most elements (C*H*W) of one node's output: a graph that needs more is refused when
it is built, so nothing it describes is huge (ResNet-50's largest: 802816)."""

MAX_WEIGHTS = 1 << 26
"""Most weights of one conv/fc layer (ResNet-50's largest: 2.4 M)."""

MAX_NODES = 4096
"""Most nodes of a graph."""

MAX_CONCAT_INPUTS = 64
"""Most inputs of one concat node."""


@dataclass(frozen=True)
class Node:
    """One layer. ``shape`` is its output (C, H, W), filled in by ``Graph``."""

    name: str
    op: str
    inputs: tuple = ()
    attrs: dict = field(default_factory=dict)
    shape: tuple | None = None

    def attr(self, key, default=None):
        return self.attrs.get(key, default)


def _pos_int(node, key, v, minimum=1, maximum=None):
    if isinstance(v, bool):
        raise TypeError(f"layer {node!r}: {key} must be an integer, not {v!r}")
    try:
        v = operator.index(v)
    except TypeError:
        raise TypeError(f"layer {node!r}: {key} must be an integer, not {v!r}") from None
    if v < minimum:
        raise ValueError(f"layer {node!r}: {key} must be at least {minimum}, not {v}")
    if maximum is not None and v > maximum:
        raise ValueError(f"layer {node!r}: {key} must be at most {maximum}, not {v}")
    return v


def _window(node, a, default_stride=None):
    """(kernel, stride, padding) of a conv or pooling node: each in range, and the
    padding below the kernel (a padding of the kernel or more makes windows of padding
    alone)."""
    k = _pos_int(node, "kernel", a.get("kernel"), 1, MAX_SPATIAL)
    s = _pos_int(node, "stride", a.get("stride", default_stride or 1), 1, MAX_SPATIAL)
    p = _pos_int(node, "padding", a.get("padding", 0), 0, MAX_SPATIAL)
    if p >= k:
        raise ValueError(f"layer {node!r}: padding {p} must be less than the kernel {k}")
    return k, s, p


def _out_hw(node, H, W, k, s, p):
    Ho = (H + 2 * p - k) // s + 1
    Wo = (W + 2 * p - k) // s + 1
    if Ho < 1 or Wo < 1:
        raise ValueError(
            f"layer {node!r}: kernel {k} with padding {p} does not fit its {H}x{W} input"
        )
    return Ho, Wo


def _bounded(node, shape, weights=0):
    """``shape`` unless it, or the layer's ``weights``, exceeds the bounds."""
    size = shape[0] * shape[1] * shape[2]
    if size > MAX_ACTIVATIONS:
        raise ValueError(f"layer {node!r}: output {shape} holds {size} elements, more than "
                         f"the {MAX_ACTIVATIONS} a node may")
    if weights > MAX_WEIGHTS:
        raise ValueError(f"layer {node!r}: {weights} weights, more than the {MAX_WEIGHTS} a "
                         f"layer may")
    return shape


class Graph:
    """An ordered, validated layer graph."""

    def __init__(self, nodes, name: str = "net"):
        self.name = name
        self.nodes: dict[str, Node] = {}
        for nd in nodes:
            self._add(nd)
        if not self.nodes:
            raise ValueError("a graph needs at least one node")

    # ------------------------------------------------------------------ building
    def _add(self, nd: Node):
        if not isinstance(nd, Node):
            raise TypeError(f"graph nodes must be Node, not {nd!r}")
        if nd.name in self.nodes:
            raise ValueError(f"layer {nd.name!r} is defined twice")
        if len(self.nodes) >= MAX_NODES:
            raise ValueError(f"a graph has at most {MAX_NODES} nodes")
        if nd.op not in OPS:
            raise ValueError(f"layer {nd.name!r}: unknown op {nd.op!r} (known: {OPS})")
        for i in nd.inputs:
            if i not in self.nodes:
                raise ValueError(
                    f"layer {nd.name!r}: input {i!r} is not a layer defined before it "
                    f"(dangling edge)"
                )
        want = {"input": 0, "add": 2}.get(nd.op, 1)
        if nd.op == "concat":
            if not 2 <= len(nd.inputs) <= MAX_CONCAT_INPUTS:
                raise ValueError(f"layer {nd.name!r}: op 'concat' takes 2 to "
                                 f"{MAX_CONCAT_INPUTS} inputs, not {len(nd.inputs)}")
        elif len(nd.inputs) != want:
            raise ValueError(
                f"layer {nd.name!r}: op {nd.op!r} takes {want} input(s), not {len(nd.inputs)}"
            )
        shape = self._infer(nd)
        self.nodes[nd.name] = Node(nd.name, nd.op, tuple(nd.inputs), dict(nd.attrs), shape)

    def _infer(self, nd: Node):
        a = nd.attrs
        if nd.op == "input":
            shp = tuple(a.get("shape", ()))
            if len(shp) != 3:
                raise ValueError(f"layer {nd.name!r}: input shape must be (C, H, W), not {shp}")
            return _bounded(nd.name, (
                _pos_int(nd.name, "shape", shp[0], 1, MAX_CHANNELS),
                *(_pos_int(nd.name, "shape", v, 1, MAX_SPATIAL) for v in shp[1:])))
        ins = [self.nodes[i].shape for i in nd.inputs]
        C, H, W = ins[0]
        if nd.op == "conv":
            O = _pos_int(nd.name, "out_channels", a.get("out_channels"), 1, MAX_CHANNELS)
            k, s, p = _window(nd.name, a)
            g = _pos_int(nd.name, "groups", a.get("groups", 1), 1, MAX_CHANNELS)
            if C % g or O % g:
                raise ValueError(
                    f"layer {nd.name!r}: groups = {g} must divide its {C} input and {O} output "
                    f"channels"
                )
            return _bounded(nd.name, (O, *_out_hw(nd.name, H, W, k, s, p)),
                            O * (C // g) * k * k)
        if nd.op == "fc":
            F = _pos_int(nd.name, "out_features", a.get("out_features"), 1, MAX_CHANNELS)
            if (H, W) != (1, 1):
                raise ValueError(
                    f"layer {nd.name!r}: fc takes a flat (C, 1, 1) input, not {(C, H, W)} "
                    f"(add a flatten or a global pool)"
                )
            return _bounded(nd.name, (F, 1, 1), F * C)
        if nd.op == "add":
            if ins[0] != ins[1]:
                raise ValueError(
                    f"layer {nd.name!r}: shape mismatch: {nd.inputs[0]!r} is {ins[0]}, "
                    f"{nd.inputs[1]!r} is {ins[1]}"
                )
            return ins[0]
        if nd.op in ("maxpool", "avgpool"):
            k = _pos_int(nd.name, "kernel", a.get("kernel"), 1, MAX_SPATIAL)
            k, s, p = _window(nd.name, a, default_stride=k)
            return (C, *_out_hw(nd.name, H, W, k, s, p))
        if nd.op == "flatten":
            return (C * H * W, 1, 1)
        if nd.op == "concat":  # along the channels
            for i, shp in zip(nd.inputs, ins):
                if shp[1:] != (H, W):
                    raise ValueError(f"layer {nd.name!r}: concat of {nd.inputs[0]!r} "
                                     f"{ins[0]} and {i!r} {shp}: heights and widths differ")
            return _bounded(nd.name, (sum(shp[0] for shp in ins), H, W))
        raise AssertionError(nd.op)  # pragma: no cover

    # ------------------------------------------------------------------ reading
    def __iter__(self):
        return iter(self.nodes.values())

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]

    def __len__(self):
        return len(self.nodes)

    def compute_layers(self) -> list[Node]:
        """The conv and fc layers, in order."""
        return [nd for nd in self if nd.op in COMPUTE_OPS]

    def layer_info(self, nd: Node) -> dict:
        """Shapes and counts of one conv/fc layer: MACs, weights, input and output
        activations, and N (the taps of one dot product)."""
        C, H, W = self.nodes[nd.inputs[0]].shape
        O, Ho, Wo = nd.shape
        if nd.op == "conv":
            k, g = nd.attrs["kernel"], nd.attrs.get("groups", 1)
            taps = (C // g) * k * k
        else:
            k, g, taps = 1, 1, C * H * W
        return {
            "name": nd.name,
            "op": nd.op,
            "in_shape": (C, H, W),
            "out_shape": (O, Ho, Wo),
            "kernel": k,
            "stride": nd.attrs.get("stride", 1),
            "padding": nd.attrs.get("padding", 0),
            "groups": g,
            "taps": taps,
            "macs": O * Ho * Wo * taps,
            "weights": O * taps,
            "in_activations": C * H * W,
            "out_activations": O * Ho * Wo,
        }

    def layer_table(self) -> list[dict]:
        """``layer_info`` of every conv and fc layer, in order."""
        return [self.layer_info(nd) for nd in self.compute_layers()]

    def total_macs(self) -> int:
        return sum(r["macs"] for r in self.layer_table())

    def total_weights(self) -> int:
        return sum(r["weights"] for r in self.layer_table())

    def summary(self) -> str:
        """A printed table: layers, shapes, MACs, parameters."""
        rows = [f"{self.name}: {len(self.compute_layers())} conv/fc layers, "
                f"{self.total_macs() / 1e9:.3f} G MACs, {self.total_weights() / 1e6:.2f} M weights",
                f"{'layer':28s} {'op':7s} {'in':>15s} {'out':>15s} {'k':>2s} {'s':>2s} "
                f"{'MACs':>12s} {'weights':>10s}"]
        for r in self.layer_table():
            rows.append(
                f"{r['name']:28s} {r['op']:7s} {'x'.join(map(str, r['in_shape'])):>15s} "
                f"{'x'.join(map(str, r['out_shape'])):>15s} {r['kernel']:>2d} {r['stride']:>2d} "
                f"{r['macs']:>12,d} {r['weights']:>10,d}")
        return "\n".join(rows)


# ---------------------------------------------------------------------- builders


class _Builder:
    def __init__(self):
        self.nodes: list[Node] = []

    def add(self, name, op, inputs=(), **attrs):
        self.nodes.append(Node(name, op, tuple(inputs), attrs))
        return name


def _basic_block(b: _Builder, x, name, cin, cout, stride):
    y = b.add(f"{name}.conv1", "conv", [x], out_channels=cout, kernel=3, stride=stride,
              padding=1, relu=True)
    y = b.add(f"{name}.conv2", "conv", [y], out_channels=cout, kernel=3, stride=1, padding=1,
              relu=False)
    sc = x
    if stride != 1 or cin != cout:
        sc = b.add(f"{name}.downsample", "conv", [x], out_channels=cout, kernel=1,
                   stride=stride, padding=0, relu=False)
    return b.add(f"{name}.add", "add", [y, sc], relu=True)


def _bottleneck(b: _Builder, x, name, cin, width, stride):
    cout = width * 4
    y = b.add(f"{name}.conv1", "conv", [x], out_channels=width, kernel=1, relu=True)
    y = b.add(f"{name}.conv2", "conv", [y], out_channels=width, kernel=3, stride=stride,
              padding=1, relu=True)
    y = b.add(f"{name}.conv3", "conv", [y], out_channels=cout, kernel=1, relu=False)
    sc = x
    if stride != 1 or cin != cout:
        sc = b.add(f"{name}.downsample", "conv", [x], out_channels=cout, kernel=1,
                   stride=stride, relu=False)
    return b.add(f"{name}.add", "add", [y, sc], relu=True)


def resnet18_cifar(num_classes: int = 10, width: int = 64) -> Graph:
    """ResNet-18 with the CIFAR stem (3x3 conv, no max pool) on 3x32x32 inputs."""
    b = _Builder()
    x = b.add("input", "input", shape=(3, 32, 32))
    x = b.add("conv1", "conv", [x], out_channels=width, kernel=3, stride=1, padding=1, relu=True)
    cin = width
    for stage, (mult, stride) in enumerate(((1, 1), (2, 2), (4, 2), (8, 2)), start=1):
        for blk in range(2):
            cout = width * mult
            x = _basic_block(b, x, f"layer{stage}.{blk}", cin, cout, stride if blk == 0 else 1)
            cin = cout
    x = b.add("avgpool", "avgpool", [x], kernel=4, stride=4)
    x = b.add("flatten", "flatten", [x])
    b.add("fc", "fc", [x], out_features=num_classes, relu=False)
    return Graph(b.nodes, name="resnet18_cifar10")


def resnet50_imagenet(num_classes: int = 1000) -> Graph:
    """ResNet-50 (v1.5: stride in the 3x3 conv) on 3x224x224 inputs."""
    b = _Builder()
    x = b.add("input", "input", shape=(3, 224, 224))
    x = b.add("conv1", "conv", [x], out_channels=64, kernel=7, stride=2, padding=3, relu=True)
    x = b.add("maxpool", "maxpool", [x], kernel=3, stride=2, padding=1)
    cin = 64
    for stage, (width, blocks, stride) in enumerate(
            ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)), start=1):
        for blk in range(blocks):
            x = _bottleneck(b, x, f"layer{stage}.{blk}", cin, width, stride if blk == 0 else 1)
            cin = width * 4
    x = b.add("avgpool", "avgpool", [x], kernel=7, stride=7)
    x = b.add("flatten", "flatten", [x])
    b.add("fc", "fc", [x], out_features=num_classes, relu=False)
    return Graph(b.nodes, name="resnet50_imagenet")


BUILDERS = {"resnet18_cifar10": resnet18_cifar, "resnet50_imagenet": resnet50_imagenet}


def resnet_tiny(in_shape=(1, 8, 8), widths=(16, 32), num_classes: int = 10,
                name: str = "resnet8_digits") -> Graph:
    """A small ResNet for small images (the shipped, trained demo network): a 3x3 stem
    conv, one basic block per stage (stride 2 from the second stage, a 1x1 downsample on
    the shortcut), a global average pool and a fully connected classifier."""
    b = _Builder()
    C, H, W = in_shape
    x = b.add("input", "input", shape=tuple(in_shape))
    x = b.add("conv1", "conv", [x], out_channels=widths[0], kernel=3, stride=1, padding=1,
              relu=True)
    cin = widths[0]
    for stage, cout in enumerate(widths, start=1):
        stride = 1 if stage == 1 else 2
        x = _basic_block(b, x, f"layer{stage}.0", cin, cout, stride)
        cin = cout
        H, W = (H + 2 - 3) // stride + 1, (W + 2 - 3) // stride + 1
    x = b.add("avgpool", "avgpool", [x], kernel=H, stride=H)
    x = b.add("flatten", "flatten", [x])
    b.add("fc", "fc", [x], out_features=num_classes, relu=False)
    return Graph(b.nodes, name=name)


BUILDERS["resnet8_digits"] = resnet_tiny


def graph_to_dicts(g: Graph) -> list[dict]:
    """The nodes of ``g`` as JSON-ready dicts (name, op, inputs, attrs): the graph part of
    the network file format (``dqt_hw.net.netfile``)."""
    out = []
    for nd in g:
        attrs = {k: (list(v) if isinstance(v, tuple) else v) for k, v in nd.attrs.items()}
        out.append({"name": nd.name, "op": nd.op, "inputs": list(nd.inputs), "attrs": attrs})
    return out


def graph_from_dicts(nodes, name: str = "net") -> Graph:
    """A ``Graph`` from ``graph_to_dicts`` output, validated like any other graph."""
    if not isinstance(nodes, (list, tuple)):
        raise TypeError(f"graph nodes must be a list of dicts, not {type(nodes).__name__}")
    built = []
    for i, d in enumerate(nodes):
        if not isinstance(d, dict) or "name" not in d or "op" not in d:
            raise ValueError(f"node {i} must be a dict with 'name' and 'op', not {d!r}")
        inputs = d.get("inputs", [])
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(f"layer {d['name']!r}: inputs must be a list, not {inputs!r}")
        attrs = d.get("attrs", {}) or {}
        if not isinstance(attrs, dict):
            raise ValueError(f"layer {d['name']!r}: attrs must be a dict, not {attrs!r}")
        built.append(Node(str(d["name"]), str(d["op"]), tuple(inputs), dict(attrs)))
    return Graph(built, name=name)
