"""dqt_hw.net: the network layer graph, the network file format, the integer-only
executor with static and per-input dynamic widths, and the controller
(docs/networks.md)."""

from .graph import (
    BUILDERS,
    COMPUTE_OPS,
    OPS,
    Graph,
    Node,
    resnet18_cifar,
    resnet50_imagenet,
    resnet_tiny,
)
_LAZY = {
    "FORMAT_VERSION": "network", "Arith": "network", "Controller": "network",
    "Layer": "network", "Network": "network", "default_path": "network", "load": "network",
    "random_controller": "network", "random_network": "network",
    "RunResult": "executor", "execute": "executor", "input_codes": "executor",
    "from_onnx": "onnx_import",
}


def __getattr__(name):
    # the graph stays importable without the model (cost models read only the graph)
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BUILDERS", "COMPUTE_OPS", "OPS", "Graph", "Node", "resnet18_cifar", "resnet50_imagenet",
    "resnet_tiny", "FORMAT_VERSION", "Arith", "Controller", "Layer", "Network",
    "default_path", "load", "random_controller", "random_network", "RunResult", "execute",
    "input_codes", "from_onnx",
]
