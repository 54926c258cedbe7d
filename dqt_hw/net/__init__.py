"""dqt_hw.net: the network layer graph (and, as it grows, its file format, the integer
executor and the controller)."""

from .graph import BUILDERS, COMPUTE_OPS, OPS, Graph, Node, resnet18_cifar, resnet50_imagenet

__all__ = ["BUILDERS", "COMPUTE_OPS", "OPS", "Graph", "Node", "resnet18_cifar", "resnet50_imagenet"]
